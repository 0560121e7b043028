"""Rows to API objects."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Row

from patron.customers.schemas import CustomerRead, StatsRead
from patron.kit.money import format_amount


def full_name(first: str | None, last: str | None) -> str | None:
    name = " ".join(p for p in (first, last) if p)
    return name or None


def stats_from_row(m: Mapping[str, Any]) -> StatsRead:
    currency = m["stats_currency"]
    orders = m["stats_total_orders"] or 0
    spent = Decimal(m["stats_total_spent"] or 0)
    average = spent / orders if orders else Decimal(0)
    return StatsRead(
        total_orders=orders,
        total_spent=format_amount(spent, currency),
        average_order_value=format_amount(average, currency),
        lifetime_value=format_amount(m["stats_lifetime_value"], currency),
        first_order_date=m["stats_first_order_date"],
        last_order_date=m["stats_last_order_date"],
        total_appointments=m["stats_total_appointments"] or 0,
        last_appointment_date=m["stats_last_appointment_date"],
        currency=currency,
    )


def customer_read(row: Row[Any] | Mapping[str, Any]) -> CustomerRead:
    """The API view of a row selected by ``CustomerRepository.read_select`` (a SQLAlchemy
    row, or an ``asyncpg.Record`` from a prepared query)."""
    m: Mapping[str, Any] = row._mapping if isinstance(row, Row) else row  # type: ignore[assignment]
    return CustomerRead.model_validate(
        {
            **{k: m[k] for k in _FIELDS if k in m},
            "full_name": full_name(m["first_name"], m["last_name"]),
            "stats": stats_from_row(m),
        }
    )


_FIELDS = tuple(CustomerRead.model_fields)
