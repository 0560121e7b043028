"""Signatures of outgoing webhooks: the Standard Webhooks headers and the legacy
``Patron-Signature`` (docs/webhooks.md "Verifying the signature").

**Standard Webhooks** (https://github.com/standard-webhooks/standard-webhooks,
``spec/standard-webhooks.md``, "Signature scheme" and "Webhook headers")::

    webhook-id: <event id>            (the CloudEvent's id: the same on every retry)
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")> [v1,... ]

``key`` is the base64-decoded part of the secret after ``whsec_``. The signatures are made
by the ``standardwebhooks`` library (the reference implementation), one per active secret.

**Legacy** ``Patron-Signature``, after Stripe's (https://docs.stripe.com/webhooks#verify-manually)::

    Patron-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>[,v1=...]

keyed with the UTF-8 bytes of the whole secret (``whsec_`` included). Kept for receivers
written before the standard headers were sent.

During a secret rotation both headers carry one signature per active secret, the new
secret's first: receivers check each until one matches (the spec's zero-downtime
rotation). Secrets made by :func:`new_secret` are in the spec's format; older Patron
secrets (``whsec_`` + URL-safe base64 without padding) sign the standard header only when
they happen to be valid standard base64 (:func:`standard_key`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SIGNATURE_HEADER = "Patron-Signature"
EVENT_ID_HEADER = "Patron-Event-Id"
EVENT_TYPE_HEADER = "Patron-Event-Type"
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32
# the spec's range for a symmetric signing secret ("Between 24 bytes and 64 bytes")
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks format: ``whsec_`` and 32 random
    bytes in standard, padded base64 (50 characters in all)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def standard_key(secret: str) -> bytes | None:
    """The HMAC key a Standard Webhooks verifier derives from ``secret``: the part after
    ``whsec_`` decoded as standard base64 (missing padding tolerated), 24 to 64 bytes.

    None when there is none every verifier agrees on: secrets made before this scheme
    (``secrets.token_urlsafe``) that contain ``-`` or ``_`` are not standard base64 (the
    Python library silently drops those characters and derives another key; the Go and
    JavaScript ones refuse the secret). Such an endpoint gets no ``webhook-signature``
    until its secret is rotated.
    """
    if not secret.startswith(SECRET_PREFIX):
        return None
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return None
    return key if MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES else None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}."`` + ``body`` under the UTF-8 ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The value of ``Patron-Signature`` for ``body`` sent at ``timestamp`` (unix seconds):
    ``t=<timestamp>`` then one ``v1=`` per secret, in the order given."""
    return ",".join(
        [f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in signing_secrets)]
    )


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, f"{msg_id}.{timestamp}.{body}")>`` (Standard Webhooks,
    symmetric). ``body`` must be UTF-8 (JSON always is: RFC 8259 §8.1)."""
    at = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(key).sign(msg_id=msg_id, timestamp=at, data=body.decode("utf-8"))


def signed_headers(
    signing_secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The signature headers of one attempt, signed with every secret in
    ``signing_secrets`` (newest first): ``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature`` (left out when no secret has a :func:`standard_key`) and
    ``Patron-Signature``.

    ``msg_id`` must not contain ``.``, the separator of the signed content (the spec's
    rule); raises ``ValueError`` if it does, or if ``signing_secrets`` is empty.
    """
    if not signing_secrets:
        raise ValueError("at least one signing secret is needed")
    if "." in msg_id:
        raise ValueError("a webhook id may not contain '.'")
    headers = {
        WEBHOOK_ID_HEADER: msg_id,
        WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(signing_secrets, timestamp, body),
    }
    keys = [key for key in map(standard_key, signing_secrets) if key is not None]
    if keys:
        headers[WEBHOOK_SIGNATURE_HEADER] = " ".join(
            standard_signature(key, msg_id, timestamp, body) for key in keys
        )
    return headers
