"""Sifu's settings, read from environment variables (the seed's names kept) and validated at start-up."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


class SettingError(Exception):
    """A setting is missing or invalid; the message names the variable and says how to fix it."""


_HOST_PORT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?")
_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?")
# Redirect URIs registered in the LMS may point at XBlock handlers: ':', '+', '@', '?', '%' are common.
_REDIRECT_URI = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?(?:[/?][!#-&(-;=?-\[\]-~]*)?")
_USERNAME = re.compile(r"[A-Za-z0-9_.@+-]{1,150}")
_VOLUME_ID = re.compile(r"[A-Za-z0-9_.:/+-]{1,255}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingError(f"{name}={raw!r} is not a boolean: use true or false")


def parse_origins(name: str, raw: str) -> list[str]:
    """Space-separated origins such as https://lms.example.org; anything else is refused."""
    origins = raw.split()
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise SettingError(
                f"{name}: {origin!r} is not an origin; give scheme://host[:port] values separated by spaces"
            )
    return list(dict.fromkeys(origins))


@dataclass(frozen=True)
class Settings:
    edx_hostname: str
    edx_client_id: str
    edx_client_secret: str = field(repr=False)
    edx_redirect_uri: str
    edx_force_ssl: bool
    notebook_root: Path
    secret_key: bytes = field(repr=False)
    database_url: str = field(repr=False)
    jupyter_url: str
    staff_usernames: frozenset[str]
    volume_id: str
    token_ttl: int
    frame_ancestors: tuple[str, ...]
    cookie_secure: bool
    edx_timeout: float = 10.0
    # SIFU_SERVICE_TOKEN: a bearer token that acts as staff (the deploy's smoke check); empty: none.
    service_token: str = field(default="", repr=False)

    @property
    def edx_base_url(self) -> str:
        return f"{'https' if self.edx_force_ssl else 'http'}://{self.edx_hostname}"


def database_url_from(env: Mapping[str, str], state_dir: Path) -> str:
    """SIFU_DATABASE_URL, else PostgreSQL from RDS_* (as Elastic Beanstalk sets them), else SQLite."""
    if env.get("SIFU_DATABASE_URL"):
        return env["SIFU_DATABASE_URL"]
    if env.get("RDS_HOSTNAME"):
        from sqlalchemy.engine import URL

        missing = [n for n in ("RDS_DB_NAME", "RDS_USERNAME", "RDS_PASSWORD") if not env.get(n)]
        if missing:
            raise SettingError(f"RDS_HOSTNAME is set but {', '.join(missing)} is not; set all RDS_* variables or none")
        port = env.get("RDS_PORT", "5432")
        if not port.isdigit():
            raise SettingError(f"RDS_PORT={port!r} is not a port number")
        url = URL.create(
            "postgresql+psycopg", username=env["RDS_USERNAME"], password=env["RDS_PASSWORD"],
            host=env["RDS_HOSTNAME"], port=int(port), database=env["RDS_DB_NAME"],
        )
        return url.render_as_string(hide_password=False)
    return f"sqlite:///{state_dir / 'sifu.sqlite3'}"


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingError naming the first bad variable."""
    env = os.environ if env is None else env

    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise SettingError(f"{name} is not set; Sifu needs it (see README, section Sifu)")
        return value

    hostname = required("EDX_HOSTNAME")
    if not _HOST_PORT.fullmatch(hostname):
        raise SettingError(f"EDX_HOSTNAME={hostname!r} must be host[:port] without a scheme, e.g. lms.example.org")
    redirect_uri = required("EDX_OAUTH2_CLIENT_REDIRECT_URI")
    if not _REDIRECT_URI.fullmatch(redirect_uri):
        raise SettingError(f"EDX_OAUTH2_CLIENT_REDIRECT_URI={redirect_uri!r} must be an http(s) URL")
    root = Path(required("SIFU_NOTEBOOK_ROOT"))
    if not root.is_absolute():
        raise SettingError(f"SIFU_NOTEBOOK_ROOT={str(root)!r} must be an absolute path")
    if not root.is_dir():
        raise SettingError(f"SIFU_NOTEBOOK_ROOT={str(root)!r} is not a directory; create it or mount the volume first")
    secret = required("SIFU_SECRET_KEY")
    if len(secret) < 32:
        raise SettingError("SIFU_SECRET_KEY is shorter than 32 characters; generate one with `openssl rand -hex 32`")
    jupyter_url = required("SIFU_JUPYTER_URL").rstrip("/")
    if not _URL.fullmatch(jupyter_url):
        raise SettingError(f"SIFU_JUPYTER_URL={jupyter_url!r} must be an http(s) URL such as https://host:3335")
    # Space-separated as the deployer writes it (EB refuses commas in environment properties); commas still work.
    staff = frozenset(u for u in re.split(r"[\s,]+", env.get("SIFU_STAFF_USERNAMES", "")) if u)
    for name in staff:
        if not _USERNAME.fullmatch(name):
            raise SettingError(f"SIFU_STAFF_USERNAMES: {name!r} is not a valid edX username")
    volume_id = env.get("SIFU_VOLUME_ID", "").strip()
    if volume_id and not _VOLUME_ID.fullmatch(volume_id):
        raise SettingError(f"SIFU_VOLUME_ID={volume_id!r} has characters a volume id never has")
    ttl_raw = env.get("SIFU_TOKEN_TTL", "86400").strip()
    if not ttl_raw.isdigit() or not 60 <= int(ttl_raw) <= 30 * 86400:
        raise SettingError(f"SIFU_TOKEN_TTL={ttl_raw!r} must be a number of seconds between 60 and 2592000")
    state_dir = Path(env.get("SIFU_STATE_DIR", "/var/lib/sifu"))
    service_token = env.get("SIFU_SERVICE_TOKEN", "").strip()
    if service_token and len(service_token) < 32:
        raise SettingError("SIFU_SERVICE_TOKEN is shorter than 32 characters; the deploy generates one")
    return Settings(
        edx_hostname=hostname,
        edx_client_id=required("EDX_OAUTH2_CLIENT_ID"),
        edx_client_secret=required("EDX_OAUTH2_CLIENT_SECRET"),
        edx_redirect_uri=redirect_uri,
        edx_force_ssl=parse_bool("EDX_OAUTH2_FORCE_SSL", env.get("EDX_OAUTH2_FORCE_SSL", "true")),
        notebook_root=root,
        secret_key=secret.encode(),
        database_url=database_url_from(env, state_dir),
        jupyter_url=jupyter_url,
        staff_usernames=staff,
        volume_id=volume_id,
        token_ttl=int(ttl_raw),
        frame_ancestors=tuple(parse_origins("SIFU_FRAME_ANCESTORS", env.get("SIFU_FRAME_ANCESTORS", ""))),
        cookie_secure=parse_bool("SIFU_COOKIE_SECURE", env.get("SIFU_COOKIE_SECURE", "false")),
        service_token=service_token,
    )
