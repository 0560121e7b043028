"""Secret rotation: ``POST /api/v1/webhook-endpoints/{id}/rotate-secret`` answers a new
secret once, keeps the old one signing beside it for a grace period, and deliveries verify
with either (Standard Webhooks library and legacy header) until it ends (docs/webhooks.md
"Rotating the secret")."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from patron.context import AppContext
from patron.webhooks.service import SECRET_CONTEXT
from tests.conftest import ApiKeyFactory, create_customer, outbox_rows
from tests.webhooks.conftest import DispatcherFactory, EndpointFactory, drive
from tests.webhooks.receiver import Received, Receiver

URL = "/api/v1/webhook-endpoints"
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address literal: no DNS needed


def rotate_url(endpoint_id: str) -> str:
    return f"{URL}/{endpoint_id}/rotate-secret"


async def stored_secrets(
    db: asyncpg.Pool, app_ctx: AppContext, endpoint_id: str
) -> tuple[str, str | None, datetime | None]:
    """(current secret, previous secret or None, its expiry) as stored, decrypted."""
    row = await db.fetchrow(
        "SELECT secret_encrypted, previous_secret_encrypted, previous_secret_expires_at "
        "FROM webhook_endpoints WHERE id = $1",
        uuid.UUID(endpoint_id),
    )
    assert row is not None
    decrypt = app_ctx.keyring.decrypt
    previous = row["previous_secret_encrypted"]
    return (
        decrypt(bytes(row["secret_encrypted"]), SECRET_CONTEXT),
        decrypt(bytes(previous), SECRET_CONTEXT) if previous is not None else None,
        row["previous_secret_expires_at"],
    )


async def rotate(
    client: httpx.AsyncClient, admin: dict[str, str], endpoint_id: str, **body: str
) -> dict[str, object]:
    response = await client.post(rotate_url(endpoint_id), json=body or None, headers=admin)
    assert response.status_code == 200, response.text
    rotated: dict[str, object] = response.json()
    return rotated


async def deliver_one(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    make_dispatcher: DispatcherFactory,
) -> Received:
    """Create a customer and run the dispatcher until its event has arrived."""
    before = receiver.count
    await create_customer(client, admin, first_name="Rotated")

    async def arrived() -> bool:
        return receiver.count == before + 1

    await drive(make_dispatcher(), arrived)
    return receiver.requests[-1]


async def test_rotation_answers_the_new_secret_once_and_keeps_the_old_encrypted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    app_ctx: AppContext,
) -> None:
    created = (await client.post(URL, json={"url": PUBLIC_URL}, headers=admin)).json()
    assert created["previous_secret_expires_at"] is None
    old = created["secret"]
    response = await client.post(
        rotate_url(created["id"]), headers={**admin, "Idempotency-Key": "rotate-1"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    rotated = response.json()
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    assert rotated["id"] == created["id"]
    assert rotated["url"] == PUBLIC_URL

    for shown in (
        await client.get(f"{URL}/{created['id']}", headers=admin),
        await client.get(URL, headers=admin),
    ):
        assert shown.status_code == 200
        assert old not in shown.text
        assert new not in shown.text
        assert "secret" not in shown.text.replace("previous_secret_expires_at", "")
    one = (await client.get(f"{URL}/{created['id']}", headers=admin)).json()
    assert one == {k: v for k, v in rotated.items() if k != "secret"}

    assert await stored_secrets(db, app_ctx, created["id"]) == (new, old, expires)
    row = await db.fetchrow(
        "SELECT * FROM webhook_endpoints WHERE id = $1", uuid.UUID(created["id"])
    )
    assert row is not None
    assert all(old not in str(v) and new not in str(v) for v in dict(row).values())
    # the answer (with its secret) is not kept for idempotent replay, and no event is made
    kept = await db.fetch("SELECT * FROM idempotency_keys WHERE tenant_id = $1", tenant)
    assert kept == []
    assert await outbox_rows(db, tenant) == []


async def test_during_rotation_both_secrets_verify_and_after_it_only_the_new(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    old = endpoint["secret"]
    new = str((await rotate(client, admin, endpoint["id"]))["secret"])

    during = await deliver_one(client, admin, receiver, make_dispatcher)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verifies_with(old)
    assert during.verifies_with(new)
    assert during.legacy_verifies_with(old)
    assert during.legacy_verifies_with(new)
    assert during.headers["patron-signature"].count("v1=") == 2

    # The grace period ends: 24 h are not waited for, its end is moved to the past.
    await db.execute(
        "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' "
        "WHERE id = $1",
        uuid.UUID(endpoint["id"]),
    )
    after = await deliver_one(client, admin, receiver, make_dispatcher)
    assert after.verifies_with(new)
    assert after.legacy_verifies_with(new)
    assert not after.verifies_with(old)
    assert not after.legacy_verifies_with(old)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert after.headers["patron-signature"].count("v1=") == 1


async def test_a_second_rotation_ends_the_first_secret_and_a_past_expiry_ends_it_now(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    app_ctx: AppContext,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    first = endpoint["secret"]
    in_two_hours = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    rotated = await rotate(
        client, admin, endpoint["id"], previous_secret_expires_at=in_two_hours.isoformat()
    )
    assert datetime.fromisoformat(str(rotated["previous_secret_expires_at"])) == in_two_hours
    second = str(rotated["secret"])
    third = str((await rotate(client, admin, endpoint["id"]))["secret"])
    assert (await stored_secrets(db, app_ctx, endpoint["id"]))[:2] == (third, second)

    received = await deliver_one(client, admin, receiver, make_dispatcher)
    assert received.verifies_with(third)
    assert received.verifies_with(second)
    assert not received.verifies_with(first)
    assert not received.legacy_verifies_with(first)

    # the old secret leaked: end it now (any time not in the future)
    now = datetime.now(UTC).isoformat()
    fourth = await rotate(client, admin, endpoint["id"], previousSecretExpiresAt=now)
    assert fourth["previous_secret_expires_at"] is None
    assert await stored_secrets(db, app_ctx, endpoint["id"]) == (fourth["secret"], None, None)
    received = await deliver_one(client, admin, receiver, make_dispatcher)
    assert received.verifies_with(str(fourth["secret"]))
    assert received.legacy_verifies_with(str(fourth["secret"]))
    assert not any(received.verifies_with(s) for s in (first, second, third))
    assert not any(received.legacy_verifies_with(s) for s in (first, second, third))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"previous_secret_expires_at": "2099-01-01T00:00:00Z"},
            "previous_secret_expires_at may be at most 7 days ahead",
        ),
        ({"previous_secret_expires_at": "2026-11-22T10:15:00"}, "needs a UTC offset"),
        ({"previous_secret_expires_at": 1700000000}, "must be an RFC 3339 date-time string"),
        ({"previous_secret_expires_at": "tomorrow"}, "datetime"),
        ({"secret": "whsec_mine"}, "Extra inputs are not permitted"),
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    app_ctx: AppContext,
    body: dict[str, object],
    message: str,
) -> None:
    created = (await client.post(URL, json={"url": PUBLIC_URL}, headers=admin)).json()
    response = await client.post(rotate_url(created["id"]), json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["loc"][0] == "body"
    assert error["loc"][-1] == next(iter(body))
    assert message in error["msg"]
    assert await stored_secrets(db, app_ctx, created["id"]) == (created["secret"], None, None)


async def test_rotating_a_missing_or_another_tenants_endpoint_is_404(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    db: asyncpg.Pool,
    app_ctx: AppContext,
    tenant: str,
    other_tenant: str,
) -> None:
    mine = await api_key_headers("admin", tenant)
    missing = uuid.uuid4()
    response = await client.post(rotate_url(str(missing)), headers=mine)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["webhook_endpoint_id"] == str(missing)

    theirs_headers = await api_key_headers("admin", other_tenant)
    theirs = (await client.post(URL, json={"url": PUBLIC_URL}, headers=theirs_headers)).json()
    response = await client.post(rotate_url(theirs["id"]), headers=mine)
    assert response.status_code == 404
    assert await stored_secrets(db, app_ctx, theirs["id"]) == (theirs["secret"], None, None)


async def test_only_admins_may_rotate(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    db: asyncpg.Pool,
    app_ctx: AppContext,
    tenant: str,
) -> None:
    created = (await client.post(URL, json={"url": PUBLIC_URL}, headers=admin)).json()
    for role in ("manager", "agent", "service"):
        headers = await api_key_headers(role, tenant)
        response = await client.post(rotate_url(created["id"]), headers=headers)
        assert response.status_code == 403, (role, response.text)
        assert "whsec_" not in response.text
    anonymous = await client.post(rotate_url(created["id"]))
    assert anonymous.status_code == 401
    assert await stored_secrets(db, app_ctx, created["id"]) == (created["secret"], None, None)


async def test_rotated_secrets_are_not_logged(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
    captured_logs: io.StringIO,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    new = str((await rotate(client, admin, endpoint["id"]))["secret"])
    received = await deliver_one(client, admin, receiver, make_dispatcher)
    assert received.verifies_with(new)
    logged = captured_logs.getvalue()
    assert logged, "nothing was logged at all: the check would prove nothing"
    assert endpoint["secret"] not in logged
    assert new not in logged
