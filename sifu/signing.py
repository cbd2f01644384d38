"""Identities Sifu signs for Jupyter: (username, expiry, session) under an Ed25519 signature.

Asymmetric, so that nothing in Jupyter's process (or a kernel that reads it) can mint an identity: Sifu
holds the private key, derived from SIFU_SECRET_KEY for this one purpose; Jupyter is given only the public
key (SIFU_IDENTITY_PUBLIC_KEY, see sifu/launch.py) and verifies with it.

Imports only the standard library and `cryptography`, so the Jupyter Server extension uses it without
Sifu's web stack. Format: ``v2.<username>.<expiry>.<session>.<signature>``: session is the sha256 of the
Sifu token the identity was issued for (Jupyter checks it is active and that user's); the signature is
urlsafe base64, unpadded. Usernames are already restricted to characters that need no quoting in a
cookie (sifu.names).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import time
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

COOKIE_NAME = "sifu_identity"
PUBLIC_KEY_VARIABLE = "SIFU_IDENTITY_PUBLIC_KEY"
_VERSION = "v2"
_PURPOSE = b"sifu jupyter identity ed25519 v2"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=4)  # the serve path signs on every request; the key is the same each time
def private_key(secret: bytes) -> Ed25519PrivateKey:
    # A key derived for this one purpose, so the raw secret signs nothing else.
    return Ed25519PrivateKey.from_private_bytes(hmac.new(secret, _PURPOSE, hashlib.sha256).digest())


def public_key_text(secret: bytes) -> str:
    """The public half of the identity key, as SIFU_IDENTITY_PUBLIC_KEY carries it (urlsafe base64)."""
    return _b64(private_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    """Raises ValueError unless `text` is a 32-byte Ed25519 public key in urlsafe base64."""
    try:
        raw = _unb64(text.strip())
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


class Identity(NamedTuple):
    username: str
    expires_at: int
    session: str  # sha256 hex of the Sifu access token it was issued for: revoking the token ends it


_SESSION = re.compile(r"[0-9a-f]{64}")


# Ed25519 signatures are deterministic (RFC 8032), so a student who opens notebook after notebook with the same
# token gets the same identity each time: kept instead of signed again (a signature is about a quarter of the serve path's own CPU).
@functools.lru_cache(maxsize=4096)
def sign_identity(secret: bytes, username: str, expires_at: int, session: str) -> str:
    if not _SESSION.fullmatch(session):
        raise ValueError("session must be the token's sha256 hex digest")
    payload = f"{_VERSION}.{username}.{int(expires_at)}.{session}"
    return f"{payload}.{_b64(private_key(secret).sign(payload.encode()))}"


def read_identity(public_key: Ed25519PublicKey, value: str | None, now: float | None = None) -> Identity | None:
    """The identity if `value` is validly signed for `public_key` and unexpired; otherwise None."""
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
    try:
        raw = _unb64(signature)
        if _b64(raw) != signature:
            return None  # one value per signature: no second spelling through base64's unused bits
        public_key.verify(raw, payload.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        return None
    if int(expires) <= (time.time() if now is None else now):
        return None
    return Identity(username, int(expires), session)


def verify_identity(public_key: Ed25519PublicKey, value: str | None, now: float | None = None) -> str | None:
    """The username of a valid identity, or None."""
    identity = read_identity(public_key, value, now)
    return identity.username if identity else None
