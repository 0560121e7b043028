"""The paging dependency of every list route (API.md "Conventions").

``page`` (from 1, default 1), ``page_size`` (default 20, at most 100; alias ``pageSize``)
and ``cursor`` (an opaque ``next_cursor`` of an earlier page; it wins over ``page``).
A route takes ``window: Paging`` and hands the :class:`Window` to its service.

One list sizes its pages by ``limit`` instead, as API.md pins it
(``/customers/{id}/communications?limit=50``): ``window: LimitPaging`` takes ``limit``
(default 50, at most 200), ``page`` and ``cursor`` alike and gives the same :class:`Window`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Window

MAX_PAGE = 100_000
MAX_CURSOR_LENGTH = 1000
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1")]
# A cursor is URL-safe base64 without padding (kit.pagination.encode_cursor); only one the
# service issued is valid, which no schema can say (422 "cursor is not valid" otherwise).
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next_cursor` of the previous page, as given (an opaque token); "
        "it wins over `page`",
    ),
]


async def page_window(
    page: PageNumber = 1,
    page_size: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Rows a page (default {DEFAULT_PAGE_SIZE})"),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Window:
    """The :class:`Window` a list request asks for. ``pageSize`` reaches it as
    ``page_size`` (:class:`patron.http.middleware.CamelCaseQueryMiddleware`, which also
    refuses the two disagreeing). ``async`` only so that FastAPI calls it in the event
    loop: a plain ``def`` dependency is run in a worker thread, a thread hop per list."""
    return Window(page=page, page_size=page_size, cursor=cursor)


async def limit_window(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Rows a page (default {DEFAULT_LIMIT})")
    ] = DEFAULT_LIMIT,
    page: PageNumber = 1,
    cursor: Cursor = None,
) -> Window:
    """The :class:`Window` of a list sized by ``limit`` (API.md "Profile data")."""
    return Window(page=page, page_size=limit, cursor=cursor)


Paging = Annotated[Window, Depends(page_window)]
LimitPaging = Annotated[Window, Depends(limit_window)]
