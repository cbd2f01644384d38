"""Sifu-signed identities: only the right secret, an unexpired expiry and an untouched value pass."""

from __future__ import annotations

from sifu import signing

SECRET = b"s" * 64
SESSION = "ab" * 32


def test_round_trip():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.verify_identity(SECRET, value, now=1_000) == "alice"


def test_usernames_with_dots_round_trip():
    value = signing.sign_identity(SECRET, "a.b.c", 2_000, SESSION)
    assert signing.verify_identity(SECRET, value, now=1_000) == "a.b.c"


def test_expired_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.verify_identity(SECRET, value, now=2_000) is None


def test_other_secret_is_refused():
    value = signing.sign_identity(b"t" * 64, "alice", 2_000, SESSION)
    assert signing.verify_identity(SECRET, value, now=1_000) is None


def test_tampering_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    for forged in (value.replace("alice", "bob"), value.replace(".2000.", ".9000."), value[:-1] + ("A" if value[-1] != "A" else "B"),
                   value.replace("v1.", "v2."), value.replace(SESSION, "cd" * 32), "", "v1.alice.2000", "garbage",
                   "a" * 600, None):
        assert signing.verify_identity(SECRET, forged, now=1_000) is None, forged


def test_signature_is_not_the_raw_secret_hmac():
    # The key is derived for this purpose, so the secret signs nothing else by accident.
    import base64
    import hashlib
    import hmac

    payload = f"v1.alice.2000.{SESSION}"
    raw = base64.urlsafe_b64encode(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    assert signing.sign_identity(SECRET, "alice", 2_000, SESSION) != f"{payload}.{raw}"


def test_identity_carries_the_session():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.read_identity(SECRET, value, now=1_000) == signing.Identity("alice", 2_000, SESSION)


def test_session_must_be_a_token_hash():
    import pytest

    for bad in ("", "x" * 64, "AB" * 32, "ab" * 31, "ab.cd"):
        with pytest.raises(ValueError):
            signing.sign_identity(SECRET, "alice", 2_000, bad)
