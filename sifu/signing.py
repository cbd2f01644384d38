"""Identities Sifu signs for Jupyter: (username, expiry) under an HMAC-SHA256 of SIFU_SECRET_KEY.

Pure standard library so the Jupyter Server extension imports it without Sifu's web stack.
Format: ``v1.<username>.<expiry>.<session>.<signature>``: session is the sha256 of the Sifu token the
identity was issued for (Jupyter checks it is not revoked); the signature is urlsafe base64, unpadded.
Usernames are already restricted to characters that need no quoting in a cookie (sifu.names).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import NamedTuple

COOKIE_NAME = "sifu_identity"
_VERSION = "v1"
_PURPOSE = b"sifu jupyter identity v1"


def _key(secret: bytes) -> bytes:
    # A key derived for this one purpose, so the raw secret signs nothing else.
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Identity(NamedTuple):
    username: str
    expires_at: int
    session: str  # sha256 hex of the Sifu access token it was issued for: revoking the token ends it


_SESSION = re.compile(r"[0-9a-f]{64}")


def sign_identity(secret: bytes, username: str, expires_at: int, session: str) -> str:
    if not _SESSION.fullmatch(session):
        raise ValueError("session must be the token's sha256 hex digest")
    payload = f"{_VERSION}.{username}.{int(expires_at)}.{session}"
    return f"{payload}.{_mac(secret, payload)}"


def read_identity(secret: bytes, value: str | None, now: float | None = None) -> Identity | None:
    """The identity if `value` is validly signed with `secret` and unexpired; otherwise None."""
    if not value or len(value) > 512:
        return None
    try:
        payload, signature = value.rsplit(".", 1)
        version, rest = payload.split(".", 1)
        username, expires, session = rest.rsplit(".", 2)
    except ValueError:
        return None
    if version != _VERSION or not expires.isdigit() or not username or not _SESSION.fullmatch(session):
        return None
    if not hmac.compare_digest(_mac(secret, payload), signature):
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return Identity(username, int(expires), session)


def verify_identity(secret: bytes, value: str | None, now: float | None = None) -> str | None:
    """The username of a valid identity, or None."""
    identity = read_identity(secret, value, now)
    return identity.username if identity else None
