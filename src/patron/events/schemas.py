"""Response shapes of the events API (API.md: ``GET /api/v1/events``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 JSON envelope (ARCHITECTURE.md §5) with Patron's extensions."""

    specversion: str = Field(examples=["1.0"])
    id: uuid.UUID
    source: str = Field(examples=["/patron/customers"])
    type: str = Field(examples=["customer.created"])
    time: datetime
    datacontenttype: str = Field(examples=["application/json"])
    subject: str | None = Field(default=None, description="the customer id")
    tenantid: str
    traceid: str | None = None
    data: dict[str, Any]


class EventPage(BaseModel):
    """Events in feed order. ``next_cursor`` is the ``after`` of the next page; null when
    there is nothing more yet (poll again later with the last event's id)."""

    events: list[CloudEvent]
    next_cursor: str | None


class DeadLetter(BaseModel):
    """An event the relay gave up on after ``RELAY_MAX_ATTEMPTS`` broker rejections."""

    event: CloudEvent
    attempts: int
    last_error: str | None
    dead_at: datetime


class DeadLetterPage(BaseModel):
    """Dead-lettered events, oldest first; ``next_cursor`` as in :class:`EventPage`."""

    dead_letters: list[DeadLetter]
    next_cursor: str | None


class RequeueResult(BaseModel):
    """The event made pending again; relays publish it on their next round."""

    id: uuid.UUID
    status: str = Field(examples=["pending"])
