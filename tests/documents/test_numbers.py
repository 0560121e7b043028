"""The document number and country rules (documents.service)."""

from __future__ import annotations

import pytest

from patron.documents.schemas import DocumentType
from patron.documents.service import mask, normalize_country, normalize_number
from patron.errors import InvalidInput


@pytest.mark.parametrize(
    ("type_", "raw", "stored"),
    [
        (DocumentType.PASSPORT, "c01x 00t4-7", "C01X00T47"),
        (DocumentType.NATIONAL_ID, " 123.456.789 ", "123456789"),
        (DocumentType.DRIVERS_LICENSE, "ab-12/34", "AB1234"),
        (DocumentType.BANK_STATEMENT, "DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        (DocumentType.TAX_CERTIFICATE, "\uff11\uff12", "12"),  # full-width digits (NFKC)
    ],
)
def test_numbers_are_normalised(type_: DocumentType, raw: str, stored: str) -> None:
    assert normalize_number(type_, raw) == stored


@pytest.mark.parametrize(
    ("type_", "raw"),
    [
        (DocumentType.PASSPORT, "1234"),  # too short for a passport
        (DocumentType.PASSPORT, "A" * 21),
        (DocumentType.NATIONAL_ID, "12#34"),
        (DocumentType.UTILITY_BILL, "-- --"),
        (DocumentType.UTILITY_BILL, "é1234"),
    ],
)
def test_bad_numbers_are_422_on_number(type_: DocumentType, raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_number(type_, raw)
    assert caught.value.extra["errors"][0]["loc"] == ["body", "number"]


def test_countries() -> None:
    assert normalize_country("de") == "DE"
    for bad in ("XX", "DEU", "", "1A"):
        with pytest.raises(InvalidInput):
            normalize_country(bad)


def test_mask() -> None:
    assert mask("4567") == "****4567"
