"""Detect payment card numbers (PANs) in untrusted input, so they are never stored or logged.

Patron keeps tokenized references only (PCI DSS: a PAN must not enter a system that is not
in scope for it). :func:`find_card_number` reports *where* a value contains something that
looks like a card number, never the number itself.

What counts as a card number: 13 to 19 digits (ISO/IEC 7812-1 primary account numbers)
whose check digit is valid under the Luhn algorithm (ISO/IEC 7812-1 Annex B, computed with
``stdnum.luhn`` from python-stdnum), written together or in groups separated by a single
space or dash (``4111 1111 1111 1111``, ``4111-1111-1111-1111``). Inside a longer
run of grouped digits every contiguous sequence of whole groups is checked, so a PAN
preceded or followed by another group (``ref 12 4111 1111 1111 1111``) is found too. An
unbroken run of more than 19 digits is not treated as a card number (it cannot be one,
and nearly every long number contains some Luhn-valid 13-19 digit substring).

:class:`CardNumberGuard` is the one guard of every request body whose content Patron
stores (ARCHITECTURE.md "Data": full card numbers are never accepted).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from stdnum import luhn

MIN_PAN_DIGITS = 13
MAX_PAN_DIGITS = 19

# A run of digit groups joined by single spaces or dashes, not glued to other digits.
_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)")
_SEPARATOR = re.compile(r"[ -]")


def _candidates(run: str) -> Iterator[str]:
    """Digit strings of 13-19 digits made of contiguous whole groups of ``run``."""
    groups = _SEPARATOR.split(run)
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > MAX_PAN_DIGITS:
                break
            if len(digits) >= MIN_PAN_DIGITS:
                yield digits


def contains_card_number(text: str) -> bool:
    """True when ``text`` contains a Luhn-valid sequence of 13-19 digits (see module doc)."""
    if sum(ch.isdigit() for ch in text) < MIN_PAN_DIGITS:
        return False
    return any(
        luhn.is_valid(candidate)
        for match in _RUN.finditer(text)
        for candidate in _candidates(match.group())
    )


def find_card_number(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Location (keys / indexes) of the first card number in a JSON value, or None.

    Every string and number is checked, including object keys and values of fields that
    are not part of any schema, at any depth. Booleans and null are skipped. The returned
    path never contains the offending value itself (a key that holds a card number is
    reported as ``<key>``).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return path if contains_card_number(str(value)) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if contains_card_number(str(key)):
                return (*path, "<key>")
            found = find_card_number(item, (*path, str(key)))
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_card_number(item, (*path, index))
            if found is not None:
                return found
    return None


# Fields that hold identifiers, contact points or credentials, never free content: a
# Shopify id, a phone number or a national id number can be 13-19 Luhn-valid digits by
# chance (one in ten), and each is validated by its own rule.
IDENTIFIER_FIELDS = frozenset(
    {
        "app_id",
        "psid",
        "igsid",
        "user_id",
        "external_ids",
        "external_id",
        "order_id",
        "appointment_id",
        "phone",
        "tenant_id",
        "access_token",
        "ip_address",
        "source_id",
    }
)

CARD_NUMBER_REFUSED = "card_number_refused"


class CardNumberGuard(BaseModel):
    """Base of request bodies whose content Patron stores: any field (at any depth of a
    dict or list value, keys included) holding a card number is a validation error of type
    ``card_number_refused`` located at that field, checked before the field's own rules so
    no other error can echo the number. The message names the path inside the field,
    never the value.

    Fields in ``card_number_exempt`` (default :data:`IDENTIFIER_FIELDS`) are not checked.
    """

    card_number_exempt: ClassVar[frozenset[str]] = IDENTIFIER_FIELDS

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_card_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name in cls.card_number_exempt:
            return value
        where = find_card_number(value)
        if where is None:
            return value
        inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        raise PydanticCustomError(
            CARD_NUMBER_REFUSED,
            "a card number is not accepted ({field}); store the payment provider's token",
            {"field": f"{info.field_name}{inner}"},
        )
