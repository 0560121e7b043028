"""``X-Hub-Signature-256`` of Meta's webhooks: ``sha256=`` + the lowercase hex
HMAC-SHA256 of the raw request body under the app secret (Meta, "Webhooks for Messenger
Platform" > "Validate payloads"; specs/meta/meta-webhook-receiver.openapi.yaml).

Computed over the bytes as received: Meta escapes non-ASCII as ``\\uXXXX``, so a body
re-serialised after parsing would not match.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr

HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="
_SHAPE = re.compile(r"sha256=[0-9a-fA-F]{64}")


def parse_header(value: str | None) -> str | None:
    """The hex digest of a header value shaped ``sha256=<64 hex>`` (lower-cased), else
    None (missing or malformed)."""
    if value is None or not _SHAPE.fullmatch(value.strip()):
        return None
    return value.strip()[len(PREFIX) :].lower()


def sign(body: bytes, secret: str) -> str:
    """The header value Meta sends for ``body`` under ``secret`` (tests and benches sign
    with it too)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, digest: str, secret: SecretStr) -> bool:
    """True when ``digest`` (from :func:`parse_header`) is the HMAC-SHA256 of ``body``
    under ``secret``; compared in constant time (``hmac.compare_digest``)."""
    expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)
