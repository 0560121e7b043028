"""Request and response shapes of consents (API.md "Profile data").

``legal_basis`` values are the lawful bases of GDPR Art. 6(1)(a)-(f).
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from patron.kit.cards import CardNumberGuard
from patron.kit.datetimes import Rfc3339DateTime
from patron.kit.pagination import Page

# A captured_at later than now plus this is refused: a future entry would hold the
# current state hostage until its time comes.
CLOCK_SKEW = timedelta(minutes=5)


class Purpose(StrEnum):
    EMAIL_MARKETING = "email_marketing"
    SMS_MARKETING = "sms_marketing"
    PROFILING = "profiling"
    DATA_PROCESSING = "data_processing"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


class LegalBasis(StrEnum):
    """GDPR Art. 6(1): (a) consent ... (f) legitimate interests."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class ConsentCreate(CardNumberGuard):
    """One ledger entry. ``captured_at`` defaults to now (UTC offset required when given;
    an earlier time than the latest entry is recorded as history without changing the
    current state). ``ip_address`` / ``user_agent`` default to the request's when the
    customer records for themselves."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )

    purpose: Purpose
    status: ConsentStatus
    source: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    legal_basis: LegalBasis | None = None
    captured_at: Rfc3339DateTime | None = None
    ip_address: (
        Annotated[
            str,
            Field(
                max_length=45,
                json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            ),
        ]
        | None
    ) = None
    user_agent: Annotated[str, Field(max_length=1000)] | None = None

    @field_validator("captured_at")
    @classmethod
    def _aware_and_not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("captured_at needs a UTC offset (RFC 3339)")
        if value > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("captured_at is in the future")
        return value.astimezone(UTC)

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError("ip_address is not an IPv4 or IPv6 address") from exc


class ConsentRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    purpose: Purpose
    status: ConsentStatus
    source: str | None
    legal_basis: LegalBasis | None
    captured_at: datetime
    actor: str | None
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


class ConsentState(BaseModel):
    """The latest entry per purpose (null when the purpose has none)."""

    email_marketing: ConsentRead | None = None
    sms_marketing: ConsentRead | None = None
    profiling: ConsentRead | None = None
    data_processing: ConsentRead | None = None


class ConsentLedger(Page):
    """``current`` derived from the ledger, and the ``consents`` (the ledger's entries) newest
    first, paged: a list of other things uses its own plural (API.md "Conventions")."""

    current: ConsentState
    consents: list[ConsentRead]
