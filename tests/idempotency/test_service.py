"""The transport-neutral idempotency service (``patron.idempotency.service``), called as a
gRPC servicer, a job or the CLI would call it: no HTTP request anywhere.

Rows are read back through the superuser pool; the clock is moved by rewriting the record's
``locked_until`` / ``expires_at`` in the database (what a crash or 24 hours would leave).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from patron.context import AppContext
from patron.errors import Conflict, InvalidInput
from patron.idempotency import service
from patron.idempotency.service import IdempotentReplay, PendingKey, StoredResponse
from patron.tenancy import TenantId, trusted_tenant

PRINCIPAL = "key:worker-1"
OPERATION = {"method": "GRPC", "path": "/patron.v1.Customers/Create", "ttl_seconds": 3600}
RESPONSE = StoredResponse(201, {"content-type": "application/json"}, b'{"id": "c-1"}')


@pytest.fixture
def tenant_id(tenant: str) -> TenantId:
    return trusted_tenant(tenant)


async def _row(db: asyncpg.Pool, tenant: str, key: str = "k-1") -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT *, locked_until > now() AS locked FROM idempotency_keys"
        " WHERE tenant_id = $1 AND principal_id = $2 AND key = $3",
        tenant,
        PRINCIPAL,
        key,
    )


async def test_first_claim_is_pending_and_its_completed_response_is_replayed(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, " k-1 ", "f" * 64, **OPERATION)
    assert pending == PendingKey(tenant_id, PRINCIPAL, "k-1")
    row = await _row(db, tenant_id)
    assert row is not None
    assert (row["method"], row["path"], row["request_hash"]) == (
        "GRPC",
        OPERATION["path"],
        "f" * 64,
    )
    assert row["locked"] is True
    assert row["response_status"] is None

    await service.complete(app_ctx.db, pending, RESPONSE)
    with pytest.raises(IdempotentReplay) as replay:
        await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    assert replay.value.response == RESPONSE
    row = await _row(db, tenant_id)
    assert row is not None
    assert (row["response_status"], row["locked_until"]) == (201, None)


async def test_same_key_with_another_fingerprint_is_refused_and_changes_nothing(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "a" * 64, **OPERATION)
    await service.complete(app_ctx.db, pending, RESPONSE)
    before = await _row(db, tenant_id)
    with pytest.raises(InvalidInput) as refused:
        await service.begin(
            app_ctx.db, tenant_id, PRINCIPAL, "k-1", "b" * 64, key_loc=("metadata",), **OPERATION
        )
    assert refused.value.extra["errors"] == [
        {
            "loc": ["metadata"],
            "msg": "Idempotency-Key was already used with a different request",
            "type": "idempotency_key_reused",
        }
    ]
    assert await _row(db, tenant_id) == before


async def test_a_retry_while_the_first_runs_is_409_and_changes_nothing(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    before = await _row(db, tenant_id)
    with pytest.raises(Conflict, match="still in progress"):
        await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    assert await _row(db, tenant_id) == before


async def test_concurrent_claims_of_one_key_leave_exactly_one_owner(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    results = await asyncio.gather(
        *(
            service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    owners = [r for r in results if isinstance(r, PendingKey)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(owners), len(refused)) == (1, 3), results
    count = await db.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenant_id
    )
    assert count == 1


async def test_a_claim_whose_request_died_is_taken_over_after_its_lock(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    # The first request crashed: no response, and its lock ran out.
    await db.execute(
        "UPDATE idempotency_keys SET locked_until = now() - interval '1 second'"
        " WHERE tenant_id = $1",
        tenant_id,
    )
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    assert pending.key == "k-1"
    row = await _row(db, tenant_id)
    assert row is not None
    assert row["locked"] is True
    assert row["response_status"] is None


async def test_an_expired_record_is_replaced_by_a_new_claim(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "a" * 64, **OPERATION)
    await service.complete(app_ctx.db, pending, RESPONSE)
    await db.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE tenant_id = $1",
        tenant_id,
    )
    # Another request with the old key is a fresh claim, neither a replay nor a 422.
    await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "b" * 64, **OPERATION)
    row = await _row(db, tenant_id)
    assert row is not None
    assert (row["request_hash"], row["response_status"], row["locked"]) == ("b" * 64, None, True)


async def test_a_released_key_is_claimed_again(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool
) -> None:
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
    await service.release(app_ctx.db, pending)
    assert await _row(db, tenant_id) is None
    assert (
        await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "f" * 64, **OPERATION)
        == pending
    )


async def test_keys_are_scoped_to_tenant_and_principal(
    app_ctx: AppContext, tenant_id: TenantId, other_tenant: str, db: asyncpg.Pool
) -> None:
    pending = await service.begin(app_ctx.db, tenant_id, PRINCIPAL, "k-1", "a" * 64, **OPERATION)
    await service.complete(app_ctx.db, pending, RESPONSE)
    # Same key, other fingerprint: neither another principal nor another tenant sees the first.
    await service.begin(app_ctx.db, tenant_id, "key:worker-2", "k-1", "b" * 64, **OPERATION)
    other = trusted_tenant(other_tenant)
    await service.begin(app_ctx.db, other, PRINCIPAL, "k-1", "b" * 64, **OPERATION)
    row = await _row(db, tenant_id)
    assert row is not None
    assert row["response_status"] == 201
    owners = await db.fetch(
        "SELECT tenant_id, principal_id FROM idempotency_keys WHERE key = 'k-1'"
        " AND tenant_id IN ($1, $2) ORDER BY tenant_id = $1, principal_id",
        tenant_id,
        other,
    )
    assert [tuple(r) for r in owners] == [
        (other, PRINCIPAL),
        (tenant_id, PRINCIPAL),
        (tenant_id, "key:worker-2"),
    ]


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
async def test_a_malformed_key_is_refused_and_claims_nothing(
    app_ctx: AppContext, tenant_id: TenantId, db: asyncpg.Pool, key: str
) -> None:
    with pytest.raises(InvalidInput, match="must be 1-255 characters") as refused:
        await service.begin(app_ctx.db, tenant_id, PRINCIPAL, key, "f" * 64, **OPERATION)
    assert refused.value.extra["errors"][0]["loc"] == ["idempotency_key"]
    count = await db.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenant_id
    )
    assert count == 0
