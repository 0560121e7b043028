"""Rows to API objects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Row

from patron.customers.schemas import CustomerRead, StatsRead
from patron.kit.money import format_amount


def full_name(first: str | None, last: str | None) -> str | None:
    name = " ".join(p for p in (first, last) if p)
    return name or None


def stats_from_row(row: Row[Any]) -> StatsRead:
    currency = row.stats_currency
    orders = row.stats_total_orders or 0
    spent = Decimal(row.stats_total_spent or 0)
    average = spent / orders if orders else Decimal(0)
    return StatsRead(
        total_orders=orders,
        total_spent=format_amount(spent, currency),
        average_order_value=format_amount(average, currency),
        lifetime_value=format_amount(row.stats_lifetime_value, currency),
        first_order_date=row.stats_first_order_date,
        last_order_date=row.stats_last_order_date,
        total_appointments=row.stats_total_appointments or 0,
        last_appointment_date=row.stats_last_appointment_date,
        currency=currency,
    )


def customer_read(row: Row[Any]) -> CustomerRead:
    """The API view of a row selected by ``CustomerRepository.read_select``."""
    m = row._mapping
    return CustomerRead.model_validate(
        {
            **{k: m[k] for k in CustomerRead.model_fields if k in m},
            "full_name": full_name(row.first_name, row.last_name),
            "stats": stats_from_row(row),
        }
    )
