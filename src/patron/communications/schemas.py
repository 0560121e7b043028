"""Request and response shapes of communications (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from patron.kit.cards import CardNumberGuard
from patron.kit.datetimes import Rfc3339DateTime
from patron.kit.pagination import Page

# How far in the future a client clock may be: a later occurred_at is refused, so it
# cannot pin last_interaction_at ahead of real time.
CLOCK_SKEW = timedelta(minutes=5)


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PHONE = "PHONE"
    CHAT = "CHAT"
    INSTAGRAM = "INSTAGRAM"
    FACEBOOK = "FACEBOOK"
    WHATSAPP = "WHATSAPP"


class Direction(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class CommunicationCreate(CardNumberGuard):
    """One contact. ``occurred_at`` defaults to now and must carry a UTC offset;
    ``external_id`` (the channel's message or call id) makes recording idempotent."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )

    channel: Channel
    direction: Direction
    subject: Annotated[str, Field(max_length=500)] | None = None
    summary: Annotated[str, Field(max_length=10_000)] | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    occurred_at: Rfc3339DateTime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware_and_not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at needs a UTC offset (RFC 3339)")
        if value > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("occurred_at is in the future")
        return value.astimezone(UTC)


class CommunicationRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    direction: Direction
    subject: str | None
    summary: str | None
    external_id: str | None
    occurred_at: datetime
    recorded_by: str | None
    created_at: datetime


class CommunicationPage(Page):
    communications: list[CommunicationRead]
