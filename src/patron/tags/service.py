"""Tag use cases (API.md "Profile data", issue 3 "Tags").

The catalog ``tags`` holds one entry per label per tenant, unique case-insensitively
(``label_key`` = ``casefold()``); the first spelling wins and is what customers show.
``customer_tags`` says who carries what, and ``customers.tags`` stays the denormalised
label list (catalog spelling) that the customer object, the ``tag=`` list filter and
segments read: every change of ``customer_tags`` made here updates it in the same
transaction, except :meth:`TagService.set_labels`, whose caller (``CustomerService``) writes
the column itself together with the rest of the customer's fields.

``TagService`` is built by ``CustomerService.tags`` (the one builder: the customer service
needs the tag domain for create, update and merge, so the tag domain cannot import it
back): the customer check comes in through the small :class:`CustomerGate` protocol, which
``CustomerService`` is. Every operation owns its unit of work (:mod:`patron.usecases`), or
joins the customer use case that calls it.

Both lists are paged in SQL by keyset: a customer's tags by ``(linked_at, label_key)`` in
the order they were added, the catalog by ``(label_key, id)``; a page reached by cursor is
not counted (:class:`patron.kit.pagination.Page`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.pagination import (
    Window,
    carried_page,
    carried_total,
    decode_cursor,
    encode_cursor,
    total_pages,
)
from patron.models import Tag
from patron.tags.errors import MAX_KEY_LENGTH, TagLabelInvalid, TagNotOnCustomer
from patron.tags.repository import CustomerTagRepository, TagRepository
from patron.tags.schemas import (
    CatalogTagRead,
    CustomerTagList,
    CustomerTagRead,
    TagCatalogPage,
    TagsAdded,
)
from patron.usecases import Service, ServiceContext, reads, writes

RowT = TypeVar("RowT")


class CustomerGate(Protocol):
    """What the tag domain needs of the customer domain (``CustomerService`` is one)."""

    async def require(self, customer_id: uuid.UUID, *, for_update: bool = False) -> None: ...


def _unique(labels: Sequence[str], loc: Sequence[str]) -> list[str]:
    """Labels stripped, first spelling per casefolded key, in the order given. Raises
    :class:`TagLabelInvalid` (422) for an empty label or one whose casefolded form is
    longer than the catalog allows."""
    seen: dict[str, str] = {}
    for raw in labels:
        label = raw.strip()
        key = label.casefold()
        if not label or len(key) > MAX_KEY_LENGTH:
            raise TagLabelInvalid(loc)
        seen.setdefault(key, label)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class _After:
    """Where a page reached by cursor starts: the keyset, and the first page's total and
    the page number the cursor carries (:class:`patron.kit.pagination.Page`)."""

    key: Any = None
    total: int | None = None
    page: int = 1


def _after(window: Window, parse: Callable[[dict[str, Any]], tuple[Any, Any]]) -> _After:
    """What ``window.cursor`` carries, its keyset by ``parse`` of the payload (an empty
    :class:`_After` on page ``window.page`` without a cursor). Raises ``InvalidInput``
    (422) for a cursor that is not one of ours."""
    if window.cursor is None:
        return _After(page=window.page)
    payload = decode_cursor(window.cursor)
    try:
        key = parse(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("cursor is not valid", loc=["query", "cursor"]) from exc
    return _After(key, carried_total(payload), carried_page(payload))


@dataclass(frozen=True, slots=True)
class _Keyset(Generic[RowT]):
    """One page of keyset rows read with ``limit = page_size + 1``, and its envelope."""

    rows: list[RowT]
    window: Window
    total: int
    page: int

    def envelope(self, cursor_of: Callable[[RowT], dict[str, str]]) -> dict[str, Any]:
        """The paging fields (:class:`patron.kit.pagination.Page`); ``next_cursor`` from
        the last row given when a further row was read, carrying the total and the next
        page's number."""
        size = self.window.page_size
        last = self.rows[size - 1] if len(self.rows) > size else None
        cursor = {**cursor_of(last), "n": self.total, "p": self.page + 1} if last else None
        return {
            "total": self.total,
            "page": self.page,
            "page_size": size,
            "total_pages": total_pages(self.total, size),
            "next_cursor": encode_cursor(cursor) if cursor is not None else None,
        }

    @property
    def shown(self) -> list[RowT]:
        return self.rows[: self.window.page_size]


def _linked_key(payload: dict[str, Any]) -> tuple[datetime, str]:
    when = datetime.fromisoformat(str(payload["t"]))
    if when.tzinfo is None:
        raise ValueError("cursor time without offset")
    return when, str(payload["k"])


def _catalog_key(payload: dict[str, Any]) -> tuple[str, uuid.UUID]:
    return str(payload["k"]), uuid.UUID(str(payload["id"]))


class TagService(Service):
    """Tag use cases for one caller; built by ``CustomerService.tags``
    (``TagService(ctx, customers)``)."""

    def __init__(self, ctx: ServiceContext, customers: CustomerGate) -> None:
        super().__init__(ctx)
        self.customers = customers

    @property
    def catalog_repo(self) -> TagRepository:
        return TagRepository(self.session, self.tenant)

    @property
    def links(self) -> CustomerTagRepository:
        return CustomerTagRepository(self.session, self.tenant)

    # -- reading -----------------------------------------------------------------------

    @reads()
    async def list_for_customer(self, customer_id: uuid.UUID, window: Window) -> CustomerTagList:
        """The customer's tags in the order they were added, one page of ``window``.
        Raises ``CustomerNotFound``; 422 for a bad cursor."""
        after = _after(window, _linked_key)
        await self.customers.require(customer_id)
        links = self.links
        found = _Keyset(
            await links.page_of(
                customer_id,
                limit=window.page_size + 1,
                offset=(window.page - 1) * window.page_size,
                after=after.key,
            ),
            window,
            await links.count_of(customer_id) if after.total is None else after.total,
            after.page,
        )
        return CustomerTagList(
            tags=[
                CustomerTagRead(id=tag.id, label=tag.label, created_at=linked_at)
                for tag, linked_at in found.shown
            ],
            **found.envelope(lambda row: {"t": row[1].isoformat(), "k": row[0].label_key}),
        )

    @reads()
    async def catalog(self, window: Window) -> TagCatalogPage:
        """The tenant's catalog by label with usage counts (live customers only), one page
        of ``window``. 422 for a bad cursor."""
        after = _after(window, _catalog_key)
        repo = self.catalog_repo
        found = _Keyset(
            await repo.catalog(
                limit=window.page_size + 1,
                offset=(window.page - 1) * window.page_size,
                after=after.key,
            ),
            window,
            await repo.count() if after.total is None else after.total,
            after.page,
        )
        return TagCatalogPage(
            tags=[
                CatalogTagRead(
                    id=tag.id, label=tag.label, customer_count=count, created_at=tag.created_at
                )
                for tag, count in found.shown
            ],
            **found.envelope(lambda row: {"k": row[0].label_key, "id": str(row[0].id)}),
        )

    # -- writing -----------------------------------------------------------------------

    @writes()
    async def add(self, customer_id: uuid.UUID, labels: Sequence[str]) -> TagsAdded:
        """Attach labels (catalog entries created as needed). A label the customer already
        has, in any letter case, is a no-op. Emits ``customer.tagged`` when something was
        added. Raises ``CustomerNotFound``, :class:`TagLabelInvalid` (422)."""
        wanted = _unique(labels, ("body", "labels"))
        await self.customers.require(customer_id, for_update=True)
        links = self.links
        tags = await self.catalog_repo.ensure(wanted)
        ordered = [tags[label.casefold()] for label in wanted]
        gained = await links.link(customer_id, [t.id for t in ordered], self.actor.id)
        added = [t for t in ordered if t.id in gained]
        if added:
            column = await links.labels_column(customer_id)
            known = {label.casefold() for label in column}
            column += [t.label for t in added if t.label_key not in known]
            await links.set_labels_column(customer_id, column)
            await self._emit(EventType.CUSTOMER_TAGGED, customer_id, added)
        return TagsAdded(tags=await self._read(customer_id), added=[t.label for t in added])

    @writes()
    async def remove(self, customer_id: uuid.UUID, tag_id: uuid.UUID) -> None:
        """Detach one tag; emits ``customer.untagged``. Raises ``CustomerNotFound``, or
        :class:`TagNotOnCustomer` unless the customer carries it."""
        await self.customers.require(customer_id, for_update=True)
        links = self.links
        tag = await self.catalog_repo.get(tag_id)
        if tag is None or not await links.unlink(customer_id, [tag_id]):
            raise TagNotOnCustomer(tag_id)
        column = await links.labels_column(customer_id)
        await links.set_labels_column(
            customer_id, [label for label in column if label.casefold() != tag.label_key]
        )
        await self._emit(EventType.CUSTOMER_UNTAGGED, customer_id, [tag])

    @writes()
    async def catalog_labels(
        self, labels: Sequence[str], loc: Sequence[str] = ("body", "tags")
    ) -> list[str]:
        """``labels`` in catalog spelling (entries created as needed), deduplicated
        case-insensitively, in the order given."""
        wanted = _unique(labels, loc)
        tags = await self.catalog_repo.ensure(wanted)
        return [tags[label.casefold()].label for label in wanted]

    @writes()
    async def set_labels(
        self, customer_id: uuid.UUID, labels: Sequence[str], loc: Sequence[str] = ("body", "tags")
    ) -> list[str]:
        """Make the customer carry exactly ``labels`` ("tags in create/update replaces the
        set"); emits ``customer.tagged`` / ``customer.untagged`` for the difference. Returns
        the labels in catalog spelling; the caller writes ``customers.tags`` with them and
        holds the customer's row lock."""
        wanted = _unique(labels, loc)
        links = self.links
        tags = await self.catalog_repo.ensure(wanted)
        ordered = [tags[label.casefold()] for label in wanted]
        current = [tag for tag, _ in await links.of_customer(customer_id)]
        keep = {t.id for t in ordered}
        gone = [t for t in current if t.id not in keep]
        removed = await links.unlink(customer_id, [t.id for t in gone])
        gained = await links.link(customer_id, [t.id for t in ordered], self.actor.id)
        if gained:
            await self._emit(
                EventType.CUSTOMER_TAGGED, customer_id, [t for t in ordered if t.id in gained]
            )
        if removed:
            await self._emit(
                EventType.CUSTOMER_UNTAGGED, customer_id, [t for t in gone if t.id in removed]
            )
        return [t.label for t in ordered]

    @writes()
    async def move_links(self, source_id: uuid.UUID, survivor_id: uuid.UUID) -> None:
        """Merge: the survivor gets the source's tags it lacks; the source keeps none.
        Emits ``customer.tagged`` for the survivor's new tags (the caller writes the united
        ``customers.tags``)."""
        links = self.links
        gained = await links.move(source_id, survivor_id)
        if gained:
            tags = [tag for tag, _ in await links.of_customer(survivor_id) if tag.id in gained]
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
