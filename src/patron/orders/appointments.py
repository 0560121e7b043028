"""Recording and listing a customer's appointments (API.md "Orders, appointments, stats").

Idempotent by ``appointment_id`` like orders: the same id again changes only the fields
sent; a change recomputes the customer's stats (``total_appointments``,
``last_appointment_date``) and writes ``customer.appointment_recorded`` in the same unit
of work, under the customer's stats-row lock.
"""

from __future__ import annotations

import uuid
from typing import Any

from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window, newest_first
from patron.models import CustomerAppointment
from patron.orders.errors import AppointmentTaken
from patron.orders.repository import AppointmentRepository
from patron.orders.schemas import (
    AppointmentPage,
    AppointmentRead,
    AppointmentRecord,
    AppointmentStatus,
)
from patron.orders.service import HistoryService, Recorded
from patron.usecases import reads, writes


def appointment_read(row: CustomerAppointment) -> AppointmentRead:
    """The API view of an appointment row."""
    return AppointmentRead(
        id=row.id,
        customer_id=row.customer_id,
        appointment_id=row.appointment_id,
        service=row.service,
        starts_at=row.starts_at,
        status=AppointmentStatus(row.status),
        metadata=row.extra,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class AppointmentService(HistoryService):
    """Appointment use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> AppointmentRepository:
        return AppointmentRepository(self.session, self.tenant)

    @reads()
    async def list_appointments(
        self, customer_id: uuid.UUID, window: Window, status: AppointmentStatus | None = None
    ) -> AppointmentPage:
        """A customer's appointments, latest ``starts_at`` first. Raises ``CustomerNotFound``
        (404) unless a live customer."""
        await self.customers.require(customer_id)
        stmt = self.repo.of_customer(customer_id)
        if status is not None:
            stmt = stmt.where(CustomerAppointment.status == status.value)
        found = await newest_first(
            self.session, stmt, CustomerAppointment.starts_at, CustomerAppointment.id, window
        )
        return AppointmentPage(
            appointments=[appointment_read(r) for r in found.rows], **found.envelope()
        )

    @writes()
    async def record(
        self, customer_id: uuid.UUID, body: AppointmentRecord
    ) -> Recorded[AppointmentRead]:
        """Create or update appointment ``body.appointment_id`` of ``customer_id``.

        Raises ``CustomerNotFound`` (404), :class:`AppointmentTaken` (409: the id belongs
        to another customer),
        InvalidInput (422: a new appointment without ``service`` or ``starts_at``).
        """
        await self.customers.require(customer_id)
        await self.stats.lock(customer_id)
        existing = await self.repo.get(body.appointment_id)
        if existing is not None and existing.customer_id != customer_id:
            raise AppointmentTaken(body.appointment_id)
        if existing is None:
            missing = [k for k in ("service", "starts_at") if getattr(body, k) is None]
            if missing:
                raise InvalidInput(
                    f"{missing[0]} is required for a new appointment",
                    errors=[
                        {
                            "loc": ["body", k],
                            "msg": "required for a new appointment",
                            "type": "missing",
                        }
                        for k in missing
                    ],
                )
            row = await self.repo.insert(
                {
                    "customer_id": customer_id,
                    "appointment_id": body.appointment_id,
                    "service": body.service,
                    "starts_at": body.starts_at,
                    "status": (body.status or AppointmentStatus.BOOKED).value,
                    "extra": body.metadata or {},
                }
            )
            if row is None:
                raise AppointmentTaken(body.appointment_id)
            return await self._recorded(row, created=True, previous_status=None)
        changes = _changes(existing, body.model_dump(exclude_unset=True))
        if not changes:
            return Recorded(created=False, changed=False, read=appointment_read(existing))
        previous = existing.status
        row = await self.repo.update(existing.id, changes)
        return await self._recorded(row, created=False, previous_status=previous)

    async def _recorded(
        self, row: CustomerAppointment, *, created: bool, previous_status: str | None
    ) -> Recorded[AppointmentRead]:
        snapshot = await self.stats.refresh(row.customer_id)
        read = appointment_read(row)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_APPOINTMENT_RECORDED,
            str(row.customer_id),
            {
                "customer_id": str(row.customer_id),
                "created": created,
                "previous_status": previous_status,
                "appointment": read.model_dump(mode="json"),
                "stats": snapshot.read().model_dump(mode="json"),
            },
        )
        return Recorded(created=created, changed=True, read=read)


def _changes(row: CustomerAppointment, sent: dict[str, Any]) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    for key in ("service", "starts_at"):
        if sent.get(key) is not None:
            wanted[key] = sent[key]
    if sent.get("status") is not None:
        wanted["status"] = AppointmentStatus(sent["status"]).value
    if sent.get("metadata") is not None:
        wanted["extra"] = sent["metadata"]
    return {k: v for k, v in wanted.items() if getattr(row, k) != v}
