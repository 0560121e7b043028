"""How an upsert resolves its customer (``CustomerService.resolve_upsert``/``upsert``):
a first look without locks answers an unchanged upsert alone; a change is written at the
version seen, and falls back to the locked path when the customer moved on meanwhile."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from patron.context import AppContext
from patron.customers.schemas import CustomerUpsert
from patron.customers.service import CustomerService, UpsertPlan
from patron.identities.repository import IdentityTaken
from patron.ops.metrics import IDENTITY_RACES
from patron.usecases import read_unit, unit_of_work
from tests.conftest import outbox_rows
from tests.contexts import staff_context

BASE = "/api/v1/customers"


def _service(app_ctx: AppContext, tenant: str) -> CustomerService:
    return CustomerService(staff_context(app_ctx, tenant))


async def _seen(app_ctx: AppContext, tenant: str, **fields: Any) -> UpsertPlan:
    service = _service(app_ctx, tenant)
    async with read_unit(service.ctx, driver=True):
        return await service.resolve_upsert(CustomerUpsert.model_validate(fields), read=True)


async def _upsert(app_ctx: AppContext, tenant: str, plan: UpsertPlan) -> tuple[bool, Any]:
    service = _service(app_ctx, tenant)
    async with unit_of_work(service.ctx, driver=True):
        return await service.apply_upsert(plan)


async def test_unchanged_upsert_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    body = {"app_id": "9", "psid": "77", "first_name": "Ada", "platform": "instagram"}
    created = await client.post(f"{BASE}/upsert", json=body, headers=admin)
    assert created.status_code == 201
    row = "SELECT version, updated_at, xmin::text FROM customers WHERE tenant_id = $1"
    before = await db.fetchrow(row, tenant)
    again = await client.post(f"{BASE}/upsert", json=body, headers=admin)
    assert again.status_code == 200
    assert again.json() == {"created": False, "customer": created.json()["customer"]}
    assert again.headers["ETag"] == created.headers["ETag"]
    # the row was not rewritten (same xmin) and no event was recorded
    assert await db.fetchrow(row, tenant) == before
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]


async def test_change_after_the_first_look_is_not_lost(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, app_ctx: AppContext
) -> None:
    customer = (
        await client.post(
            f"{BASE}/upsert", json={"app_id": "9", "psid": "1", "last_name": "B"}, headers=admin
        )
    ).json()["customer"]
    plan = await _seen(app_ctx, tenant, app_id="9", psid="1", first_name="C")
    assert plan.seen is not None
    assert plan.seen[0]["version"] == 1
    # another writer moves the customer to version 2 between the look and the write
    patched = await client.patch(f"{BASE}/{customer['id']}", json={"last_name": "D"}, headers=admin)
    assert patched.status_code == 200
    created, after = await _upsert(app_ctx, tenant, plan)
    assert not created
    assert (str(after.id), after.first_name, after.last_name, after.version) == (
        customer["id"],
        "C",
        "D",
        3,
    )


async def test_customer_deleted_after_the_first_look_is_created_anew(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, app_ctx: AppContext
) -> None:
    customer = (
        await client.post(f"{BASE}/upsert", json={"app_id": "9", "psid": "2"}, headers=admin)
    ).json()["customer"]
    plan = await _seen(app_ctx, tenant, app_id="9", psid="2", first_name="New")
    assert plan.seen is not None
    assert len(plan.seen) == 1
    assert (await client.delete(f"{BASE}/{customer['id']}", headers=admin)).status_code == 204
    created, after = await _upsert(app_ctx, tenant, plan)
    assert created
    assert str(after.id) != customer["id"]
    assert after.first_name == "New"


async def test_a_create_that_loses_the_race_is_refused_whole_and_retried(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    app_ctx: AppContext,
    db: asyncpg.Pool,
) -> None:
    plan = await _seen(app_ctx, tenant, app_id="9", psid="3", first_name="Late")
    assert plan.seen == []
    first = await client.post(f"{BASE}/upsert", json={"app_id": "9", "psid": "3"}, headers=admin)
    assert first.status_code == 201
    # the optimistic create runs into the unique index: nothing of it stays
    with pytest.raises(IdentityTaken):
        await _upsert(app_ctx, tenant, plan)
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]
    # looking again (what the endpoint does) finds the winner and updates it
    created, after = await _upsert(
        app_ctx, tenant, await _seen(app_ctx, tenant, app_id="9", psid="3", first_name="Late")
    )
    assert not created
    assert str(after.id) == first.json()["customer"]["id"]
    assert (after.first_name, after.version) == ("Late", 2)


async def test_concurrent_changing_upserts_lose_no_version(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    await client.post(f"{BASE}/upsert", json={"app_id": "9", "psid": "4"}, headers=admin)

    async def rename(i: int) -> httpx.Response:
        body = {"app_id": "9", "psid": "4", "first_name": f"N{i}"}
        return await client.post(f"{BASE}/upsert", json=body, headers=admin)

    responses = await asyncio.gather(*(rename(i) for i in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    # every rename was written once, in some order: versions 2..11, one event each
    versions = sorted(r.json()["customer"]["version"] for r in responses)
    assert versions == list(range(2, 12))
    updated = await outbox_rows(db, tenant, "customer.updated")
    assert len(updated) == 10
    final = await db.fetchrow(
        "SELECT version, first_name FROM customers WHERE tenant_id = $1", tenant
    )
    assert final["version"] == 11
    assert updated[-1]["data"]["customer"]["first_name"] == final["first_name"]


async def test_creates_racing_upserts_get_201_or_the_documented_409(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    # upserts create without identity locks; a create that loses to one must still answer
    # 409 with conflicting_customer_id (it looks again), never a 500 or a bare 409
    for round_ in range(5):
        email = f"race{round_}@example.com"
        creates = [client.post(BASE, json={"email": email}, headers=admin) for _ in range(4)]
        upserts = [
            client.post(
                f"{BASE}/upsert", json={"email": email, "first_name": f"U{i}"}, headers=admin
            )
            for i in range(4)
        ]
        responses = await asyncio.gather(*creates, *upserts)
        holder = await db.fetchval(
            "SELECT customer_id FROM customer_identities "
            "WHERE tenant_id = $1 AND value = $2 AND released_at IS NULL",
            tenant,
            email,
        )
        for response in responses[:4]:
            assert response.status_code in (201, 409), response.text
            if response.status_code == 409:
                assert response.json()["conflicting_customer_id"] == str(holder)
        for response in responses[4:]:
            assert response.status_code in (200, 201), response.text
            assert response.json()["customer"]["id"] == str(holder)
        assert [r.status_code for r in responses].count(201) == 1
    count = await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant)
    assert count == 5


class Winner:
    """A concurrent create that wins an identity race: a transaction of the test's own that
    has inserted a customer holding ``email`` but not committed. A request's first look
    cannot see it, so the request writes the email too and waits on the unique index of
    live identities; :meth:`commit` then makes the request lose."""

    def __init__(self, db: asyncpg.Pool, tenant: str, email: str) -> None:
        self.db, self.tenant, self.email = db, tenant, email
        self.id = uuid.uuid4()
        self.committed = False

    async def __aenter__(self) -> Winner:
        self.connection = await self.db.acquire()
        self.transaction = self.connection.transaction()
        await self.transaction.start()
        await self.connection.execute(
            "INSERT INTO customers (id, tenant_id, email, status, customer_type, external_ids,"
            " marketing_opt_in, tags, attributes, preferences, version)"
            " VALUES ($1, $2, $3, 'ACTIVE', 'RETAIL', '{}', false, '{}', '{}', '{}', 1)",
            self.id,
            self.tenant,
            self.email,
        )
        await self.connection.execute(
            "INSERT INTO customer_identities (id, tenant_id, customer_id, kind, namespace, value)"
            " VALUES ($1, $2, $3, 'email', '', $4)",
            uuid.uuid4(),
            self.tenant,
            self.id,
            self.email,
        )
        return self

    async def commit_once_waited_on(self, request: asyncio.Task[httpx.Response]) -> None:
        """Commit as soon as ``request`` waits for this transaction (fails the test if the
        request finishes first: it never raced)."""
        for _ in range(200):
            waiting = await self.db.fetchval(
                "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
                " WHERE NOT granted AND locktype = 'transactionid'"
                " AND datname = current_database()"
            )
            if waiting or request.done():
                break
            await asyncio.sleep(0.05)
        assert not request.done(), "the request did not wait for the winner"
        await self.transaction.commit()
        self.committed = True

    async def __aexit__(self, *exc: object) -> None:
        if not self.committed:
            await self.transaction.rollback()
        await self.db.release(self.connection)


async def test_an_upsert_that_loses_the_create_race_updates_the_winner(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    races = IDENTITY_RACES.labels("upsert")
    before = races._value.get()
    async with Winner(db, tenant, "race@example.com") as winner:
        body = {"email": "race@example.com", "first_name": "Late"}
        request = asyncio.create_task(client.post(f"{BASE}/upsert", json=body, headers=admin))
        await winner.commit_once_waited_on(request)
    response = await request
    assert response.status_code == 200, response.text
    assert response.json()["customer"]["id"] == str(winner.id)
    assert response.json()["customer"]["first_name"] == "Late"
    assert races._value.get() == before + 1
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1


async def test_an_upsert_whose_new_identity_is_taken_meanwhile_answers_merge_first(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    # The customer found by PSID gains an email that a concurrent create takes first: the
    # upsert's identity insert loses, it looks again and finds the two customers.
    first = await client.post(f"{BASE}/upsert", json={"app_id": "9", "psid": "7"}, headers=admin)
    holder = first.json()["customer"]["id"]
    races = IDENTITY_RACES.labels("upsert")
    before = races._value.get()
    async with Winner(db, tenant, "taken@example.com") as winner:
        body = {"app_id": "9", "psid": "7", "email": "taken@example.com"}
        request = asyncio.create_task(client.post(f"{BASE}/upsert", json=body, headers=admin))
        await winner.commit_once_waited_on(request)
    response = await request
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["conflicting_customer_ids"] == sorted([holder, str(winner.id)])
    assert "merge them first" in problem["detail"]
    assert races._value.get() == before + 1
    # nothing of the losing upsert stayed
    row = await db.fetchrow("SELECT email, version FROM customers WHERE id = $1", uuid.UUID(holder))
    assert (row["email"], row["version"]) == (None, 1)
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]


async def test_a_patch_whose_email_is_taken_meanwhile_names_the_holder(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    # PATCH checks the email is free, then inserts its identity; a concurrent create that
    # commits the same email in between wins the unique index. The answer is the same 409
    # as when the email was taken before: naming the holder, not a bare unique violation.
    created = await client.post(BASE, json={"first_name": "Ann"}, headers=admin)
    customer = created.json()["id"]
    races = IDENTITY_RACES.labels("update")
    before = races._value.get()
    async with Winner(db, tenant, "taken@example.com") as winner:
        request = asyncio.create_task(
            client.patch(f"{BASE}/{customer}", json={"email": "taken@example.com"}, headers=admin)
        )
        await winner.commit_once_waited_on(request)
    response = await request
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["conflicting_customer_id"] == str(winner.id)
    assert problem["identity"] == {"kind": "email", "namespace": "", "value": "taken@example.com"}
    assert races._value.get() == before + 1
    row = await db.fetchrow(
        "SELECT email, version FROM customers WHERE id = $1", uuid.UUID(customer)
    )
    assert (row["email"], row["version"]) == (None, 1)
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]
