"""Customer addresses over HTTP against the real database (API.md "Profile data")."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows

US = {
    "address_type": "SHIPPING",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "address_line1": "1600 Amphitheatre Pkwy",
    "city": "Mountain View",
    "state": "ca",
    "postal_code": "94043",
    "country": "us",
    "phone": "(650) 253-0000",
}


def _url(customer_id: str, address_id: str | None = None) -> str:
    base = f"/api/v1/customers/{customer_id}/addresses"
    return f"{base}/{address_id}" if address_id else base


async def _rows(db: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM customer_addresses WHERE customer_id = $1 ORDER BY created_at, id",
            uuid.UUID(customer_id),
        )
    )


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(_url(customer_id), json={**US, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_add_normalises_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    body = await _add(client, admin, customer["id"], isDefault=True)
    assert body["country"] == "US"
    assert body["state"] == "CA"
    assert body["city"] == "Mountain View"
    assert body["postal_code"] == "94043"
    assert body["phone"] == "+16502530000"
    assert body["is_default"] is True
    assert body["warnings"] == []
    rows = await _rows(db, customer["id"])
    assert [(str(r["id"]), r["tenant_id"], r["state"]) for r in rows] == [
        (body["id"], tenant, "CA")
    ]
    events = await outbox_rows(db, tenant, "customer.address_added")
    assert len(events) == 1
    assert events[0]["subject"] == customer["id"]
    read = await client.get(_url(customer["id"], body["id"]), headers=admin)
    assert read.status_code == 200
    assert read.json() == {**body, "warnings": []}


async def test_second_default_unsets_the_first_in_the_same_type(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    first = await _add(client, admin, customer["id"], is_default=True)
    billing = await _add(client, admin, customer["id"], address_type="BILLING", is_default=True)
    second = await _add(client, admin, customer["id"], is_default=True, address_line1="2 Main St")
    rows = {
        str(r["id"]): (r["address_type"], r["is_default"]) for r in await _rows(db, customer["id"])
    }
    assert rows == {
        first["id"]: ("SHIPPING", False),
        billing["id"]: ("BILLING", True),
        second["id"]: ("SHIPPING", True),
    }
    # and back again through PUT
    response = await client.put(
        _url(customer["id"], first["id"]), json={"is_default": True}, headers=admin
    )
    assert response.status_code == 200, response.text
    rows = {str(r["id"]): r["is_default"] for r in await _rows(db, customer["id"])}
    assert rows == {first["id"]: True, billing["id"]: True, second["id"]: False}


async def test_list_is_paged_with_cursor(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    made = [
        (await _add(client, admin, customer["id"], address_line1=f"{n} Main St"))["id"]
        for n in range(3)
    ]
    page1 = (await client.get(_url(customer["id"]), params={"page_size": 2}, headers=admin)).json()
    made.reverse()  # newest first
    assert [a["id"] for a in page1["addresses"]] == made[:2]
    assert (page1["total"], page1["page"], page1["page_size"], page1["total_pages"]) == (3, 1, 2, 2)
    assert page1["next_cursor"]
    page2 = (
        await client.get(
            _url(customer["id"]),
            params={"page_size": 2, "cursor": page1["next_cursor"]},
            headers=admin,
        )
    ).json()
    assert [a["id"] for a in page2["addresses"]] == made[2:]
    assert page2["next_cursor"] is None
    bad = await client.get(_url(customer["id"]), params={"cursor": "nope"}, headers=admin)
    assert bad.status_code == 422


async def test_invalid_postal_code_is_422_and_nothing_written(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await client.post(
        _url(customer["id"]), json={**US, "postal_code": "9404"}, headers=admin
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "postal_code"]]
    assert await _rows(db, customer["id"]) == []
    assert await outbox_rows(db, tenant, "customer.address_added") == []


async def test_missing_required_field_for_the_country_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    body = {k: v for k, v in US.items() if k not in {"state", "postal_code"}}
    response = await client.post(_url(customer["id"]), json=body, headers=admin)
    assert response.status_code == 422
    assert sorted(e["loc"] for e in response.json()["errors"]) == [
        ["body", "postal_code"],
        ["body", "state"],
    ]
    assert await _rows(db, customer["id"]) == []
    assert await outbox_rows(db, tenant, "customer.address_added") == []


async def test_unknown_country_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await client.post(_url(customer["id"]), json={**US, "country": "XX"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "country"]
    assert await _rows(db, customer["id"]) == []
    assert await outbox_rows(db, tenant, "customer.address_added") == []


async def test_doubted_region_is_kept_with_a_warning(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Li")
    body = await _add(
        client,
        admin,
        customer["id"],
        address_line1="1 Chang'an Ave",
        city="Dongcheng",
        state="Atlantis Province",
        postal_code="100010",
        country="CN",
        phone=None,
    )
    assert body["state"] == "Atlantis Province"
    assert body["city"] == "Dongcheng"
    assert body["postal_code"] == "100010"
    assert [(w["field"], w["code"]) for w in body["warnings"]] == [("state", "invalid")]
    rows = await _rows(db, customer["id"])
    assert [r["state"] for r in rows] == ["Atlantis Province"]


async def test_update_validates_the_whole_address_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    made = await _add(client, admin, customer["id"])
    bad = await client.put(_url(customer["id"], made["id"]), json={"country": "GB"}, headers=admin)
    assert bad.status_code == 422  # 94043 is no UK postcode
    assert bad.json()["errors"][0]["loc"] == ["body", "postal_code"]
    null = await client.put(
        _url(customer["id"], made["id"]), json={"address_line1": None}, headers=admin
    )
    assert null.status_code == 422
    assert (await _rows(db, customer["id"]))[0]["country"] == "US"
    assert await outbox_rows(db, tenant, "customer.address_updated") == []
    ok = await client.put(
        _url(customer["id"], made["id"]),
        json={
            "country": "GB",
            "postalCode": "sw1a 2aa",
            "city": "London",
            "state": None,
            "phone": None,
        },
        headers=admin,
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["country"], ok.json()["postal_code"]) == ("GB", "SW1A 2AA")
    assert len(await outbox_rows(db, tenant, "customer.address_updated")) == 1


async def test_delete_removes_row_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    made = await _add(client, admin, customer["id"])
    response = await client.delete(_url(customer["id"], made["id"]), headers=admin)
    assert response.status_code == 204
    assert await _rows(db, customer["id"]) == []
    assert len(await outbox_rows(db, tenant, "customer.address_removed")) == 1
    again = await client.delete(_url(customer["id"], made["id"]), headers=admin)
    assert again.status_code == 404


async def test_customer_token_manages_own_addresses_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    token_headers: TokenFactory,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    other = await create_customer(client, admin, first_name="Other")
    mine = token_headers("customer", tenant, sub=me["id"])
    made = await _add(client, mine, me["id"])
    assert (await client.get(_url(me["id"]), headers=mine)).json()["total"] == 1
    theirs = await _add(client, admin, other["id"])
    assert (await client.get(_url(other["id"]), headers=mine)).status_code == 404
    assert (await client.get(_url(other["id"], theirs["id"]), headers=mine)).status_code == 404
    # my customer id with someone else's address id: 404
    assert (await client.get(_url(me["id"], theirs["id"]), headers=mine)).status_code == 404
    denied = await client.post(_url(other["id"]), json=US, headers=mine)
    assert denied.status_code == 404
    assert len(await _rows(db, other["id"])) == 1
    assert (await client.delete(_url(me["id"], made["id"]), headers=mine)).status_code == 204


async def test_other_tenant_address_is_404_and_untouched(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    owner = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_customer(client, owner, first_name="Theirs")
    address = await _add(client, owner, theirs["id"])
    url = _url(theirs["id"], address["id"])
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.put(url, json={"city": "X"}, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404
    assert (await client.post(_url(theirs["id"]), json=US, headers=admin)).status_code == 404
    rows = await _rows(db, theirs["id"])
    assert [(str(r["id"]), r["city"]) for r in rows] == [(address["id"], "Mountain View")]


async def test_doubted_city_is_kept_with_a_warning(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Li")
    body = await _add(
        client,
        admin,
        customer["id"],
        address_line1="1 Chang'an Ave",
        city="Newtown Village",
        state="Beijing Shi",
        postal_code="100010",
        country="CN",
        phone=None,
    )
    assert body["city"] == "Newtown Village"
    assert body["state"]
    assert [(w["field"], w["code"]) for w in body["warnings"]] == [("city", "invalid")]
    rows = await _rows(db, customer["id"])
    assert [r["city"] for r in rows] == ["Newtown Village"]
    # a read shows the stored address without warnings
    read = await client.get(_url(customer["id"], body["id"]), headers=admin)
    assert read.json()["warnings"] == []


async def test_address_not_found_renders_its_problem_body(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """AddressNotFound answers the problem body the routes always gave (read, change,
    remove), and nothing is written."""
    customer = await create_customer(client, admin, first_name="Ada")
    unknown = str(uuid.uuid4())
    for method, kwargs in (("GET", {}), ("PUT", {"json": {"city": "X"}}), ("DELETE", {})):
        response = await client.request(
            method, _url(customer["id"], unknown), headers=admin, **kwargs
        )
        assert response.status_code == 404, method
        assert {k: v for k, v in response.json().items() if k != "trace_id"} == {
            "type": "/problems/not-found",
            "title": "Not Found",
            "status": 404,
            "detail": "address not found",
            "address_id": unknown,
        }
    assert await _rows(db, customer["id"]) == []
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]
