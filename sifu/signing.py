"""Identities Sifu signs for Jupyter: (username, expiry) under an HMAC-SHA256 of SIFU_SECRET_KEY.

Pure standard library so the Jupyter Server extension imports it without Sifu's web stack.
Format: ``v1.<username>.<expiry>.<signature>`` where the signature is urlsafe base64 without padding.
Usernames are already restricted to characters that need no quoting in a cookie (sifu.names).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

COOKIE_NAME = "sifu_identity"
_VERSION = "v1"
_PURPOSE = b"sifu jupyter identity v1"


def _key(secret: bytes) -> bytes:
    # A key derived for this one purpose, so the raw secret signs nothing else.
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_identity(secret: bytes, username: str, expires_at: int) -> str:
    payload = f"{_VERSION}.{username}.{int(expires_at)}"
    return f"{payload}.{_mac(secret, payload)}"


def verify_identity(secret: bytes, value: str | None, now: float | None = None) -> str | None:
    """The username if `value` is a valid, unexpired identity signed with `secret`; otherwise None."""
    if not value or len(value) > 512:
        return None
    try:
        payload, signature = value.rsplit(".", 1)
        version, rest = payload.split(".", 1)
        username, expires = rest.rsplit(".", 1)
    except ValueError:
        return None
    if version != _VERSION or not expires.isdigit() or not username:
        return None
    if not hmac.compare_digest(_mac(secret, payload), signature):
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return username
