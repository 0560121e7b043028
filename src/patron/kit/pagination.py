"""Page and cursor paging (API.md "Conventions").

Page paging: ``page`` from 1, ``page_size`` default 20, max 100. Cursor paging: an opaque
URL-safe token carrying the sort key of the last row and its id (keyset pagination), so
deep iteration costs the same on page 1 and page 10,000.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from patron.errors import InvalidInput
from patron.kit.jsonutil import dumps, loads

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Window:
    """Which part of a list is asked for: ``page`` (from 1) of ``page_size`` rows, or the
    rows after ``cursor`` (which then wins over ``page``)."""

    page: int
    page_size: int
    cursor: str | None = None


class Page(BaseModel):
    """The envelope every list response shares (API.md "Conventions"); a subclass adds the
    items under their own plural (``notes: list[NoteRead]``).

    A page asked for by ``page`` counts its matches (``total``, ``total_pages``). A page
    reached by ``cursor`` does not count again, since a deep iteration would pay for the
    count on every page: the cursor carries the first page's ``total`` (and flag) and the
    number of the page it leads to, which the page answers again.
    ``total_is_estimate`` is true when counting every match would be slow and ``total``
    is a lower bound (docs/decisions/0011-search-total.md).
    """

    total: int
    page: int
    page_size: int
    total_pages: int
    next_cursor: str | None = Field(description="Continues after this page; null at the end")
    total_is_estimate: bool = False


def carried_page(payload: dict[str, Any]) -> int:
    """The page number a cursor's payload leads to (1 for cursors made without one).
    Raises :class:`InvalidInput` (422) when it is not a positive integer."""
    page = payload.get("p", 1)
    if type(page) is not int or page < 1:
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"])
    return page


def carried_total(payload: dict[str, Any]) -> int | None:
    """The total a cursor's payload carries (None for cursors made without one).
    Raises :class:`InvalidInput` (422) when it is not a non-negative integer."""
    total = payload.get("n")
    if total is not None and (type(total) is not int or total < 0):
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"])
    return total


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
