"""Communications over HTTP against the real database (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows

RECORDED = "customer.communication_recorded"


def url(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/communications"


def contact(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"channel": "EMAIL", "direction": "INBOUND", "subject": "Hello"}
    body.update(overrides)
    return body


async def rows(db: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM customer_communications WHERE customer_id = $1 ORDER BY id",
            uuid.UUID(customer_id),
        )
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_record_moves_last_interaction_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Talk")
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    response = await client.post(
        url(me["id"]),
        json=contact(
            summary="Asked about sizes",
            externalId="msg-1",
            occurred_at="2026-03-01T13:00:00+01:00",
        ),
        headers=admin,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["channel"], body["direction"], body["subject"], body["summary"]) == (
        "EMAIL",
        "INBOUND",
        "Hello",
        "Asked about sizes",
    )
    assert body["external_id"] == "msg-1"
    assert datetime.fromisoformat(body["occurred_at"]) == when
    assert body["recorded_by"].startswith("key:")
    [row] = await rows(db, me["id"])
    assert row["tenant_id"] == tenant
    customer = (await client.get(f"/api/v1/customers/{me['id']}", headers=admin)).json()
    assert datetime.fromisoformat(customer["last_interaction_at"]) == when
    [event] = await outbox_rows(db, tenant, RECORDED)
    assert event["data"]["communication"]["id"] == body["id"]
    # an older contact is recorded but does not move last_interaction_at back
    older = await client.post(
        url(me["id"]), json=contact(occurred_at=iso(when - timedelta(days=1))), headers=admin
    )
    assert older.status_code == 201
    customer = (await client.get(f"/api/v1/customers/{me['id']}", headers=admin)).json()
    assert datetime.fromisoformat(customer["last_interaction_at"]) == when


async def test_default_occurred_at_is_now(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    me = await create_customer(client, admin, first_name="Now")
    before = datetime.now(UTC)
    response = await client.post(url(me["id"]), json=contact(channel="SMS"), headers=admin)
    assert response.status_code == 201
    occurred = datetime.fromisoformat(response.json()["occurred_at"])
    assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC)
    customer = (await client.get(f"/api/v1/customers/{me['id']}", headers=admin)).json()
    assert datetime.fromisoformat(customer["last_interaction_at"]) == occurred


async def test_external_id_makes_recording_idempotent(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Twice")
    first = await client.post(url(me["id"]), json=contact(external_id="wamid.1"), headers=admin)
    again = await client.post(
        url(me["id"]), json=contact(external_id="wamid.1", subject="changed"), headers=admin
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    # another channel with the same id is another contact
    other_channel = await client.post(
        url(me["id"]), json=contact(channel="WHATSAPP", external_id="wamid.1"), headers=admin
    )
    assert other_channel.status_code == 201
    assert len(await rows(db, me["id"])) == 2
    assert len(await outbox_rows(db, tenant, RECORDED)) == 2


async def test_list_newest_first_with_limit_and_cursor(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="History")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = {}
    for day in (2, 0, 3, 1):  # recorded out of order
        created = await client.post(
            url(me["id"]), json=contact(occurred_at=iso(base + timedelta(days=day))), headers=admin
        )
        ids[day] = created.json()["id"]
    first = await client.get(url(me["id"]), params={"limit": 3}, headers=admin)
    assert first.status_code == 200
    page = first.json()
    assert [c["id"] for c in page["communications"]] == [ids[3], ids[2], ids[1]]
    assert (page["total"], page["page_size"], page["total_pages"]) == (4, 3, 2)
    rest = (
        await client.get(
            url(me["id"]), params={"limit": 3, "cursor": page["next_cursor"]}, headers=admin
        )
    ).json()
    assert [c["id"] for c in rest["communications"]] == [ids[0]]
    assert rest["next_cursor"] is None
    default = (await client.get(url(me["id"]), headers=admin)).json()
    assert default["page_size"] == 50
    assert (
        await client.get(url(me["id"]), params={"limit": 201}, headers=admin)
    ).status_code == 422
    assert (
        await client.get(url(me["id"]), params={"cursor": "e30"}, headers=admin)
    ).status_code == 422


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"channel": "FAX"}, ["body", "channel"]),
        ({"direction": "SIDEWAYS"}, ["body", "direction"]),
        ({"direction": None}, ["body", "direction"]),
        ({"occurred_at": "2026-03-01T12:00:00"}, ["body", "occurred_at"]),  # no offset
        ({"occurred_at": "2999-01-01T00:00:00Z"}, ["body", "occurred_at"]),  # future
        ({"subject": "x" * 501}, ["body", "subject"]),
        ({"unknown": 1}, ["body", "unknown"]),
    ],
)
async def test_invalid_input_is_422_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    changes: dict[str, Any],
    loc: list[Any],
) -> None:
    me = await create_customer(client, admin, first_name="Bad")
    response = await client.post(url(me["id"]), json=contact(**changes), headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, RECORDED) == []
    customer = (await client.get(f"/api/v1/customers/{me['id']}", headers=admin)).json()
    assert customer["last_interaction_at"] is None


async def test_customer_token_is_refused_and_other_tenant_is_404(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    token_headers: TokenFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Private")
    mine = token_headers("customer", tenant, sub=me["id"])
    assert (await client.get(url(me["id"]), headers=mine)).status_code == 403
    assert (await client.post(url(me["id"]), json=contact(), headers=mine)).status_code == 403
    stranger = await api_key_headers(Role.ADMIN, other_tenant)
    assert (await client.get(url(me["id"]), headers=stranger)).status_code == 404
    assert (await client.post(url(me["id"]), json=contact(), headers=stranger)).status_code == 404
    agent = await api_key_headers(Role.AGENT, tenant)
    assert (await client.post(url(me["id"]), json=contact(), headers=agent)).status_code == 201
    assert len(await rows(db, me["id"])) == 1
