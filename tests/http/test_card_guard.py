"""Full card numbers are refused in every write body whose content Patron stores
(ARCHITECTURE.md "Data"), by the one guard :class:`patron.kit.cards.CardNumberGuard`:
422 naming the field, nothing written, the number neither echoed nor logged."""

from __future__ import annotations

import io
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, create_customer, outbox_rows

PAN = "4111 1111 1111 1111"
SECRETS = (PAN, "4111111111111111", "5555-5555-5555-4444", "5555555555554444")
CUSTOMERS = "/api/v1/customers"


def _sub(path: str) -> str:
    return CUSTOMERS + "/{id}" + path


ADDRESS = {"address_type": "SHIPPING", "address_line1": "1 Main St", "country": "GB"}

# name: (method, path ({id}: an existing customer), JSON body or None, query, loc, table)
CASES: dict[str, tuple[str, str, dict[str, Any] | None, dict[str, str], list[Any], str]] = {
    "create attributes": (
        "POST",
        CUSTOMERS,
        {"first_name": "Ada", "attributes": {"note": f"card {PAN}"}},
        {},
        ["body", "attributes"],
        "customers",
    ),
    "create preferences list": (
        "POST",
        CUSTOMERS,
        {"preferences": {"cards": ["x", "5555-5555-5555-4444"]}},
        {},
        ["body", "preferences"],
        "customers",
    ),
    "create name": (
        "POST",
        CUSTOMERS,
        {"first_name": PAN},
        {},
        ["body", "first_name"],
        "customers",
    ),
    "create tags": ("POST", CUSTOMERS, {"tags": ["VIP", PAN]}, {}, ["body", "tags"], "customers"),
    "create attribute key": (
        "POST",
        CUSTOMERS,
        {"attributes": {"4111111111111111": "x"}},
        {},
        ["body", "attributes"],
        "customers",
    ),
    "put attributes": (
        "PUT",
        _sub(""),
        {"attributes": {"n": 5555555555554444}},
        {},
        ["body", "attributes"],
        "customers",
    ),
    "patch last name": (
        "PATCH",
        _sub(""),
        {"last_name": PAN},
        {},
        ["body", "last_name"],
        "customers",
    ),
    "upsert body": (
        "POST",
        CUSTOMERS + "/upsert",
        {"app_id": "1", "psid": "p-card", "attributes": {"a": PAN}},
        {},
        ["body", "attributes"],
        "customers",
    ),
    "upsert query": (
        "POST",
        CUSTOMERS + "/upsert",
        None,
        {"app_id": "1", "psid": "p-card-q", "first_name": "4111111111111111"},
        ["query", "first_name"],
        "customers",
    ),
    "block reason": (
        "POST",
        _sub("/block"),
        {"reason": f"paid with {PAN}"},
        {},
        ["body", "reason"],
        "customers",
    ),
    "note": (
        "POST",
        _sub("/notes"),
        {"note": f"card {PAN} exp 12/30"},
        {},
        ["body", "note"],
        "customer_notes",
    ),
    "communication summary": (
        "POST",
        _sub("/communications"),
        {"channel": "EMAIL", "direction": "INBOUND", "summary": f"read out {PAN}"},
        {},
        ["body", "summary"],
        "customer_communications",
    ),
    "address line": (
        "POST",
        _sub("/addresses"),
        {**ADDRESS, "address_line2": PAN},
        {},
        ["body", "address_line2"],
        "customer_addresses",
    ),
    "consent user agent": (
        "POST",
        _sub("/consents"),
        {"purpose": "email_marketing", "status": "granted", "user_agent": PAN},
        {},
        ["body", "user_agent"],
        "customer_consents",
    ),
    "tags": (
        "POST",
        _sub("/tags"),
        {"labels": ["ok", PAN]},
        {},
        ["body", "labels"],
        "customer_tags",
    ),
    "order metadata": (
        "POST",
        _sub("/orders"),
        {"order_id": "o-1", "total": "10.00", "currency": "EUR", "metadata": {"pan": PAN}},
        {},
        ["body", "metadata"],
        "customer_orders",
    ),
    "appointment service": (
        "POST",
        _sub("/appointments"),
        {"appointment_id": "a-1", "service": PAN, "starts_at": "2026-12-24T10:00:00Z"},
        {},
        ["body", "service"],
        "customer_appointments",
    ),
    "webhook description": (
        "POST",
        "/api/v1/webhook-endpoints",
        {"url": "https://93.184.215.14/hooks", "description": f"card {PAN}"},
        {},
        ["body", "description"],
        "webhook_endpoints",
    ),
}


async def _rows(db: asyncpg.Pool, table: str, tenant: str) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        f"SELECT xmin::text AS row_version, t.* FROM {table} t WHERE tenant_id = $1 ORDER BY t::text",  # noqa: S608 - table from CASES
        tenant,
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_card_number_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    captured_logs: io.StringIO,
    api_key_headers: ApiKeyFactory,
    case: str,
) -> None:
    method, path, body, query, loc, table = CASES[case]
    # orders and appointments are recorded by shops (the service role)
    recorder = "/orders" in path or "/appointments" in path
    caller = await api_key_headers(Role.SERVICE, tenant) if recorder else admin
    customer = await create_customer(client, admin, first_name="Holder", email="h@example.com")
    before = (await _rows(db, table, tenant), await outbox_rows(db, tenant))
    trace = uuid.uuid4().hex
    response = await client.request(
        method,
        path.format(id=customer["id"]),
        json=body,
        params=query,
        headers={**caller, "X-Trace-Id": trace},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, "card_number_refused")]
    assert "card number" in problem["detail"]
    assert (await _rows(db, table, tenant), await outbox_rows(db, tenant)) == before
    logged = captured_logs.getvalue()
    assert trace in logged  # the request was logged...
    for secret in SECRETS:
        assert secret not in response.text
        assert secret not in logged  # ...without the number


async def test_the_problem_names_the_path_inside_a_free_form_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        CUSTOMERS,
        json={"attributes": {"billing": {"cards": ["ok", PAN]}}},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert "attributes.billing.cards[1]" in response.json()["errors"][0]["msg"]


@pytest.mark.parametrize(
    "fields",
    [
        # identifiers and contact points can be 13-19 Luhn-valid digits by chance
        {"app_id": "1", "psid": "4111111111111111"},
        {"external_ids": {"shopify": "4111111111111111"}},
        {"phone": "+4930123456788", "first_name": "Phone"},
        # short or non-Luhn digit runs in content are fine
        {"attributes": {"order_ref": "4111111111111112", "zip": "10115"}},
        {"first_name": "Ada", "attributes": {"seats": 4111}},
    ],
)
async def test_identifiers_and_non_card_digits_are_accepted(
    client: httpx.AsyncClient, admin: dict[str, str], fields: dict[str, Any]
) -> None:
    response = await client.post(CUSTOMERS, json=fields, headers=admin)
    assert response.status_code == 201, response.text


async def test_the_card_check_answers_before_other_errors_could_echo_the_number(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # birth_date is not a date: the card check on it answers instead of a date error
    response = await client.post(CUSTOMERS, json={"birth_date": PAN}, headers=admin)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["body", "birth_date"], "card_number_refused")
    ]
    assert PAN not in response.text
