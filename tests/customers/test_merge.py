"""Merging customers (POST /customers/{id}/merge)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, create_customer, outbox_rows

BASE = "/api/v1/customers"


async def _merge_ada(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
    """Two records of one person (the survivor with the older last interaction), merged:
    ``(survivor, source, response)``."""
    survivor = await create_customer(
        client,
        admin,
        email="ada@example.com",
        first_name="Ada",
        tags=["VIP"],
        attributes={"tier": "gold", "a": 1},
        preferences={"language": "en", "channel": "email"},
        external_ids={"hubspot": "h-1"},
    )
    source = await create_customer(
        client,
        admin,
        email="ada.l@example.com",
        phone="+14155550100",
        app_id="ig",
        psid="p-42",
        platform="instagram",
        first_name="Ada L",
        last_name="Lovelace",
        tags=["vip", "Newsletter"],
        attributes={"tier": "silver", "b": 2},
        preferences={"language": "fr", "newsletter": True},
        external_ids={"hubspot": "h-2", "salesforce": "s-1"},
        access_token="tok",
    )
    # the source was in touch more recently: its time is the one kept
    await _interacted(client, admin, survivor["id"], "2026-01-01T00:00:00Z")
    await _interacted(client, admin, source["id"], "2026-03-01T12:00:00Z")
    response = await client.post(
        f"{BASE}/{survivor['id']}/merge", json={"source_id": source["id"]}, headers=admin
    )
    return survivor, source, response


async def test_merge_moves_identities_fills_fields_and_journals(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    survivor, source, response = await _merge_ada(client, admin)
    assert response.status_code == 200, response.text
    result = response.json()
    merged = result["customer"]
    assert merged["id"] == survivor["id"]
    assert (merged["email"], merged["first_name"]) == ("ada@example.com", "Ada")  # survivor wins
    assert (merged["phone"], merged["last_name"], merged["psid"], merged["app_id"]) == (
        "+14155550100",
        "Lovelace",
        "p-42",
        "ig",
    )
    assert merged["tags"] == ["VIP", "Newsletter"]
    assert merged["attributes"] == {"tier": "gold", "a": 1, "b": 2}
    # preferences united, the survivor's value kept where both have the key
    assert merged["preferences"] == {"language": "en", "channel": "email", "newsletter": True}
    assert merged["last_interaction_at"] == "2026-03-01T12:00:00Z"
    assert merged["external_ids"] == {"hubspot": "h-1", "salesforce": "s-1"}
    assert merged["has_access_token"] is True
    details = result["details"]
    moved = {(i["kind"], i["value"]) for i in details["moved_identities"]}
    assert moved == {("phone", "+14155550100"), ("psid", "p-42"), ("external", "s-1")}
    dropped = {(i["kind"], i["value"]) for i in details["dropped_identities"]}
    assert dropped == {("email", "ada.l@example.com"), ("external", "h-2")}

    # the source is gone, points to the survivor, and nothing resolves to it any more
    assert (await client.get(f"{BASE}/{source['id']}", headers=admin)).status_code == 404
    row = await db.fetchrow(
        "SELECT deleted_at, merged_into_id FROM customers WHERE id = $1", uuid.UUID(source["id"])
    )
    assert row["deleted_at"] is not None
    assert row["merged_into_id"] == uuid.UUID(survivor["id"])
    by_psid = await client.get(f"{BASE}/psid/p-42", headers=admin)
    assert by_psid.json()["id"] == survivor["id"]
    upsert = await client.post(f"{BASE}/upsert", json={"phone": "+14155550100"}, headers=admin)
    assert upsert.json()["customer"]["id"] == survivor["id"]
    # the dropped email is free for a new customer
    await create_customer(client, admin, email="ada.l@example.com")

    journal = await db.fetchrow("SELECT * FROM customer_merges WHERE tenant_id = $1", tenant)
    assert journal["survivor_id"] == uuid.UUID(survivor["id"])
    assert journal["source_id"] == uuid.UUID(source["id"])
    assert journal["actor"].startswith("key:")
    assert str(journal["id"]) == result["merge_id"]
    assert details["moved_identities"] == [
        {"kind": "external", "namespace": "salesforce", "value": "s-1"},
        {"kind": "phone", "namespace": "", "value": "+14155550100"},
        {"kind": "psid", "namespace": "ig", "value": "p-42"},
    ]
    assert details["dropped_identities"] == [
        {"kind": "email", "namespace": "", "value": "ada.l@example.com"},
        {"kind": "external", "namespace": "hubspot", "value": "h-2"},
    ]
    assert details["tags_added"] == ["Newsletter"]
    assert details["stats"] == "not merged: order history stays with each customer id"
    assert set(details) == {
        "moved_identities",
        "dropped_identities",
        "fields_filled",
        "tags_added",
        "keys_added",
        "stats",
    }
    # the journal and the event carry the same details as the answer
    assert journal["details"] == details
    events = await outbox_rows(db, tenant, "customer.merged")
    assert len(events) == 1
    assert events[0]["subject"] == survivor["id"]
    assert events[0]["data"] == {
        "merge_id": result["merge_id"],
        "survivor_id": survivor["id"],
        "source_id": source["id"],
        "details": details,
        "customer": merged,
    }


async def test_merge_details_name_exactly_what_was_filled_and_added(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # decision 0003: the journal records "exactly what moved, was filled and was dropped"
    _, _, response = await _merge_ada(client, admin)
    details = response.json()["details"]
    assert details["keys_added"] == {
        "attributes": ["b"],
        "preferences": ["newsletter"],
        "external_ids": ["salesforce"],
    }
    assert details["fields_filled"] == [
        "access_token",
        "app_id",
        "last_name",
        "phone",
        "platform",
        "psid",
    ]


async def test_merge_keeps_the_survivors_later_interaction(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor = await create_customer(client, admin, first_name="Recent")
    earlier = await create_customer(client, admin, first_name="Earlier")
    never = await create_customer(client, admin, first_name="Never")
    await _interacted(client, admin, survivor["id"], "2026-03-01T12:00:00Z")
    await _interacted(client, admin, earlier["id"], "2026-01-01T00:00:00Z")
    for source in (earlier, never):
        response = await client.post(
            f"{BASE}/{survivor['id']}/merge", json={"source_id": source["id"]}, headers=admin
        )
        assert response.status_code == 200, response.text
        merged = response.json()["customer"]
        assert merged["last_interaction_at"] == "2026-03-01T12:00:00Z"


async def _interacted(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, at: str
) -> None:
    response = await client.patch(
        f"{BASE}/{customer_id}/interaction", json={"occurred_at": at}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["last_interaction_at"] == at


async def test_merge_errors(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    a = await create_customer(client, admin, first_name="A")
    assert (
        await client.post(f"{BASE}/{a['id']}/merge", json={"source_id": a["id"]}, headers=admin)
    ).status_code == 422
    assert (
        await client.post(
            f"{BASE}/{a['id']}/merge", json={"source_id": str(uuid.uuid4())}, headers=admin
        )
    ).status_code == 404
    theirs = await create_customer(
        client, await api_key_headers(Role.ADMIN, other_tenant), first_name="T"
    )
    assert (
        await client.post(
            f"{BASE}/{a['id']}/merge", json={"source_id": theirs["id"]}, headers=admin
        )
    ).status_code == 404
    manager = await api_key_headers(Role.MANAGER, tenant)
    b = await create_customer(client, admin, first_name="B")
    assert (
        await client.post(f"{BASE}/{a['id']}/merge", json={"source_id": b["id"]}, headers=manager)
    ).status_code == 403
    assert await outbox_rows(db, tenant, "customer.merged") == []
    assert (
        await db.fetchval("SELECT count(*) FROM customer_merges WHERE tenant_id = $1", tenant) == 0
    )
