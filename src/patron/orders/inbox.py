"""Processing of one inbound order or appointment event (docs/events-in.md).

A message is a CloudEvents 1.0 JSON envelope (structured mode)::

    {"specversion": "1.0", "id": "evt-1", "source": "/orders", "type": "order.paid",
     "tenantid": "acme", "time": "...", "traceid": "...",
     "data": {"customer": {"email": "ada@example.com"},
              "order": {"order_id": "A-1", "total": "19.99", "currency": "USD", ...}}}

:meth:`InboxProcessor.process` parses it and calls ONE use case,
:meth:`InboxService.apply`, as the system principal ``consumer:orders`` of the message's
tenant: the inbox row (idempotency by ``id``), the order or appointment upsert, the stats
and the outbox event commit together or not at all. It raises :class:`MalformedMessage` for a
message that can never succeed (retrying cannot help) and lets anything else (unknown
customer, database trouble) propagate for the consumer to retry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.customers.service import CustomerService
from patron.errors import NotFound, PatronError
from patron.identities import service as identities
from patron.kit.jsonutil import loads
from patron.kit.validation import ContactPointError, normalize_phone
from patron.orders.appointments import AppointmentService
from patron.orders.errors import CustomerIdentityNotFound
from patron.orders.repository import InboxRepository
from patron.orders.schemas import (
    AppointmentRecord,
    AppointmentStatus,
    OrderRecord,
    OrderStatus,
)
from patron.orders.service import OrderService
from patron.tenancy import TenantId, trusted_tenant
from patron.tracing import new_trace_id, set_trace_id
from patron.usecases import Service, ServiceContext, writes

# Event types and the status each implies when ``data`` names none (None: keep / default).
ORDER_TYPES: dict[str, OrderStatus | None] = {
    "order.created": None,
    "order.updated": None,
    "order.placed": OrderStatus.PLACED,
    "order.paid": OrderStatus.PAID,
    "order.fulfilled": OrderStatus.FULFILLED,
    "order.cancelled": OrderStatus.CANCELLED,
    "order.refunded": OrderStatus.REFUNDED,
}
APPOINTMENT_TYPES: dict[str, AppointmentStatus | None] = {
    "appointment.booked": AppointmentStatus.BOOKED,
    "appointment.updated": None,
    "appointment.rescheduled": None,
    "appointment.completed": AppointmentStatus.COMPLETED,
    "appointment.cancelled": AppointmentStatus.CANCELLED,
    "appointment.no_show": AppointmentStatus.NO_SHOW,
}


PRINTABLE = r"^[^\x00-\x1f]+$"


class MalformedMessage(Exception):
    """The message can never be processed (not JSON, wrong shape, unknown type or tenant,
    invalid order data): it goes to the dead-letter queue without retries."""


class CustomerRef(BaseModel):
    """Who the order belongs to: Patron's ``customer_id``, else the first identity given
    in the order ``email``, ``phone``, ``user_id``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: uuid.UUID | None = None
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=PRINTABLE)] | None = None
    phone: Annotated[str, Field(min_length=3, max_length=64, pattern=PRINTABLE)] | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)] | None = None

    @model_validator(mode="after")
    def _one_reference(self) -> CustomerRef:
        if not (self.customer_id or self.email or self.phone or self.user_id):
            raise ValueError("customer needs customer_id, email, phone or user_id")
        return self


class EventData(BaseModel):
    """``data`` of an inbound event: the customer reference and one order or appointment."""

    model_config = ConfigDict(extra="forbid")

    customer: CustomerRef
    order: OrderRecord | None = None
    appointment: AppointmentRecord | None = None


class InboundEvent(BaseModel):
    """The CloudEvents 1.0 envelope Patron accepts (extra attributes are ignored)."""

    model_config = ConfigDict(extra="ignore")

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
    source: Annotated[str, Field(min_length=1, max_length=500)]
    type: Annotated[str, Field(min_length=1, max_length=100)]
    tenantid: Annotated[str, Field(min_length=1, max_length=64)]
    traceid: Annotated[str, Field(max_length=128)] | None = None
    time: AwareDatetime | None = None
    data: EventData

    @model_validator(mode="after")
    def _data_matches_type(self) -> InboundEvent:
        if self.type in ORDER_TYPES:
            if self.data.order is None or self.data.appointment is not None:
                raise ValueError(f"{self.type} needs data.order (and no data.appointment)")
            implied = ORDER_TYPES[self.type]
            if implied is not None:
                _imply(self.data.order, implied)
        elif self.type in APPOINTMENT_TYPES:
            if self.data.appointment is None or self.data.order is not None:
                raise ValueError(f"{self.type} needs data.appointment (and no data.order)")
            implied_a = APPOINTMENT_TYPES[self.type]
            if implied_a is not None:
                _imply(self.data.appointment, implied_a)
        else:
            raise ValueError(f"unknown event type {self.type!r}")
        return self


def _imply(
    record: OrderRecord | AppointmentRecord, status: OrderStatus | AppointmentStatus
) -> None:
    if record.status is None:
        record.status = status
    elif record.status != status:
        raise ValueError(f"data status {record.status} contradicts the event type")


def parse(body: bytes) -> InboundEvent:
    """The envelope of a message body; raises :class:`MalformedMessage` saying why."""
    try:
        raw: Any = loads(body)
    except ValueError as exc:
        raise MalformedMessage(f"body is not JSON: {exc}") from exc
    try:
        return InboundEvent.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedMessage(f"invalid event: {where}: {first['msg']}") from exc


@dataclass(frozen=True)
class Outcome:
    """What processing did: ``recorded`` / ``unchanged`` / ``duplicate``."""

    result: str
    customer_id: uuid.UUID | None = None


def consumer_principal(tenant: TenantId, source: str) -> Principal:
    """The system principal inbound events act as: role ``service`` of ``tenant``, its
    subject the event's ``source``."""
    return Principal(
        id="consumer:orders", subject=source, roles=frozenset({Role.SERVICE}), tenant_id=tenant
    )


class InboxService(Service):
    """The inbound-event use case of one tenant (:class:`patron.usecases.ServiceContext`)."""

    @writes()
    async def apply(self, event: InboundEvent) -> Outcome:
        """Record ``event`` once: claim its id in the inbox (a second delivery is
        ``duplicate`` and changes nothing), resolve its customer, record the order or
        appointment. Raises :class:`CustomerIdentityNotFound` / ``CustomerNotFound`` (404)
        for a customer not (yet) known, :class:`MalformedMessage` for a phone that does not
        parse, and the recording's own errors (409, 422)."""
        inbox = InboxRepository(self.session, self.tenant)
        if not await inbox.claim(event.id, event.type):
            return Outcome("duplicate")
        customer_id = await self._resolve(event.data.customer)
        if event.data.order is not None:
            order = await OrderService(self.ctx).record(
                customer_id, event.data.order, placed_default=event.time
            )
            changed = order.changed
        elif event.data.appointment is not None:
            appointment = await AppointmentService(self.ctx).record(
                customer_id, event.data.appointment
            )
            changed = appointment.changed
        else:  # pragma: no cover - InboundEvent requires one of them
            raise MalformedMessage("data has neither order nor appointment")
        outcome = "recorded" if changed else "unchanged"
        await inbox.set_outcome(event.id, outcome)
        return Outcome(outcome, customer_id)

    async def _resolve(self, ref: CustomerRef) -> uuid.UUID:
        """The live customer ``ref`` names; :class:`CustomerIdentityNotFound` when none does."""
        customers = CustomerService(self.ctx)
        if ref.customer_id is not None:
            await customers.require(ref.customer_id)
            return ref.customer_id
        fields: dict[str, Any] = {"email": ref.email, "user_id": ref.user_id}
        if ref.phone:
            try:
                fields["phone"] = normalize_phone(ref.phone, self.app.settings.default_phone_region)
            except ContactPointError as exc:
                raise MalformedMessage(f"customer.phone: {exc}") from exc
        keys = identities.keys_from_fields(fields)
        holders = await customers.holders_of(keys)
        for kind in ("email", "phone", "user_id"):
            for key, holder in holders.items():
                if key.kind == kind:
                    await customers.require(holder)
                    return holder
        raise CustomerIdentityNotFound(sorted(k.kind for k in keys))


class InboxProcessor:
    """Applies inbound events to the database: parses each message and calls
    :meth:`InboxService.apply` (one transaction per message)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def process(self, body: bytes) -> Outcome:
        """Handle one message body. Raises :class:`MalformedMessage` (never retry),
        :class:`~patron.errors.NotFound` for a customer not (yet) known (retry), or any
        other exception (retry)."""
        event = parse(body)
        try:
            tenant = trusted_tenant(event.tenantid)
        except PatronError as exc:
            raise MalformedMessage(f"tenantid is not a valid tenant id: {exc.detail}") from exc
        set_trace_id(event.traceid or new_trace_id())
        call = ServiceContext(self.ctx, consumer_principal(tenant, event.source), tenant)
        try:
            return await InboxService(call).apply(event)
        except NotFound:
            raise
        except PatronError as exc:
            # 409 (id owned by another customer), 422 (precision, missing total): the same
            # message will fail the same way every time.
            raise MalformedMessage(f"{exc.status} {exc.detail}") from exc
