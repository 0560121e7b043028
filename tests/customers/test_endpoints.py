"""Customer endpoints over HTTP against the real database (API.md "Customers")."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from patron.auth.principal import Role
from tests.conftest import (
    ApiKeyFactory,
    TokenFactory,
    create_customer,
    outbox_rows,
    tenant_writes,
)

BASE = "/api/v1/customers"


# -- create ------------------------------------------------------------------------------


async def test_create_returns_customer_with_defaults_location_and_etag(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    response = await client.post(
        BASE,
        json={
            "firstName": "Ada",
            "last_name": "Lovelace",
            "email": "Ada@Example.COM",
            "phone": "(415) 555-0100",
        },
        headers=admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{BASE}/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["tenant_id"] == tenant
    assert body["email"] == "Ada@example.com"
    assert body["phone"] == "+14155550100"
    assert body["full_name"] == "Ada Lovelace"
    assert (body["status"], body["customer_type"], body["marketing_opt_in"]) == (
        "ACTIVE",
        "RETAIL",
        False,
    )
    assert body["version"] == 1
    assert body["stats"]["total_orders"] == 0
    assert body["stats"]["total_spent"] == "0.00"
    idents = await db.fetch(
        "SELECT kind, namespace, value FROM customer_identities WHERE customer_id = $1 ORDER BY kind",
        uuid.UUID(body["id"]),
    )
    assert [tuple(r) for r in idents] == [
        ("email", "", "ada@example.com"),
        ("phone", "", "+14155550100"),
    ]
    events = await outbox_rows(db, tenant)
    assert [e["type"] for e in events] == ["customer.created"]
    assert events[0]["subject"] == body["id"]
    assert events[0]["data"]["customer"]["email"] == "Ada@example.com"


async def test_access_token_is_encrypted_and_never_returned(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    secret = "EAAB-super-secret-token-123"
    body = await create_customer(
        client, admin, app_id="app1", psid="p-1", platform="instagram", access_token=secret
    )
    assert "access_token" not in body
    assert body["has_access_token"] is True
    stored = await db.fetchval(
        "SELECT access_token_encrypted FROM customers WHERE id = $1", uuid.UUID(body["id"])
    )
    assert secret.encode() not in stored
    assert stored.startswith(b"v1")
    events = await outbox_rows(db, tenant)
    assert secret not in str(events[0]["data"])
    got = await client.get(f"{BASE}/{body['id']}", headers=admin)
    assert secret not in got.text


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"email": "not-an-email"}, ["body", "email"]),
        ({"phone": "12"}, ["body", "phone"]),
        ({"id": str(uuid.uuid4())}, ["body"]),
        ({"version": 3}, ["body"]),
        ({"full_name": "X"}, ["body"]),
        ({"stats": {}}, ["body"]),
        ({"unknown_field": 1}, ["body", "unknown_field"]),
        ({"status": "GONE"}, ["body", "status"]),
        ({"timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({"birth_date": "1800-01-01"}, ["body", "birth_date"]),
    ],
)
async def test_create_rejects_bad_input_with_422_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    payload: dict[str, Any],
    loc: list[str],
) -> None:
    response = await client.post(BASE, json=payload, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["trace_id"] == response.headers["x-trace-id"]
    assert problem["errors"][0]["loc"][: len(loc)] == loc
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0
    assert await outbox_rows(db, tenant) == []


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # API.md "Conventions": malformed JSON 400 (invalid fields in valid JSON are 422)
    response = await client.post(
        BASE, content=b"{not json", headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["line"], response.json()["column"]) == (1, 2)


async def test_nul_byte_is_a_client_error(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    response = await client.post(BASE, json={"first_name": "A\u0000B"}, headers=admin)
    assert response.status_code == 422
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        ("email", {"email": "dup@example.com"}, {"email": "DUP@example.com"}),
        ("phone", {"phone": "+14155550101"}, {"phone": "415-555-0101"}),
        ("psid", {"app_id": "a1", "psid": "123"}, {"app_id": "a1", "psid": "123"}),
        ("igsid", {"app_id": "a1", "igsid": "777"}, {"app_id": "a1", "igsid": "777"}),
        ("user_id", {"user_id": "u-9"}, {"user_id": "u-9"}),
        (
            "external",
            {"external_ids": {"salesforce": "003X"}},
            {"external_ids": {"salesforce": "003X"}},
        ),
    ],
)
async def test_duplicate_identity_is_409_with_holder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    field: str,
    first: dict[str, Any],
    second: dict[str, Any],
) -> None:
    holder = await create_customer(client, admin, **first)
    response = await client.post(BASE, json=second, headers=admin)
    assert response.status_code == 409, response.text
    assert response.json()["conflicting_customer_id"] == holder["id"]
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1
    assert len(await outbox_rows(db, tenant)) == 1


async def test_same_psid_under_other_app_is_allowed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_customer(client, admin, app_id="a1", psid="123")
    await create_customer(client, admin, app_id="a2", psid="123")
    response = await client.get(f"{BASE}/psid/123", headers=admin)
    assert response.status_code == 409
    assert len(response.json()["customer_ids"]) == 2
    response = await client.get(f"{BASE}/psid/123", params={"app_id": "a2"}, headers=admin)
    assert response.status_code == 200
    assert response.json()["app_id"] == "a2"


async def test_identities_are_per_tenant(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, other_tenant: str
) -> None:
    mine = await api_key_headers(Role.ADMIN, tenant)
    theirs = await api_key_headers(Role.ADMIN, other_tenant)
    await create_customer(client, mine, email="shared@example.com")
    await create_customer(client, theirs, email="shared@example.com")


async def test_body_tenant_must_match(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    ok = await client.post(BASE, json={"tenantId": tenant, "first_name": "A"}, headers=admin)
    assert ok.status_code == 201
    before = await tenant_writes(db, tenant)
    elsewhere = f"{tenant}-else"
    bad = await client.post(BASE, json={"tenant_id": elsewhere, "first_name": "A"}, headers=admin)
    assert bad.status_code == 403
    assert bad.json()["detail"] == "body tenant_id names a tenant this credential may not act for"
    assert await tenant_writes(db, tenant) == before
    assert await tenant_writes(db, elsewhere) == ([], [])


# -- read --------------------------------------------------------------------------------


async def test_get_unknown_and_other_tenant_is_404(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, other_tenant: str
) -> None:
    mine = await api_key_headers(Role.ADMIN, tenant)
    theirs = await api_key_headers(Role.ADMIN, other_tenant)
    customer = await create_customer(client, mine, first_name="A")
    assert (await client.get(f"{BASE}/{uuid.uuid4()}", headers=mine)).status_code == 404
    response = await client.get(f"{BASE}/{customer['id']}", headers=theirs)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_get_by_psid(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, app_id="a1", psid="999", platform="facebook")
    response = await client.get(f"{BASE}/psid/999", headers=admin)
    assert response.status_code == 200
    assert response.json()["id"] == customer["id"]
    assert (await client.get(f"{BASE}/psid/000", headers=admin)).status_code == 404


# -- update, ETag ------------------------------------------------------------------------


async def test_patch_partial_with_camel_case_and_fields_changed(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada", email="a@example.com")
    response = await client.patch(
        f"{BASE}/{customer['id']}", json={"lastName": "Byron", "customerType": "VIP"}, headers=admin
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["last_name"], body["customer_type"]) == ("Ada", "Byron", "VIP")
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    updated = await outbox_rows(db, tenant, "customer.updated")
    assert updated[0]["data"]["fields_changed"] == ["customer_type", "last_name"]


async def test_noop_update_does_not_bump_version_or_emit(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await client.put(
        f"{BASE}/{customer['id']}", json={"first_name": "Ada"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert await outbox_rows(db, tenant, "customer.updated") == []


async def test_update_email_moves_identity(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create_customer(client, admin, email="old@example.com")
    response = await client.put(
        f"{BASE}/{first['id']}", json={"email": "new@example.com"}, headers=admin
    )
    assert response.status_code == 200
    # the old address is free again, the new one is taken
    await create_customer(client, admin, email="old@example.com")
    clash = await client.post(BASE, json={"email": "new@example.com"}, headers=admin)
    assert clash.status_code == 409
    assert clash.json()["conflicting_customer_id"] == first["id"]


async def test_update_to_taken_identity_is_409_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    a = await create_customer(client, admin, email="a@example.com")
    b = await create_customer(client, admin, email="b@example.com", first_name="B")
    response = await client.patch(
        f"{BASE}/{b['id']}", json={"email": "a@example.com", "first_name": "Bee"}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["conflicting_customer_id"] == a["id"]
    after = (await client.get(f"{BASE}/{b['id']}", headers=admin)).json()
    assert (after["email"], after["first_name"], after["version"]) == ("b@example.com", "B", 1)


async def test_if_match(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="A")
    url = f"{BASE}/{customer['id']}"
    stale = await client.patch(url, json={"first_name": "B"}, headers={**admin, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == '"1"'
    ok = await client.patch(url, json={"first_name": "B"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    weak = await client.put(url, json={"first_name": "C"}, headers={**admin, "If-Match": 'W/"2"'})
    assert weak.status_code == 200
    delete_stale = await client.delete(url, headers={**admin, "If-Match": '"1"'})
    assert delete_stale.status_code == 412
    assert (await client.get(url, headers=admin)).status_code == 200


async def test_read_only_fields_in_update_are_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    for field in ("id", "version", "created_at", "full_name", "stats"):
        response = await client.patch(f"{BASE}/{customer['id']}", json={field: None}, headers=admin)
        assert response.status_code == 422, field
        assert f"{field} is read-only" in response.text


# -- idempotency -------------------------------------------------------------------------


async def test_idempotency_key_replays_and_rejects_other_body(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    headers = {**admin, "Idempotency-Key": "create-1"}
    first = await client.post(BASE, json={"email": "idem@example.com"}, headers=headers)
    again = await client.post(BASE, json={"email": "idem@example.com"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1
    other = await client.post(BASE, json={"email": "other@example.com"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["type"] == "idempotency_key_reused"
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1


async def test_idempotency_keys_are_per_principal(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, db: asyncpg.Pool
) -> None:
    one = await api_key_headers(Role.ADMIN, tenant)
    two = await api_key_headers(Role.ADMIN, tenant)
    r1 = await client.post(BASE, json={"first_name": "A"}, headers={**one, "Idempotency-Key": "k"})
    r2 = await client.post(BASE, json={"first_name": "A"}, headers={**two, "Idempotency-Key": "k"})
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["id"] != r2.json()["id"]


async def test_idempotent_error_response_is_replayed(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    holder = await create_customer(client, admin, email="taken@example.com")
    before = await tenant_writes(db, tenant)
    headers = {**admin, "Idempotency-Key": "dup"}
    first = await client.post(BASE, json={"email": "taken@example.com"}, headers=headers)
    again = await client.post(BASE, json={"email": "taken@example.com"}, headers=headers)
    assert first.status_code == again.status_code == 409
    assert first.json()["conflicting_customer_id"] == holder["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await tenant_writes(db, tenant) == before


# -- delete ------------------------------------------------------------------------------


async def test_soft_delete_hides_customer_and_frees_identities(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, email="gone@example.com", app_id="a", psid="p")
    response = await client.delete(f"{BASE}/{customer['id']}", headers=admin)
    assert response.status_code == 204
    assert (await client.get(f"{BASE}/{customer['id']}", headers=admin)).status_code == 404
    assert (await client.delete(f"{BASE}/{customer['id']}", headers=admin)).status_code == 404
    listed = (await client.get(BASE, headers=admin)).json()
    assert listed["total"] == 0
    assert (await client.get(f"{BASE}/psid/p", headers=admin)).status_code == 404
    row = await db.fetchrow(
        "SELECT deleted_at FROM customers WHERE id = $1", uuid.UUID(customer["id"])
    )
    assert row["deleted_at"] is not None
    again = await create_customer(client, admin, email="gone@example.com", app_id="a", psid="p")
    assert again["id"] != customer["id"]
    deleted = await outbox_rows(db, tenant, "customer.deleted")
    assert deleted[0]["subject"] == customer["id"]


# -- block, interaction ------------------------------------------------------------------


async def test_block_and_unblock(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    blocked = await client.post(
        f"{BASE}/{customer['id']}/block", json={"reason": "spam"}, headers=admin
    )
    assert blocked.status_code == 200
    body = blocked.json()
    assert (body["status"], body["block_reason"]) == ("BLOCKED", "spam")
    assert body["blocked_at"] is not None
    listed = (await client.get(BASE, params={"blocked": "true"}, headers=admin)).json()
    assert [c["id"] for c in listed["customers"]] == [customer["id"]]
    unblocked = await client.post(f"{BASE}/{customer['id']}/unblock", headers=admin)
    assert unblocked.status_code == 200
    assert (
        unblocked.json()["status"],
        unblocked.json()["blocked_at"],
        unblocked.json()["block_reason"],
    ) == ("ACTIVE", None, None)
    types = [e["type"] for e in await outbox_rows(db, tenant)]
    assert types == ["customer.created", "customer.blocked", "customer.unblocked"]
    assert (await outbox_rows(db, tenant, "customer.blocked"))[0]["data"]["reason"] == "spam"


async def test_interaction_moves_forward_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    url = f"{BASE}/{customer['id']}/interaction"
    first = await client.patch(
        url, json={"occurred_at": "2026-01-02T03:04:05Z", "channel": "instagram"}, headers=admin
    )
    assert first.status_code == 200
    assert first.json()["last_interaction_at"] == "2026-01-02T03:04:05Z"
    older = await client.patch(url, json={"occurred_at": "2025-01-01T00:00:00Z"}, headers=admin)
    assert older.json()["last_interaction_at"] == "2026-01-02T03:04:05Z"
    now = await client.patch(url, headers=admin)
    assert now.json()["last_interaction_at"] > "2026-01-02T03:04:05Z"
    naive = await client.patch(url, json={"occurred_at": "2026-01-02T03:04:05"}, headers=admin)
    assert naive.status_code == 422


# -- upsert ------------------------------------------------------------------------------


async def test_upsert_from_query_parameters_creates_then_updates(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    params = {
        "app_id": "1234",
        "psid": "5678",
        "platform": "instagram",
        "first_name": "Grace",
        "last_name": "Hopper",
        "profile_pic_url": "https://example.com/g.jpg",
    }
    created = await client.post(f"{BASE}/upsert", params=params, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    customer = created.json()["customer"]
    assert (customer["psid"], customer["platform"], customer["first_name"]) == (
        "5678",
        "instagram",
        "Grace",
    )
    updated = await client.post(
        f"{BASE}/upsert",
        params={"app_id": "1234", "psid": "5678", "first_name": "Amazing Grace"},
        headers=admin,
    )
    assert updated.status_code == 200
    assert updated.json()["created"] is False
    assert updated.json()["customer"]["id"] == customer["id"]
    assert updated.json()["customer"]["first_name"] == "Amazing Grace"
    assert updated.json()["customer"]["last_name"] == "Hopper"
    types = [e["type"] for e in await outbox_rows(db, tenant)]
    assert types == ["customer.created", "customer.updated"]


async def test_upsert_json_body_resolves_by_any_identity(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, email="u@example.com")
    response = await client.post(
        f"{BASE}/upsert", json={"email": "U@example.com", "phone": "+14155550199"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["customer"]["id"] == customer["id"]
    assert response.json()["customer"]["phone"] == "+14155550199"
    by_phone = await client.post(
        f"{BASE}/upsert", json={"phone": "+1 415 555 0199", "first_name": "U"}, headers=admin
    )
    assert by_phone.json()["customer"]["id"] == customer["id"]


async def test_upsert_with_tags_links_them_through_the_tag_domain(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    # An upsert without tags runs in a driver transaction; with tags, in a session one.
    created = await client.post(
        f"{BASE}/upsert", json={"app_id": "7", "psid": "42", "tags": ["VIP"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    customer = created.json()["customer"]
    assert customer["tags"] == ["VIP"]
    renamed = await client.post(
        f"{BASE}/upsert",
        json={"app_id": "7", "psid": "42", "first_name": "Ada", "tags": ["vip", "Blog"]},
        headers=admin,
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["customer"]["tags"] == ["VIP", "Blog"]  # catalog spelling kept
    linked = await client.get(f"{BASE}/{customer['id']}/tags", headers=admin)
    assert sorted(t["label"] for t in linked.json()["tags"]) == ["Blog", "VIP"]
    types = [e["type"] for e in await outbox_rows(db, tenant)]
    assert types == [
        "customer.created",
        "customer.tagged",
        "customer.tagged",
        "customer.updated",
    ]


async def test_upsert_needs_an_identity_and_rejects_unknown_query(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(f"{BASE}/upsert", json={"first_name": "Nobody"}, headers=admin)
    assert response.status_code == 422
    response = await client.post(
        f"{BASE}/upsert", params={"psid": "1", "bogus": "x"}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "bogus"]  # it came in the query string


async def test_upsert_with_identities_of_two_customers_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    a = await create_customer(client, admin, email="a@example.com")
    b = await create_customer(client, admin, phone="+14155550123")
    before = await tenant_writes(db, tenant)
    response = await client.post(
        f"{BASE}/upsert",
        json={"email": "a@example.com", "phone": "+14155550123", "first_name": "Both"},
        headers=admin,
    )
    assert response.status_code == 409
    assert sorted(response.json()["conflicting_customer_ids"]) == sorted([a["id"], b["id"]])
    assert await tenant_writes(db, tenant) == before


async def test_concurrent_upserts_of_one_identity_create_one_customer(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    async def upsert(i: int) -> httpx.Response:
        return await client.post(
            f"{BASE}/upsert",
            params={"app_id": "app", "psid": "same-psid", "first_name": f"N{i}"},
            headers=admin,
        )

    responses = await asyncio.gather(*(upsert(i) for i in range(12)))
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["customer"]["id"] for r in responses}) == 1
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1
    assert (
        await db.fetchval("SELECT count(*) FROM customer_identities WHERE tenant_id = $1", tenant)
        == 1
    )


async def test_concurrent_creates_with_one_email_give_one_201(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    responses = await asyncio.gather(
        *(client.post(BASE, json={"email": "race@example.com"}, headers=admin) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 1


# -- customer role -----------------------------------------------------------------------


async def test_customer_token_sees_and_edits_only_itself(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token_headers: TokenFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    other = await create_customer(client, admin, first_name="Other")
    mine = token_headers("customer", tenant, sub=me["id"])
    assert (await client.get(f"{BASE}/{me['id']}", headers=mine)).status_code == 200
    assert (await client.get(f"{BASE}/{other['id']}", headers=mine)).status_code == 404
    ok = await client.patch(f"{BASE}/{me['id']}", json={"first_name": "Still me"}, headers=mine)
    assert ok.status_code == 200
    before = await tenant_writes(db, tenant)
    refusals: list[tuple[str, dict[str, Any], int]] = [
        (me["id"], {"status": "VIP"}, 422),  # not a status at all: the body is invalid
        (me["id"], {"status": "BLOCKED"}, 403),  # a status, but not the customer's to set
        (me["id"], {"customer_type": "VIP", "first_name": "Sneaky"}, 403),
        (other["id"], {"first_name": "X"}, 404),
    ]
    for customer_id, body, expected in refusals:
        refused = await client.patch(f"{BASE}/{customer_id}", json=body, headers=mine)
        assert refused.status_code == expected, (body, refused.text)
        if expected == 403:
            assert refused.json()["fields"] == sorted(set(body) - {"first_name"})
    assert (await client.get(BASE, headers=mine)).status_code == 403
    assert await tenant_writes(db, tenant) == before
