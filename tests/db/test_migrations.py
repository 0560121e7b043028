"""Alembic: an empty database upgrades to head and back down to nothing."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command

from patron.db import migrate
from patron.db.urls import libpq_dsn
from tests.conftest import _recreate_database, _with_database


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(libpq_dsn(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_to_head_and_down_to_base(server_url: str) -> None:
    name = f"patron_migrations_{uuid.uuid4().hex[:8]}"
    await _recreate_database(server_url, name)
    url = _with_database(server_url, name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        assert {
            "customers",
            "customer_identities",
            "outbox_events",
            "api_keys",
            "idempotency_keys",
            "customer_addresses",
            "customer_consents",
        } <= await _tables(url)
        # the models and the migrations describe the same schema
        await asyncio.to_thread(command.check, migrate.alembic_config(url))
        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(migrate.upgrade, url)
        assert "customers" in await _tables(url)
    finally:
        conn = await asyncpg.connect(libpq_dsn(server_url))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
