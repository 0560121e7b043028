"""``GET /api/v1/events`` (API.md), dead letters and requeue, over HTTP on the real database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, create_customer, outbox_rows


async def _events(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> httpx.Response:
    return await client.get("/api/v1/events", params=params, headers=headers)


async def _wait_visible(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    """Wait until the feed shows ``count`` events: it shows an event once every older
    transaction in the database has ended (events/feed.py), normally at once."""
    for _ in range(250):
        response = await _events(client, headers, limit=1000)
        if len(response.json()["events"]) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the feed never showed {count} events")


async def test_feed_pages_in_order_with_cloudevents_and_next_cursor(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    trace = f"trace-{uuid.uuid4().hex}"
    a = await create_customer(client, {**admin, "X-Trace-Id": trace}, first_name="A")
    b = await create_customer(client, admin, first_name="B")
    patched = await client.patch(
        f"/api/v1/customers/{a['id']}", json={"last_name": "Z"}, headers=admin
    )
    assert patched.status_code == 200
    await create_customer(client, admin, first_name="C")
    rows = await outbox_rows(db, tenant)
    ids = [str(r["id"]) for r in rows]
    assert len(ids) == 4
    await _wait_visible(client, admin, 4)

    first = await _events(client, admin, limit=3)
    assert first.status_code == 200
    page = first.json()
    assert [e["id"] for e in page["events"]] == ids[:3]
    assert page["next_cursor"] == ids[2]
    event = page["events"][0]
    assert event == {
        "specversion": "1.0",
        "id": ids[0],
        "source": "/patron/customers",
        "type": "customer.created",
        "time": event["time"],
        "datacontenttype": "application/json",
        "subject": a["id"],
        "tenantid": tenant,
        "traceid": trace,
        "data": rows[0]["data"],
    }
    assert event["time"].endswith("Z")
    assert [e["subject"] for e in page["events"]] == [a["id"], b["id"], a["id"]]
    assert page["events"][2]["data"]["fields_changed"] == ["last_name"]

    second = (await _events(client, admin, after=page["next_cursor"], limit=3)).json()
    assert [e["id"] for e in second["events"]] == ids[3:]
    assert second["next_cursor"] is None
    end = (await _events(client, admin, after=ids[3])).json()
    assert end == {"events": [], "next_cursor": None}


async def test_service_role_reads_other_staff_roles_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    await create_customer(client, admin, first_name="S")
    await _wait_visible(client, admin, 1)
    service = await api_key_headers(Role.SERVICE, tenant)
    response = await _events(client, service)
    assert response.status_code == 200
    assert [e["type"] for e in response.json()["events"]] == ["customer.created"]
    for role in (Role.MANAGER, Role.AGENT):
        refused = await _events(client, await api_key_headers(role, tenant))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"


async def test_tenants_see_only_their_events_and_another_tenants_id_is_422(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    other_tenant: str,
) -> None:
    mine = await create_customer(client, admin, first_name="Mine")
    other_admin = await api_key_headers(Role.ADMIN, other_tenant)
    await create_customer(client, other_admin, first_name="Theirs")
    await _wait_visible(client, other_admin, 1)
    await _wait_visible(client, admin, 1)
    theirs = (await _events(client, other_admin)).json()["events"]
    assert len(theirs) == 1

    got = (await _events(client, admin)).json()["events"]
    assert [e["subject"] for e in got] == [mine["id"]]
    for after in (theirs[0]["id"], str(uuid.uuid4())):
        response = await _events(client, admin, after=after)
        assert response.status_code == 422
        problem = response.json()
        assert problem["errors"][0]["loc"] == ["query", "after"]
        assert "after" in problem["detail"]
    bad = await _events(client, admin, after="not-a-uuid")
    assert bad.status_code == 422
    assert (await _events(client, admin, limit=0)).status_code == 422
    assert (await _events(client, admin, limit=1001)).status_code == 422


async def test_dead_letters_are_listed_per_tenant_and_requeued_by_admins(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    await create_customer(client, admin, first_name="D")
    other_admin = await api_key_headers(Role.ADMIN, other_tenant)
    await create_customer(client, other_admin, first_name="O")
    [row] = await outbox_rows(db, tenant)
    [their_row] = await outbox_rows(db, other_tenant)
    # the state the relay leaves after RELAY_MAX_ATTEMPTS rejections
    for r in (row, their_row):
        await db.execute(
            "UPDATE outbox_events SET attempts = 10, dead_at = now(), last_error = 'nacked' "
            "WHERE id = $1",
            r["id"],
        )
    service = await api_key_headers(Role.SERVICE, tenant)
    listed = await client.get("/api/v1/events/dead-letters", headers=service)
    assert listed.status_code == 200
    [item] = listed.json()["dead_letters"]
    assert item["event"]["id"] == str(row["id"])
    assert item["attempts"] == 10
    assert item["last_error"] == "nacked"
    assert listed.json()["next_cursor"] is None

    # another tenant's event is 404 and stays dead; the service role may not requeue
    other = await client.post(f"/api/v1/events/{their_row['id']}/requeue", headers=admin)
    assert other.status_code == 404
    refused = await client.post(f"/api/v1/events/{row['id']}/requeue", headers=service)
    assert refused.status_code == 403
    still = await db.fetchval("SELECT dead_at FROM outbox_events WHERE id = $1", their_row["id"])
    assert still is not None

    ok = await client.post(f"/api/v1/events/{row['id']}/requeue", headers=admin)
    assert ok.status_code == 200
    after = await db.fetchrow("SELECT * FROM outbox_events WHERE id = $1", row["id"])
    assert (after["dead_at"], after["attempts"], after["last_error"]) == (None, 0, None)
    assert after["published_at"] is None
    again = await client.post(f"/api/v1/events/{row['id']}/requeue", headers=admin)
    assert again.status_code == 409
    assert (await client.get("/api/v1/events/dead-letters", headers=admin)).json()[
        "dead_letters"
    ] == []
