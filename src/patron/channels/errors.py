"""Errors of the channel domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid

from patron.errors import Conflict, NotFound


class ChannelNotFound(NotFound):
    """404: no channel with this id in the tenant (also another tenant's)."""

    def __init__(self, channel_id: uuid.UUID) -> None:
        super().__init__("channel not found", channel_id=str(channel_id))


class ChannelPageTaken(Conflict):
    """409: a channel for this (platform, page id) exists already, in this tenant or in
    another one. ``conflicting_channel_id`` names it when it is the caller's own, else is
    null: another tenant's channel is never named (its tenant is not revealed)."""

    def __init__(self, platform: str, holder: uuid.UUID | None) -> None:
        super().__init__(
            f"this {platform} page is already connected to a channel",
            conflicting_channel_id=str(holder) if holder else None,
        )
