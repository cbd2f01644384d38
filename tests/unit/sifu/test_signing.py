"""Sifu-signed identities: only Sifu's private key, an unexpired expiry and an untouched value pass; the
public key Jupyter holds verifies but cannot sign."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from sifu import signing

SECRET = b"s" * 64
SESSION = "ab" * 32
PUBLIC = signing.load_public_key(signing.public_key_text(SECRET))


def test_round_trip():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.verify_identity(PUBLIC, value, now=1_000) == "alice"


def test_usernames_with_dots_round_trip():
    value = signing.sign_identity(SECRET, "a.b.c", 2_000, SESSION)
    assert signing.verify_identity(PUBLIC, value, now=1_000) == "a.b.c"


def test_expired_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.verify_identity(PUBLIC, value, now=2_000) is None


def test_other_secret_is_refused():
    value = signing.sign_identity(b"t" * 64, "alice", 2_000, SESSION)
    assert signing.verify_identity(PUBLIC, value, now=1_000) is None


def test_tampering_is_refused():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    for forged in (value.replace("alice", "bob"), value.replace(".2000.", ".9000."), value[:-1] + ("A" if value[-1] != "A" else "B"),
                   value.replace("v2.", "v1."), value.replace(SESSION, "cd" * 32), "", "v2.alice.2000", "garbage",
                   value.rsplit(".", 1)[0] + ".!!!", "a" * 600, None):
        assert signing.verify_identity(PUBLIC, forged, now=1_000) is None, forged


def test_what_jupyter_holds_cannot_mint_an_identity():
    """The public key (all Jupyter gets) used as an HMAC secret, or the old HMAC format, signs nothing."""
    public_text = signing.public_key_text(SECRET)
    assert signing.verify_identity(PUBLIC, signing.sign_identity(public_text.encode(), "bob", 2_000, SESSION), now=1_000) is None
    payload = f"v2.bob.2000.{SESSION}"
    for key in (public_text.encode(), SECRET):
        mac = base64.urlsafe_b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        assert signing.verify_identity(PUBLIC, f"{payload}.{mac}", now=1_000) is None
        assert signing.verify_identity(PUBLIC, f"v1.bob.2000.{SESSION}.{mac}", now=1_000) is None


def test_public_key_text_round_trips_and_bad_keys_are_refused():
    assert signing.public_key_text(SECRET) == signing.public_key_text(SECRET)  # derived, stable across restarts
    assert signing.public_key_text(SECRET) != signing.public_key_text(b"t" * 64)
    for bad in ("", "abc", "!!!!", base64.urlsafe_b64encode(b"x" * 31).decode()):
        with pytest.raises(ValueError):
            signing.load_public_key(bad)


def test_identity_carries_the_session():
    value = signing.sign_identity(SECRET, "alice", 2_000, SESSION)
    assert signing.read_identity(PUBLIC, value, now=1_000) == signing.Identity("alice", 2_000, SESSION)


def test_session_must_be_a_token_hash():
    for bad in ("", "x" * 64, "AB" * 32, "ab" * 31, "ab.cd"):
        with pytest.raises(ValueError):
            signing.sign_identity(SECRET, "alice", 2_000, bad)
