"""Queries on ``customers`` (SQLAlchemy Core on the hot paths: one statement per step)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    bindparam,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql import Select

from patron.kit.repository import PreparedQuery, TenantScopedRepository, tenant_filter
from patron.models import Customer, CustomerIdentity, CustomerStats

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


class CustomerRepository(TenantScopedRepository[Customer]):
    model = Customer

    def read_select(self) -> Select[Any]:
        """``SELECT`` of the response columns of live customers of this tenant."""
        return (
            select(*READ_COLUMNS)
            .select_from(_FROM)
            .where(C.tenant_id == self.tenant, C.deleted_at.is_(None))
        )

    async def get(self, customer_id: uuid.UUID, *, for_update: bool = False) -> Row[Any] | None:
        """A live customer's response row, optionally locked (``FOR UPDATE OF customers``)."""
        stmt = self.read_select().where(C.id == customer_id)
        if for_update:
            stmt = stmt.with_for_update(of=Customer.__table__)
        row: Row[Any] | None = (await self.session.execute(stmt)).first()
        return row

    async def get_fast(self, customer_id: uuid.UUID) -> Any:
        """:meth:`get` without locking, through the prepared query (a mapping, or None)."""
        return await self.fetchrow(_GET_BY_ID, customer_id=customer_id)

    async def holders_for_update(self, keys: Iterable[tuple[str, str, str]]) -> list[Row[Any]]:
        """Live customers holding any of the identity ``(kind, namespace, value)`` keys,
        locked in primary-key order: resolution and row lock in one statement."""
        wanted = [tuple(k) for k in keys]
        if not wanted:
            return []
        holders = self.scoped(
            select(I.customer_id).where(
                I.released_at.is_(None), tuple_(I.kind, I.namespace, I.value).in_(wanted)
            ),
            CustomerIdentity,
        )
        stmt = (
            self.read_select()
            .where(C.id.in_(holders))
            .order_by(C.id)
            .with_for_update(of=Customer.__table__)
        )
        return list((await self.session.execute(stmt)).all())

    async def get_many_for_update(self, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
        """Lock several live customers in primary-key order (deadlock-free)."""
        stmt = (
            self.read_select()
            .where(C.id.in_(ids))
            .order_by(C.id)
            .with_for_update(of=Customer.__table__)
        )
        return list((await self.session.execute(stmt)).all())

    async def insert(self, values: dict[str, Any]) -> dict[str, Any]:
        """Insert a customer; returns its customer columns (no stats: a new customer has none)."""
        stmt = insert(Customer).values(self.stamp(values)).returning(*CUSTOMER_COLUMNS)
        row = (await self.session.execute(stmt)).one()
        return {**row._mapping, **dict.fromkeys(STATS_LABELS)}

    async def update(self, customer_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
        """Apply ``values`` and bump ``version`` (callers hold the row lock); returns the
        updated customer columns."""
        stmt = (
            update(Customer)
            .where(C.tenant_id == self.tenant, C.id == customer_id)
            .values(**values, version=C.version + 1, updated_at=func.now())
            .returning(*CUSTOMER_COLUMNS)
        )
        row = (await self.session.execute(stmt)).one()
        return dict(row._mapping)

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

    async def count(self, filters: list[ColumnElement[bool]], *, cap: int | None = None) -> int:
        """Live customers matching ``filters``; with ``cap``, counting stops at ``cap``."""
        matching = (
            select(literal(1))
            .select_from(_FROM)
            .where(C.tenant_id == self.tenant, C.deleted_at.is_(None), *filters)
        )
        if cap is not None:
            matching = matching.limit(cap)
        stmt = select(func.count()).select_from(matching.subquery())
        return int((await self.session.execute(stmt)).scalar_one())
