"""``Idempotency-Key`` under concurrency, expiry and crashes (decision 0004).

The first request with a key claims it in its own committed transaction (a *pending* row
locked for 60 s), then does its work. These tests force the interleavings instead of
hoping for them: a table lock held by the test makes the first request wait inside its
unit of work, and crashed or expired records are written straight into
``idempotency_keys``. Bodies carry no identity, so a second execution would create a
second customer rather than answer an identity 409.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.conftest import outbox_rows
from tests.orders.waiting import eventually

BASE = "/api/v1/customers"


class OutboxHeld:
    """A transaction of the test's own holding ``outbox_events`` in SHARE mode: reads go on,
    but every insert into the outbox (a create's event, inside its unit of work) waits
    until :meth:`release`. The idempotency claim does not touch the outbox, so a request
    that waits here has already claimed its key."""

    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db
        self.released = False

    async def __aenter__(self) -> OutboxHeld:
        self.connection = await self.db.acquire()
        self.transaction = self.connection.transaction()
        await self.transaction.start()
        await self.connection.execute("LOCK TABLE outbox_events IN SHARE MODE")
        return self

    async def waiters(self) -> int:
        """Backends of this database waiting for the lock."""
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM pg_locks"
            " WHERE NOT granted AND relation = 'outbox_events'::regclass"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return count

    async def release(self) -> None:
        if not self.released:
            self.released = True
            await self.transaction.rollback()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
        await self.db.release(self.connection)


async def _customer_count(db: asyncpg.Pool, tenant: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant)
    return count


async def _record(db: asyncpg.Pool, tenant: str, key: str) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT * FROM idempotency_keys WHERE tenant_id = $1 AND key = $2", tenant, key
    )
    return row


async def test_a_retry_while_the_first_request_runs_is_409_and_creates_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    headers = {**admin, "Idempotency-Key": "in-flight"}
    body = {"first_name": "Once"}
    async with OutboxHeld(db) as held:
        first = asyncio.create_task(client.post(BASE, json=body, headers=headers))
        await eventually(held.waiters)  # the first request waits inside its unit of work
        # The retry either answers at once, or (were the in-progress check gone) runs the
        # create too and waits on the same lock: wait for whichever happens.
        second = asyncio.create_task(client.post(BASE, json=body, headers=headers))
        await eventually(lambda: _done_or_waiting(second, held))
        assert await _customer_count(db, tenant) == 0
        await held.release()
        created, retried = await asyncio.gather(first, second)
    assert created.status_code == 201, created.text
    assert retried.status_code == 409, retried.text
    assert retried.headers["content-type"] == "application/problem+json"
    assert retried.json()["detail"] == "a request with this Idempotency-Key is still in progress"
    assert "idempotent-replayed" not in retried.headers
    assert await _customer_count(db, tenant) == 1
    assert [e["subject"] for e in await outbox_rows(db, tenant)] == [created.json()["id"]]
    # once the first has finished, the same retry replays its response
    replay = await client.post(BASE, json=body, headers=headers)
    assert (replay.status_code, replay.content) == (201, created.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == created.headers["location"]
    assert await _customer_count(db, tenant) == 1


async def _done_or_waiting(request: asyncio.Task[httpx.Response], held: OutboxHeld) -> bool:
    return request.done() or await held.waiters() >= 2


async def test_an_expired_record_no_longer_replays_and_frees_the_key(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    headers = {**admin, "Idempotency-Key": "expiring"}
    body = {"first_name": "First"}
    first = await client.post(BASE, json=body, headers=headers)
    assert first.status_code == 201
    expire = "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE tenant_id = $1 AND key = $2"
    await db.execute(expire, tenant, "expiring")
    # the same request runs again: a new customer, not the stored answer
    again = await client.post(BASE, json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert (await _record(db, tenant, "expiring"))["response_body"] == again.content
    # once expired, the key may name another request (within the TTL that is 422)
    await db.execute(expire, tenant, "expiring")
    other = await client.post(BASE, json={"first_name": "Other"}, headers=headers)
    assert other.status_code == 201, other.text
    assert other.json()["first_name"] == "Other"
    assert await _customer_count(db, tenant) == 3
    assert len(await outbox_rows(db, tenant, "customer.created")) == 3


async def _pending(
    db: asyncpg.Pool,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    tenant: str,
    locked_until: datetime,
) -> dict[str, Any]:
    """A pending record of key ``crashed`` as a request that claimed it and then died would
    leave it (no response stored), for ``{"first_name": "Retry"}`` by this principal.

    Its principal id and request hash are taken from a real record of the same request
    under another key (the hash covers method, path, query and body, not the key)."""
    body = {"first_name": "Retry"}
    probe = await client.post(BASE, json=body, headers={**headers, "Idempotency-Key": "probe"})
    assert probe.status_code == 201
    template = await _record(db, tenant, "probe")
    await db.execute(
        "INSERT INTO idempotency_keys (tenant_id, principal_id, key, method, path, request_hash,"
        " locked_until, expires_at) VALUES ($1, $2, 'crashed', 'POST', $3, $4, $5, $6)",
        tenant,
        template["principal_id"],
        BASE,
        template["request_hash"],
        locked_until,
        datetime.now(UTC) + timedelta(hours=1),
    )
    return body


async def test_a_record_of_a_crashed_request_is_taken_over_once_its_lock_lapsed(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    lapsed = datetime.now(UTC) - timedelta(seconds=1)
    body = await _pending(db, client, admin, tenant, lapsed)
    headers = {**admin, "Idempotency-Key": "crashed"}
    retry = await client.post(BASE, json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    record = await _record(db, tenant, "crashed")
    assert (record["response_status"], record["response_body"], record["locked_until"]) == (
        201,
        retry.content,
        None,
    )
    assert record["response_headers"]["location"] == retry.headers["location"]
    assert await _customer_count(db, tenant) == 2  # the probe's and the retry's
    # the stored answer is now what the key replays
    replay = await client.post(BASE, json=body, headers=headers)
    assert (replay.status_code, replay.content) == (201, retry.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert await _customer_count(db, tenant) == 2


async def test_a_record_whose_lock_still_holds_is_409_and_creates_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    locked = datetime.now(UTC) + timedelta(seconds=60)
    body = await _pending(db, client, admin, tenant, locked)
    before = await db.fetch("SELECT id FROM customers WHERE tenant_id = $1", tenant)
    events = await outbox_rows(db, tenant)
    retry = await client.post(BASE, json=body, headers={**admin, "Idempotency-Key": "crashed"})
    assert retry.status_code == 409, retry.text
    assert retry.json()["detail"] == "a request with this Idempotency-Key is still in progress"
    assert await db.fetch("SELECT id FROM customers WHERE tenant_id = $1", tenant) == before
    assert await outbox_rows(db, tenant) == events
    record = await _record(db, tenant, "crashed")
    assert (record["response_status"], record["locked_until"]) == (None, locked)
