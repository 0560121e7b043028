"""Tag use cases (API.md "Profile data", issue 3 "Tags").

The catalog ``tags`` holds one entry per label per tenant, unique case-insensitively
(``label_key`` = ``casefold()``); the first spelling wins and is what customers show.
``customer_tags`` says who carries what, and ``customers.tags`` stays the denormalised
label list (catalog spelling) that the customer object, the ``tag=`` list filter and
segments read: every change of ``customer_tags`` made here updates it in the same
transaction, except :meth:`TagService.set_labels`, whose caller (``CustomerService``) writes
the column itself together with the rest of the customer's fields.

``TagService`` does not import ``CustomerService`` (which builds a ``TagService`` for
create/update): the customer check comes in through the small :class:`CustomerGate`
protocol instead, so the two services do not form an import cycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from patron.errors import InvalidInput, NotFound
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.pagination import decode_cursor, encode_cursor, total_pages
from patron.models import Tag
from patron.tags.repository import CustomerTagRepository, TagRepository
from patron.tags.schemas import (
    CatalogTagRead,
    CustomerTagList,
    CustomerTagRead,
    TagCatalogPage,
    TagsAdded,
)
from patron.tenancy import TenantId

MAX_KEY_LENGTH = 64  # tags.label_key


class CustomerGate(Protocol):
    """What the tag domain needs of the customer domain (``CustomerService`` is one)."""

    async def require(self, customer_id: uuid.UUID, *, for_update: bool = False) -> None: ...


def _unique(labels: Sequence[str], loc: Sequence[str]) -> list[str]:
    """Labels stripped, first spelling per casefolded key, in the order given. 422 for an
    empty label or one whose casefolded form is longer than the catalog allows."""
    seen: dict[str, str] = {}
    for raw in labels:
        label = raw.strip()
        key = label.casefold()
        if not label or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(f"tag label must be 1 to {MAX_KEY_LENGTH} characters", loc=list(loc))
        seen.setdefault(key, label)
    return list(seen.values())


@dataclass
class TagService:
    session: AsyncSession
    tenant: TenantId
    actor_id: str
    customers: CustomerGate

    def __post_init__(self) -> None:
        self.catalog_repo = TagRepository(self.session, self.tenant)
        self.links = CustomerTagRepository(self.session, self.tenant)

    # -- reading -----------------------------------------------------------------------

    async def list_for_customer(
        self, customer_id: uuid.UUID, *, page: int, page_size: int, cursor: str | None
    ) -> CustomerTagList:
        """The customer's tags in the order they were added. A customer carries few tags, so
        they are read at once and paged in memory; the cursor is the offset reached."""
        await self.customers.require(customer_id)
        everything = await self._read(customer_id)
        start = (page - 1) * page_size
        if cursor is not None:
            try:
                start = int(decode_cursor(cursor)["offset"])
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
        chunk = everything[start : start + page_size]
        more = start + page_size < len(everything)
        return CustomerTagList(
            tags=chunk,
            total=len(everything),
            page=page,
            page_size=page_size,
            total_pages=total_pages(len(everything), page_size),
            next_cursor=encode_cursor({"offset": start + page_size}) if more else None,
        )

    async def catalog(self, *, page: int, page_size: int, cursor: str | None) -> TagCatalogPage:
        """The tenant's catalog by label with usage counts (live customers only)."""
        after: tuple[str, uuid.UUID] | None = None
        if cursor is not None:
            payload = decode_cursor(cursor)
            try:
                after = (str(payload["k"]), uuid.UUID(str(payload["id"])))
            except (KeyError, ValueError) as exc:
                raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
        total, rows = await self.catalog_repo.catalog(
            limit=page_size + 1, offset=(page - 1) * page_size, after=after
        )
        more = len(rows) > page_size
        rows = rows[:page_size]
        last: Tag | None = rows[-1][0] if rows else None
        return TagCatalogPage(
            tags=[
                CatalogTagRead(
                    id=tag.id, label=tag.label, customer_count=count, created_at=tag.created_at
                )
                for tag, count in rows
            ],
            total=total,
            page=page,
            page_size=page_size,
            total_pages=total_pages(total, page_size),
            next_cursor=(
                encode_cursor({"k": last.label_key, "id": str(last.id)})
                if more and last is not None
                else None
            ),
        )

    # -- writing -----------------------------------------------------------------------

    async def add(self, customer_id: uuid.UUID, labels: Sequence[str]) -> TagsAdded:
        """Attach labels (catalog entries created as needed). A label the customer already
        has, in any letter case, is a no-op. Emits ``customer.tagged`` when something was
        added. 404 unless a live customer of the tenant."""
        wanted = _unique(labels, ("body", "labels"))
        await self.customers.require(customer_id, for_update=True)
        tags = await self.catalog_repo.ensure(wanted)
        ordered = [tags[label.casefold()] for label in wanted]
        gained = await self.links.link(customer_id, [t.id for t in ordered], self.actor_id)
        added = [t for t in ordered if t.id in gained]
        if added:
            column = await self.links.labels_column(customer_id)
            known = {label.casefold() for label in column}
            column += [t.label for t in added if t.label_key not in known]
            await self.links.set_labels_column(customer_id, column)
            await self._emit(EventType.CUSTOMER_TAGGED, customer_id, added)
        return TagsAdded(tags=await self._read(customer_id), added=[t.label for t in added])

    async def remove(self, customer_id: uuid.UUID, tag_id: uuid.UUID) -> None:
        """Detach one tag. 404 unless the customer (live, this tenant) carries it."""
        await self.customers.require(customer_id, for_update=True)
        tag = await self.catalog_repo.get(tag_id)
        if tag is None or not await self.links.unlink(customer_id, [tag_id]):
            raise NotFound("tag not found on this customer", tag_id=str(tag_id))
        column = await self.links.labels_column(customer_id)
        await self.links.set_labels_column(
            customer_id, [label for label in column if label.casefold() != tag.label_key]
        )
        await self._emit(EventType.CUSTOMER_UNTAGGED, customer_id, [tag])

    async def catalog_labels(
        self, labels: Sequence[str], loc: Sequence[str] = ("body", "tags")
    ) -> list[str]:
        """``labels`` in catalog spelling (entries created as needed), deduplicated
        case-insensitively, in the order given."""
        wanted = _unique(labels, loc)
        tags = await self.catalog_repo.ensure(wanted)
        return [tags[label.casefold()].label for label in wanted]

    async def set_labels(
        self, customer_id: uuid.UUID, labels: Sequence[str], loc: Sequence[str] = ("body", "tags")
    ) -> list[str]:
        """Make the customer carry exactly ``labels`` ("tags in create/update replaces the
        set"); emits ``customer.tagged`` / ``customer.untagged`` for the difference. Returns
        the labels in catalog spelling; the caller writes ``customers.tags`` with them and
        holds the customer's row lock."""
        wanted = _unique(labels, loc)
        tags = await self.catalog_repo.ensure(wanted)
        ordered = [tags[label.casefold()] for label in wanted]
        current = [tag for tag, _ in await self.links.of_customer(customer_id)]
        keep = {t.id for t in ordered}
        gone = [t for t in current if t.id not in keep]
        removed = await self.links.unlink(customer_id, [t.id for t in gone])
        gained = await self.links.link(customer_id, [t.id for t in ordered], self.actor_id)
        if gained:
            await self._emit(
                EventType.CUSTOMER_TAGGED, customer_id, [t for t in ordered if t.id in gained]
            )
        if removed:
            await self._emit(
                EventType.CUSTOMER_UNTAGGED, customer_id, [t for t in gone if t.id in removed]
            )
        return [t.label for t in ordered]

    async def move_links(self, source_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
        """Merge: the survivor gets the source's tags it lacks; the source keeps none.
        Emits ``customer.tagged`` for the survivor's new tags (the caller writes the united
        ``customers.tags``)."""
        gained = await self.links.move(source_id, survivor_id)
        if gained:
            tags = [tag for tag, _ in await self.links.of_customer(survivor_id) if tag.id in gained]
            await self._emit(EventType.CUSTOMER_TAGGED, survivor_id, tags)

    # -- helpers -------------------------------------------------------------------------

    async def _read(self, customer_id: uuid.UUID) -> list[CustomerTagRead]:
        return [
            CustomerTagRead(id=tag.id, label=tag.label, created_at=linked_at)
            for tag, linked_at in await self.links.of_customer(customer_id)
        ]

    async def _emit(self, type_: EventType, customer_id: uuid.UUID, tags: Sequence[Tag]) -> None:
        await outbox.record(
            self.session,
            self.tenant,
            type_,
            str(customer_id),
            {
                "customer_id": str(customer_id),
                "labels": [t.label for t in tags],
                "tag_ids": [str(t.id) for t in tags],
            },
        )
