"""Request and response shapes of payment methods (API.md "Profile data").

Only tokenized references are accepted: ``provider_reference`` is the provider's token
(``pm_...``, ``card_...``), never a card number. Any value that contains one is refused
before this model sees it (:mod:`patron.kit.cards`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from patron.kit.pagination import Page

# A masked token shows its last MASK_VISIBLE characters, and only when it is at least
# MASK_MIN_LENGTH long (so a short token is never half revealed).
MASK_VISIBLE = 4
MASK_MIN_LENGTH = 12


class MethodType(StrEnum):
    CARD = "CARD"
    BANK_ACCOUNT = "BANK_ACCOUNT"
    WALLET = "WALLET"


class PaymentMethodCreate(BaseModel):
    """A tokenized payment method. ``exp_month`` and ``exp_year`` come together (stated as
    JSON Schema 2020-12 ``dependentRequired``, which OpenAPI 3.1 allows); a card whose
    expiry month has passed (UTC) is refused."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {"exp_month": ["exp_year"], "exp_year": ["exp_month"]}
        },
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )

    provider: Annotated[str, Field(min_length=1, max_length=64, examples=["stripe"])]
    provider_reference: Annotated[
        str, Field(min_length=1, max_length=500, description="The provider's token")
    ]
    method_type: MethodType
    brand: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")] | None = None
    # documented without null: one of the pair null and the other not is refused
    exp_month: Annotated[
        Annotated[int, Field(ge=1, le=12)] | None,
        WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 12}),
    ] = None
    exp_year: Annotated[
        Annotated[int, Field(ge=2000, le=2099)] | None,
        WithJsonSchema({"type": "integer", "minimum": 2000, "maximum": 2099}),
    ] = None
    is_default: bool = False
    billing_address_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _expiry(self) -> PaymentMethodCreate:
        if (self.exp_month is None) != (self.exp_year is None):
            raise ValueError("exp_month and exp_year go together")
        if self.exp_month is not None and self.exp_year is not None:
            now = datetime.now(UTC)
            if (self.exp_year, self.exp_month) < (now.year, now.month):
                raise ValueError("the payment method has expired")
        return self


class PaymentMethodRead(BaseModel):
    """A payment method as returned: ``provider_reference`` is masked (``****abcd``)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    provider: str
    provider_reference: str = Field(
        description="Masked token: '****' and its last 4 characters (only '****' when short)"
    )
    method_type: MethodType
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    billing_address_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class PaymentMethodPage(Page):
    payment_methods: list[PaymentMethodRead]


def mask_reference(reference: str) -> str:
    """``****`` plus the last 4 characters of a token of 12 or more characters."""
    if len(reference) < MASK_MIN_LENGTH:
        return "****"
    return "****" + reference[-MASK_VISIBLE:]
