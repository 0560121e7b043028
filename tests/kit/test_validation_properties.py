"""Property tests of phone and email normalisation (``patron.kit.validation``)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from patron.kit.validation import (
    ContactPointError,
    email_identity_value,
    normalize_email,
    normalize_phone,
)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)

# (region, example number) for every region that has a mobile or fixed-line example.
EXAMPLES = [
    (region, number)
    for region in REGIONS
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]

FORMATS = [PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164]


def test_there_are_examples_from_many_regions() -> None:
    assert len({region for region, _ in EXAMPLES}) > 200


@st.composite
def respaced(draw: st.DrawFn, text: str) -> str:
    """``text`` with its spacing redrawn: spaces removed, then random separators put back
    between characters (a hyphen or dot only between two digits)."""
    chars = [c for c in text if not c.isspace()]
    out = [draw(st.sampled_from(["", " ", "\t"]))]
    for i, char in enumerate(chars):
        out.append(char)
        if i + 1 < len(chars):
            between_digits = char.isdigit() and chars[i + 1].isdigit()
            options = ["", "", " ", "  ", *(["-", "."] if between_digits else [])]
            out.append(draw(st.sampled_from(options)))
    out.append(draw(st.sampled_from(["", " ", "\n"])))
    return "".join(out)


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    """``(as a person might write it, its region, its E.164)`` from libphonenumber's examples."""
    region, number = draw(st.sampled_from(EXAMPLES))
    written = phonenumbers.format_number(number, draw(st.sampled_from(FORMATS)))
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return draw(respaced(written)), region, e164


@given(written_numbers())
@settings(max_examples=300, deadline=None)
def test_any_written_form_normalises_to_the_e164(example: tuple[str, str, str]) -> None:
    written, region, e164 = example
    assert normalize_phone(written, region) == e164


@given(written_numbers(), st.sampled_from(REGIONS))
@settings(max_examples=200, deadline=None)
def test_phone_normalisation_is_idempotent(example: tuple[str, str, str], other: str) -> None:
    written, region, e164 = example
    once = normalize_phone(written, region)
    # E.164 carries its country code, so the default region no longer matters.
    assert normalize_phone(once, other) == once == e164


@pytest.mark.parametrize("region", ["US", "GB", "DE", "IN", "BR"])
def test_international_form_ignores_the_default_region(region: str) -> None:
    assert normalize_phone("+44 20 7946 0958", region) == "+442079460958"


@given(st.text(max_size=80), st.sampled_from(REGIONS))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_is_a_phone_or_a_contact_point_error(text: str, region: str) -> None:
    try:
        result = normalize_phone(text, region)
    except ContactPointError:
        return
    assert result.startswith("+")
    assert result[1:].isdigit()
    assert normalize_phone(result, region) == result


@pytest.mark.parametrize(
    "text", ["", "   ", "+", "12", "not a phone", "+1" + "5" * 70, "+999 1234"]
)
def test_obvious_non_numbers_are_refused(text: str) -> None:
    with pytest.raises(ContactPointError):
        normalize_phone(text, "US")


# Email ---------------------------------------------------------------------------------

LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_-"
LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TLDS = ["com", "org", "net", "io", "de", "COM", "Shop", "co.uk", "example"]


@st.composite
def local_parts(draw: st.DrawFn) -> str:
    """Dot-atoms of safe characters, no leading, trailing or doubled dots."""
    atoms = draw(st.lists(st.text(LOCAL_CHARS, min_size=1, max_size=12), min_size=1, max_size=4))
    return ".".join(atoms)


@st.composite
def domains(draw: st.DrawFn) -> str:
    """Mixed-case host names with a real-looking TLD; inner hyphens allowed, except in
    the third and fourth positions together (reserved for IDNA's ``xn--``, RFC 5891
    §4.2.3.1, so email-validator refuses them)."""
    labels = draw(
        st.lists(
            st.builds(
                lambda a, mid, b: a + mid + b if mid else a,
                st.text(LABEL_CHARS, min_size=1, max_size=8),
                st.text(LABEL_CHARS + "-", max_size=8),
                st.text(LABEL_CHARS, min_size=1, max_size=8),
            ).filter(lambda label: label[2:4] != "--"),
            min_size=1,
            max_size=3,
        )
    )
    return ".".join([*labels, draw(st.sampled_from(TLDS))])


@given(local_parts(), domains(), st.sampled_from(["", " ", "\t"]), st.sampled_from(["", " ", "\n"]))
@settings(max_examples=300, deadline=None)
def test_valid_addresses_keep_the_local_part_and_lower_case_the_domain(
    local: str, domain: str, before: str, after: str
) -> None:
    result = normalize_email(f"{before}{local}@{domain}{after}")
    assert result == f"{local}@{domain.lower()}"
    assert normalize_email(result) == result
    assert email_identity_value(result) == result.lower()


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_is_an_email_or_a_contact_point_error(text: str) -> None:
    try:
        result = normalize_email(text)
    except ContactPointError:
        return
    assert "@" in result
    assert normalize_email(result) == result


@given(local_parts(), st.text(max_size=20))
@settings(max_examples=200, deadline=None)
def test_addresses_with_any_domain_text_never_raise_anything_else(local: str, domain: str) -> None:
    try:
        result = normalize_email(f"{local}@{domain}")
    except ContactPointError:
        return
    assert result.startswith(f"{local}@")


@pytest.mark.parametrize(
    "text",
    ["", "ada", "ada@", "@example.com", "ada@@example.com", "a..b@example.com", "ada@localhost"],
)
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(ContactPointError):
        normalize_email(text)
