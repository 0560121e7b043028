"""Use cases of Meta channels (API.md "Channels").

A channel ties a Meta app and a Facebook page or Instagram business account to a tenant.
Its page access token and optional app secret are stored only encrypted (``Keyring``,
contexts :data:`ACCESS_TOKEN_CONTEXT` and :data:`APP_SECRET_CONTEXT`), never returned and
never logged. ``(platform, page_id)`` is unique across every tenant (the unique index
``uq_channels_platform_page_id``): row-level security hides other tenants' channels from
a pre-check, so the index is the check, and a violation is 409 without naming the holder
unless it is the caller's own.

DELETE is a hard delete: the page is then free to be connected again (by this tenant or
another), and no token outlives the channel. Nothing refers to a channel by id (customers
carry the app id), so no history is lost.

No outbox events: the event catalogue (``events/types.py``) has none for channels.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from patron.channels.errors import ChannelNotFound, ChannelPageTaken
from patron.channels.repository import ChannelRepository
from patron.channels.schemas import (
    ChannelCreate,
    ChannelPage,
    ChannelPlatform,
    ChannelRead,
    ChannelStatus,
    ProfileCredentials,
    platform_of,
)
from patron.kit.crypto import Keyring
from patron.kit.keyset import Window, newest_first
from patron.models import Channel
from patron.models.channel import CHANNEL_ACTIVE, CHANNEL_NEEDS_ATTENTION, PAGE_UNIQUE
from patron.usecases import Service, reads, writes

ACCESS_TOKEN_CONTEXT = b"channels.access_token"
APP_SECRET_CONTEXT = b"channels.app_secret"
MAX_REASON_LENGTH = 500

log = structlog.get_logger("patron.channels")


def channel_read(channel: Channel) -> ChannelRead:
    """The API shape of a channel row: flags for its secrets, never the secrets."""
    return ChannelRead(
        id=channel.id,
        platform=ChannelPlatform(channel.platform),
        app_id=channel.app_id,
        page_id=channel.page_id,
        name=channel.name,
        has_access_token=channel.access_token_encrypted is not None,
        has_app_secret=channel.app_secret_encrypted is not None,
        status=ChannelStatus(channel.status),
        status_reason=channel.status_reason,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def app_secret_of(
    channel: Channel | None, keyring: Keyring, fallback: SecretStr | None
) -> SecretStr | None:
    """The app secret for ``channel``'s app: its own (decrypted), else ``fallback``
    (``META_APP_SECRET``). Raises ``KeyringError`` when the stored one cannot be decrypted
    (its key left ``ENCRYPTION_KEYS``)."""
    if channel is not None and channel.app_secret_encrypted is not None:
        return SecretStr(keyring.decrypt(channel.app_secret_encrypted, APP_SECRET_CONTEXT))
    return fallback


def access_token_of(channel: Channel, keyring: Keyring) -> SecretStr:
    """``channel``'s page access token, decrypted. Raises ``KeyringError``."""
    return SecretStr(keyring.decrypt(channel.access_token_encrypted, ACCESS_TOKEN_CONTEXT))


class ChannelService(Service):
    """Channel use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> ChannelRepository:
        return ChannelRepository(self.session, self.tenant)

    async def _require(self, channel_id: uuid.UUID, *, for_update: bool = False) -> Channel:
        channel = await self.repo.get(channel_id, for_update=for_update)
        if channel is None:
            raise ChannelNotFound(channel_id)
        return channel

    @writes()
    async def create(self, body: ChannelCreate) -> ChannelRead:
        """Connect a page (or Instagram account) to the tenant.

        Raises :class:`ChannelPageTaken` (409) when a channel of any tenant already has
        this ``(platform, page_id)``; nothing is written then.
        """
        keyring = self.app.keyring
        repo = self.repo
        channel = Channel(
            platform=body.platform.value,
            app_id=body.app_id,
            page_id=body.page_id,
            name=body.name,
            access_token_encrypted=keyring.encrypt(
                body.access_token.get_secret_value(), ACCESS_TOKEN_CONTEXT
            ),
            app_secret_encrypted=(
                keyring.encrypt(body.app_secret.get_secret_value(), APP_SECRET_CONTEXT)
                if body.app_secret is not None
                else None
            ),
        )
        try:
            # a savepoint: the unit's transaction stays usable to find the holder
            async with self.session.begin_nested():
                repo.add(channel)
                await self.session.flush()
        except IntegrityError as exc:
            if PAGE_UNIQUE not in str(exc.orig):
                raise
            mine = await repo.by_page(body.platform.value, body.page_id)
            raise ChannelPageTaken(body.platform.value, mine.id if mine else None) from None
        await self.session.refresh(channel)
        log.info(
            "channel_created",
            channel_id=str(channel.id),
            platform=channel.platform,
            page_id=channel.page_id,
        )
        return channel_read(channel)

    @reads()
    async def list_channels(self, window: Window) -> ChannelPage:
        """The tenant's channels, newest first (page or cursor, API.md "Conventions")."""
        found = await newest_first(
            self.session, self.repo.listing(), Channel.created_at, Channel.id, window
        )
        return ChannelPage(channels=[channel_read(c) for c in found.rows], **found.envelope())

    @reads()
    async def get(self, channel_id: uuid.UUID) -> ChannelRead:
        """The channel without its secrets. Raises :class:`ChannelNotFound` (404), also
        for another tenant's."""
        return channel_read(await self._require(channel_id))

    @writes()
    async def delete(self, channel_id: uuid.UUID) -> None:
        """Delete the channel and its secrets (hard delete). Raises :class:`ChannelNotFound`."""
        channel = await self._require(channel_id, for_update=True)
        await self.repo.remove(channel)
        log.info("channel_deleted", channel_id=str(channel_id), page_id=channel.page_id)

    @writes()
    async def mark_needs_attention(self, channel_id: uuid.UUID, reason: str) -> ChannelRead:
        """Set the channel's status to ``needs_attention`` with ``reason`` (cut to 500
        characters; say what Meta answered, e.g. "Graph error 190: token expired", never
        the token), for a profile fetch that found its token dead. Idempotent: a channel
        already needing attention keeps its first reason and time. Raises
        :class:`ChannelNotFound`."""
        channel = await self._require(channel_id, for_update=True)
        if channel.status != CHANNEL_NEEDS_ATTENTION:
            channel.status = CHANNEL_NEEDS_ATTENTION
            channel.status_reason = reason[:MAX_REASON_LENGTH]
            channel.status_changed_at = datetime.now(UTC)
            await self.session.flush()
            await self.session.refresh(channel)
            log.warning(
                "channel_needs_attention",
                channel_id=str(channel.id),
                platform=channel.platform,
                page_id=channel.page_id,
                reason=channel.status_reason,
            )
        return channel_read(channel)

    @reads()
    async def profile_credentials(
        self, platform: str | None, app_id: str | None, customer_token: SecretStr | None
    ) -> ProfileCredentials | None:
        """The token (and app secret) a Graph profile fetch of one customer uses.

        ``platform`` and ``app_id`` are the customer's (``platform`` ``facebook``,
        ``messenger`` or ``instagram``; another or none matches no channel);
        ``customer_token`` is the customer's own ``access_token``, decrypted by the
        customer domain, or None. Rules (API.md "Channels"):

        - the customer's own token wins over any channel's; the app secret is then that of
          the tenant's channel for the same platform and app, else ``META_APP_SECRET``;
        - otherwise the token of the tenant's *active* channel of that platform and
          ``app_id`` (any app when the customer has none), the oldest when several pages
          share the app; a channel needing attention gives no token (its token is dead);
        - None when there is no token at all.

        Raises ``KeyringError`` when a stored secret cannot be decrypted.
        """
        keyring = self.app.keyring
        fallback = self.app.settings.meta_app_secret
        kind = platform_of(platform) if platform else None
        channel = await self.repo.for_app(kind.value, app_id) if kind is not None else None
        if customer_token is not None and customer_token.get_secret_value():
            return ProfileCredentials(
                source="customer",
                channel_id=channel.id if channel and channel.app_secret_encrypted else None,
                access_token=customer_token,
                app_secret=app_secret_of(channel, keyring, fallback),
            )
        if channel is None or channel.status != CHANNEL_ACTIVE:
            return None
        return ProfileCredentials(
            source="channel",
            channel_id=channel.id,
            access_token=access_token_of(channel, keyring),
            app_secret=app_secret_of(channel, keyring, fallback),
        )
