"""Communication use cases: record a contact, list the history newest first. Every
operation owns its unit of work (:mod:`patron.usecases`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from patron.communications.repository import CommunicationRepository
from patron.communications.schemas import (
    CommunicationCreate,
    CommunicationPage,
    CommunicationRead,
)
from patron.customers.subresources import CustomerSubresourceService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit import rawbody
from patron.kit.keyset import Window
from patron.models import CustomerCommunication
from patron.usecases import reads, writes


def communication_read(row: CustomerCommunication) -> CommunicationRead:
    return CommunicationRead.model_validate(row, from_attributes=True)


class CommunicationService(CustomerSubresourceService):
    """Communication use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> CommunicationRepository:
        return CommunicationRepository(self.session, self.tenant)

    @reads()
    async def list(self, customer_id: uuid.UUID, window: Window) -> CommunicationPage:
        """The customer's communications by ``occurred_at`` newest first (then id).
        Raises ``CustomerNotFound``."""
        found = await self.newest_of(
            customer_id,
            self.repo.of_customer(customer_id),
            CustomerCommunication.occurred_at,
            window,
        )
        return CommunicationPage(
            communications=[communication_read(row) for row in found.rows], **found.envelope()
        )

    @writes()
    async def record(
        self, customer_id: uuid.UUID, payload: Mapping[str, Any]
    ) -> tuple[bool, CommunicationRead]:
        """Record a contact from ``payload`` (the JSON object as sent; the customer is
        checked before the body is judged, so an unknown customer is ``CustomerNotFound``
        rather than a 422); returns ``(created, communication)``.

        With ``external_id``, recording is idempotent per (customer, channel, external_id):
        a repeat returns the stored record unchanged (``created`` False, no event, no
        interaction update), whatever else the repeat says. The customer row is locked
        first, which serialises concurrent repeats. A new record moves the customer's
        ``last_interaction_at`` forward (``CustomerService.record_interaction``) and emits
        ``customer.communication_recorded``, all in this transaction. Raises 422 for
        invalid fields (:class:`CommunicationCreate`).
        """
        customers = self.customers
        await customers.require(customer_id, for_update=True)
        body = rawbody.parse(CommunicationCreate, dict(payload))
        repo = self.repo
        if body.external_id is not None:
            existing = await repo.by_external_id(customer_id, body.channel.value, body.external_id)
            if existing is not None:
                return False, communication_read(existing)
        occurred_at = body.occurred_at or datetime.now(UTC)
        row = await repo.insert(
            {
                "customer_id": customer_id,
                "channel": body.channel.value,
                "direction": body.direction.value,
                "subject": body.subject,
                "summary": body.summary,
                "external_id": body.external_id,
                "occurred_at": occurred_at,
                "recorded_by": self.actor.id,
            }
        )
        created = communication_read(row)
        await customers.record_interaction(customer_id, occurred_at, body.channel.value)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_COMMUNICATION_RECORDED,
            str(customer_id),
            {"customer_id": str(customer_id), "communication": created.model_dump(mode="json")},
        )
        return True, created
