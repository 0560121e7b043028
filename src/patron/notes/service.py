"""Staff notes on a customer (API.md "Profile data", issue 3 "Notes").

Notes are for staff only: the routes refuse the customer role, so a customer never sees
them. The author is the principal's id. Deleting is for admins, managers and the author.
Every operation owns its unit of work (:mod:`patron.usecases`) and checks the customer
through :meth:`CustomerService.require` in that unit (writes lock the customer's row).
"""

from __future__ import annotations

import uuid

from patron.auth.principal import Role
from patron.customers.subresources import CustomerSubresourceService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window
from patron.models import CustomerNote
from patron.notes.errors import NoteNotFound, NoteNotYours
from patron.notes.repository import NoteRepository
from patron.notes.schemas import NotePage, NoteRead
from patron.usecases import reads, writes

# Who may delete any note; anyone else only their own (API.md "the note's author").
MODERATORS = frozenset({Role.ADMIN, Role.MANAGER})


class NoteService(CustomerSubresourceService):
    """Note use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> NoteRepository:
        return NoteRepository(self.session, self.tenant)

    @reads()
    async def list(self, customer_id: uuid.UUID, window: Window) -> NotePage:
        """A customer's notes, newest first. Raises ``CustomerNotFound`` unless a live
        customer of the tenant."""
        found = await self.newest_of(
            customer_id, self.repo.of_customer(customer_id), CustomerNote.created_at, window
        )
        return NotePage(
            notes=[NoteRead.model_validate(n, from_attributes=True) for n in found.rows],
            **found.envelope(),
        )

    @writes()
    async def add(self, customer_id: uuid.UUID, text: str) -> NoteRead:
        """Record a note by the calling principal; emits ``customer.note_added``. Raises
        ``CustomerNotFound``."""
        await self.customers.require(customer_id, for_update=True)
        session = self.session
        note = self.repo.add(
            CustomerNote(customer_id=customer_id, note=text, author_id=self.actor.id)
        )
        await session.flush()
        await session.refresh(note)
        read = NoteRead.model_validate(note, from_attributes=True)
        await outbox.record(
            session,
            self.tenant,
            EventType.CUSTOMER_NOTE_ADDED,
            str(customer_id),
            {"customer_id": str(customer_id), "note": read.model_dump(mode="json")},
        )
        return read

    @writes()
    async def remove(self, customer_id: uuid.UUID, note_id: uuid.UUID) -> None:
        """Delete a note; emits ``customer.note_removed``. Raises ``CustomerNotFound``,
        :class:`NoteNotFound` (also another tenant's), :class:`NoteNotYours` (403) unless
        the caller is an admin, a manager or the note's author."""
        await self.customers.require(customer_id, for_update=True)
        repo = self.repo
        note = await repo.get(customer_id, note_id)
        if note is None:
            raise NoteNotFound(note_id)
        if not self.actor.has_any(MODERATORS) and note.author_id != self.actor.id:
            raise NoteNotYours
        await repo.remove(note)
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
