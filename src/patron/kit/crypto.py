"""Encryption at rest (AES-256-GCM with key ids) and keyed blind indexes (HMAC-SHA256).

``ENCRYPTION_KEYS`` is ``key_id:base64(32 bytes)[,key_id:base64(32 bytes)...]`` (API.md):
the first key encrypts, every key decrypts, so keys rotate by prepending a new one.

Ciphertext layout: ``b"v1" | len(key_id) (1 byte) | key_id | nonce (12 bytes) | GCM output``.
The key id and the caller's ``context`` (e.g. ``b"customers.access_token"``) are bound
as associated data, so a ciphertext cannot be moved to another column undetected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"v1"
_NONCE_BYTES = 12


class KeyringError(ValueError):
    """``ENCRYPTION_KEYS`` is malformed, or a ciphertext cannot be decrypted."""


@dataclass(frozen=True)
class Keyring:
    """The parsed ``ENCRYPTION_KEYS``; ``keys[0]`` is the active (encrypting) key."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``id:base64,...``. Raises :class:`KeyringError` on any malformed entry."""
        keys: list[tuple[str, bytes]] = []
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            key_id, sep, b64 = entry.partition(":")
            if not sep or not key_id or len(key_id.encode()) > 255:
                raise KeyringError("each ENCRYPTION_KEYS entry must be key_id:base64")
            try:
                key = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise KeyringError(f"key {key_id!r} is not valid base64") from exc
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} must decode to 32 bytes (AES-256)")
            keys.append((key_id, key))
        if not keys:
            raise KeyringError("ENCRYPTION_KEYS has no key")
        return cls(tuple(keys))

    def encrypt(self, plaintext: str, context: bytes) -> bytes:
        """Encrypt UTF-8 text under the active key, bound to ``context``."""
        key_id, key = self.keys[0]
        kid = key_id.encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), kid + b"|" + context)
        return _VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> str:
        """Decrypt a value made by :meth:`encrypt`. Raises :class:`KeyringError`."""
        if blob[:2] != _VERSION or len(blob) < 3:
            raise KeyringError("unknown ciphertext format")
        kid_len = blob[2]
        kid = blob[3 : 3 + kid_len]
        nonce = blob[3 + kid_len : 3 + kid_len + _NONCE_BYTES]
        sealed = blob[3 + kid_len + _NONCE_BYTES :]
        key = dict(self.keys).get(kid.decode(errors="replace"))
        if key is None:
            raise KeyringError("ciphertext key id is not in ENCRYPTION_KEYS")
        try:
            return AESGCM(key).decrypt(nonce, sealed, kid + b"|" + context).decode()
        except InvalidTag as exc:
            raise KeyringError("ciphertext failed authentication") from exc


def blind_index(secret: str, context: str, value: str) -> str:
    """Keyed HMAC-SHA256 of ``value`` for equality look-ups without storing it in clear."""
    key = hashlib.sha256(f"patron-blind-index:{context}:{secret}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
