"""Orders, appointments and stats over HTTP against the real database (API.md "Orders,
appointments, stats")."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from patron.app import create_app
from patron.auth.principal import Role
from patron.context import build_context
from patron.orders.stats import parse_tenant_currencies, tenant_currency
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, make_settings, outbox_rows


def _orders(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/orders"


def _appointments(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/appointments"


def _stats(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/stats"


@pytest.fixture
async def service(api_key_headers: ApiKeyFactory, tenant: str) -> dict[str, str]:
    return await api_key_headers(Role.SERVICE, tenant)


@pytest.fixture
async def customer(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    return await create_customer(client, admin, first_name="Ada", email="ada@example.com")


async def _record(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    customer_id: str,
    expect: int = 201,
    **body: Any,
) -> dict[str, Any]:
    response = await client.post(_orders(customer_id), json=body, headers=headers)
    assert response.status_code == expect, response.text
    out: dict[str, Any] = response.json()
    return out


async def _stats_of(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str
) -> dict[str, Any]:
    response = await client.get(_stats(customer_id), headers=headers)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


async def test_record_order_then_same_id_updates_without_double_counting(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    customer: dict[str, Any],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    cid = customer["id"]
    first = await _record(
        client, service, cid, order_id="A-1", total="19.99", placed_at="2026-03-01T10:00:00Z"
    )
    assert {k: first[k] for k in ("order_id", "total", "currency", "status", "customer_id")} == {
        "order_id": "A-1",
        "total": "19.99",
        "currency": "USD",
        "status": "PLACED",
        "customer_id": cid,
    }
    assert first["placed_at"] == "2026-03-01T10:00:00Z"
    again = await _record(client, service, cid, expect=200, order_id="A-1", status="PAID")
    assert (again["id"], again["status"], again["total"]) == (first["id"], "PAID", "19.99")
    rows = await db.fetch(
        "SELECT order_id, status FROM customer_orders WHERE tenant_id = $1", tenant
    )
    assert [(r["order_id"], r["status"]) for r in rows] == [("A-1", "PAID")]
    stats = await _stats_of(client, admin, cid)
    assert stats == {
        "total_orders": 1,
        "total_spent": "19.99",
        "average_order_value": "19.99",
        "lifetime_value": "19.99",
        "first_order_date": "2026-03-01",
        "last_order_date": "2026-03-01",
        "total_appointments": 0,
        "last_appointment_date": None,
        "currency": "USD",
        "other_currencies": [],
    }
    events = await outbox_rows(db, tenant, "customer.order_recorded")
    assert [(e["subject"], e["data"]["created"], e["data"]["order"]["status"]) for e in events] == [
        (cid, True, "PLACED"),
        (cid, False, "PAID"),
    ]
    assert events[1]["data"]["previous_status"] == "PLACED"
    assert events[1]["data"]["stats"]["lifetime_value"] == "19.99"


async def test_unchanged_record_is_200_and_writes_nothing(
    client: httpx.AsyncClient,
    service: dict[str, str],
    customer: dict[str, Any],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    cid = customer["id"]
    body = {"order_id": "B-1", "total": 10, "currency": "usd", "status": "PAID"}
    created = await _record(client, service, cid, **body)
    same = await _record(client, service, cid, expect=200, **body)
    assert same == created
    assert len(await outbox_rows(db, tenant, "customer.order_recorded")) == 1


async def test_cancelled_and_refunded_orders_leave_the_stats(
    client: httpx.AsyncClient, service: dict[str, str], customer: dict[str, Any]
) -> None:
    cid = customer["id"]
    await _record(
        client,
        service,
        cid,
        order_id="1",
        total="100.00",
        status="PAID",
        placed_at="2026-01-01T00:00:00Z",
    )
    await _record(
        client, service, cid, order_id="2", total="50.00", placed_at="2026-02-01T00:00:00Z"
    )
    await _record(
        client,
        service,
        cid,
        order_id="3",
        total="30.00",
        status="FULFILLED",
        placed_at="2026-03-01T00:00:00Z",
    )
    stats = await _stats_of(client, service, cid)
    assert (stats["total_orders"], stats["total_spent"], stats["lifetime_value"]) == (
        3,
        "180.00",
        "130.00",
    )
    assert stats["average_order_value"] == "60.00"
    await _record(client, service, cid, expect=200, order_id="3", status="REFUNDED")
    await _record(client, service, cid, expect=200, order_id="1", status="CANCELLED")
    stats = await _stats_of(client, service, cid)
    assert {
        k: stats[k]
        for k in (
            "total_orders",
            "total_spent",
            "lifetime_value",
            "average_order_value",
            "first_order_date",
            "last_order_date",
        )
    } == {
        "total_orders": 1,
        "total_spent": "50.00",
        "lifetime_value": "0.00",
        "average_order_value": "50.00",
        "first_order_date": "2026-02-01",
        "last_order_date": "2026-02-01",
    }
    # back to PLACED counts again (status changes both ways)
    await _record(client, service, cid, expect=200, order_id="1", status="PLACED")
    stats = await _stats_of(client, service, cid)
    assert (stats["total_orders"], stats["total_spent"], stats["first_order_date"]) == (
        2,
        "150.00",
        "2026-01-01",
    )


async def test_other_currency_is_kept_apart(
    client: httpx.AsyncClient, service: dict[str, str], customer: dict[str, Any]
) -> None:
    cid = customer["id"]
    await _record(
        client, service, cid, order_id="U", total="10.50", placed_at="2026-01-02T00:00:00Z"
    )
    await _record(
        client,
        service,
        cid,
        order_id="E1",
        total="20",
        currency="EUR",
        status="PAID",
        placed_at="2026-01-03T00:00:00Z",
    )
    await _record(
        client,
        service,
        cid,
        order_id="E2",
        total="5.25",
        currency="EUR",
        placed_at="2026-01-04T00:00:00Z",
    )
    await _record(
        client,
        service,
        cid,
        order_id="J",
        total=1200,
        currency="JPY",
        placed_at="2026-01-05T00:00:00Z",
    )
    stats = await _stats_of(client, service, cid)
    assert (stats["currency"], stats["total_orders"], stats["total_spent"]) == ("USD", 1, "10.50")
    assert stats["last_order_date"] == "2026-01-02"
    assert stats["other_currencies"] == [
        {
            "currency": "EUR",
            "total_orders": 2,
            "total_spent": "25.25",
            "average_order_value": "12.62",  # 12.625 rounded half-even (kit.money)
            "lifetime_value": "20.00",
            "first_order_date": "2026-01-03",
            "last_order_date": "2026-01-04",
        },
        {
            "currency": "JPY",
            "total_orders": 1,
            "total_spent": "1200",
            "average_order_value": "1200",
            "lifetime_value": "0",
            "first_order_date": "2026-01-05",
            "last_order_date": "2026-01-05",
        },
    ]
    # the customer JSON's stats show the tenant currency only
    customer_json = (await client.get(f"/api/v1/customers/{cid}", headers=service)).json()
    assert customer_json["stats"]["total_spent"] == "10.50"
    assert customer_json["stats"]["total_orders"] == 1
    assert customer_json["stats"]["currency"] == "USD"


async def test_money_formatting_jpy_and_usd(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    customer: dict[str, Any],
) -> None:
    cid = customer["id"]
    usd = await _record(client, service, cid, order_id="m1", total=2750)
    assert usd["total"] == "2750.00"
    jpy = await _record(client, service, cid, order_id="m2", total="1200", currency="JPY")
    assert jpy["total"] == "1200"
    cents = await _record(client, service, cid, order_id="m3", total=0.1)
    assert cents["total"] == "0.10"
    listed = (await client.get(_orders(cid), headers=admin)).json()
    assert sorted(o["total"] for o in listed["orders"]) == ["0.10", "1200", "2750.00"]


def test_tenant_currency_from_settings(tenant: str) -> None:
    assert parse_tenant_currencies(f"{tenant}:jpy, other:EUR") == {tenant: "JPY", "other": "EUR"}
    settings = make_settings(tenant_currencies=f"{tenant}:JPY", default_currency="EUR")
    assert tenant_currency(settings, tenant) == "JPY"
    assert tenant_currency(settings, "someone-else") == "EUR"
    with pytest.raises(ValidationError, match="tenant:CUR"):
        make_settings(tenant_currencies="no-currency")
    with pytest.raises(ValidationError):
        make_settings(default_currency="dollars")


async def test_stats_in_the_tenants_own_currency(
    database_url: str, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    settings = make_settings(tenant_currencies=f"{tenant}:JPY")
    ctx = build_context(settings, database_url)
    transport = httpx.ASGITransport(app=create_app(settings, context=ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as jp:
            admin = await api_key_headers(Role.ADMIN, tenant)
            service = await api_key_headers(Role.SERVICE, tenant)
            cid = (await create_customer(jp, admin, first_name="Yui"))["id"]
            default = await _record(jp, service, cid, order_id="y1", total=1500)
            assert (default["currency"], default["total"]) == ("JPY", "1500")
            await _record(jp, service, cid, order_id="y2", total="9.99", currency="USD")
            stats = await _stats_of(jp, admin, cid)
            assert (stats["currency"], stats["total_spent"], stats["total_orders"]) == (
                "JPY",
                "1500",
                1,
            )
            assert [(o["currency"], o["total_spent"]) for o in stats["other_currencies"]] == [
                ("USD", "9.99")
            ]
            shown = (await jp.get(f"/api/v1/customers/{cid}", headers=admin)).json()["stats"]
            assert (shown["currency"], shown["total_spent"]) == ("JPY", "1500")
    finally:
        await ctx.close()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"order_id": "x"}, ["body", "total"]),
        ({"order_id": "x", "total": "abc"}, ["body", "total"]),
        ({"order_id": "x", "total": "-1"}, ["body", "total"]),
        ({"order_id": "x", "total": "NaN"}, ["body", "total"]),
        ({"order_id": "x", "total": "1.005"}, ["body", "total"]),
        ({"order_id": "x", "total": "1.5", "currency": "JPY"}, ["body", "total"]),
        ({"order_id": "x", "total": "1", "currency": "XYZ"}, ["body", "currency"]),
        ({"order_id": "x", "total": "1", "status": "SHIPPED"}, ["body", "status"]),
        (
            {"order_id": "x", "total": "1", "placed_at": "2026-01-01T00:00:00"},
            ["body", "placed_at"],
        ),
        ({"order_id": "", "total": "1"}, ["body", "order_id"]),
        ({"order_id": "x", "total": "1", "colour": "red"}, ["body", "colour"]),
        ({"total": "1"}, ["body", "order_id"]),
        ({"order_id": "x\u0000", "total": "1"}, ["body", "order_id"]),
        ({"order_id": "x", "total": "1", "metadata": {"k": "a\u0000"}}, ["body", "metadata"]),
        ({"order_id": "x", "total": "1", "metadata": {"n": 1e300}}, ["body", "metadata"]),
        ({"order_id": "x", "total": "1", "metadata": []}, ["body", "metadata"]),
        ({"order_id": "x", "total": True}, ["body", "total"]),
        ({"order_id": "x", "total": "1e20"}, ["body", "total"]),
    ],
)
async def test_bad_orders_are_422(
    client: httpx.AsyncClient,
    service: dict[str, str],
    customer: dict[str, Any],
    tenant: str,
    db: asyncpg.Pool,
    body: dict[str, Any],
    loc: list[str],
) -> None:
    response = await client.post(_orders(customer["id"]), json=body, headers=service)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [e["loc"] for e in response.json()["errors"]]
    assert (
        await db.fetchval("SELECT count(*) FROM customer_orders WHERE tenant_id = $1", tenant) == 0
    )
    assert await outbox_rows(db, tenant, "customer.order_recorded") == []


async def test_camel_case_body_accepted(
    client: httpx.AsyncClient, service: dict[str, str], customer: dict[str, Any]
) -> None:
    body = await _record(
        client,
        service,
        customer["id"],
        orderId="c-1",
        total=5,
        placedAt="2026-05-05T05:05:05+02:00",
    )
    assert (body["order_id"], body["placed_at"]) == ("c-1", "2026-05-05T03:05:05Z")


async def test_order_id_of_another_customer_is_409(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    customer: dict[str, Any],
    db: asyncpg.Pool,
) -> None:
    other = await create_customer(client, admin, first_name="Bob")
    await _record(client, service, customer["id"], order_id="shared", total=1)
    response = await client.post(
        _orders(other["id"]), json={"order_id": "shared", "total": 2}, headers=service
    )
    assert response.status_code == 409
    row = await db.fetchrow(
        "SELECT customer_id, total FROM customer_orders WHERE order_id = 'shared'"
    )
    assert (str(row["customer_id"]), row["total"]) == (customer["id"], 1)
    assert (await _stats_of(client, service, other["id"]))["total_orders"] == 0


async def test_list_orders_newest_first_filter_and_pages(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    customer: dict[str, Any],
) -> None:
    cid = customer["id"]
    for i in range(5):
        await _record(
            client,
            service,
            cid,
            order_id=f"L{i}",
            total=i,
            status="PAID" if i % 2 else "PLACED",
            placed_at=f"2026-01-0{i + 1}T00:00:00Z",
        )
    page = (await client.get(_orders(cid), params={"page_size": 2}, headers=admin)).json()
    assert [o["order_id"] for o in page["orders"]] == ["L4", "L3"]
    assert (page["total"], page["total_pages"]) == (5, 3)
    rest = (
        await client.get(
            _orders(cid), params={"page_size": 10, "cursor": page["next_cursor"]}, headers=admin
        )
    ).json()
    assert [o["order_id"] for o in rest["orders"]] == ["L2", "L1", "L0"]
    assert rest["next_cursor"] is None
    paid = (await client.get(_orders(cid), params={"status": "PAID"}, headers=admin)).json()
    assert [o["order_id"] for o in paid["orders"]] == ["L3", "L1"]


async def test_appointments_record_update_and_stats(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    customer: dict[str, Any],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    cid = customer["id"]
    url = _appointments(cid)
    first = await client.post(
        url,
        json={"appointment_id": "ap-1", "service": "Haircut", "starts_at": "2026-04-01T09:00:00Z"},
        headers=service,
    )
    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["service"]) == ("BOOKED", "Haircut")
    second = await client.post(
        url,
        json={"appointment_id": "ap-2", "service": "Colour", "starts_at": "2026-04-10T09:00:00Z"},
        headers=service,
    )
    assert second.status_code == 201
    stats = await _stats_of(client, admin, cid)
    assert (stats["total_appointments"], stats["last_appointment_date"]) == (2, "2026-04-10")
    cancelled = await client.post(
        url, json={"appointmentId": "ap-2", "status": "CANCELLED"}, headers=service
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    stats = await _stats_of(client, admin, cid)
    assert (stats["total_appointments"], stats["last_appointment_date"]) == (1, "2026-04-01")
    listed = (await client.get(url, headers=admin)).json()
    assert [a["appointment_id"] for a in listed["appointments"]] == ["ap-2", "ap-1"]
    events = await outbox_rows(db, tenant, "customer.appointment_recorded")
    assert [e["data"]["appointment"]["status"] for e in events] == ["BOOKED", "BOOKED", "CANCELLED"]
    missing = await client.post(url, json={"appointment_id": "ap-3"}, headers=service)
    assert missing.status_code == 422
    assert {tuple(e["loc"]) for e in missing.json()["errors"]} == {
        ("body", "service"),
        ("body", "starts_at"),
    }
    nul = await client.post(
        url,
        json={"appointment_id": "ap-3", "service": "a\u0000", "starts_at": "2026-04-01T09:00:00Z"},
        headers=service,
    )
    assert nul.status_code == 422
    bad = await client.post(
        url,
        json={
            "appointment_id": "ap-3",
            "service": "x",
            "starts_at": "2026-04-01T09:00:00Z",
            "status": "DONE",
        },
        headers=service,
    )
    assert bad.status_code == 422


async def test_roles(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    token_headers: TokenFactory,
    tenant: str,
    customer: dict[str, Any],
    db: asyncpg.Pool,
) -> None:
    cid = customer["id"]
    body = {"order_id": "R-1", "total": 1}
    for role in (Role.ADMIN, Role.MANAGER, Role.AGENT):
        headers = await api_key_headers(role, tenant)
        assert (await client.post(_orders(cid), json=body, headers=headers)).status_code == 403
        assert (await client.get(_orders(cid), headers=headers)).status_code == 200
        assert (await client.get(_stats(cid), headers=headers)).status_code == 200
    service = await api_key_headers(Role.SERVICE, tenant)
    assert (await client.get(_orders(cid), headers=service)).status_code == 403
    assert (await client.post(_orders(cid), json=body, headers=service)).status_code == 201
    me = token_headers("customer", tenant, sub=cid)
    assert (await client.get(_orders(cid), headers=me)).status_code == 403
    assert (await client.post(_orders(cid), json=body, headers=me)).status_code == 403
    assert (
        await db.fetchval("SELECT count(*) FROM customer_orders WHERE tenant_id = $1", tenant) == 1
    )


async def test_customer_reads_own_stats_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    service: dict[str, str],
    token_headers: TokenFactory,
    tenant: str,
    customer: dict[str, Any],
) -> None:
    cid = customer["id"]
    await _record(client, service, cid, order_id="S-1", total="7.00", status="PAID")
    me = token_headers("customer", tenant, sub=cid)
    own = await _stats_of(client, me, cid)
    assert (own["total_orders"], own["total_spent"]) == (1, "7.00")
    other = await create_customer(client, admin, first_name="Other")
    assert (await client.get(_stats(other["id"]), headers=me)).status_code == 404


async def test_unknown_and_other_tenants_customer_is_404(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    service: dict[str, str],
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    theirs = await create_customer(
        client, await api_key_headers(Role.ADMIN, other_tenant), first_name="T"
    )
    for cid in (theirs["id"], str(uuid.uuid4())):
        response = await client.post(
            _orders(cid), json={"order_id": "x", "total": 1}, headers=service
        )
        assert response.status_code == 404
        assert (await client.get(_stats(cid), headers=service)).status_code == 404
    assert (
        await db.fetchval(
            "SELECT count(*) FROM customer_orders WHERE customer_id = $1", uuid.UUID(theirs["id"])
        )
        == 0
    )


async def test_stats_of_customer_without_orders(
    client: httpx.AsyncClient, service: dict[str, str], customer: dict[str, Any]
) -> None:
    stats = await _stats_of(client, service, customer["id"])
    assert stats == {
        "total_orders": 0,
        "total_spent": "0.00",
        "average_order_value": "0.00",
        "lifetime_value": "0.00",
        "first_order_date": None,
        "last_order_date": None,
        "total_appointments": 0,
        "last_appointment_date": None,
        "currency": "USD",
        "other_currencies": [],
    }
