"""Queries on ``customers`` (SQLAlchemy Core on the hot paths: one statement per step)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.sql import Select

from patron.db.fastpath import PreparedQuery, StatementCache, python_defaults
from patron.db.repository import TenantScopedRepository, tenant_filter
from patron.identities.repository import (
    KEY_MATCH,
    guarding_live_identities,
    insert_identities,
    new_identity_params,
)
from patron.identities.schemas import IdentityKey
from patron.models import Customer, CustomerIdentity, CustomerStats

CUSTOMERS = cast(Table, Customer.__table__)
C = Customer.__table__.c
I = CustomerIdentity.__table__.c  # noqa: E741 - I for identities, like C and S
S = CustomerStats.__table__.c

# Columns read for a customer response (never the ciphertext itself, only whether it exists).
CUSTOMER_COLUMNS: tuple[Any, ...] = (
    *[
        col
        for col in Customer.__table__.c
        if col.name not in {"access_token_encrypted", "search_document"}
    ],
    (C.access_token_encrypted.is_not(None)).label("has_access_token"),
)
STATS_LABELS = (
    "stats_currency",
    "stats_total_orders",
    "stats_total_spent",
    "stats_lifetime_value",
    "stats_first_order_date",
    "stats_last_order_date",
    "stats_total_appointments",
    "stats_last_appointment_date",
)
READ_COLUMNS: tuple[Any, ...] = (
    *CUSTOMER_COLUMNS,
    S.currency.label("stats_currency"),
    S.total_orders.label("stats_total_orders"),
    S.total_spent.label("stats_total_spent"),
    S.lifetime_value.label("stats_lifetime_value"),
    S.first_order_date.label("stats_first_order_date"),
    S.last_order_date.label("stats_last_order_date"),
    S.total_appointments.label("stats_total_appointments"),
    S.last_appointment_date.label("stats_last_appointment_date"),
)

_FROM = Customer.__table__.outerjoin(CustomerStats.__table__, S.customer_id == C.id)

# GET /customers/{id} is the hottest read: compiled once (see PreparedQuery).
_GET_BY_ID = PreparedQuery(
    select(*READ_COLUMNS)
    .select_from(_FROM)
    .where(tenant_filter(Customer), C.deleted_at.is_(None), C.id == bindparam("customer_id"))
)

# The same read in one round trip: customer_by_id() (migration 0011, decision 0016) sets
# the tenant for its own statement; runs on any executor, a transaction-less one included.
_CUSTOMER_BY_ID = PreparedQuery(
    text("SELECT * FROM customer_by_id(:tenant, :customer_id)").bindparams(
        bindparam("tenant", type_=String), bindparam("customer_id", type_=Uuid)
    )
)

# The live holders of identity keys (three parallel arrays): as read, for an upsert's
# first look outside a transaction; and locked in primary-key order, inside one.
_HOLDERS_SELECT = (
    select(*READ_COLUMNS)
    .select_from(_FROM)
    .where(
        tenant_filter(Customer),
        C.deleted_at.is_(None),
        C.id.in_(
            select(I.customer_id).where(
                tenant_filter(CustomerIdentity),
                I.released_at.is_(None),
                KEY_MATCH,
            )
        ),
    )
    .order_by(C.id)
)
_HOLDERS = PreparedQuery(_HOLDERS_SELECT)
_HOLDERS_FOR_UPDATE = PreparedQuery(_HOLDERS_SELECT.with_for_update(of=Customer.__table__))


def _param(column: str) -> str:
    # bind names may not equal a column name of an INSERT/UPDATE (SQLAlchemy reserves them)
    return f"v_{column}"


def _build_insert(columns: tuple[str, ...]) -> Any:
    # the customer's identities go in the same statement (a data-modifying CTE; the
    # foreign key is checked at the end of the statement, when both rows exist)
    identities = insert_identities(bindparam(_param("id"), type_=Uuid)).cte("new_identities")
    return (
        insert(CUSTOMERS)
        .values(
            {
                **{c: bindparam(_param(c), type_=C[c].type) for c in columns},
                "tenant_id": bindparam("tenant", type_=String),
            }
        )
        .returning(*CUSTOMER_COLUMNS)
        .add_cte(identities)
    )


def _build_update(key: tuple[tuple[str, ...], bool]) -> Any:
    columns, conditional = key
    stmt = update(CUSTOMERS).where(
        tenant_filter(Customer), C.id == bindparam("customer_id", type_=Uuid)
    )
    if conditional:
        stmt = stmt.where(
            C.version == bindparam("expected_version", type_=Integer), C.deleted_at.is_(None)
        )
    return stmt.values(
        {
            **{c: bindparam(_param(c), type_=C[c].type) for c in columns},
            "version": C.version + literal_column("1"),
            "updated_at": func.now(),
        }
    ).returning(*CUSTOMER_COLUMNS)


# Sent explicitly with every insert: SQLAlchemy leaves Python-side defaults out of an
# INSERT with a CTE (see patron.db.fastpath.CompiledStatement).
_INSERT_DEFAULTS = python_defaults(CUSTOMERS)

# Inserts and updates compiled once per column set (a webhook sends the same few fields).
_INSERTS = StatementCache(_build_insert, PreparedQuery)
_UPDATES = StatementCache(_build_update, PreparedQuery)


class CustomerRepository(TenantScopedRepository[Customer]):
    model = Customer

    def read_select(self) -> Select[Any]:
        """``SELECT`` of the response columns of live customers of this tenant."""
        return self.select(*READ_COLUMNS).select_from(_FROM).where(C.deleted_at.is_(None))

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Row[Any] | None:
        """A live customer's response row, optionally locked (``FOR UPDATE OF customers``)."""
        stmt = self.read_select().where(C.id == customer_id)
        if for_update:
            stmt = stmt.with_for_update(of=Customer.__table__)
        row: Row[Any] | None = (await self.session.execute(stmt)).first()
        return row

    async def get_fast(self, customer_id: uuid.UUID) -> Any:
        """:meth:`get` without locking, in one statement (``customer_by_id``, which sets the
        tenant itself): a mapping (``asyncpg.Record``) or None. Works in a transaction-less
        unit (``reads(statements=True)``) and in any other."""
        return await self.fetchrow(_CUSTOMER_BY_ID, customer_id=customer_id)

    async def holders(self, keys: Iterable[tuple[str, str, str]], *, for_update: bool) -> list[Any]:
        """Live customers holding any of the identity ``(kind, namespace, value)`` keys, in
        primary-key order; ``for_update`` locks them (resolution and row lock in one
        statement). Rows are read-only mappings (``asyncpg.Record``) of the response
        columns."""
        wanted = list(keys)
        if not wanted:
            return []
        kinds, namespaces, values = (list(column) for column in zip(*wanted, strict=True))
        return await self.fetch(
            _HOLDERS_FOR_UPDATE if for_update else _HOLDERS,
            kinds=kinds,
            namespaces=namespaces,
            values=values,
        )

    async def get_many_for_update(self, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
        """Lock several live customers in primary-key order (deadlock-free)."""
        stmt = (
            self.read_select()
            .where(C.id.in_(ids))
            .order_by(C.id)
            .with_for_update(of=Customer.__table__)
        )
        return list((await self.session.execute(stmt)).all())

    async def insert(
        self, values: dict[str, Any], identities: Iterable[IdentityKey] = ()
    ) -> dict[str, Any]:
        """Insert a customer (``values`` include ``id``) and its ``identities``, in one
        statement; returns its customer columns (no stats: a new customer has none). Column
        defaults of the model apply.

        Raises :class:`~patron.identities.repository.IdentityTaken` when a live customer
        holds one of ``identities`` (the unique index decides; the transaction is then
        aborted).
        """
        values = {
            **{name: make() for name, make in _INSERT_DEFAULTS.items() if name not in values},
            **values,
        }
        columns = tuple(sorted(values))
        keys = list(identities)
        with guarding_live_identities(keys):
            row = await self.fetchrow(
                _INSERTS.get(columns),
                **{_param(c): values[c] for c in columns},
                **new_identity_params(keys),
            )
        return {**row, **dict.fromkeys(STATS_LABELS)}

    async def update(self, customer_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
        """Apply ``values`` and bump ``version`` (callers hold the row lock); returns the
        updated customer columns."""
        row = await self._update(customer_id, values, None)
        if row is None:  # a caller bug: the lock it holds guarantees the row
            raise LookupError(f"customer {customer_id} vanished under its row lock")
        return row

    async def update_at_version(
        self, customer_id: uuid.UUID, values: dict[str, Any], version: int
    ) -> dict[str, Any] | None:
        """:meth:`update` without holding the lock: the row is written only if it is still
        live at ``version`` (read without a lock), else None (optimistic concurrency; the
        ``UPDATE`` itself takes the row lock)."""
        return await self._update(customer_id, values, version)

    async def _update(
        self, customer_id: uuid.UUID, values: dict[str, Any], version: int | None
    ) -> dict[str, Any] | None:
        columns = tuple(sorted(values))
        params = {_param(c): values[c] for c in columns}
        if version is not None:
            params["expected_version"] = version
        row = await self.fetchrow(
            _UPDATES.get((columns, version is not None)), customer_id=customer_id, **params
        )
        return dict(row) if row is not None else None

    async def access_token_ciphertext(self, customer_id: uuid.UUID) -> bytes | None:
        stmt = self.select(C.access_token_encrypted).where(
            C.id == customer_id, C.deleted_at.is_(None)
        )
        blob: bytes | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return blob

    async def page(
        self,
        filters: list[ColumnElement[bool]],
        order: list[Any],
        *,
        keyset: ColumnElement[bool] | None,
        limit: int,
        offset: int,
    ) -> list[Row[Any]]:
        stmt = self.read_select().where(*filters)
        if keyset is not None:
            stmt = stmt.where(keyset)
        stmt = stmt.order_by(*order).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).all())

    async def page_matches_first(
        self,
        filters: list[ColumnElement[bool]],
        sort_key: Any,
        *,
        desc: bool,
        keyset: ColumnElement[bool] | None,
        limit: int,
        offset: int,
        collect: int,
    ) -> tuple[list[Row[Any]], int]:
        """:meth:`page` for a text search, driven by its matches instead of the sort
        index: up to ``collect`` matches are gathered first (through the trigram index),
        sorted by ``sort_key`` (a not-null column) and ``id``, and only the page's rows are
        read in full. Returns ``(rows, matched)``, where ``matched`` is the number of
        matches gathered: below ``collect`` the page is exact and ``matched`` is the total;
        at ``collect`` the term is common and the caller should use :meth:`page`.

        Why: PostgreSQL cannot estimate how many rows a substring matches. Left to itself
        it walks the tenant in date order hoping to meet the term soon — right for a
        common term, 240 ms for a rare one at 100,000 customers (bench/README.md).
        """
        matches = (
            self.select(C.id, sort_key.label("sort_key"))
            .select_from(_FROM)
            .where(C.deleted_at.is_(None), *filters)
        )
        if keyset is not None:
            matches = matches.where(keyset)
        found = matches.limit(collect).cte("matches").prefix_with("MATERIALIZED")
        ordering = [found.c.sort_key, found.c.id]
        chosen = (
            select(found.c.id)
            .order_by(*(o.desc() if desc else o.asc() for o in ordering))
            .limit(limit)
            .offset(offset)
        )
        matched = select(func.count()).select_from(found).scalar_subquery()
        order = [sort_key.desc() if desc else sort_key.asc(), C.id.desc() if desc else C.id.asc()]
        stmt = (
            self.read_select()
            .add_columns(matched.label("matched"))
            .where(C.id.in_(chosen))
            .order_by(*order)
        )
        rows = list((await self.session.execute(stmt)).all())
        if rows:
            return rows, int(rows[0].matched)
        # no row on this page: the count alone (the CTE is cheap to run again)
        total = select(func.count()).select_from(found)
        return [], int((await self.session.execute(total)).scalar_one())

    async def count(self, filters: list[ColumnElement[bool]], *, cap: int | None = None) -> int:
        """Live customers matching ``filters``; with ``cap``, counting stops at ``cap``."""
        matching = (
            self.select(literal_column("1"))
            .select_from(_FROM)
            .where(C.deleted_at.is_(None), *filters)
        )
        if cap is not None:
            matching = matching.limit(cap)
        stmt = select(func.count()).select_from(matching.subquery())
        return int((await self.session.execute(stmt)).scalar_one())
