"""What stands behind the emulated EFS and RDS: a real NFSv4 server and a real PostgreSQL, each at an address in
its own network namespace (made beforehand by whoever owns the network; see sandbox/README.md).

- `NfsExport`: nfs-ganesha (userspace NFSv4, VFS backend; this kernel has no NFS server) exporting a directory
  that starts root:root 0755, like a new EFS file system (EFS-ROOT-OWNER) with root squashing off
  (EFS-NO-ROOT-SQUASH).
- `Database`: Debian's PostgreSQL, initialised with exactly the master user name, password and database name
  CreateDBInstance was given, listening on the endpoint's address and port (RDS-MASTER-CREDENTIALS,
  RDS-ENDPOINT). PostgreSQL refuses to run as root, so it runs as the `postgres` user the package creates.

Both `stop()` cleanly (SIGTERM, then a wait) and `remove()` deletes what they wrote.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GANESHA = "/usr/bin/ganesha.nfsd"
NFS_LS = "/usr/bin/nfs-ls"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

GANESHA_CONF = """\
NFS_CORE_PARAM {{
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Bind_addr = {address};
}}
NFSv4 {{
    RecoveryBackend = fs;
    RecoveryRoot = {state}/recovery;
    Graceless = true;
}}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /;
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = WARN; }}
"""


def _address(address: str) -> str:
    return str(ipaddress.ip_address(address))


def _in_namespace(namespace: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *argv]


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class NfsExport:
    """nfs-ganesha exporting `workdir/export` (the file system's root) at `address` in `namespace`."""

    def __init__(self, workdir: Path, namespace: str, address: str):
        self.workdir, self.namespace, self.address = workdir, namespace, _address(address)
        self.state = workdir / "ganesha"
        self.export = workdir / "export"
        self.log = self.state / "ganesha.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> NfsExport:
        (self.state / "recovery").mkdir(parents=True, exist_ok=True)
        self.export.mkdir(parents=True, exist_ok=True)
        # Like a new EFS file system: its root is root:root rwxr-xr-x, writable by root only (EFS-ROOT-OWNER).
        os.chown(self.export, 0, 0)
        self.export.chmod(0o755)
        conf = self.state / "ganesha.conf"
        conf.write_text(GANESHA_CONF.format(address=self.address, state=self.state, export=self.export))
        self.process = subprocess.Popen(
            _in_namespace(self.namespace, [GANESHA, "-F", "-f", str(conf), "-L", str(self.log),
                                           "-p", str(self.state / "ganesha.pid"), "-N", "NIV_WARN"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ganesha.nfsd exited {self.process.returncode}: {self._log_tail()}")
            if self.answers():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"ganesha did not answer on {self.address} within {timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def answers(self, from_namespace: str | None = None) -> bool:
        """nfs-ls lists the export (from the root namespace across the bridge, or from another namespace)."""
        argv = [NFS_LS, f"nfs://{self.address}/?version=4"]
        argv = _in_namespace(from_namespace, argv) if from_namespace else argv
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def remove(self) -> None:
        """Stop, then delete the export and the server's state: the file system is gone."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- RDS ---------------------------------------------------------------------------------------------------------

_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
_DB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_PASSWORD = re.compile(r"[\x20-\x7e]{8,128}")  # printable ASCII
_RESERVED_USERS = {"postgres", "rdsadmin", "rdsrepladmin", "rds_superuser", "public"}


@dataclass(frozen=True)
class DatabaseRequest:
    """What CreateDBInstance was given, checked as RDS checks it for PostgreSQL (RDS-MASTER-CREDENTIALS)."""

    master_username: str
    master_password: str = field(repr=False)
    db_name: str | None = None
    port: int = 5432

    def __post_init__(self):
        if not _USERNAME.fullmatch(self.master_username) or self.master_username.lower() in _RESERVED_USERS:
            raise ValueError(f"MasterUsername {self.master_username!r}: 1 to 16 letters, digits or '_', "
                             "starting with a letter, and not a reserved word")
        if not _PASSWORD.fullmatch(self.master_password) or set(self.master_password) & set('/"@'):
            raise ValueError("MasterUserPassword: 8 to 128 printable ASCII characters other than '/', '\"' and '@'")
        if self.db_name is not None and not _DB_NAME.fullmatch(self.db_name):
            raise ValueError(f"DBName {self.db_name!r}: 1 to 63 letters, digits or '_', starting with a letter")
        if not 1150 <= self.port <= 65535:
            raise ValueError(f"Port {self.port}: RDS takes 1150 to 65535")

    @classmethod
    def from_moto(cls, db_instance: Any) -> DatabaseRequest:
        """Read from moto's RDS model (moto.rds.models.DBInstance), in the process that runs moto.

        RDS never returns the password, and moto's public property refuses it likewise; moto keeps what
        CreateDBInstance was given in `_master_user_password`. A password managed in Secrets Manager
        (ManageMasterUserPassword) is not modelled."""
        password = getattr(db_instance, "_master_user_password", None)
        if not password:
            raise ValueError(f"DB instance {db_instance.db_instance_identifier}: no master password to start with")
        return cls(master_username=db_instance.master_username, master_password=password,
                   db_name=db_instance.db_name, port=int(db_instance.port))


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package creates the `postgres` user. setpriv execs (runuser
    # would stay as a parent and turn a stop into SIGKILL after two seconds).
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


class Database:
    """A PostgreSQL 15 cluster at `address`:`request.port` in `namespace`, reachable with the master credentials
    from any address (RDS's security groups are moto's records; this server does not filter)."""

    def __init__(self, workdir: Path, namespace: str, address: str, request: DatabaseRequest):
        self.workdir, self.namespace, self.address, self.request = workdir, namespace, _address(address), request
        # The cluster lives where the postgres user can reach it: a fresh directory of its own under the system's
        # temporary directory (a test's or the sandbox's work directory is often private to root).
        self.cluster = Path(tempfile.mkdtemp(prefix="sifu-rds-"))
        self.data = self.cluster / "data"
        self.sockets = self.cluster / "sockets"
        self.log = workdir / "postgres.log"
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.address, self.request.port

    def _initdb(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for directory in (self.cluster, self.data, self.sockets):
            directory.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(directory, "postgres", "postgres")
        pwfile = self.cluster / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(self.request.master_password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            result = subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U",
                                                  self.request.master_username, "--pwfile", str(pwfile),
                                                  "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"]),
                                    capture_output=True, text=True, timeout=120, cwd=self.cluster)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr[-2000:]}")
        # RDS admits any address its security groups let through, always with a password.
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")

    def start(self, timeout: float = 60.0) -> Database:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is not installed: apt-get install postgresql")
        self._initdb()
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            _in_namespace(self.namespace, _as_postgres([
                str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.request.port),
                "-c", f"listen_addresses={self.address}", "-c", f"unix_socket_directories={self.sockets}",
                "-c", "fsync=off"])),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.cluster)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(_as_postgres([str(PG_BIN / "pg_isready"), "-q", "-h", str(self.sockets),
                                                 "-p", str(self.request.port)]), capture_output=True, cwd=self.cluster)
            if ready.returncode == 0:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        if self.request.db_name:
            self._create_database(self.request.db_name)
        return self

    def _create_database(self, name: str) -> None:
        """RDS creates DBName, owned by the master user; without one there is only `postgres`."""
        env = {**os.environ, "PGPASSWORD": self.request.master_password}
        result = subprocess.run([str(PG_BIN / "createdb"), "-h", str(self.sockets), "-p", str(self.request.port),
                                 "-U", self.request.master_username, "-O", self.request.master_username, name],
                                capture_output=True, text=True, env=env, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {result.stderr[-2000:]}")

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT, timeout=30)  # SIGINT: PostgreSQL's fast shutdown (clients cut off)
        self.process = None

    def remove(self) -> None:
        """Stop, then delete the cluster: the DB instance is gone."""
        self.stop()
        shutil.rmtree(self.cluster, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
