"""Staff notes on a customer (API.md "Profile data", issue 3 "Notes").

Notes are for staff only: the routes refuse the customer role, so a customer never sees
them. The author is the principal's id. Deleting is for admins, managers and the author.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal, Role
from patron.customers.service import CustomerService
from patron.errors import Forbidden, NotFound
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window, newest_first
from patron.models import CustomerNote
from patron.notes.repository import NoteRepository
from patron.notes.schemas import NotePage, NoteRead
from patron.tenancy import TenantId

# Who may delete any note; anyone else only their own (API.md "the note's author").
MODERATORS = frozenset({Role.ADMIN, Role.MANAGER})


@dataclass
class NoteService:
    session: AsyncSession
    tenant: TenantId
    actor: Principal
    customers: CustomerService

    def __post_init__(self) -> None:
        self.repo = NoteRepository(self.session, self.tenant)

    async def list_notes(self, customer_id: uuid.UUID, window: Window) -> NotePage:
        """A customer's notes, newest first. 404 unless a live customer of the tenant."""
        await self.customers.require(customer_id)
        found = await newest_first(
            self.session,
            self.repo.of_customer(customer_id),
            CustomerNote.created_at,
            CustomerNote.id,
            window,
        )
        return NotePage(
            notes=[NoteRead.model_validate(n, from_attributes=True) for n in found.rows],
            **found.envelope(),
        )

    async def add(self, customer_id: uuid.UUID, text: str) -> NoteRead:
        """Record a note by the calling principal; emits ``customer.note_added``."""
        await self.customers.require(customer_id, for_update=True)
        note = self.repo.add(
            CustomerNote(customer_id=customer_id, note=text, author_id=self.actor.id)
        )
        await self.session.flush()
        await self.session.refresh(note)
        read = NoteRead.model_validate(note, from_attributes=True)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_NOTE_ADDED,
            str(customer_id),
            {"customer_id": str(customer_id), "note": read.model_dump(mode="json")},
        )
        return read

    async def remove(self, customer_id: uuid.UUID, note_id: uuid.UUID) -> None:
        """Delete a note: 404 if unknown (or another tenant's), 403 unless the caller is an
        admin, a manager or the note's author. Emits ``customer.note_removed``."""
        await self.customers.require(customer_id, for_update=True)
        note = await self.repo.get(customer_id, note_id)
        if note is None:
            raise NotFound("note not found", note_id=str(note_id))
        if not self.actor.has_any(MODERATORS) and note.author_id != self.actor.id:
            raise Forbidden("only an admin, a manager or the note's author may delete it")
        await self.repo.remove(note)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_NOTE_REMOVED,
            str(customer_id),
            {
                "customer_id": str(customer_id),
                "note_id": str(note_id),
                "author_id": note.author_id,
                "removed_by": self.actor.id,
            },
        )
