"""Inputs that schemathesis found answered with 500, pinned as plain regression tests."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import create_customer


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_null_collections_are_emptied(
    client: httpx.AsyncClient, admin: dict[str, str], method: str
) -> None:
    body = await create_customer(
        client, admin, first_name="Ada", tags=["VIP"], attributes={"a": 1}, preferences={"p": True}
    )
    cleared = {"tags": None, "attributes": None, "preferences": None, "external_ids": None}
    response = await client.request(
        method, f"/api/v1/customers/{body['id']}", json=cleared, headers=admin
    )
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["tags"], got["attributes"], got["preferences"], got["external_ids"]) == (
        [],
        {},
        {},
        {},
    )


@pytest.mark.parametrize("field", ["status", "customer_type", "marketing_opt_in"])
async def test_null_for_a_required_scalar_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], field: str
) -> None:
    body = await create_customer(client, admin, first_name="Ada")
    response = await client.patch(
        f"/api/v1/customers/{body['id']}", json={field: None}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", field]
    created = await client.post("/api/v1/customers", json={field: None}, headers=admin)
    assert created.status_code == 422, created.text


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ('{"n": 18446744073709551616}', "64-bit"),
        # -2**63 - 2, below the range (-2**63 - 1 is Luhn-valid: a card number, refused as one)
        ('{"n": -9223372036854775810}', "64-bit"),
        ('{"n": 1.0816016947214639e+267}', "64-bit"),  # JSONB prints it as 268 digits
        ('{"n": [-1e19]}', "64-bit"),
        ('{"n": NaN}', "finite"),
        ('{"n": [Infinity]}', "finite"),
        ('{"a":' * 40 + "1" + "}" * 40, "nested"),
    ],
)
async def test_unstorable_json_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], attributes: str, message: str
) -> None:
    response = await client.post(
        "/api/v1/customers",
        content=f'{{"first_name": "Ada", "attributes": {attributes}}}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]


async def test_largest_storable_json_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    nested: dict[str, object] = {
        "n": 9223372036854775807,
        "m": -9223372036854775808,
        "f": 1.5e-300,
        "g": -9.2e18,
    }
    for _ in range(30):
        nested = {"a": nested}
    body = await create_customer(client, admin, first_name="Ada", attributes=nested)
    assert body["attributes"] == nested


async def test_messenger_is_an_alias_of_facebook(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """Messaging webhooks name Facebook's channel ``messenger``: accepted on input, stored
    and answered as ``facebook``; an unknown platform is 422 naming the allowed values."""
    upserted = await client.post(
        "/api/v1/customers/upsert?app_id=7&psid=99&platform=messenger", headers=admin
    )
    assert upserted.status_code == 201, upserted.text
    assert upserted.json()["customer"]["platform"] == "facebook"
    created = await client.post(
        "/api/v1/customers", json={"email": "m@example.com", "platform": "Messenger"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["platform"] == "facebook"
    stored = await db.fetch("SELECT DISTINCT platform FROM customers WHERE tenant_id = $1", tenant)
    assert [r["platform"] for r in stored] == ["facebook"]
    listed = await client.get("/api/v1/customers", params={"platform": "messenger"}, headers=admin)
    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    refused = await client.post(
        "/api/v1/customers", json={"email": "t@example.com", "platform": "tiktok"}, headers=admin
    )
    assert refused.status_code == 422
    assert "'instagram', 'facebook', 'web', 'whatsapp' or 'other'" in refused.json()["detail"]
    assert refused.json()["errors"][0]["loc"] == ["body", "platform"]


async def test_a_transition_to_the_current_state_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """Blocking a BLOCKED customer or unblocking an ACTIVE one answers 200 with the same
    version and ``blocked_at`` and records no event."""
    customer = await create_customer(client, admin, email="b@example.com")
    url = f"/api/v1/customers/{customer['id']}"
    unblocked = await client.post(f"{url}/unblock", headers=admin)
    assert unblocked.status_code == 200
    assert unblocked.json()["version"] == customer["version"]
    first = await client.post(f"{url}/block", json={"reason": "spam"}, headers=admin)
    assert first.status_code == 200
    again = await client.post(f"{url}/block", json={"reason": "other"}, headers=admin)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    types = [
        r["type"]
        for r in await db.fetch(
            "SELECT type FROM outbox_events WHERE tenant_id = $1 ORDER BY seq", tenant
        )
    ]
    assert types == ["customer.created", "customer.blocked"]


async def test_list_parameters_accept_their_camel_case_aliases(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """``pageSize``, ``sortBy``, ``sortOrder`` and the filters' camelCase names work in the
    query string as they do in bodies (API.md "Conventions")."""
    for n, email in enumerate(["c@example.com", "a@example.com", "b@example.com"]):
        await create_customer(client, admin, email=email, customer_type="VIP" if n else "RETAIL")
    camel = await client.get(
        "/api/v1/customers",
        params={"pageSize": 2, "sortBy": "email", "sortOrder": "asc", "customerType": "VIP"},
        headers=admin,
    )
    assert camel.status_code == 200, camel.text
    body = camel.json()
    assert [c["email"] for c in body["customers"]] == ["a@example.com", "b@example.com"]
    assert (body["page_size"], body["total"]) == (2, 2)
    snake = await client.get(
        "/api/v1/customers",
        params={"page_size": 2, "sort_by": "email", "sort_order": "asc", "customer_type": "VIP"},
        headers=admin,
    )
    assert snake.json() == body
    both = await client.get(
        "/api/v1/customers", params={"sort_by": "email", "sortBy": "last_name"}, headers=admin
    )
    assert both.status_code == 422
    assert both.json()["errors"] == [
        {"loc": ["query", "sort_by"], "msg": "sort_by and sortBy disagree", "type": "value_error"}
    ]


async def test_upsert_query_parameter_errors_name_the_query(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """An invalid field sent as a query parameter of /upsert is located in the query, in
    the same ``loc`` / ``detail`` format as any other 422; nothing is written."""
    response = await client.post(
        "/api/v1/customers/upsert?app_id=1&psid=2&marketing_opt_in=perhaps", headers=admin
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [["query", "marketing_opt_in"]]
    assert problem["detail"].startswith("query.marketing_opt_in: ")
    in_body = await client.post(
        "/api/v1/customers/upsert?app_id=1",
        json={"psid": "2", "marketing_opt_in": "perhaps"},
        headers=admin,
    )
    assert in_body.status_code == 422
    assert [e["loc"] for e in in_body.json()["errors"]] == [["body", "marketing_opt_in"]]
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("interaction", "occurred_at"),
        ("communications", "occurred_at"),
        ("consents", "captured_at"),
        ("orders", "placed_at"),
    ],
)
async def test_date_times_are_rfc_3339_strings_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: Any,
    tenant: str,
    db: asyncpg.Pool,
    path: str,
    field: str,
) -> None:
    """A number is not a date-time (``0`` was read as 1970-01-01): 422 naming the field,
    nothing written."""
    customer = await create_customer(client, admin, email="t@example.com")
    headers = await api_key_headers("service", tenant) if path == "orders" else admin
    body: dict[str, Any] = {field: 0}
    if path == "communications":
        body |= {"channel": "EMAIL", "direction": "INBOUND", "summary": "hi"}
    if path == "consents":
        body |= {"purpose": "email_marketing", "status": "granted", "source": "form"}
    if path == "orders":
        body |= {"order_id": "o-1", "total": "10.00", "currency": "USD", "status": "PAID"}
    send = client.patch if path == "interaction" else client.post
    response = await send(f"/api/v1/customers/{customer['id']}/{path}", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", field]]
    assert "RFC 3339" in response.json()["errors"][0]["msg"]
    events = await db.fetchval("SELECT count(*) FROM outbox_events WHERE tenant_id = $1", tenant)
    assert events == 1  # customer.created only


async def test_405_lists_every_method_of_the_resource(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """RFC 9110 §15.5.6: ``Allow`` names all the methods the resource supports, not just
    those of the first route that matched the path."""
    customer = await create_customer(client, admin, email="allow@example.com")
    response = await client.request("OPTIONS", f"/api/v1/customers/{customer['id']}", headers=admin)
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH, PUT"
    assert response.headers["content-type"] == "application/problem+json"
    collection = await client.request("PUT", "/api/v1/customers", headers=admin)
    assert collection.headers["allow"] == "GET, POST"


async def test_a_body_that_is_not_json_is_400_or_415(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """Malformed JSON is 400 saying where (line and column); JSON sent as another media
    type is 415; neither writes anything."""
    broken = await client.post(
        "/api/v1/customers",
        content=b'{"email": "a@example.com",\n "first_name": }',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400, broken.text
    problem = broken.json()
    assert (problem["line"], problem["column"]) == (2, 16)
    assert problem["detail"] == "the body is not valid JSON: Expecting value at line 2, column 16"
    plain = await client.post(
        "/api/v1/customers",
        content=b'{"email": "a@example.com"}',
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert plain.status_code == 415, plain.text
    assert plain.json()["detail"] == "this route takes application/json, not text/plain"
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


async def _chunks(data: bytes, size: int = 64 * 1024) -> Any:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """Without Content-Length (Transfer-Encoding: chunked) a 2 MB body is refused as 413,
    as it is with one; a small chunked body is served."""
    big = b'{"first_name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    headers = {**admin, "Content-Type": "application/json"}
    chunked = await client.post("/api/v1/customers", content=_chunks(big), headers=headers)
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["max_bytes"] == 1024 * 1024
    declared = await client.post("/api/v1/customers", content=big, headers=headers)
    assert declared.status_code == 413
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0
    small = await client.post(
        "/api/v1/customers", content=_chunks(b'{"first_name": "Ada"}', 4), headers=headers
    )
    assert small.status_code == 201, small.text
    assert small.json()["first_name"] == "Ada"
