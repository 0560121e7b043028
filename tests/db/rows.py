"""Rows written as the superuser (bypassing row-level security) for tests/db."""

from __future__ import annotations

import asyncpg


async def insert_outbox_event(db: asyncpg.Pool, tenant: str) -> None:
    """One outbox event of ``tenant``."""
    await db.execute(
        "INSERT INTO outbox_events (id, tenant_id, type, source, time, data)"
        " VALUES (gen_random_uuid(), $1, 'x', 's', now(), '{}')",
        tenant,
    )


async def insert_customer(db: asyncpg.Pool, tenant: str) -> None:
    """One live customer of ``tenant`` with no identities."""
    await db.execute(
        "INSERT INTO customers (id, tenant_id, status, customer_type, external_ids,"
        " marketing_opt_in, tags, attributes, preferences, version)"
        " VALUES (gen_random_uuid(), $1, 'ACTIVE', 'RETAIL', '{}', false, '{}', '{}', '{}', 1)",
        tenant,
    )
