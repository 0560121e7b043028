"""The consent ledger over HTTP against the real database (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from patron.auth.principal import Role
from patron.context import AppContext
from patron.kit.pagination import Page
from patron.tenancy import trusted_tenant
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows

CHANGED = "customer.consent_changed"
PURPOSES = ["email_marketing", "sms_marketing", "profiling", "data_processing"]


def url(customer_id: str) -> str:
    return f"/api/v1/customers/{customer_id}/consents"


def entry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "email_marketing",
        "status": "granted",
        "source": "signup_form",
        "legal_basis": "consent",
    }
    body.update(overrides)
    return body


async def rows(db: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM customer_consents WHERE customer_id = $1 ORDER BY id",
            uuid.UUID(customer_id),
        )
    )


async def opt_in(client: httpx.AsyncClient, admin: dict[str, str], customer_id: str) -> bool:
    customer = (await client.get(f"/api/v1/customers/{customer_id}", headers=admin)).json()
    value: bool = customer["marketing_opt_in"]
    return value


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_grant_then_withdraw_drives_marketing_opt_in(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Opt")
    granted = await client.post(url(me["id"]), json=entry(), headers=admin)
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert (body["purpose"], body["status"], body["source"], body["legal_basis"]) == (
        "email_marketing",
        "granted",
        "signup_form",
        "consent",
    )
    assert body["actor"].startswith("key:")
    # a staff key relays: no IP or user agent unless sent
    assert (body["ip_address"], body["user_agent"]) == (None, None)
    assert await opt_in(client, admin, me["id"]) is True
    withdrawn = await client.post(url(me["id"]), json=entry(status="withdrawn"), headers=admin)
    assert withdrawn.status_code == 201
    assert await opt_in(client, admin, me["id"]) is False
    regranted = await client.post(url(me["id"]), json=entry(), headers=admin)
    assert regranted.status_code == 201
    assert await opt_in(client, admin, me["id"]) is True
    denied = await client.post(url(me["id"]), json=entry(status="denied"), headers=admin)
    assert denied.status_code == 201
    assert await opt_in(client, admin, me["id"]) is False
    assert len(await rows(db, me["id"])) == 4
    events = await outbox_rows(db, tenant, CHANGED)
    assert [e["data"]["consent"]["status"] for e in events] == [
        "granted",
        "withdrawn",
        "granted",
        "denied",
    ]
    assert all(e["data"]["is_current"] for e in events)


async def test_other_purposes_do_not_touch_marketing_opt_in(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="Sms")
    response = await client.post(url(me["id"]), json=entry(purpose="sms_marketing"), headers=admin)
    assert response.status_code == 201
    assert await opt_in(client, admin, me["id"]) is False


async def test_withdrawing_needs_no_prior_grant(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Never", marketing_opt_in=True)
    response = await client.post(
        url(me["id"]), json=entry(purpose="profiling", status="withdrawn"), headers=admin
    )
    assert response.status_code == 201
    withdrawn = await client.post(url(me["id"]), json=entry(status="withdrawn"), headers=admin)
    assert withdrawn.status_code == 201
    assert await opt_in(client, admin, me["id"]) is False
    assert len(await rows(db, me["id"])) == 2


async def test_current_state_is_derived_and_history_is_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    me = await create_customer(client, admin, first_name="Ledger")
    empty = (await client.get(url(me["id"]), headers=admin)).json()
    assert empty["current"] == dict.fromkeys(PURPOSES)
    assert (empty["consents"], empty["total"], empty["next_cursor"]) == ([], 0, None)
    assert set(empty) - {"consents", "current"} == set(Page.model_fields)  # no "history" key

    now = datetime.now(UTC)
    grant = (
        await client.post(
            url(me["id"]), json=entry(captured_at=iso(now - timedelta(hours=2))), headers=admin
        )
    ).json()
    profiling = (
        await client.post(
            url(me["id"]), json=entry(purpose="profiling", status="denied"), headers=admin
        )
    ).json()
    assert await opt_in(client, admin, me["id"]) is True
    # back-dated: recorded as history, but the current state does not change
    backdated = await client.post(
        url(me["id"]),
        json=entry(status="withdrawn", captured_at=iso(now - timedelta(days=30))),
        headers=admin,
    )
    assert backdated.status_code == 201
    assert await opt_in(client, admin, me["id"]) is True
    last_event = (await outbox_rows(db, tenant, CHANGED))[-1]
    assert last_event["data"]["is_current"] is False

    ledger = (await client.get(url(me["id"]), headers=admin)).json()
    assert ledger["current"]["email_marketing"]["id"] == grant["id"]
    assert ledger["current"]["profiling"]["id"] == profiling["id"]
    assert ledger["current"]["sms_marketing"] is None
    assert [h["id"] for h in ledger["consents"]] == [
        profiling["id"],
        grant["id"],
        backdated.json()["id"],
    ]
    assert (ledger["total"], ledger["page"], ledger["total_pages"]) == (3, 1, 1)
    paged = (await client.get(url(me["id"]), params={"page_size": 2}, headers=admin)).json()
    assert [h["id"] for h in paged["consents"]] == [profiling["id"], grant["id"]]
    rest = (
        await client.get(
            url(me["id"]), params={"page_size": 2, "cursor": paged["next_cursor"]}, headers=admin
        )
    ).json()
    assert [h["id"] for h in rest["consents"]] == [backdated.json()["id"]]
    assert rest["current"] == ledger["current"]


async def test_same_captured_at_tie_goes_to_the_later_entry(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="Tie")
    moment = iso(datetime.now(UTC) - timedelta(minutes=1))
    await client.post(url(me["id"]), json=entry(captured_at=moment), headers=admin)
    later = await client.post(
        url(me["id"]), json=entry(status="denied", captured_at=moment), headers=admin
    )
    ledger = (await client.get(url(me["id"]), headers=admin)).json()
    assert ledger["current"]["email_marketing"]["id"] == later.json()["id"]
    assert await opt_in(client, admin, me["id"]) is False


async def test_customer_records_and_reads_own_consent_with_request_evidence(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    token_headers: TokenFactory,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Self")
    other = await create_customer(client, admin, first_name="Else")
    mine = {**token_headers("customer", tenant, sub=me["id"]), "User-Agent": "Browser/1.0"}
    response = await client.post(url(me["id"]), json=entry(source="preferences_page"), headers=mine)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["actor"] == f"jwt:{me['id']}"
    assert body["user_agent"] == "Browser/1.0"
    assert body["ip_address"] == "127.0.0.1"
    given = await client.post(
        url(me["id"]),
        json=entry(purpose="profiling", ip_address="2001:db8::1", user_agent="App/2"),
        headers=mine,
    )
    assert (given.json()["ip_address"], given.json()["user_agent"]) == ("2001:db8::1", "App/2")
    ledger = await client.get(url(me["id"]), headers=mine)
    assert ledger.status_code == 200
    assert ledger.json()["total"] == 2
    assert (await client.get(url(other["id"]), headers=mine)).status_code == 404
    assert (await client.post(url(other["id"]), json=entry(), headers=mine)).status_code == 404
    assert await rows(db, other["id"]) == []
    # and the customer cannot see communications
    communications = f"/api/v1/customers/{me['id']}/communications"
    assert (await client.get(communications, headers=mine)).status_code == 403


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"purpose": "telepathy"}, ["body", "purpose"]),
        ({"status": "maybe"}, ["body", "status"]),
        ({"status": None}, ["body", "status"]),
        ({"legal_basis": "because"}, ["body", "legal_basis"]),
        ({"captured_at": "2026-01-01T00:00:00"}, ["body", "captured_at"]),
        ({"captured_at": "2999-01-01T00:00:00Z"}, ["body", "captured_at"]),
        ({"ip_address": "999.1.1.1"}, ["body", "ip_address"]),
        ({"actor": "someone-else"}, ["body", "actor"]),
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
    response = await client.post(url(me["id"]), json=entry(**changes), headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert await rows(db, me["id"]) == []
    assert await outbox_rows(db, tenant, CHANGED) == []
    assert await opt_in(client, admin, me["id"]) is False


async def test_the_database_refuses_to_change_the_ledger(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    app_ctx: AppContext,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Evidence")
    assert (await client.post(url(me["id"]), json=entry(), headers=admin)).status_code == 201
    with pytest.raises(DBAPIError, match="permission denied"):
        async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
            await session.execute(text("UPDATE customer_consents SET status = 'denied'"))
    with pytest.raises(DBAPIError, match="permission denied"):
        async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
            await session.execute(text("DELETE FROM customer_consents"))
    [row] = await rows(db, me["id"])
    assert row["status"] == "granted"


async def test_other_tenant_is_404_and_roles(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Mine")
    stranger = await api_key_headers(Role.ADMIN, other_tenant)
    assert (await client.get(url(me["id"]), headers=stranger)).status_code == 404
    assert (await client.post(url(me["id"]), json=entry(), headers=stranger)).status_code == 404
    assert await rows(db, me["id"]) == []
    for role in (Role.AGENT, Role.SERVICE, Role.MANAGER):
        headers = await api_key_headers(role, tenant)
        assert (await client.get(url(me["id"]), headers=headers)).status_code == 200
