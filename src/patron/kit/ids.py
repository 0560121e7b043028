"""Identifier helpers. Patron ids are UUIDv7 (RFC 9562 §5.7): time-ordered, index friendly."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    """A fresh UUIDv7 as a standard-library :class:`uuid.UUID`."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
