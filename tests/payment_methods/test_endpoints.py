"""Payment methods over HTTP against the real database (API.md "Profile data")."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from patron.auth.principal import Role
from patron.context import AppContext
from patron.payment_methods.service import REFERENCE_CONTEXT
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows

NEXT_YEAR = datetime.now(UTC).year + 1
TOKEN = "pm_1Nv0abcdefghWXYZ"


def url(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/payment-methods"


def card(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "stripe",
        "provider_reference": TOKEN,
        "method_type": "CARD",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": NEXT_YEAR,
    }
    body.update(overrides)
    return body


async def rows(db: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM payment_methods WHERE customer_id = $1 ORDER BY id",
            uuid.UUID(customer_id),
        )
    )


async def add_address(db: asyncpg.Pool, tenant: str, customer_id: str) -> str:
    address_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO customer_addresses (id, tenant_id, customer_id, address_type, is_default,"
        " address_line1, country) VALUES ($1, $2, $3, 'BILLING', false, '1 Main St', 'US')",
        address_id,
        tenant,
        uuid.UUID(customer_id),
    )
    return str(address_id)


async def test_add_returns_masked_reference_and_stores_it_encrypted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    app_ctx: AppContext,
) -> None:
    me = await create_customer(client, admin, first_name="Pay")
    response = await client.post(url(me["id"]), json=card(), headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["provider_reference"] == "****WXYZ"
    assert TOKEN not in response.text
    assert (body["provider"], body["method_type"], body["brand"], body["last4"]) == (
        "stripe",
        "CARD",
        "visa",
        "4242",
    )
    assert (body["exp_month"], body["exp_year"], body["is_default"]) == (12, NEXT_YEAR, False)
    [row] = await rows(db, me["id"])
    assert row["tenant_id"] == tenant
    assert TOKEN.encode() not in bytes(row["provider_reference_encrypted"])
    assert (
        app_ctx.keyring.decrypt(bytes(row["provider_reference_encrypted"]), REFERENCE_CONTEXT)
        == TOKEN
    )
    [event] = await outbox_rows(db, tenant, "customer.payment_method_added")
    assert event["data"]["payment_method"]["id"] == body["id"]
    assert TOKEN not in json.dumps(event["data"])

    listed = await client.get(url(me["id"]), headers=admin)
    assert listed.status_code == 200
    page = listed.json()
    assert [pm["id"] for pm in page["payment_methods"]] == [body["id"]]
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (1, 1, 20, 1)
    assert page["next_cursor"] is None
    assert TOKEN not in listed.text


async def test_short_reference_is_fully_masked(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="Short")
    response = await client.post(
        url(me["id"]), json=card(provider_reference="tok_ab12"), headers=admin
    )
    assert response.status_code == 201
    assert response.json()["provider_reference"] == "****"


CARD_BODIES = {
    "reference plain": (
        card(provider_reference="4111111111111111"),
        ["body", "provider_reference"],
    ),
    "reference spaced": (
        card(provider_reference="tok 4111 1111 1111 1111"),
        ["body", "provider_reference"],
    ),
    "brand dashed": (card(brand="5555-5555-5555-4444"), ["body", "brand"]),
    "camelCase field": (
        {
            **{k: v for k, v in card().items() if k != "provider_reference"},
            "providerReference": "378282246310005",
        },
        ["body", "providerReference"],
    ),
    "unknown field": (card(note="card 4111 1111 1111 1111 exp 12/30"), ["body", "note"]),
    "nested unknown": (
        card(meta={"raw": ["x", "6011-0009-9013-9424"]}),
        ["body", "meta", "raw", 1],
    ),
    "number value": (card(pan=4111111111111111), ["body", "pan"]),
    "as a key": (card(**{"4111111111111111": "x"}), ["body", "<key>"]),
}


@pytest.mark.parametrize("case", list(CARD_BODIES), ids=list(CARD_BODIES))
async def test_card_number_anywhere_is_refused_and_never_stored_or_logged(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    captured_logs: io.StringIO,
    case: str,
) -> None:
    body, loc = CARD_BODIES[case]
    trace = uuid.uuid4().hex
    me = await create_customer(client, admin, first_name="Leaky")
    response = await client.post(url(me["id"]), json=body, headers={**admin, "X-Trace-Id": trace})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert problem["errors"][0]["type"] == "card_number_refused"
    secrets = {
        "4111111111111111",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
        "6011-0009-9013-9424",
        "5555555555554444",
        "6011000990139424",
    }
    for secret in secrets:
        assert secret not in response.text
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, "customer.payment_method_added") == []
    logged = captured_logs.getvalue()
    assert trace in logged  # the request was logged...
    for secret in secrets:
        assert secret not in logged  # ...without the number


async def test_card_number_is_refused_before_schema_errors_could_echo_it(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Echo")
    # exp_month is invalid too: the card check answers first, and no error carries input.
    response = await client.post(
        url(me["id"]), json=card(exp_month="4111111111111111"), headers=admin
    )
    assert response.status_code == 422
    assert "4111111111111111" not in response.text
    assert await rows(db, me["id"]) == []


async def test_luhn_invalid_digits_are_an_ordinary_string(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Fine")
    response = await client.post(
        url(me["id"]),
        json=card(provider_reference="tok_4111111111111112", brand="4111 1111 1111 1112"),
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["brand"] == "4111 1111 1111 1112"
    assert len(await rows(db, me["id"])) == 1


async def test_a_second_default_unsets_the_first(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Default")
    first = await client.post(url(me["id"]), json=card(is_default=True), headers=admin)
    second = await client.post(
        url(me["id"]),
        json=card(is_default=True, provider_reference="pm_second_000001"),
        headers=admin,
    )
    assert (first.status_code, second.status_code) == (201, 201)
    stored = {str(r["id"]): r["is_default"] for r in await rows(db, me["id"])}
    assert stored == {first.json()["id"]: False, second.json()["id"]: True}
    # a non-default addition leaves the default alone
    third = await client.post(
        url(me["id"]), json=card(provider_reference="pm_third_0000001"), headers=admin
    )
    assert third.status_code == 201
    stored = {str(r["id"]): r["is_default"] for r in await rows(db, me["id"])}
    assert sum(stored.values()) == 1
    assert stored[second.json()["id"]]
    assert len(await outbox_rows(db, tenant, "customer.payment_method_added")) == 3


async def test_billing_address_must_be_the_customers_own(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Billing")
    other = await create_customer(client, admin, first_name="Other")
    theirs = await add_address(db, tenant, other["id"])
    refused = await client.post(url(me["id"]), json=card(billing_address_id=theirs), headers=admin)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "billing_address_id"]
    unknown = await client.post(
        url(me["id"]), json=card(billing_address_id=str(uuid.uuid4())), headers=admin
    )
    assert unknown.status_code == 422
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, "customer.payment_method_added") == []

    mine = await add_address(db, tenant, me["id"])
    accepted = await client.post(url(me["id"]), json=card(billingAddressId=mine), headers=admin)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["billing_address_id"] == mine


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"exp_month": 1, "exp_year": 2001}, ["body"]),  # expired
        ({"exp_month": 13}, ["body", "exp_month"]),
        ({"exp_year": 1999}, ["body", "exp_year"]),
        ({"exp_year": None}, ["body"]),  # month without year
        ({"last4": "42a2"}, ["body", "last4"]),
        ({"last4": "42424"}, ["body", "last4"]),
        ({"method_type": "CHEQUE"}, ["body", "method_type"]),
        ({"provider": ""}, ["body", "provider"]),
        ({"id": "x"}, ["body", "id"]),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    changes: dict[str, Any],
    loc: list[Any],
) -> None:
    me = await create_customer(client, admin, first_name="Bad")
    response = await client.post(url(me["id"]), json=card(**changes), headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, "customer.payment_method_added") == []


async def test_expiry_this_month_is_still_valid(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    me = await create_customer(client, admin, first_name="Month")
    response = await client.post(
        url(me["id"]), json=card(exp_month=now.month, exp_year=now.year), headers=admin
    )
    assert response.status_code == 201


async def test_delete_removes_row_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Gone")
    other = await create_customer(client, admin, first_name="Keeps")
    mine = (await client.post(url(me["id"]), json=card(), headers=admin)).json()
    theirs = (await client.post(url(other["id"]), json=card(), headers=admin)).json()
    # another customer's payment method through my path: 404, untouched
    wrong = await client.delete(f"{url(me['id'])}/{theirs['id']}", headers=admin)
    assert wrong.status_code == 404
    assert len(await rows(db, other["id"])) == 1
    gone = await client.delete(f"{url(me['id'])}/{mine['id']}", headers=admin)
    assert gone.status_code == 204
    assert await rows(db, me["id"]) == []
    [event] = await outbox_rows(db, tenant, "customer.payment_method_removed")
    assert event["data"]["payment_method"]["id"] == mine["id"]
    assert TOKEN not in json.dumps(event["data"])
    again = await client.delete(f"{url(me['id'])}/{mine['id']}", headers=admin)
    assert again.status_code == 404
    assert len(await outbox_rows(db, tenant, "customer.payment_method_removed")) == 1


async def test_list_pages_by_cursor_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="Many")
    ids = []
    for i in range(3):
        created = await client.post(
            url(me["id"]), json=card(provider_reference=f"pm_many_{i:08d}"), headers=admin
        )
        ids.append(created.json()["id"])
    first = (await client.get(url(me["id"]), params={"page_size": 2}, headers=admin)).json()
    assert [pm["id"] for pm in first["payment_methods"]] == [ids[2], ids[1]]
    assert (first["total"], first["total_pages"]) == (3, 2)
    rest = (
        await client.get(
            url(me["id"]), params={"page_size": 2, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    assert [pm["id"] for pm in rest["payment_methods"]] == [ids[0]]
    assert rest["next_cursor"] is None
    bad = await client.get(url(me["id"]), params={"cursor": "nope"}, headers=admin)
    assert bad.status_code == 422


async def test_customer_manages_their_own_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    token_headers: TokenFactory,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Self")
    other = await create_customer(client, admin, first_name="Stranger")
    mine = token_headers("customer", tenant, sub=me["id"])
    added = await client.post(url(me["id"]), json=card(), headers=mine)
    assert added.status_code == 201
    assert (await client.get(url(me["id"]), headers=mine)).json()["total"] == 1
    assert (await client.post(url(other["id"]), json=card(), headers=mine)).status_code == 404
    assert (await client.get(url(other["id"]), headers=mine)).status_code == 404
    assert await rows(db, other["id"]) == []
    removed = await client.delete(f"{url(me['id'])}/{added.json()['id']}", headers=mine)
    assert removed.status_code == 204


async def test_other_tenant_and_agent(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Mine")
    stranger = await api_key_headers(Role.ADMIN, other_tenant)
    response = await client.post(url(me["id"]), json=card(), headers=stranger)
    assert response.status_code == 404
    assert (await client.get(url(me["id"]), headers=stranger)).status_code == 404
    agent = await api_key_headers(Role.AGENT, tenant)
    assert (await client.get(url(me["id"]), headers=agent)).status_code == 403
    assert await rows(db, me["id"]) == []


async def test_payment_method_errors_render_their_problem_bodies(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """PaymentMethodNotFound, ForeignBillingAddress and CardNumberRefused answer the problem
    bodies the routes always gave, and nothing is stored."""
    me = await create_customer(client, admin, first_name="Errors")
    unknown = str(uuid.uuid4())
    missing = await client.delete(f"{url(me['id'])}/{unknown}", headers=admin)
    assert missing.status_code == 404
    assert {k: v for k, v in missing.json().items() if k != "trace_id"} == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "payment method not found",
        "payment_method_id": unknown,
    }
    foreign = await client.post(url(me["id"]), json=card(billing_address_id=unknown), headers=admin)
    detail = "billing_address_id is not an address of this customer"
    assert {k: v for k, v in foreign.json().items() if k != "trace_id"} == {
        "type": "/problems/validation-error",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": detail,
        "errors": [{"loc": ["body", "billing_address_id"], "msg": detail, "type": "value_error"}],
    }
    refused = await client.post(url(me["id"]), json=card(brand="4111111111111111"), headers=admin)
    detail = "a card number is not accepted here: send the payment provider's token"
    assert {k: v for k, v in refused.json().items() if k != "trace_id"} == {
        "type": "/problems/validation-error",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": detail,
        "errors": [{"loc": ["body", "brand"], "msg": detail, "type": "card_number_refused"}],
    }
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, "customer.payment_method_added") == []


async def test_a_card_number_is_refused_before_an_unknown_customer_is_looked_up(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The order the route always had: card numbers first (nothing about the customer is
    revealed to a body that must be refused anyway), then the customer, then the fields."""
    unknown = str(uuid.uuid4())
    refused = await client.post(url(unknown), json=card(last4="4111111111111111"), headers=admin)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["type"] == "card_number_refused"
    missing = await client.post(url(unknown), json={"provider": 7}, headers=admin)
    assert missing.status_code == 404
