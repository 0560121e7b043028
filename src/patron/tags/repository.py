"""Queries on ``tags`` (the catalog), ``customer_tags`` (who carries what) and the
denormalised ``customers.tags`` label list the tag domain keeps in step with them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from patron.db.repository import TenantScopedRepository
from patron.kit.ids import new_id
from patron.models import Customer, CustomerTag, Tag

CT = CustomerTag


class TagRepository(TenantScopedRepository[Tag]):
    model = Tag

    async def ensure(self, labels: Sequence[str]) -> dict[str, Tag]:
        """Catalog entries for ``labels`` by ``label_key`` (casefold), creating missing ones.
        ``INSERT ... ON CONFLICT DO NOTHING`` first, so concurrent adds of one label
        converge on one row; an existing entry keeps its spelling."""
        keys = {label.casefold(): label for label in labels}
        if not keys:
            return {}
        await self.session.execute(
            insert(Tag)
            .values(
                [self.stamp({"id": new_id(), "label": v, "label_key": k}) for k, v in keys.items()]
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "label_key"])
        )
        found = await self.session.execute(self.select().where(Tag.label_key.in_(keys)))
        return {tag.label_key: tag for tag in found.scalars()}

    async def get(self, tag_id: uuid.UUID) -> Tag | None:
        found: Tag | None = (
            await self.session.execute(self.select().where(Tag.id == tag_id))
        ).scalar_one_or_none()
        return found

    async def count(self) -> int:
        """Entries in the tenant's catalog."""
        return int((await self.session.execute(self.select(func.count(literal(1))))).scalar_one())

    async def catalog(
        self, *, limit: int, offset: int, after: tuple[str, uuid.UUID] | None
    ) -> list[tuple[Tag, int]]:
        """Up to ``limit`` catalog rows ``(Tag, customer_count)`` by ``(label_key, id)``:
        those after the keyset ``after`` when given, else from ``offset``."""
        usage = (
            self.scoped(
                select(func.count(literal(1)))
                .select_from(CT)
                .join(Customer, Customer.id == CT.customer_id)
                .where(CT.tag_id == Tag.id, Customer.deleted_at.is_(None)),
                CustomerTag,
            )
            .scalar_subquery()
            .label("customer_count")
        )
        stmt = self.select(Tag, usage).order_by(Tag.label_key, Tag.id).limit(limit)
        if after is not None:
            stmt = stmt.where(tuple_(Tag.label_key, Tag.id) > tuple_(*after))
        else:
            stmt = stmt.offset(offset)
        return [(row[0], int(row[1])) for row in await self.session.execute(stmt)]


class CustomerTagRepository(TenantScopedRepository[CustomerTag]):
    model = CustomerTag

    def _linked(self, customer_id: uuid.UUID) -> Select[Any]:
        """``(Tag, linked_at)`` of the customer's tags in the order they were added; a tag's
        ``label_key`` is unique in the tenant, so ``(linked_at, label_key)`` is a keyset."""
        return (
            self.select(Tag, CT.created_at)
            .join(Tag, Tag.id == CT.tag_id)
            .where(CT.customer_id == customer_id)
            .order_by(CT.created_at, Tag.label_key)
        )

    async def of_customer(self, customer_id: uuid.UUID) -> list[tuple[Tag, datetime]]:
        """``(Tag, linked_at)`` of all the customer's tags, in the order they were added."""
        return [(row[0], row[1]) for row in await self.session.execute(self._linked(customer_id))]

    async def count_of(self, customer_id: uuid.UUID) -> int:
        """Tags the customer carries."""
        stmt = self.select(func.count(literal(1))).where(CT.customer_id == customer_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def page_of(
        self,
        customer_id: uuid.UUID,
        *,
        limit: int,
        offset: int,
        after: tuple[datetime, str] | None,
    ) -> list[tuple[Tag, datetime]]:
        """Up to ``limit`` of :meth:`of_customer`: those after the keyset ``after``
        (``(linked_at, label_key)``) when given, else from ``offset``."""
        stmt = self._linked(customer_id).limit(limit)
        if after is not None:
            stmt = stmt.where(tuple_(CT.created_at, Tag.label_key) > tuple_(*after))
        else:
            stmt = stmt.offset(offset)
        return [(row[0], row[1]) for row in await self.session.execute(stmt)]

    async def link(
        self, customer_id: uuid.UUID, tag_ids: Sequence[uuid.UUID], created_by: str
    ) -> set[uuid.UUID]:
        """Attach tags; returns the ids that were not attached already."""
        if not tag_ids:
            return set()
        rows = [
            self.stamp({"customer_id": customer_id, "tag_id": t, "created_by": created_by})
            for t in tag_ids
        ]
        result = await self.session.execute(
            insert(CT).values(rows).on_conflict_do_nothing().returning(CT.tag_id)
        )
        return set(result.scalars())

    async def unlink(self, customer_id: uuid.UUID, tag_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Detach tags; returns the ids that were attached."""
        if not tag_ids:
            return set()
        stmt = delete(CT).where(CT.customer_id == customer_id, CT.tag_id.in_(tag_ids))
        result = await self.session.execute(self.scoped(stmt).returning(CT.tag_id))
        return set(result.scalars())

    async def move(self, source_id: uuid.UUID, survivor_id: uuid.UUID) -> set[uuid.UUID]:
        """Give the survivor every tag of the source it lacks and drop the source's links;
        returns the tag ids the survivor gained."""
        source = self.scoped(
            select(literal(self.tenant), literal(survivor_id), CT.tag_id, CT.created_by).where(
                CT.customer_id == source_id
            )
        )
        result = await self.session.execute(
            insert(CT)
            .from_select(["tenant_id", "customer_id", "tag_id", "created_by"], source)
            .on_conflict_do_nothing()
            .returning(CT.tag_id)
        )
        gained = set(result.scalars())
        await self.session.execute(self.scoped(delete(CT).where(CT.customer_id == source_id)))
        return gained

    async def labels_column(self, customer_id: uuid.UUID) -> list[str]:
        """The customer's denormalised ``customers.tags``."""
        stmt = self.scoped(select(Customer.tags).where(Customer.id == customer_id), Customer)
        labels: list[str] | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return list(labels or [])

    async def set_labels_column(self, customer_id: uuid.UUID, labels: list[str]) -> None:
        """Write ``customers.tags`` and bump the customer's ``version`` (its representation
        changed, so its ETag must too). Callers hold the customer's row lock."""
        stmt = update(Customer).where(Customer.id == customer_id)
        await self.session.execute(
            self.scoped(stmt, Customer).values(
                tags=labels, version=Customer.version + 1, updated_at=func.now()
            )
        )
