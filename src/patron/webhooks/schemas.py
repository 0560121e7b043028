"""Request and response shapes of outgoing webhook endpoints (API.md "webhooks",
docs/webhooks.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic.alias_generators import to_camel

from patron.events.types import EventType
from patron.kit.cards import CardNumberGuard
from patron.kit.datetimes import Rfc3339DateTime
from patron.kit.jsonschema import not_null
from patron.kit.pagination import Page

EventTypeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        json_schema_extra={"enum": ["*", *sorted(str(t) for t in EventType)]},
    ),
]
# https only, no credentials or fragment (webhooks.ssrf.parse_target); that the host
# resolves to public addresses only is checked when it is registered (422 naming `url`).
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        examples=["https://hooks.example.com/patron"],
        json_schema_extra={"pattern": r"^https://[A-Za-z0-9.-]+(:[0-9]{1,4})?([/?][^\s\x00#]*)?$"},
    ),
]


class _Input(CardNumberGuard):
    """Bodies: snake_case, camelCase aliases accepted, unknown fields 422 (API.md)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )


class WebhookEndpointCreate(_Input):
    """Body of ``POST /webhook-endpoints``. ``event_types`` empty or ``["*"]``: every type."""

    url: WebhookUrl
    event_types: Annotated[list[EventTypeName], Field(max_length=100)] = Field(default_factory=list)
    description: Annotated[str | None, Field(max_length=500)] = None


class WebhookEndpointUpdate(_Input):
    """Body of ``PATCH /webhook-endpoints/{id}``; every field optional. ``enabled: true``
    re-enables a disabled endpoint and clears its failure streak; ``false`` disables it."""

    url: WebhookUrl | None = Field(default=None, json_schema_extra=not_null)
    event_types: Annotated[list[EventTypeName] | None, Field(max_length=100)] = None
    description: Annotated[str | None, Field(max_length=500)] = None
    enabled: bool | None = None


class WebhookSecretRotate(_Input):
    """Body of ``POST /webhook-endpoints/{id}/rotate-secret`` (optional).

    ``previous_secret_expires_at``: until when the replaced secret keeps signing (RFC 3339
    with an offset; at most 7 days ahead). Default: 24 hours from now. A time not in the
    future ends it at once (when it leaked)."""

    previous_secret_expires_at: Rfc3339DateTime | None = None

    @field_validator("previous_secret_expires_at")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a UTC offset (RFC 3339), such as 2026-11-22T10:15:00Z")
        return value


class WebhookEndpointRead(BaseModel):
    """An endpoint as every read shows it: never with its secret.

    ``previous_secret_expires_at``: after a rotation, when the replaced secret stops (or
    stopped) signing deliveries; null if there is none."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: datetime | None
    last_success_at: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    """The answer to a create: the endpoint plus its signing ``secret``, shown this once."""

    secret: str


class WebhookEndpointSecretRotated(WebhookEndpointRead):
    """The answer to a rotation: the endpoint plus its new signing ``secret``, shown this
    once."""

    secret: str


class WebhookEndpointPage(Page):
    webhook_endpoints: list[WebhookEndpointRead]


class WebhookDeliveryRead(BaseModel):
    """One delivery (an event to an endpoint) and the state of its attempts."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(Page):
    deliveries: list[WebhookDeliveryRead]
