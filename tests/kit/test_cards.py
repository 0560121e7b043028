"""Card number detection (patron.kit.cards)."""

from __future__ import annotations

import pytest

from patron.kit.cards import contains_card_number, find_card_number


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",  # Visa test number
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",  # Amex, 15 digits
        "6011 0009 9013 9424",  # Discover
        "4222222222222",  # 13 digits
        "tok_4111111111111111_x",
        "card: 5555-5555-5555-4444 exp 12/30",
        "ref 12 4111 1111 1111 1111",  # a PAN after another group
    ],
)
def test_luhn_valid_sequences_are_found(text: str) -> None:
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn check fails
        "4111 1111 1111 1112",
        "pm_1Nv0abcDEF",
        "123456789012",  # 12 digits, too short even though Luhn-valid
        "12345678901234567890123",  # an unbroken 23-digit run is no card number
        "4111--1111--1111--1111",  # groups must be joined by one separator
        "",
    ],
)
def test_other_text_is_not_a_card_number(text: str) -> None:
    assert not contains_card_number(text)


def test_find_reports_the_path_never_the_value() -> None:
    assert find_card_number({"a": {"b": [1, "4111111111111111"]}}) == ("a", "b", 1)
    assert find_card_number({"4111111111111111": "x"}) == ("<key>",)
    assert find_card_number({"n": 4111111111111111}) == ("n",)
    assert find_card_number({"ok": True, "none": None, "s": "pm_123"}) is None
