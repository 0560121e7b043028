"""List and search of customers: filters, sorting, page and cursor paging (API.md)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)

from patron.customers.repository import READ_COLUMNS, C, CustomerRepository, S
from patron.customers.schemas import CustomerPage, CustomerStatus, CustomerType, Platform
from patron.customers.views import customer_read
from patron.db.fastpath import PreparedQuery, StatementCache
from patron.db.repository import tenant_filter
from patron.errors import InvalidInput
from patron.kit.pagination import (
    DEFAULT_PAGE_SIZE,
    carried_page,
    decode_cursor,
    encode_cursor,
    total_pages,
)
from patron.kit.validation import ContactPointError, normalize_email, normalize_phone
from patron.models import Customer, CustomerStats


class SortBy(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    LAST_NAME = "last_name"
    EMAIL = "email"
    LAST_INTERACTION_AT = "last_interaction_at"
    TOTAL_SPENT = "total_spent"
    LAST_ORDER_DATE = "last_order_date"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


# Sort keys. NULLs sort last in both directions (customers without a last name come after
# those with one); total_spent counts a customer without orders as 0.
_SORT_EXPR: dict[SortBy, Any] = {
    SortBy.CREATED_AT: C.created_at,
    SortBy.UPDATED_AT: C.updated_at,
    SortBy.LAST_NAME: C.last_name,
    SortBy.EMAIL: C.email,
    SortBy.LAST_INTERACTION_AT: C.last_interaction_at,
    SortBy.TOTAL_SPENT: func.coalesce(S.total_spent, 0),
    SortBy.LAST_ORDER_DATE: S.last_order_date,
}


_NOT_NULL_SORTS = frozenset({SortBy.CREATED_AT, SortBy.UPDATED_AT, SortBy.TOTAL_SPENT})
# Sorts with a (tenant_id, column, id) index: a common search term is paged through it.
_INDEXED_SORTS = frozenset({SortBy.CREATED_AT, SortBy.UPDATED_AT})


@dataclass
class CustomerQuery:
    """Parsed list parameters."""

    q: str | None = None
    email: str | None = None
    phone: str | None = None
    psid: str | None = None
    app_id: str | None = None
    status: CustomerStatus | None = None
    customer_type: CustomerType | None = None
    platform: Platform | None = None
    tags: list[str] = field(default_factory=list)
    created_after: datetime | None = None
    created_before: datetime | None = None
    blocked: bool | None = None
    page: int = 1
    page_size: int = 20
    cursor: str | None = None
    sort_by: SortBy = SortBy.CREATED_AT
    sort_order: SortOrder = SortOrder.DESC


def like_pattern(text: str) -> str:
    """A LIKE substring pattern with ``%``, ``_`` and ``\\`` matched literally.

    Escape only text that is already folded: ``patron_unaccent`` turns fullwidth ``%``,
    ``_`` and ``\\`` (U+FF05, U+FF3F, U+FF3C) into ASCII ones, which would act as
    wildcards if folded after escaping. The API builds its pattern in SQL with
    :func:`search_pattern`.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_pattern(text: str | ColumnElement[str]) -> ColumnElement[str]:
    """SQL for the LIKE pattern of ``q`` (a string, or a bind parameter of one): folded
    as ``search_document`` is (``patron_unaccent(lower(...))``), then escaped, so
    wildcards match literally. Its constants are inline SQL, so the expression also
    serves a statement compiled once (:data:`_SEARCH`)."""
    value = literal(text, Text) if isinstance(text, str) else text
    folded: ColumnElement[str] = func.patron_unaccent(func.lower(value), type_=Text)
    for char in ("\\", "%", "_"):
        folded = func.replace(folded, _sql_text(char), _sql_text("\\" + char), type_=Text)
    return _sql_text("%") + folded + _sql_text("%")


def _sql_text(value: str) -> ColumnElement[str]:
    """A text constant written into the SQL (``'...'``), not sent as a parameter."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def build_filters(query: CustomerQuery, default_region: str) -> list[ColumnElement[bool]]:
    """SQL conditions for the list parameters. Raises 422 for an invalid email or phone."""
    filters: list[ColumnElement[bool]] = []
    if query.q:
        filters.append(C.search_document.like(search_pattern(query.q.strip()), escape="\\"))
    if query.email:
        try:
            email = normalize_email(query.email)
        except ContactPointError as exc:
            raise InvalidInput(f"invalid email: {exc}", loc=["query", "email"]) from exc
        filters.append(func.lower(C.email) == email.lower())
    if query.phone:
        try:
            phone = normalize_phone(query.phone, default_region)
        except ContactPointError as exc:
            raise InvalidInput(f"invalid phone: {exc}", loc=["query", "phone"]) from exc
        filters.append(C.phone == phone)
    if query.psid:
        filters.append(or_(C.psid == query.psid, C.igsid == query.psid))
    if query.app_id:
        filters.append(C.app_id == query.app_id)
    if query.status:
        filters.append(C.status == query.status.value)
    if query.customer_type:
        filters.append(C.customer_type == query.customer_type.value)
    if query.platform:
        filters.append(C.platform == query.platform.value)
    for tag in query.tags:
        # tag labels match case-insensitively, like their catalog (API.md "Profile data")
        label: Any = literal_column("t")
        filters.append(
            exists(
                select(literal(1))
                .select_from(func.unnest(C.tags).table_valued("t").alias("t"))
                .where(func.lower(label) == tag.lower())
            )
        )
    if query.created_after:
        filters.append(C.created_at >= query.created_after)
    if query.created_before:
        filters.append(C.created_at < query.created_before)
    if query.blocked is True:
        filters.append(C.status == CustomerStatus.BLOCKED.value)
    elif query.blocked is False:
        filters.append(C.status != CustomerStatus.BLOCKED.value)
    return filters


# The common search (``q`` alone, sorted by a date, no cursor) runs on statements
# compiled once (kit/sql.py): building, cache-keying and processing them in SQLAlchemy
# cost about as much CPU as the database's own work for a search (bench/README.md).
# The same SQL as CustomerRepository.page_matches_first and .page for that shape.
_FROM = Customer.__table__.outerjoin(CustomerStats.__table__, S.customer_id == C.id)
_Q = bindparam("q", type_=Text)
_LIMIT = bindparam("limit", type_=Integer)
_OFFSET = bindparam("offset", type_=Integer)


def _build_search(key: tuple[SortBy, bool, bool]) -> Select[Any]:
    """The statement of a plain search sorted by ``key`` = (sort, descending, common):
    the matches-first page (with column ``matched``) or, for a common term, the page
    through the date index."""
    sort_by, desc, common = key
    expr = _SORT_EXPR[sort_by]
    live = (tenant_filter(Customer), C.deleted_at.is_(None))
    order = [expr.desc() if desc else expr.asc(), C.id.desc() if desc else C.id.asc()]
    matching = C.search_document.like(search_pattern(_Q), escape="\\")
    rows = select(*READ_COLUMNS).select_from(_FROM)
    if common:
        return rows.where(*live, matching).order_by(*order).limit(_LIMIT).offset(_OFFSET)
    found = (
        select(C.id, expr.label("sort_key"))
        .select_from(_FROM)
        .where(*live, matching)
        .limit(bindparam("collect", type_=Integer))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    by = [found.c.sort_key, found.c.id]
    chosen = select(found.c.id).order_by(*(o.desc() if desc else o.asc() for o in by))
    matched = select(func.count()).select_from(found).scalar_subquery()
    return (
        rows.add_columns(matched.label("matched"))
        .where(*live, C.id.in_(chosen.limit(_LIMIT).offset(_OFFSET)))
        .order_by(*order)
    )


_SEARCHES: StatementCache[PreparedQuery] = StatementCache(_build_search, PreparedQuery, size=8)

# The capped count of a plain search: the SQL of CustomerRepository.count(filters, cap=...)
# for the one filter ``q``, compiled once, so a plain search needs no ORM session.
_SEARCH_COUNT = PreparedQuery(
    select(func.count()).select_from(
        select(literal_column("1"))
        .select_from(_FROM)
        .where(
            tenant_filter(Customer),
            C.deleted_at.is_(None),
            C.search_document.like(search_pattern(_Q), escape="\\"),
        )
        .limit(bindparam("cap", type_=Integer))
        .subquery()
    )
)


def search_statement(sort_by: SortBy, *, desc: bool, common: bool) -> PreparedQuery:
    """The compiled statement of a plain search (parameters ``tenant``, ``q``, ``limit``,
    ``offset`` and, unless ``common``, ``collect``); the bench runs it too."""
    return _SEARCHES.get((sort_by, desc, common))


def is_plain_search(query: CustomerQuery) -> bool:
    """Whether ``query`` is ``q`` alone, sorted by an indexed date, without a cursor: a
    search :func:`list_customers` runs on prepared statements only (so on a driver unit,
    ``reads(driver=True)``; any other list needs an ORM session)."""
    bare = dataclasses.replace(
        query,
        q=None,
        page=1,
        page_size=DEFAULT_PAGE_SIZE,
        sort_by=SortBy.CREATED_AT,
        sort_order=SortOrder.DESC,
    )
    return bool(query.q) and query.sort_by in _INDEXED_SORTS and bare == CustomerQuery()


async def _plain_search(
    repo: CustomerRepository, query: CustomerQuery, *, limit: int, offset: int, collect: int
) -> tuple[list[Any], int]:
    """:meth:`CustomerRepository.page_matches_first` (then ``.page`` for a common term) on
    the compiled statements: ``(rows, matched)``."""
    desc = query.sort_order is SortOrder.DESC
    params: dict[str, Any] = {"q": (query.q or "").strip(), "limit": limit, "offset": offset}
    first = search_statement(query.sort_by, desc=desc, common=False)
    rows = await repo.fetch(first, collect=collect, **params)
    if rows:
        matched = int(rows[0]["matched"])
    elif not offset:
        return [], 0
    else:
        # A page past the gathered matches: how many were gathered (a page of one from
        # the start says) decides whether the term is common and paged by its date.
        probe = await repo.fetch(first, collect=collect, **{**params, "limit": 1, "offset": 0})
        matched = int(probe[0]["matched"]) if probe else 0
    if matched >= collect:  # a common term: the sort index finds it soon
        rows = await repo.fetch(search_statement(query.sort_by, desc=desc, common=True), **params)
    return rows, matched


def _after(expr: Any, value: Any, last_id: uuid.UUID, *, desc: bool) -> ColumnElement[bool]:
    """Rows after ``(value, last_id)`` in the order ``expr`` (NULLs last), ``id``."""
    if value is None:
        return and_(expr.is_(None), C.id < last_id if desc else C.id > last_id)
    pair, bound = tuple_(expr, C.id), tuple_(literal(value), literal(last_id))
    return or_(and_(expr.is_not(None), pair < bound if desc else pair > bound), expr.is_(None))


def _cursor_value(sort_by: SortBy, raw: Any) -> Any:
    if raw is None:
        return None
    if sort_by in {SortBy.CREATED_AT, SortBy.UPDATED_AT, SortBy.LAST_INTERACTION_AT}:
        return datetime.fromisoformat(raw)
    if sort_by is SortBy.TOTAL_SPENT:
        return Decimal(raw)
    if sort_by is SortBy.LAST_ORDER_DATE:
        return date.fromisoformat(raw)
    return str(raw)


async def list_customers(
    repo: CustomerRepository,
    query: CustomerQuery,
    default_region: str,
    *,
    count_cap: int = 10_000,
    search_collect: int = 2_000,
) -> CustomerPage:
    """One page of live customers matching ``query``, with the total and a next cursor.

    A text search (``q``) sorted by an indexed date first gathers up to
    ``search_collect`` matches (page and total in one statement); a term that common is
    paged through the date index instead (see
    :meth:`CustomerRepository.page_matches_first`).

    The total (docs/decisions/0011-search-total.md, API.md "Conventions"):

    - exact whenever it comes for free (every match gathered, or the last page) and for
      lists without ``q`` (counted);
    - for a search with ``q``, counted up to ``count_cap`` matches; at the cap the count
      stops and the page answers a lower bound, ``max(count_cap, rows seen so far)``, with
      ``total_is_estimate`` true (Shopify's ``precision: AT_LEAST``, Elasticsearch's
      ``"relation": "gte"``). When the gathering already saw ``count_cap`` matches, no
      count runs at all;
    - on a page reached by ``cursor``, the total and its flag of the first page, carried
      in the cursor: the count is not run again while a client walks the result.

    Raises :class:`InvalidInput` (422) for a bad cursor, email or phone.
    """
    # a plain search runs on compiled statements: no filter expressions to build for it
    plain_shape = is_plain_search(query)
    filters = [] if plain_shape else build_filters(query, default_region)
    expr = _SORT_EXPR[query.sort_by]
    desc = query.sort_order is SortOrder.DESC
    # NULLS LAST only where NULLs can occur: on created_at / updated_at it would stop
    # PostgreSQL from walking their (tenant_id, created_at, id) indexes backwards.
    key = expr.desc() if desc else expr.asc()
    if query.sort_by not in _NOT_NULL_SORTS:
        key = key.nulls_last()
    order = [key, C.id.desc() if desc else C.id.asc()]
    keyset = None
    carried: _Total | None = None  # the first page's total, carried by the cursor
    page = query.page  # a cursor carries the number of the page it leads to
    offset = (query.page - 1) * query.page_size
    if query.cursor:
        payload = decode_cursor(query.cursor)
        if payload.get("s") != query.sort_by.value or payload.get("o") != query.sort_order.value:
            raise InvalidInput("cursor was made for another sort order", loc=["query", "cursor"])
        try:
            value = _cursor_value(query.sort_by, payload["v"])
            last_id = uuid.UUID(str(payload["i"]))
            carried = _carried_total(payload)
            page = carried_page(payload)
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
        keyset = _after(expr, value, last_id, desc=desc)
        offset = 0
    limit = query.page_size + 1
    gathered: int | None = None  # matches a matches-first search gathered (at most collect)
    if plain_shape:
        rows, gathered = await _plain_search(
            repo, query, limit=limit, offset=offset, collect=search_collect
        )
    elif query.q and query.sort_by in _INDEXED_SORTS:
        rows, gathered = await repo.page_matches_first(
            filters,
            expr,
            desc=desc,
            keyset=keyset,
            limit=limit,
            offset=offset,
            collect=search_collect,
        )
        if gathered >= search_collect:  # a common term: the sort index finds it soon
            rows = await repo.page(filters, order, keyset=keyset, limit=limit, offset=offset)
    else:
        rows = await repo.page(filters, order, keyset=keyset, limit=limit, offset=offset)
    has_more = len(rows) > query.page_size
    rows = rows[: query.page_size]
    if carried is not None:
        total = carried
    elif gathered is not None and gathered < search_collect and not query.cursor:
        total = _Total(gathered)  # every match was gathered: exact for free
    elif not has_more and not query.cursor and (rows or offset == 0):
        total = _Total(offset + len(rows))  # the last page: no count query needed
    elif query.q:
        # At least this many match: the rows up to this page's end, and the gathered ones.
        seen = max(offset + len(rows) + int(has_more), gathered or 0)
        # A search counts at most `count_cap` matches (as HubSpot's and Shopify's counts
        # do): an exact count of a common substring over a large tenant costs more than
        # the page itself (bench/README.md).
        if seen >= count_cap:
            counted = seen
        elif plain_shape:
            found = await repo.fetch(_SEARCH_COUNT, q=(query.q or "").strip(), cap=count_cap)
            counted = int(found[0][0])
        else:
            counted = await repo.count(filters, cap=count_cap)
        total = _Total(max(counted, seen), estimate=counted >= count_cap)
    else:
        total = _Total(await repo.count(filters))
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        sort_value = _row_sort_value(query.sort_by, last)
        next_cursor = encode_cursor(
            {
                "s": query.sort_by.value,
                "o": query.sort_order.value,
                "v": sort_value,
                "i": str(_mapping(last)["id"]),
                "t": total.value,
                "e": total.estimate,
                "p": page + 1,
            }
        )
    # Built without validation: every CustomerRead is already validated from its row, and
    # the route renders the page straight to JSON (page_response), not through FastAPI's
    # dump-validate-serialize round trip of the response model.
    return CustomerPage.model_construct(
        customers=[customer_read(r) for r in rows],
        total=total.value,
        total_is_estimate=total.estimate,
        page=page,
        page_size=query.page_size,
        total_pages=total_pages(total.value, query.page_size),
        next_cursor=next_cursor,
    )


@dataclass(frozen=True, slots=True)
class _Total:
    """A list's ``total``; ``estimate`` when it is a lower bound (the count stopped)."""

    value: int
    estimate: bool = False


def _carried_total(payload: dict[str, Any]) -> _Total | None:
    """The total a cursor carries (None for a cursor made before totals were carried).
    Raises ``ValueError`` when it is malformed."""
    if "t" not in payload:
        return None
    value, estimate = payload["t"], payload.get("e", False)
    if type(value) is not int or value < 0 or type(estimate) is not bool:
        raise ValueError("bad total in cursor")
    return _Total(value, estimate)


def _mapping(row: Any) -> Mapping[Any, Any]:
    """A result row as a mapping: a SQLAlchemy ``Row``'s, or an ``asyncpg.Record``."""
    return row._mapping if isinstance(row, Row) else row


def _row_sort_value(sort_by: SortBy, row: Any) -> Any:
    m = _mapping(row)
    value = {
        SortBy.CREATED_AT: m["created_at"],
        SortBy.UPDATED_AT: m["updated_at"],
        SortBy.LAST_NAME: m["last_name"],
        SortBy.EMAIL: m["email"],
        SortBy.LAST_INTERACTION_AT: m["last_interaction_at"],
        SortBy.TOTAL_SPENT: m["stats_total_spent"] or 0,
        SortBy.LAST_ORDER_DATE: m["stats_last_order_date"],
    }[sort_by]
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
