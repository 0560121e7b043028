"""The channel of a page across tenants, before any tenant is known (the Meta webhook
receiver's first step; docs/decisions/0018-channel-lookup.md).

A Meta webhook names a page (``entry[].id``) and nothing else: the tenant must be found
from it. Requests run as ``patron_app``, which row-level security confines to one tenant,
so this look-up runs as ``patron_system`` (``db.engine.create_system_engine``), like the
relay and the webhook dispatcher. Migration 0011 gives that role ``SELECT`` on
``channels`` and a ``FOR SELECT`` policy there, nothing more: it cannot write a channel,
and tenant requests never run as it. The look-up is one indexed read
(``uq_channels_platform_page_id``) in a ``READ ONLY`` transaction.
"""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patron.channels.schemas import ChannelCredentials, ChannelPlatform, ChannelStatus, platform_of
from patron.channels.service import access_token_of, app_secret_of
from patron.context import AppContext
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.kit.crypto import Keyring
from patron.models import Channel
from patron.tenancy import trusted_tenant

# Meta ids are digits (schemas.MetaId); a longer or other value cannot be a channel's.
MAX_PAGE_ID_LENGTH = 64


class ChannelDirectory:
    """Finds the channel of ``(platform, page_id)`` in whichever tenant holds it.

    Holds its own small ``patron_system`` engine: build one per process
    (:meth:`from_context`) and :meth:`aclose` it at shutdown.
    """

    def __init__(self, engine: AsyncEngine, keyring: Keyring, app_secret: SecretStr | None) -> None:
        """``app_secret``: ``META_APP_SECRET``, the fallback for channels without their own."""
        self.engine = engine
        self.keyring = keyring
        self.app_secret = app_secret
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)

    @classmethod
    def from_context(cls, ctx: AppContext, *, pool_size: int = 2) -> ChannelDirectory:
        """A directory on ``ctx``'s database with its own ``patron_system`` pool of
        ``pool_size`` connections (a look-up holds one for one indexed read)."""
        return cls(
            create_system_engine(ctx.settings, ctx.database_url, pool_size=pool_size),
            ctx.keyring,
            ctx.settings.meta_app_secret,
        )

    async def aclose(self) -> None:
        """Close the engine's connections (they reopen on next use)."""
        await self.engine.dispose()

    async def find(self, platform_or_object: str, page_id: str) -> ChannelCredentials | None:
        """The channel of ``page_id`` for ``platform_or_object`` (a platform:
        ``facebook``, ``messenger``, ``instagram``; or a Meta webhook's ``object``:
        ``page``, ``instagram``), with its tenant and its secrets decrypted; None when no
        tenant has connected that page, or the platform is none of those.

        A channel needing attention is returned too (``status`` says so): the webhook
        still belongs to its tenant. Raises ``KeyringError`` when a stored secret cannot
        be decrypted.
        """
        platform = platform_of(platform_or_object)
        if platform is None or not page_id or len(page_id) > MAX_PAGE_ID_LENGTH:
            return None
        async with self.sessions() as session, session.begin():
            await session.execute(text("SET TRANSACTION READ ONLY"))
            channel = (
                await session.execute(
                    select(Channel).where(
                        Channel.platform == platform.value, Channel.page_id == page_id
                    )
                )
            ).scalar_one_or_none()
        if channel is None:
            return None
        return ChannelCredentials(
            channel_id=channel.id,
            tenant=trusted_tenant(channel.tenant_id),
            platform=ChannelPlatform(channel.platform),
            app_id=channel.app_id,
            page_id=channel.page_id,
            status=ChannelStatus(channel.status),
            access_token=access_token_of(channel, self.keyring),
            app_secret=app_secret_of(channel, self.keyring, self.app_secret),
        )
