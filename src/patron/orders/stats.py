"""Per-customer order and appointment stats (API.md "Orders, appointments, stats").

Definitions (docs/decisions/0009-orders-stats-consumer.md):

- Orders that count are ``PLACED``, ``PAID`` and ``FULFILLED``; ``CANCELLED`` and
  ``REFUNDED`` orders leave the stats. Appointments that count are all but ``CANCELLED``.
- ``total_orders`` / ``total_spent``: number and sum of the counted orders in the tenant's
  currency; ``average_order_value`` = ``total_spent / total_orders`` (0 without orders).
- ``lifetime_value``: the collected part of it, the ``PAID`` and ``FULFILLED`` orders
  (historic, realised customer value; a placed but unpaid order is in ``total_spent`` only).
- ``first_order_date`` / ``last_order_date``: UTC dates of the earliest and latest counted
  order in that currency; ``total_appointments`` / ``last_appointment_date``: count and
  latest ``starts_at`` date (UTC) of the counted appointments.
- Orders in any other currency are summed per currency (``other_currencies``), never
  converted or mixed in.

The tenant's currency is ``TENANT_CURRENCIES``' entry for the tenant, else
``DEFAULT_CURRENCY`` (there is no tenant-settings table yet).

Stats are recomputed from the customer's history inside the transaction that changes it,
after locking the customer's stats row (:meth:`StatsRepository.lock`): exact by
construction, serialised per customer, and the same computation ``patron stats rebuild``
uses to find drift.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from patron.config import Settings
from patron.kit.money import format_amount
from patron.orders.repository import AppointmentRepository, OrderRepository, StatsRepository
from patron.orders.schemas import CurrencyStatsRead, CustomerStatsRead
from patron.tenancy import TenantId


def parse_tenant_currencies(raw: str) -> dict[str, str]:
    """``"acme:EUR, tokyo:JPY"`` → ``{"acme": "EUR", "tokyo": "JPY"}``.

    Raises :class:`ValueError` for an entry without ``:`` or a code that is not three letters.
    """
    out: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        tenant, sep, code = item.strip().rpartition(":")
        code = code.strip().upper()
        if not sep or not tenant.strip() or len(code) != 3 or not code.isalpha():
            raise ValueError(f"TENANT_CURRENCIES entry {item.strip()!r} is not tenant:CUR")
        out[tenant.strip()] = code
    return out


def tenant_currency(settings: Settings, tenant: str) -> str:
    """The ISO 4217 currency ``tenant``'s stats are kept in."""
    return parse_tenant_currencies(settings.tenant_currencies).get(
        tenant, settings.default_currency
    )


def _utc_date(value: datetime | None) -> date | None:
    return value.astimezone(UTC).date() if value is not None else None


@dataclass(frozen=True)
class CurrencyTotals:
    """Counted orders of one customer in one currency."""

    currency: str
    total_orders: int = 0
    total_spent: Decimal = Decimal(0)
    lifetime_value: Decimal = Decimal(0)
    first_order_date: date | None = None
    last_order_date: date | None = None

    def read(self) -> CurrencyStatsRead:
        """The API view: money as decimal strings in the currency's precision."""
        average = self.total_spent / self.total_orders if self.total_orders else Decimal(0)
        return CurrencyStatsRead(
            currency=self.currency,
            total_orders=self.total_orders,
            total_spent=format_amount(self.total_spent, self.currency),
            average_order_value=format_amount(average, self.currency),
            lifetime_value=format_amount(self.lifetime_value, self.currency),
            first_order_date=self.first_order_date,
            last_order_date=self.last_order_date,
        )


@dataclass(frozen=True)
class Snapshot:
    """A customer's stats: ``main`` in the tenant currency, ``others`` sorted by currency."""

    main: CurrencyTotals
    total_appointments: int = 0
    last_appointment_date: date | None = None
    others: tuple[CurrencyTotals, ...] = field(default_factory=tuple)

    def read(self) -> CustomerStatsRead:
        """The API view (``GET /customers/{id}/stats``, and the events' ``stats``)."""
        main = self.main.read()
        return CustomerStatsRead(
            **main.model_dump(),
            total_appointments=self.total_appointments,
            last_appointment_date=self.last_appointment_date,
            other_currencies=[o.read() for o in self.others],
        )

    def fields(self) -> dict[str, Any]:
        """Flat ``{field: value}`` for comparisons; other currencies as
        ``other_currencies.<CUR>.<field>``."""
        flat: dict[str, Any] = {
            **{k: v for k, v in asdict(self.main).items()},
            "total_appointments": self.total_appointments,
            "last_appointment_date": self.last_appointment_date,
        }
        for other in self.others:
            for key, value in asdict(other).items():
                if key != "currency":
                    flat[f"other_currencies.{other.currency}.{key}"] = value
        return flat


@dataclass(frozen=True)
class Drift:
    """One stored stat that differs from the value recomputed from history."""

    customer_id: uuid.UUID
    field: str
    stored: Any
    recomputed: Any


def differences(customer_id: uuid.UUID, stored: Snapshot, fresh: Snapshot) -> list[Drift]:
    """Fields where ``stored`` and ``fresh`` differ (numbers compared by value)."""
    a, b = stored.fields(), fresh.fields()
    return [
        Drift(customer_id, key, a.get(key), b.get(key))
        for key in sorted(a.keys() | b.keys())
        if a.get(key) != b.get(key)
    ]


class StatsKeeper:
    """Reads and recomputes one tenant's customer stats inside the caller's transaction."""

    def __init__(self, session: AsyncSession, tenant: TenantId, settings: Settings) -> None:
        self.session = session
        self.tenant = tenant
        self.currency = tenant_currency(settings, tenant)
        self.repo = StatsRepository(session, tenant)
        self.orders = OrderRepository(session, tenant)
        self.appointments = AppointmentRepository(session, tenant)

    async def lock(self, customer_id: uuid.UUID, *, create: bool = True) -> None:
        """Lock the customer's stats row for the rest of the transaction, creating it
        unless ``create`` is False (a missing row then stays missing and unlocked)."""
        await self.repo.lock(customer_id, self.currency, create=create)

    async def recompute(self, customer_id: uuid.UUID) -> Snapshot:
        """Stats from the customer's order and appointment history (no writes)."""
        per_currency = {
            row.currency: CurrencyTotals(
                currency=row.currency,
                total_orders=int(row.orders),
                total_spent=Decimal(row.spent),
                lifetime_value=Decimal(row.realised),
                first_order_date=_utc_date(row.first_at),
                last_order_date=_utc_date(row.last_at),
            )
            for row in await self.orders.totals_by_currency(customer_id)
        }
        appointments = await self.appointments.totals(customer_id)
        return Snapshot(
            main=per_currency.pop(self.currency, CurrencyTotals(self.currency)),
            total_appointments=int(appointments.appointments),
            last_appointment_date=_utc_date(appointments.last_at),
            others=tuple(per_currency[c] for c in sorted(per_currency)),
        )

    async def stored(self, customer_id: uuid.UUID) -> Snapshot:
        """The stats as stored (zeros in the tenant currency when there is no row)."""
        row = await self.repo.get(customer_id)
        if row is None:
            return Snapshot(main=CurrencyTotals(self.currency))
        others = await self.repo.others(customer_id)
        return Snapshot(
            main=CurrencyTotals(
                currency=row.currency or self.currency,
                total_orders=row.total_orders,
                total_spent=Decimal(row.total_spent),
                lifetime_value=Decimal(row.lifetime_value),
                first_order_date=row.first_order_date,
                last_order_date=row.last_order_date,
            ),
            total_appointments=row.total_appointments,
            last_appointment_date=row.last_appointment_date,
            others=tuple(
                CurrencyTotals(
                    currency=o.currency,
                    total_orders=o.total_orders,
                    total_spent=Decimal(o.total_spent),
                    lifetime_value=Decimal(o.lifetime_value),
                    first_order_date=o.first_order_date,
                    last_order_date=o.last_order_date,
                )
                for o in others
            ),
        )

    async def write(self, customer_id: uuid.UUID, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (the stats row must exist: call :meth:`lock` first)."""
        main = asdict(snapshot.main)
        main.update(
            total_appointments=snapshot.total_appointments,
            last_appointment_date=snapshot.last_appointment_date,
        )
        others = [asdict(o) for o in snapshot.others]
        await self.repo.write(customer_id, main, others)

    async def refresh(self, customer_id: uuid.UUID) -> Snapshot:
        """Recompute and store the customer's stats; the caller holds :meth:`lock`."""
        snapshot = await self.recompute(customer_id)
        await self.write(customer_id, snapshot)
        return snapshot
