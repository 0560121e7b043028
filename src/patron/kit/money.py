"""Money formatting: decimal strings in the currency's minor-unit precision (ISO 4217,
precision from CLDR via Babel): ``"2750.00"`` for USD, ``"1200"`` for JPY."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from babel.numbers import get_currency_precision


def minor_units(currency: str | None) -> int:
    """Digits after the decimal point for ``currency`` (2 when unknown or None)."""
    if not currency:
        return 2
    try:
        return int(get_currency_precision(currency.upper()))
    except (KeyError, ValueError):
        return 2


def format_amount(amount: Decimal | int | None, currency: str | None) -> str:
    """``amount`` rounded half-even to the currency's precision, as a plain string."""
    value = Decimal(amount or 0)
    quantum = Decimal(1).scaleb(-minor_units(currency))
    return str(value.quantize(quantum, rounding=ROUND_HALF_EVEN))
