"""Request and response shapes of orders, appointments and stats (API.md "Orders,
appointments, stats").

Money: requests accept a decimal string or a JSON number (``"19.99"``, ``19.99``); it is
held as :class:`~decimal.Decimal` and answered as a decimal string in the currency's
minor-unit precision (``kit.money``). Times carry a UTC offset (RFC 3339).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from babel.numbers import list_currencies
from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from patron.customers.schemas import StatsRead
from patron.kit.cards import CardNumberGuard
from patron.kit.datetimes import Rfc3339DateTime
from patron.kit.jsonutil import check_storable, dumps
from patron.kit.pagination import Page

# ISO 4217 codes known to CLDR (via Babel), e.g. USD, EUR, JPY.
CURRENCIES = frozenset(list_currencies())
MAX_EXTRA_BYTES = 16 * 1024
# Numeric(20, 4): at most 16 digits before the point.
MAX_TOTAL = Decimal(10) ** 16


class OrderStatus(StrEnum):
    """Order states (API.md); any change between them is allowed (the producer decides)."""

    PLACED = "PLACED"
    PAID = "PAID"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class AppointmentStatus(StrEnum):
    """Appointment states (API.md "Pinned shapes")."""

    BOOKED = "BOOKED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


# Orders that count in the stats (API.md: cancelled and refunded orders do not count).
COUNTED_ORDER_STATUSES = frozenset({OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.FULFILLED})
# Orders whose money was collected: they make up ``lifetime_value``.
REALISED_ORDER_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED})
# Appointments that count: every one but the cancelled ones (a no-show was still booked).
COUNTED_APPOINTMENT_STATUSES = frozenset(
    {AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW}
)

_BODY_CONFIG = ConfigDict(
    extra="forbid",
    alias_generator=AliasGenerator(
        validation_alias=lambda name: AliasChoices(name, to_camel(name))
    ),
    str_strip_whitespace=True,
)

# Printable text: no control characters (PostgreSQL text cannot hold NUL at all).
ExternalId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Label = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} needs a UTC offset (RFC 3339)")
    return value


def _small_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    check_storable(value)
    encoded = dumps(value)
    if len(encoded) > MAX_EXTRA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_EXTRA_BYTES} bytes of JSON")
    if _has_nul(value):
        raise ValueError("metadata may not contain NUL characters (PostgreSQL jsonb cannot)")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class OrderRecord(CardNumberGuard):
    """Body of ``POST /customers/{id}/orders`` (and ``data.order`` of an order event).

    Creating needs ``total``; ``currency`` defaults to the tenant's, ``status`` to
    ``PLACED`` and ``placed_at`` to now. Recording a known ``order_id`` again changes only
    the fields sent. ``total`` may not have more decimals than the currency has minor
    units (checked by the service, which knows the currency).
    """

    model_config = _BODY_CONFIG

    order_id: ExternalId
    total: Annotated[Decimal, Field(ge=0, lt=MAX_TOTAL, allow_inf_nan=False)] | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    status: OrderStatus | None = None
    placed_at: Rfc3339DateTime | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.upper()
        if code not in CURRENCIES:
            raise ValueError("currency must be an ISO 4217 code such as USD, EUR or JPY")
        return code

    @field_validator("placed_at")
    @classmethod
    def _placed_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "placed_at")

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _small_json(value)


class OrderRead(BaseModel):
    """An order as the API shows it: ``total`` a decimal string in the currency's precision."""

    id: uuid.UUID
    customer_id: uuid.UUID
    order_id: str
    total: str
    currency: str
    status: OrderStatus
    placed_at: datetime
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class OrderPage(Page):
    """``GET /customers/{id}/orders``: newest ``placed_at`` first, paged (API.md)."""

    orders: list[OrderRead]


class AppointmentRecord(CardNumberGuard):
    """Body of ``POST /customers/{id}/appointments`` (and ``data.appointment`` of an event).

    Creating needs ``service`` and ``starts_at``; ``status`` defaults to ``BOOKED``.
    Recording a known ``appointment_id`` again changes only the fields sent.
    """

    model_config = _BODY_CONFIG

    appointment_id: ExternalId
    service: Label | None = None
    starts_at: Rfc3339DateTime | None = None
    status: AppointmentStatus | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("starts_at")
    @classmethod
    def _starts_aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "starts_at")

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _small_json(value)


class AppointmentRead(BaseModel):
    """An appointment as the API shows it."""

    id: uuid.UUID
    customer_id: uuid.UUID
    appointment_id: str
    service: str
    starts_at: datetime
    status: AppointmentStatus
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AppointmentPage(Page):
    """``GET /customers/{id}/appointments``: latest ``starts_at`` first, paged."""

    appointments: list[AppointmentRead]


class CurrencyStatsRead(BaseModel):
    """Order stats of one currency other than the tenant's (never mixed into the main ones)."""

    currency: str
    total_orders: int
    total_spent: str
    average_order_value: str
    lifetime_value: str
    first_order_date: date | None
    last_order_date: date | None


class CustomerStatsRead(StatsRead):
    """``GET /customers/{id}/stats``: the customer JSON's ``stats`` plus ``other_currencies``.

    ``total_spent``: sum of the customer's orders that count (``PLACED``, ``PAID``,
    ``FULFILLED``) in ``currency``; ``average_order_value`` = ``total_spent / total_orders``;
    ``lifetime_value``: the part of it actually collected (``PAID`` and ``FULFILLED``).
    """

    other_currencies: list[CurrencyStatsRead] = Field(default_factory=list)
