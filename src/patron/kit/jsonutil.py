"""JSON encoding for responses and stored payloads (orjson, with Decimal and UUID support)."""

from __future__ import annotations

import math
import uuid
from decimal import Decimal
from typing import Any

import orjson

MAX_DEPTH = 32
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    # orjson takes uuid.UUID itself but not subclasses: asyncpg's own UUID, which the
    # driver fast path returns (patron.db.fastpath)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise to UTF-8 JSON bytes; datetimes become RFC 3339, UUIDs strings."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes or text."""
    return orjson.loads(data)


def check_storable(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` unless free JSON from a client can be stored and echoed as is:
    finite numbers within the signed 64-bit range, at most ``max_depth`` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"JSON is nested deeper than {max_depth} levels")
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
        elif (
            isinstance(item, int)
            and not isinstance(item, bool)
            and not _INT64_MIN <= item <= _INT64_MAX
        ):
            raise ValueError("integers must be within the signed 64-bit range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite")
        elif isinstance(item, float) and not _INT64_MIN <= item <= _INT64_MAX:
            # PostgreSQL prints a JSONB number in plain digits: 1e300 would come back as a
            # 301-digit integer.
            raise ValueError("numbers must be within the signed 64-bit range")
