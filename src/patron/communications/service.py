"""Communication use cases: record a contact, list the history newest first."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from patron.communications.repository import CommunicationRepository
from patron.communications.schemas import CommunicationCreate, CommunicationRead
from patron.customers.service import CustomerService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Slice, Window, newest_first
from patron.models import CustomerCommunication
from patron.tenancy import TenantId


def communication_read(row: CustomerCommunication) -> CommunicationRead:
    return CommunicationRead.model_validate(row, from_attributes=True)


@dataclass
class CommunicationService:
    """Communications of one tenant inside one unit of work."""

    session: AsyncSession
    tenant: TenantId
    customers: CustomerService
    actor_id: str

    def __post_init__(self) -> None:
        self.repo = CommunicationRepository(self.session, self.tenant)

    async def list_page(
        self, customer_id: uuid.UUID, window: Window
    ) -> tuple[Slice, list[CommunicationRead]]:
        """The customer's communications by ``occurred_at`` newest first (then id)."""
        await self.customers.require(customer_id)
        found = await newest_first(
            self.session,
            self.repo.of_customer(customer_id),
            CustomerCommunication.occurred_at,
            CustomerCommunication.id,
            window,
        )
        return found, [communication_read(row) for row in found.rows]

    async def record(
        self, customer_id: uuid.UUID, body: CommunicationCreate
    ) -> tuple[bool, CommunicationRead]:
        """Record a contact; returns ``(created, communication)``.

        With ``external_id``, recording is idempotent per (customer, channel, external_id):
        a repeat returns the stored record unchanged (``created`` False, no event, no
        interaction update), whatever else the repeat says. The customer row is locked
        first, which serialises concurrent repeats. A new record moves the customer's
        ``last_interaction_at`` forward (``CustomerService.record_interaction``) and emits
        ``customer.communication_recorded``, all in this transaction.
        """
        await self.customers.require(customer_id, for_update=True)
        if body.external_id is not None:
            existing = await self.repo.by_external_id(
                customer_id, body.channel.value, body.external_id
            )
            if existing is not None:
                return False, communication_read(existing)
        occurred_at = body.occurred_at or datetime.now(UTC)
        row = await self.repo.insert(
            {
                "customer_id": customer_id,
                "channel": body.channel.value,
                "direction": body.direction.value,
                "subject": body.subject,
                "summary": body.summary,
                "external_id": body.external_id,
                "occurred_at": occurred_at,
                "recorded_by": self.actor_id,
            }
        )
        created = communication_read(row)
        await self.customers.record_interaction(customer_id, occurred_at, body.channel.value)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_COMMUNICATION_RECORDED,
            str(customer_id),
            {"customer_id": str(customer_id), "communication": created.model_dump(mode="json")},
        )
        return True, created
