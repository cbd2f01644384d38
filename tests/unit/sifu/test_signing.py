"""Sifu-signed identities: only the right secret, an unexpired expiry and an untouched value pass."""

from __future__ import annotations

from sifu import signing

SECRET = b"s" * 64


def test_round_trip():
    value = signing.sign_identity(SECRET, "alice", 2_000)
    assert signing.verify_identity(SECRET, value, now=1_000) == "alice"


def test_usernames_with_dots_round_trip():
    value = signing.sign_identity(SECRET, "a.b.c", 2_000)
    assert signing.verify_identity(SECRET, value, now=1_000) == "a.b.c"


def test_expired_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000)
    assert signing.verify_identity(SECRET, value, now=2_000) is None


def test_other_secret_is_refused():
    value = signing.sign_identity(b"t" * 64, "alice", 2_000)
    assert signing.verify_identity(SECRET, value, now=1_000) is None


def test_tampering_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000)
    for forged in (value.replace("alice", "bob"), value.replace(".2000.", ".9000."), value[:-1] + ("A" if value[-1] != "A" else "B"),
                   value.replace("v1.", "v2."), "", "v1.alice.2000", "garbage", "a" * 600, None):
        assert signing.verify_identity(SECRET, forged, now=1_000) is None, forged


def test_signature_is_not_the_raw_secret_hmac():
    # The key is derived for this purpose, so the secret signs nothing else by accident.
    import base64
    import hashlib
    import hmac

    payload = "v1.alice.2000"
    raw = base64.urlsafe_b64encode(hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    assert signing.sign_identity(SECRET, "alice", 2_000) != f"{payload}.{raw}"
