"""Sifu's records: access tokens, stored hashed, with expiry and revocation, and each student's kernel uid
(shared by every worker and every container on the same database)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, bindparam, create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError, IntegrityError

from sifu.uids import UID_BASE, UID_LIMIT

# Plain Core tables, not ORM classes: every query here is Core already, and importing sqlalchemy.orm (for
# DeclarativeBase alone) cost Sifu's master about 0.05 s of CPU at every container start
# (tests/unit/sifu/test_startup_imports.py).
metadata = MetaData()

access_tokens = Table(
    "sifu_access_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("username", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_sifu_access_tokens_username", "username"),
)

# One row per student, allocated at the first sign-in or first copy and never deleted: the uid their kernels
# run as on every instance is UID_BASE + id. AUTOINCREMENT (SQLite) and a sequence (PostgreSQL) never hand
# out an id twice, even after a row is deleted, so a uid is never reused for another student.
student_uids = Table(
    "sifu_student_uids", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(255), unique=True, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)


@dataclass(frozen=True)
class TokenInfo:
    username: str
    expires_at: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # WAL lets readers and one writer overlap
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def create_schema(engine: Engine) -> None:
    """Create missing tables; several workers may race here, and losing that race is fine."""
    for attempt in range(5):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


class TokenStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        table = access_tokens
        # Built and compiled once for this database's driver: the serve path looks a token up on every request,
        # and run on the pooled driver connection it costs a tenth of what a SQLAlchemy execution adds around it.
        lookup = select(table.c.username, table.c.expires_at, table.c.revoked_at).where(
            table.c.token_hash == bindparam("token_hash")).compile(dialect=engine.dialect)
        self._lookup_sql = str(lookup)
        self._lookup_positional = lookup.positional
        # SQLite (a file on this machine): each thread keeps one connection for lookups, taken out of the pool
        # once, instead of a checkout and checkin (with its reset) per request, half of a lookup's cost. A SELECT
        # opens no transaction in sqlite3's default mode, so each lookup sees every write committed before it.
        self._readers: threading.local | None = threading.local() if engine.dialect.name == "sqlite" else None
        self._detached: list[Any] = []

    def _reader(self) -> Any:
        connection = getattr(self._readers, "connection", None)
        if connection is None:
            pooled = self.engine.raw_connection()  # made by the engine: its connect-time pragmas applied
            pooled.detach()
            connection = self._readers.connection = pooled.dbapi_connection
            self._detached.append(connection)
        return connection

    def close(self) -> None:
        """Close the lookup connections taken out of the pool (engine.dispose() closes only the pool's)."""
        while self._detached:
            self._detached.pop().close()

    def issue(self, username: str, ttl: int) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        with self.engine.begin() as conn:
            conn.execute(access_tokens.insert().values(
                token_hash=hash_token(token), username=username, created_at=now, expires_at=now + ttl))
        return token, ttl

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's user if it exists, is unexpired and not revoked."""
        return self.lookup_hash(hash_token(token))

    def lookup_hash(self, token_hash: str) -> TokenInfo | None:
        """The same, by the token's sha256 (what an identity cookie carries)."""
        params = (token_hash,) if self._lookup_positional else {"token_hash": token_hash}
        if self._readers is not None:
            connection = self._reader()
        else:
            connection = self.engine.raw_connection()  # from the pool (pre-ping included), as engine.connect() takes it
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._lookup_sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            if self._readers is None:
                connection.close()  # back to the pool, rolled back
        if row is None:
            return None
        username, expires_at, revoked_at = row
        if revoked_at is not None or expires_at <= time.time():
            return None
        return TokenInfo(username, expires_at)

    def revoke(self, token: str) -> bool:
        table = access_tokens
        with self.engine.begin() as conn:
            result = conn.execute(
                update(table).where(table.c.token_hash == hash_token(token), table.c.revoked_at.is_(None))
                .values(revoked_at=int(time.time()))
            )
        return result.rowcount > 0


class UidStore:
    """Stable kernel uids: the same on every instance because they come from the one database."""

    def __init__(self, engine: Engine):
        self.engine = engine
        table = student_uids
        self._lookup = select(table.c.id).where(table.c.username == bindparam("username"))

    def uid_of(self, username: str) -> int | None:
        """The student's uid, or None if none was allocated yet."""
        with self.engine.connect() as conn:
            row = conn.execute(self._lookup, {"username": username}).first()
        return None if row is None else UID_BASE + row.id

    def allocate(self, username: str) -> int:
        """The student's uid, allocated now if they have none. Concurrent callers (workers, containers) for the
        same name agree: the unique username lets one insert win and the others read its row."""
        found = self.uid_of(username)
        if found is not None:
            return found
        try:
            with self.engine.begin() as conn:
                conn.execute(student_uids.insert().values(username=username, created_at=int(time.time())))
        except IntegrityError:
            pass  # another worker or container allocated it first
        uid = self.uid_of(username)
        if uid is None or uid > UID_LIMIT:
            raise RuntimeError(f"no uid could be allocated for {username!r}")
        return uid
