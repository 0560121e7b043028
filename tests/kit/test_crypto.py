"""AES-256-GCM keyring and blind indexes (ENCRYPTION_KEYS, API.md)."""

from __future__ import annotations

import base64
import os

import pytest

from patron.kit.crypto import Keyring, KeyringError, blind_index


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_round_trip_and_fresh_nonce() -> None:
    ring = Keyring.parse(f"k1:{_key()}")
    a = ring.encrypt("EAAB-token", b"customers.access_token")
    b = ring.encrypt("EAAB-token", b"customers.access_token")
    assert a != b
    assert b"EAAB-token" not in a
    assert ring.decrypt(a, b"customers.access_token") == "EAAB-token"


def test_rotation_old_key_still_decrypts_new_key_encrypts() -> None:
    old, new = _key(), _key()
    before = Keyring.parse(f"old:{old}").encrypt("secret", b"ctx")
    rotated = Keyring.parse(f"new:{new},old:{old}")
    assert rotated.decrypt(before, b"ctx") == "secret"
    after = rotated.encrypt("secret", b"ctx")
    assert after[3:6] == b"new"
    with pytest.raises(KeyringError, match="key id"):
        Keyring.parse(f"old:{old}").decrypt(after, b"ctx")


def test_tampering_and_context_are_detected() -> None:
    ring = Keyring.parse(f"k:{_key()}")
    blob = bytearray(ring.encrypt("secret", b"ctx"))
    with pytest.raises(KeyringError):
        ring.decrypt(bytes(blob), b"other-column")
    blob[-1] ^= 1
    with pytest.raises(KeyringError, match="authentication"):
        ring.decrypt(bytes(blob), b"ctx")


@pytest.mark.parametrize(
    "spec",
    ["", "nokey", "k:not-base64!", f"k:{base64.b64encode(b'short').decode()}", f":{_key()}"],
    # fixed ids: the specs hold random keys, and xdist workers must collect the same names
    ids=["empty", "no-separator", "bad-base64", "short-key", "no-key-id"],
)
def test_malformed_keyring_is_refused(spec: str) -> None:
    with pytest.raises(KeyringError):
        Keyring.parse(spec)


def test_blind_index_is_keyed_and_deterministic() -> None:
    assert blind_index("s1", "doc", "123") == blind_index("s1", "doc", "123")
    assert blind_index("s1", "doc", "123") != blind_index("s2", "doc", "123")
    assert blind_index("s1", "doc", "123") != blind_index("s1", "otp", "123")
    assert "123" not in blind_index("s1", "doc", "123")
