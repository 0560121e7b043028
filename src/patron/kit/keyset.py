"""Newest-first lists of a customer's sub-resources, by page or by cursor (API.md
"Conventions": ``page`` / ``page_size`` give ``total`` and ``total_pages``; ``cursor`` /
``next_cursor`` continue a deep iteration and ignore ``page``).

The order is ``(time DESC, id DESC)``; the cursor carries that key of the last row given
(keyset pagination), so it costs the same at any depth and is stable under inserts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from patron.errors import InvalidInput
from patron.kit.pagination import (
    Window,
    carried_page,
    carried_total,
    decode_cursor,
    encode_cursor,
    total_pages,
)

__all__ = ["Slice", "Window", "newest_first"]


@dataclass(frozen=True)
class Slice:
    """One page of rows plus what the response needs around them."""

    rows: list[Any]
    total: int
    page: int
    page_size: int
    total_pages: int
    next_cursor: str | None

    def envelope(self) -> dict[str, Any]:
        """The paging fields of a list response (API.md "Conventions"), without the rows."""
        return {
            "total": self.total,
            "page": self.page,
            "page_size": self.page_size,
            "total_pages": self.total_pages,
            "next_cursor": self.next_cursor,
        }


def _decode(payload: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
    try:
        when = datetime.fromisoformat(str(payload["t"]))
        last_id = uuid.UUID(str(payload["id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
    if when.tzinfo is None:
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"])
    return when, last_id


async def newest_first(
    session: AsyncSession, stmt: Select[Any], time_col: Any, id_col: Any, window: Window
) -> Slice:
    """Rows of ``stmt`` (a tenant-scoped ``select(Model)``) newest first, for ``window``.

    A page asked for by number is counted. A page reached by cursor is not: the cursor
    carries the first page's total and the page number (:class:`patron.kit.pagination.Page`);
    a cursor made without them is counted. Raises :class:`InvalidInput` for a bad cursor.
    """
    page_stmt = stmt.order_by(time_col.desc(), id_col.desc()).limit(window.page_size + 1)
    total: int | None = None
    page = window.page
    if window.cursor is not None:
        payload = decode_cursor(window.cursor)
        when, last_id = _decode(payload)
        total, page = carried_total(payload), carried_page(payload)
        page_stmt = page_stmt.where(tuple_(time_col, id_col) < tuple_(when, last_id))
    else:
        page_stmt = page_stmt.offset((window.page - 1) * window.page_size)
    rows = list((await session.scalars(page_stmt)).all())
    if total is None:
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = int(await session.scalar(count) or 0)
    more = len(rows) > window.page_size
    rows = rows[: window.page_size]
    next_cursor = None
    if more and rows:
        key = getattr(rows[-1], time_col.key)
        next_cursor = encode_cursor(
            {"t": key.isoformat(), "id": str(rows[-1].id), "n": total, "p": page + 1}
        )
    return Slice(
        rows=rows,
        total=total,
        page=page,
        page_size=window.page_size,
        total_pages=total_pages(total, window.page_size),
        next_cursor=next_cursor,
    )
