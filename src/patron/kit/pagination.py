"""Page and cursor paging (API.md "Conventions").

Page paging: ``page`` from 1, ``page_size`` default 20, max 100. Cursor paging: an opaque
URL-safe token carrying the sort key of the last row and its id (keyset pagination), so
deep iteration costs the same on page 1 and page 10,000.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from patron.errors import InvalidInput
from patron.kit.jsonutil import dumps, loads

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def total_pages(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0


def encode_cursor(payload: dict[str, Any]) -> str:
    """Opaque cursor from a JSON-able payload."""
    return base64.urlsafe_b64encode(dumps(payload)).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Payload of a cursor made by :func:`encode_cursor`. Raises 422 for a bad cursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
    if not isinstance(payload, dict):
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"])
    return payload
