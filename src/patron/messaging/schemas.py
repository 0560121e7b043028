"""Typed shapes of Meta's messaging webhook notifications (what Meta POSTs to
``/webhooks/meta``), after /work/shared/specs/meta/meta-webhook-receiver.openapi.yaml and
Meta's "Webhook events" reference for Messenger and Instagram.

Open on purpose: Meta adds fields over time, so unknown fields are ignored, never refused.
Times are epoch milliseconds as Meta sends them (:func:`from_epoch_ms`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Party(_Open):
    """A sender or recipient: ``id`` is a PSID / IGSID, or the page / Instagram account
    itself on echoes; ``user_ref`` replaces it for some entry points (chat plugin)."""

    id: str | None = None
    user_ref: str | None = None


class Attachment(_Open):
    type: str | None = None


class Message(_Open):
    mid: str = Field(min_length=1)
    text: str | None = None
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False
    attachments: list[Attachment] = Field(default_factory=list)


class Postback(_Open):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None


class Reaction(_Open):
    mid: str | None = None
    action: str | None = None
    reaction: str | None = None
    emoji: str | None = None


class Read(_Open):
    mid: str | None = None
    watermark: int | None = None


class Delivery(_Open):
    mids: list[str] = Field(default_factory=list)
    watermark: int | None = None


class EventKind(StrEnum):
    MESSAGE = "message"
    ECHO = "echo"
    POSTBACK = "postback"
    REACTION = "reaction"
    READ = "read"
    DELIVERY = "delivery"
    OTHER = "other"


class MessagingEvent(_Open):
    """One element of ``entry[].messaging`` (or ``standby``)."""

    sender: Party
    recipient: Party
    timestamp: int | None = None
    message: Message | None = None
    postback: Postback | None = None
    reaction: Reaction | None = None
    read: Read | None = None
    delivery: Delivery | None = None

    @property
    def kind(self) -> EventKind:
        """What the event is; ``OTHER`` for kinds Patron only acknowledges (referral,
        optin, handover, ...)."""
        if self.message is not None:
            return EventKind.ECHO if self.message.is_echo else EventKind.MESSAGE
        for kind in (EventKind.POSTBACK, EventKind.REACTION, EventKind.READ):
            if getattr(self, kind.value) is not None:
                return kind
        if self.delivery is not None:
            return EventKind.DELIVERY
        return EventKind.OTHER

    @property
    def customer_id(self) -> str | None:
        """The customer's PSID / IGSID: the sender, or the recipient on an echo of the
        page's own message."""
        party = self.recipient if self.kind is EventKind.ECHO else self.sender
        return party.id or None


class Entry(_Open):
    """One page's (or Instagram account's) part of a batch. ``messaging`` and ``standby``
    (the handover protocol's copy when another app owns the thread) hold raw events,
    validated one by one so that one odd event does not refuse the batch."""

    id: str = Field(min_length=1)
    time: int | None = None
    messaging: list[dict[str, Any]] = Field(default_factory=list)
    standby: list[dict[str, Any]] = Field(default_factory=list)
    changes: list[dict[str, Any]] = Field(default_factory=list)


class Notification(_Open):
    """The whole body: ``object`` is ``page`` (Messenger) or ``instagram``."""

    object: str
    entry: list[Entry]


def from_epoch_ms(value: int | None) -> datetime | None:
    """A Meta timestamp (epoch milliseconds) as an aware UTC datetime; None for None or a
    value outside what datetime holds."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
