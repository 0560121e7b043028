"""Channel use cases without HTTP: the cross-tenant look-up of a page's channel (as
``patron_system``), the token a customer's profile fetch uses, and marking a channel
whose token died."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from patron.auth.principal import Role
from patron.channels.directory import ChannelDirectory
from patron.channels.errors import ChannelNotFound
from patron.channels.service import ChannelService
from patron.config import Settings
from patron.context import AppContext
from patron.db.engine import create_system_engine
from tests.channels.conftest import ChannelFactory, meta_id
from tests.conftest import ApiKeyFactory
from tests.contexts import staff_context

FALLBACK = "meta-app-secret-from-settings"


@pytest.fixture
async def directory(
    app_ctx: AppContext, settings: Settings, database_url: str
) -> AsyncIterator[ChannelDirectory]:
    found = ChannelDirectory(
        create_system_engine(settings, database_url, pool_size=1),
        app_ctx.keyring,
        SecretStr(FALLBACK),
    )
    yield found
    await found.aclose()


async def test_directory_finds_the_tenant_of_a_page(
    directory: ChannelDirectory,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    tenant: str,
    other_tenant: str,
) -> None:
    mine = await create_channel(admin, platform="messenger", app_secret="own-app-secret")
    theirs = await create_channel(
        await api_key_headers(Role.ADMIN, other_tenant),
        platform="instagram",
        access_token="their-instagram-token",
    )

    found = await directory.find("page", mine["page_id"])  # a webhook's object
    assert found is not None
    assert found.tenant == tenant
    assert found.channel_id == uuid.UUID(mine["id"])
    assert (found.platform, found.app_id, found.page_id, found.status) == (
        "facebook",
        mine["app_id"],
        mine["page_id"],
        "active",
    )
    assert found.app_secret is not None
    assert found.app_secret.get_secret_value() == "own-app-secret"
    assert "own-app-secret" not in repr(found)
    assert await directory.find("facebook", mine["page_id"]) == found
    assert await directory.find("messenger", mine["page_id"]) == found

    other = await directory.find("instagram", theirs["page_id"])
    assert other is not None
    assert other.tenant == other_tenant
    assert other.access_token.get_secret_value() == "their-instagram-token"
    assert other.app_secret is not None
    assert other.app_secret.get_secret_value() == FALLBACK  # META_APP_SECRET

    # unknown page, the other platform, an unknown object: nobody's
    assert await directory.find("page", meta_id()) is None
    assert await directory.find("instagram", mine["page_id"]) is None
    assert await directory.find("whatsapp_business_account", mine["page_id"]) is None
    assert await directory.find("page", "") is None


async def test_the_system_role_may_only_read_channels(
    settings: Settings,
    database_url: str,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    db: asyncpg.Pool,
) -> None:
    mine = await create_channel(admin)
    engine = create_system_engine(settings, database_url, pool_size=1)
    try:
        for statement in (
            "UPDATE channels SET page_id = '1' WHERE id = :id",
            "DELETE FROM channels WHERE id = :id",
        ):
            async with engine.connect() as conn:
                with pytest.raises(DBAPIError, match="permission denied"):
                    await conn.execute(text(statement), {"id": mine["id"]})
    finally:
        await engine.dispose()
    row = await db.fetchrow("SELECT page_id FROM channels WHERE id = $1", uuid.UUID(mine["id"]))
    assert row is not None
    assert row["page_id"] == mine["page_id"]


async def test_the_app_role_cannot_find_another_tenants_page(
    app_ctx: AppContext,
    api_key_headers: ApiKeyFactory,
    create_channel: ChannelFactory,
    tenant: str,
    other_tenant: str,
) -> None:
    theirs = await create_channel(await api_key_headers(Role.ADMIN, other_tenant))
    async with app_ctx.db.unit_of_work(None) as session:
        seen = await session.scalar(
            text("SELECT count(*) FROM channels WHERE page_id = :p"), {"p": theirs["page_id"]}
        )
    assert seen == 0


async def test_profile_credentials_prefer_the_customers_own_token(
    app_ctx: AppContext, admin: dict[str, str], create_channel: ChannelFactory, tenant: str
) -> None:
    app_id = meta_id()
    channel = await create_channel(
        admin, app_id=app_id, access_token="channel-token", app_secret="channel-app-secret"
    )
    service = ChannelService(staff_context(app_ctx, tenant))

    own = await service.profile_credentials("facebook", app_id, SecretStr("customer-token"))
    assert own is not None
    assert own.source == "customer"
    assert own.access_token.get_secret_value() == "customer-token"
    assert own.app_secret is not None
    assert own.app_secret.get_secret_value() == "channel-app-secret"  # same app's secret
    assert own.channel_id == uuid.UUID(channel["id"])

    via_channel = await service.profile_credentials("messenger", app_id, None)
    assert via_channel is not None
    assert via_channel.source == "channel"
    assert via_channel.channel_id == uuid.UUID(channel["id"])
    assert via_channel.access_token.get_secret_value() == "channel-token"
    # an empty token of the customer's is no token
    empty = await service.profile_credentials("facebook", app_id, SecretStr(""))
    assert empty == via_channel
    # without an app id, the tenant's channel of that platform
    no_app = await service.profile_credentials("facebook", None, None)
    assert no_app == via_channel

    # another app, another platform, no platform: no channel matches
    assert await service.profile_credentials("facebook", meta_id(), None) is None
    assert await service.profile_credentials("instagram", app_id, None) is None
    assert await service.profile_credentials(None, app_id, None) is None
    other_app = await service.profile_credentials("facebook", meta_id(), SecretStr("mine"))
    assert other_app is not None
    assert (other_app.source, other_app.channel_id) == ("customer", None)
    assert other_app.app_secret == app_ctx.settings.meta_app_secret


async def test_profile_credentials_skip_a_channel_needing_attention(
    app_ctx: AppContext, admin: dict[str, str], create_channel: ChannelFactory, tenant: str
) -> None:
    app_id = meta_id()
    channel = await create_channel(admin, app_id=app_id, platform="instagram")
    service = ChannelService(staff_context(app_ctx, tenant))
    marked = await service.mark_needs_attention(
        uuid.UUID(channel["id"]), "Graph error 190: token expired"
    )
    assert marked.status == "needs_attention"
    assert await service.profile_credentials("instagram", app_id, None) is None
    own = await service.profile_credentials("instagram", app_id, SecretStr("customer-token"))
    assert own is not None
    assert own.source == "customer"


async def test_mark_needs_attention(
    app_ctx: AppContext,
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    tenant: str,
    other_tenant: str,
) -> None:
    channel = await create_channel(admin)
    channel_id = uuid.UUID(channel["id"])
    service = ChannelService(staff_context(app_ctx, tenant))
    first = await service.mark_needs_attention(channel_id, "Graph error 190: session expired")
    assert (first.status, first.status_reason) == (
        "needs_attention",
        "Graph error 190: session expired",
    )
    again = await service.mark_needs_attention(channel_id, "another reason")
    assert again.status_reason == "Graph error 190: session expired"  # the first one stays
    shown = (await client.get(f"/api/v1/channels/{channel_id}", headers=admin)).json()
    assert (shown["status"], shown["status_reason"]) == (
        "needs_attention",
        "Graph error 190: session expired",
    )
    # another tenant's channel is not found, and stays active
    theirs = await create_channel(await api_key_headers(Role.ADMIN, other_tenant))
    with pytest.raises(ChannelNotFound):
        await service.mark_needs_attention(uuid.UUID(theirs["id"]), "nope")
    other = ChannelService(staff_context(app_ctx, other_tenant))
    assert (await other.get(uuid.UUID(theirs["id"]))).status == "active"
