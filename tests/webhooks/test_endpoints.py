"""The webhook endpoints API (admin only): create with a secret shown once, validation and
the SSRF guard, tenant isolation, enable / disable, delete."""

from __future__ import annotations

import io
import uuid

import asyncpg
import httpx
import pytest

from patron.context import AppContext
from patron.webhooks.service import SECRET_CONTEXT
from tests.conftest import ApiKeyFactory, create_customer, outbox_rows
from tests.webhooks.conftest import DispatcherFactory, EndpointFactory, drive
from tests.webhooks.receiver import Receiver

URL = "/api/v1/webhook-endpoints"
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address literal: no DNS needed


async def count_endpoints(db: asyncpg.Pool, tenant: str) -> int:
    return int(
        await db.fetchval("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1", tenant)
    )


async def test_create_shows_the_secret_once_and_stores_it_encrypted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    app_ctx: AppContext,
) -> None:
    response = await client.post(
        URL,
        json={
            "url": PUBLIC_URL,
            "eventTypes": ["customer.created", "customer.updated", "customer.created"],
            "description": "CRM sync",
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) >= 40
    assert response.headers["location"] == f"{URL}/{created['id']}"
    assert response.headers["cache-control"] == "no-store"
    assert created["url"] == PUBLIC_URL
    assert created["event_types"] == ["customer.created", "customer.updated"]
    assert created["description"] == "CRM sync"
    assert created["status"] == "enabled"
    assert created["consecutive_failures"] == 0

    shown = await client.get(f"{URL}/{created['id']}", headers=admin)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert secret not in shown.text
    listed = await client.get(URL, headers=admin)
    assert secret not in listed.text
    assert [e["id"] for e in listed.json()["webhook_endpoints"]] == [created["id"]]
    assert {k: v for k, v in created.items() if k != "secret"} == shown.json()

    row = await db.fetchrow(
        "SELECT * FROM webhook_endpoints WHERE id = $1", uuid.UUID(created["id"])
    )
    assert row is not None
    assert row["tenant_id"] == tenant
    assert secret.encode() not in bytes(row["secret_encrypted"])
    assert all(secret not in str(value) for value in dict(row).values())
    assert app_ctx.keyring.decrypt(bytes(row["secret_encrypted"]), SECRET_CONTEXT) == secret


async def test_secret_is_not_logged_nor_kept_by_idempotency(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
    captured_logs: io.StringIO,
) -> None:
    keyed = await client.post(
        URL, json={"url": PUBLIC_URL}, headers={**admin, "Idempotency-Key": "wh-1"}
    )
    assert keyed.status_code == 201
    kept = await db.fetch("SELECT * FROM idempotency_keys WHERE tenant_id = $1", tenant)
    assert all(
        keyed.json()["secret"].encode() not in bytes(r["response_body"] or b"") for r in kept
    )
    assert kept == []  # released, not stored
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    await create_customer(client, admin, first_name="Logged")

    async def delivered() -> bool:
        return receiver.count == 1

    await drive(make_dispatcher(), delivered)
    logged = captured_logs.getvalue()
    assert logged, "nothing was logged at all: the check would prove nothing"
    assert endpoint["secret"] not in logged
    assert keyed.json()["secret"] not in logged


async def test_unknown_event_type_is_422_and_creates_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    response = await client.post(
        URL,
        json={"url": PUBLIC_URL, "event_types": ["customer.created", "customer.exploded"]},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "loc": ["body", "event_types", 1],
            "msg": "unknown event type 'customer.exploded'",
            "type": "unknown_event_type",
        }
    ]
    assert await count_endpoints(db, tenant) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hooks",
        "http://93.184.215.14/hooks",
        "https://unresolvable.invalid/hooks",
        "ftp://93.184.215.14/hooks",
    ],
)
async def test_unsafe_url_is_422_naming_url(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str, url: str
) -> None:
    response = await client.post(URL, json={"url": url}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["loc"] for e in errors] == [["body", "url"]]
    assert errors[0]["type"] == "unsafe_url"
    assert await count_endpoints(db, tenant) == 0


@pytest.mark.usefixtures("allow_private")
async def test_loopback_is_allowed_with_the_development_setting(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    response = await client.post(URL, json={"url": "http://127.0.0.1:9/hooks"}, headers=admin)
    assert response.status_code == 201, response.text
    await db.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)


async def test_bad_bodies_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for body in (
        {},
        {"url": PUBLIC_URL, "secret": "mine"},
        {"url": PUBLIC_URL, "event_types": "customer.created"},
        {"url": "x" * 3000},
    ):
        response = await client.post(URL, json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)


async def test_other_tenants_endpoint_is_404_and_unchanged(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    theirs_headers = await api_key_headers("admin", other_tenant)
    theirs = (await client.post(URL, json={"url": PUBLIC_URL}, headers=theirs_headers)).json()
    mine = await api_key_headers("admin", tenant)
    path = f"{URL}/{theirs['id']}"
    assert (await client.get(path, headers=mine)).status_code == 404
    assert (await client.get(f"{path}/deliveries", headers=mine)).status_code == 404
    assert (await client.patch(path, json={"enabled": False}, headers=mine)).status_code == 404
    assert (await client.delete(path, headers=mine)).status_code == 404
    listed = await client.get(URL, headers=mine)
    assert listed.json()["webhook_endpoints"] == []
    assert listed.json()["total"] == 0
    still = await client.get(path, headers=theirs_headers)
    assert still.status_code == 200
    assert still.json()["status"] == "enabled"
    assert await outbox_rows(db, other_tenant, "webhook_endpoint.disabled") == []


async def test_only_admins_may_manage_endpoints(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, db: asyncpg.Pool
) -> None:
    for role in ("manager", "agent", "service"):
        headers = await api_key_headers(role, tenant)
        assert (await client.get(URL, headers=headers)).status_code == 403
        created = await client.post(URL, json={"url": PUBLIC_URL}, headers=headers)
        assert created.status_code == 403
    assert await count_endpoints(db, tenant) == 0


async def test_update_disable_and_delete(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    created = (await client.post(URL, json={"url": PUBLIC_URL}, headers=admin)).json()
    path = f"{URL}/{created['id']}"
    changed = await client.patch(
        path,
        json={"event_types": ["customer.deleted"], "description": "only deletions"},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["customer.deleted"]
    assert changed.json()["description"] == "only deletions"
    refused = await client.patch(path, json={"url": "https://127.0.0.1/x"}, headers=admin)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "url"]
    assert (await client.get(path, headers=admin)).json()["url"] == PUBLIC_URL

    disabled = await client.patch(path, json={"enabled": False}, headers=admin)
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["disabled_reason"] == "disabled by API"
    events = await outbox_rows(db, tenant, "webhook_endpoint.disabled")
    assert [e["subject"] for e in events] == [created["id"]]
    assert events[0]["data"]["reason"] == "disabled by API"
    again = await client.patch(path, json={"enabled": False}, headers=admin)
    assert again.status_code == 200
    assert len(await outbox_rows(db, tenant, "webhook_endpoint.disabled")) == 1

    enabled = await client.patch(path, json={"enabled": True}, headers=admin)
    assert enabled.json()["status"] == "enabled"
    assert enabled.json()["disabled_at"] is None

    deleted = await client.delete(path, headers=admin)
    assert deleted.status_code == 204
    assert (await client.get(path, headers=admin)).status_code == 404
    assert (await client.delete(path, headers=admin)).status_code == 404
    assert await count_endpoints(db, tenant) == 0


async def test_list_pages(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ids = [
        (await client.post(URL, json={"url": f"{PUBLIC_URL}/{n}"}, headers=admin)).json()["id"]
        for n in range(3)
    ]
    first = (await client.get(URL, params={"page_size": 2}, headers=admin)).json()
    assert first["total"] == 3
    assert first["total_pages"] == 2
    assert [e["id"] for e in first["webhook_endpoints"]] == ids[::-1][:2]
    rest = await client.get(
        URL, params={"page_size": 2, "cursor": first["next_cursor"]}, headers=admin
    )
    assert [e["id"] for e in rest.json()["webhook_endpoints"]] == [ids[0]]
    assert rest.json()["next_cursor"] is None
