"""Shapes of the documents API (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from patron.kit.cards import CardNumberGuard
from patron.kit.pagination import Page


class DocumentType(StrEnum):
    PASSPORT = "PASSPORT"
    NATIONAL_ID = "NATIONAL_ID"
    DRIVERS_LICENSE = "DRIVERS_LICENSE"
    TAX_CERTIFICATE = "TAX_CERTIFICATE"
    BUSINESS_LICENSE = "BUSINESS_LICENSE"
    UTILITY_BILL = "UTILITY_BILL"
    BANK_STATEMENT = "BANK_STATEMENT"


class DocumentStatus(StrEnum):
    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"


class DocumentRead(BaseModel):
    """A document as clients see it: the number only masked (``****1234``)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    type: DocumentType
    number: str = Field(description="The number masked: `****` and its last four characters")
    number_last4: str
    issuing_country: str
    expires_on: date | None
    status: DocumentStatus
    content_type: str | None
    size_bytes: int | None
    sha256: str | None = Field(description="SHA-256 of the stored file, hex")
    file_url: str = Field(description="Path that downloads the file (same roles)")
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str | None
    created_at: datetime
    updated_at: datetime


class DocumentPage(Page):
    documents: list[DocumentRead]


class RejectRequest(CardNumberGuard):
    """Optional body of ``/reject``."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "image is unreadable"}]},
    )

    reason: Annotated[
        str | None, Field(max_length=1000, validation_alias=AliasChoices("reason"))
    ] = None
