"""Request and response shapes of customer addresses (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import pycountry
from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from patron.kit.cards import CardNumberGuard
from patron.kit.jsonschema import not_null
from patron.kit.pagination import Page


class AddressType(StrEnum):
    SHIPPING = "SHIPPING"
    BILLING = "BILLING"


Name = Annotated[str, Field(min_length=1, max_length=200)]
Line = Annotated[str, Field(min_length=1, max_length=300)]
PostalCode = Annotated[str, Field(min_length=1, max_length=32)]
Phone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="E.164, or national format of the address's country; stored as E.164. "
        "It must be a valid number for its region (libphonenumber), else 422.",
        json_schema_extra={"pattern": r"^\+?[0-9][0-9 ().-]{3,30}$"},
    ),
]
# ISO 3166-1 alpha-2 (any case; stored upper-cased); a code must also be assigned
# (pycountry's table), which a pattern cannot say: an enum of the 249 codes would have
# schemathesis' coverage phase send each of them on every run.
COUNTRY_PATTERN = "^[A-Za-z]{2}$"
Country = Annotated[
    str,
    Field(
        min_length=2,
        max_length=2,
        description="ISO 3166-1 alpha-2 country code (an assigned one)",
        examples=["DE"],
        json_schema_extra={"pattern": COUNTRY_PATTERN},
    ),
]


def _country(value: str | None) -> str | None:
    """ISO 3166-1 alpha-2, upper case; unknown codes are refused (pycountry's table)."""
    if value is None:
        return None
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


class _Input(CardNumberGuard):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )


class AddressCreate(_Input):
    """Body of ``POST /customers/{id}/addresses``."""

    address_type: AddressType
    is_default: bool = False
    first_name: Name | None = None
    last_name: Name | None = None
    company: Name | None = None
    address_line1: Line
    address_line2: Line | None = None
    city: Name | None = None
    state: Name | None = None
    postal_code: PostalCode | None = None
    country: Country
    phone: Phone | None = None

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str | None) -> str | None:
        return _country(value)


class AddressUpdate(_Input):
    """Body of ``PUT /customers/{id}/addresses/{address_id}``: the fields sent replace the
    stored ones (``null`` clears an optional field); the result is validated as a whole."""

    # required fields may be left out, not sent as null (AddressService.update)
    address_type: AddressType | None = Field(default=None, json_schema_extra=not_null)
    is_default: bool | None = Field(default=None, json_schema_extra=not_null)
    first_name: Name | None = None
    last_name: Name | None = None
    company: Name | None = None
    address_line1: Line | None = Field(default=None, json_schema_extra=not_null)
    address_line2: Line | None = None
    city: Name | None = None
    state: Name | None = None
    postal_code: PostalCode | None = None
    country: Country | None = Field(default=None, json_schema_extra=not_null)
    phone: Phone | None = None

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str | None) -> str | None:
        return _country(value)


class AddressWarning(BaseModel):
    """Something the address library is unsure about; the value was kept as given."""

    field: str
    code: str
    msg: str


class AddressRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    address_type: AddressType
    is_default: bool
    first_name: str | None
    last_name: str | None
    company: str | None
    address_line1: str
    address_line2: str | None
    city: str | None
    state: str | None
    postal_code: str | None
    country: str
    phone: str | None
    created_at: datetime
    updated_at: datetime
    warnings: list[AddressWarning] = Field(
        default_factory=list,
        description="Only on create and update: values kept although the library doubts them",
    )


class AddressPage(Page):
    addresses: list[AddressRead]
