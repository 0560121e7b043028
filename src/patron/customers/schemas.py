"""Request and response shapes of the customer API (API.md "Customers").

Bodies are snake_case and also accept camelCase aliases; unknown fields are 422, and so are
read-only fields (``id``, ``full_name``, ``stats``, ``version``, timestamps).
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from patron.kit.cards import CardNumberGuard
from patron.kit.datetimes import Rfc3339DateTime
from patron.kit.jsonschema import not_null
from patron.kit.jsonutil import check_storable
from patron.kit.pagination import Page
from patron.kit.validation import ContactPointError, normalize_email


class CustomerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    BLOCKED = "BLOCKED"


class CustomerType(StrEnum):
    RETAIL = "RETAIL"
    WHOLESALE = "WHOLESALE"
    VIP = "VIP"


class Platform(StrEnum):
    """Where a customer talks to the business. ``messenger`` (Facebook Messenger, as
    messaging webhooks name it) is accepted on input and stored as ``facebook``
    (API.md "Customers")."""

    INSTAGRAM = "instagram"
    FACEBOOK = "facebook"
    WEB = "web"
    WHATSAPP = "whatsapp"
    OTHER = "other"

    @classmethod
    def _missing_(cls, value: object) -> Platform | None:
        return cls.FACEBOOK if is_messenger(value) else None


def is_messenger(value: object) -> bool:
    """Whether ``value`` names Facebook Messenger (``messenger``, any case): Facebook's
    messaging channel, accepted as an alias of ``facebook`` and never stored."""
    return isinstance(value, str) and value.lower() == "messenger"


READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "full_name",
        "fullName",
        "stats",
        "version",
        "created_at",
        "createdAt",
        "updated_at",
        "updatedAt",
        "deleted_at",
        "deletedAt",
        "blocked_at",
        "blockedAt",
        "profile_fetched_at",
        "profileFetchedAt",
        "merged_into_id",
        "mergedIntoId",
    }
)

Name = Annotated[str, Field(min_length=1, max_length=200)]
# \x85 (NEL) is whitespace to pydantic's regex engine (Unicode White_Space) but not to
# ECMA-262's \s, the dialect of JSON Schema patterns: named so both read the same rule.
ShortId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s\x00\x85]+$")]
Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s\x00\x85]+$")]
# What the validators below accept, stated for clients and generators (issue 10): an
# address email-validator takes (RFC 5321/5322), a zone of the IANA database.
Email = Annotated[
    str, Field(max_length=320, json_schema_extra={"format": "email"}, examples=["ada@example.com"])
]
Phone = Annotated[
    str,
    Field(
        max_length=64,
        description="E.164 (`+14155550100`), or national format in DEFAULT_PHONE_REGION; "
        "stored as E.164. It must be a valid number for its region (libphonenumber), else 422.",
        examples=["+14155550100"],
        json_schema_extra={"pattern": r"^\+?[0-9][0-9 ().-]{3,40}$"},
    ),
]
# Not an enum of the ~600 names: generators (schemathesis' coverage phase) send every one.
TimeZone = Annotated[
    str,
    Field(
        max_length=64,
        description="A name of the IANA time zone database (`Europe/Berlin`, `UTC`)",
        examples=["Europe/Berlin"],
        json_schema_extra={"pattern": r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"},
    ),
]
TagLabel = Annotated[str, Field(min_length=1, max_length=64)]


class _Input(CardNumberGuard):
    model_config = ConfigDict(
        extra="forbid",
        # snake_case names, camelCase accepted too (API.md); the schema shows snake_case.
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in READ_ONLY_FIELDS:
                    raise ValueError(f"{key} is read-only")
        return data


class CustomerFields(_Input):
    """Writable customer fields; every one optional (create defaults apply in the service)."""

    tenant_id: str | None = Field(
        default=None, validation_alias=AliasChoices("tenant_id", "tenantId")
    )
    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    gender: Annotated[str, Field(max_length=32)] | None = None
    birth_date: date | None = None
    locale: (
        Annotated[str, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")]
        | None
    ) = None
    timezone: TimeZone | None = None
    avatar_url: Url | None = None
    profile_pic_url: Url | None = None
    # may be left out, not sent as null (customers.fields.NOT_NULLABLE)
    status: CustomerStatus | None = Field(default=None, json_schema_extra=not_null)
    customer_type: CustomerType | None = Field(default=None, json_schema_extra=not_null)
    platform: Platform | None = None
    app_id: ShortId | None = None
    psid: ShortId | None = None
    igsid: ShortId | None = None
    user_id: ShortId | None = None
    external_ids: (
        dict[
            Annotated[str, Field(min_length=1, max_length=64)],
            Annotated[str, Field(min_length=1, max_length=256)],
        ]
        | None
    ) = None
    access_token: SecretStr | None = Field(default=None, max_length=4096)
    marketing_opt_in: bool | None = Field(default=None, json_schema_extra=not_null)
    tags: list[TagLabel] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = None
    preferences: dict[str, Any] | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_email(value)
        except ContactPointError as exc:
            raise ValueError(f"invalid email address: {exc}") from exc

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown IANA time zone") from exc
        return value

    @field_validator("birth_date")
    @classmethod
    def _birth_date(cls, value: date | None) -> date | None:
        if value is not None and (value.year < 1900 or value > date.today()):  # noqa: DTZ011
            raise ValueError("birth_date must be between 1900-01-01 and today")
        return value

    @field_validator("attributes", "preferences")
    @classmethod
    def _free_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_storable(value)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: dict[str, str] = {}
        for label in value:
            seen.setdefault(label.casefold(), label)
        return list(seen.values())


class CustomerCreate(CustomerFields):
    """Body of ``POST /customers``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": "ada@example.com",
                    "phone": "+14155550100",
                    "app_id": "1234567890",
                    "psid": "6789012345",
                    "platform": "instagram",
                    "access_token": "EAAB-example-token",
                    "tags": ["VIP"],
                    "attributes": {"favourite_colour": "green"},
                }
            ]
        }
    )


class CustomerUpdate(CustomerFields):
    """Body of ``PUT``/``PATCH /customers/{id}``: only the fields sent change; ``null`` clears."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"last_name": "King", "customer_type": "VIP", "locale": "en-GB"}]
        }
    )


class CustomerUpsert(CustomerFields):
    """Body (or query) of ``POST /customers/upsert``: at least one identity is required."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "1234567890",
                    "psid": "5550001111",
                    "platform": "instagram",
                    "first_name": "Grace",
                    "last_name": "Hopper",
                    "profile_pic_url": "https://example.com/grace.jpg",
                }
            ]
        }
    )


class BlockRequest(_Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "spam"}]})

    reason: Annotated[str, Field(max_length=1000)] | None = None


class InteractionRequest(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"occurred_at": "2026-11-22T10:15:00Z", "channel": "instagram"}]
        }
    )

    occurred_at: Rfc3339DateTime | None = None
    channel: Annotated[str, Field(max_length=32)] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone (RFC 3339)")
        return value


class MergeRequest(_Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"source_id": "0199a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"}]}
    )

    source_id: uuid.UUID


class StatsRead(BaseModel):
    total_orders: int = 0
    total_spent: str = "0.00"
    average_order_value: str = "0.00"
    lifetime_value: str = "0.00"
    first_order_date: date | None = None
    last_order_date: date | None = None
    total_appointments: int = 0
    last_appointment_date: date | None = None
    currency: str | None = None


class CustomerRead(BaseModel):
    """A customer as the API shows it. Never carries ``access_token``."""

    id: uuid.UUID
    tenant_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    gender: str | None
    birth_date: date | None
    locale: str | None
    timezone: str | None
    avatar_url: str | None
    profile_pic_url: str | None
    status: CustomerStatus
    customer_type: CustomerType
    platform: Platform | None
    app_id: str | None
    psid: str | None
    igsid: str | None
    user_id: str | None
    external_ids: dict[str, str]
    has_access_token: bool
    marketing_opt_in: bool
    tags: list[str]
    attributes: dict[str, Any]
    preferences: dict[str, Any]
    last_interaction_at: datetime | None
    blocked_at: datetime | None
    block_reason: str | None
    profile_fetched_at: datetime | None
    stats: StatsRead
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerPage(Page):
    """A page of customers (API.md "Conventions", paging).

    ``total`` is exact unless ``total_is_estimate``: a search with ``q`` counts at most
    ``SEARCH_COUNT_CAP`` matches, and past it ``total`` is a lower bound (at least that
    many match). A page reached by ``cursor`` repeats the first page's ``total`` and flag
    (carried in the cursor, not counted again). docs/decisions/0011-search-total.md.
    """

    customers: list[CustomerRead]


class UpsertResult(BaseModel):
    created: bool
    customer: CustomerRead


class MergeResult(BaseModel):
    merge_id: uuid.UUID
    customer: CustomerRead
    source_id: uuid.UUID
    details: dict[str, Any]
