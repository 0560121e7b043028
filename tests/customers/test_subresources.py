"""Use cases of a customer's sub-resources called outside HTTP, as a job or the CLI would:
built from a ServiceContext, each operation commits its rows and outbox events itself, or
joins the unit its caller opened (``patron.customers.subresources``)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from patron.auth.principal import Principal, Role
from patron.communications.service import CommunicationService
from patron.consents.service import ConsentService
from patron.context import AppContext
from patron.customers.errors import CustomerNotFound
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.notes.service import NoteService
from patron.tenancy import trusted_tenant
from patron.usecases import ServiceContext, current_unit, unit_of_work
from tests.conftest import outbox_rows
from tests.test_usecases import Boom


def _ctx(app_ctx: AppContext, tenant: str, principal: Principal | None = None) -> ServiceContext:
    who = principal or Principal("system:test", "test", frozenset({Role.ADMIN}), tenant)
    return ServiceContext(app_ctx, who, trusted_tenant(tenant))


async def test_a_note_added_outside_http_commits_its_row_and_event(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = _ctx(app_ctx, tenant)
    customer = await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    note = await NoteService(ctx).add(customer.id, "called from a job")
    assert current_unit() is None
    row = await db.fetchrow("SELECT note, author_id FROM customer_notes WHERE id = $1", note.id)
    assert (row["note"], row["author_id"]) == ("called from a job", "system:test")
    added = await outbox_rows(db, tenant, "customer.note_added")
    assert [e["data"]["note"]["id"] for e in added] == [str(note.id)]
    with pytest.raises(CustomerNotFound):
        await NoteService(ctx).add(uuid.uuid4(), "nobody")
    assert len(await outbox_rows(db, tenant, "customer.note_added")) == 1


async def test_consent_evidence_is_kept_for_the_customer_only(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    """The transport hands what it saw of the caller; the operation decides: the customer
    acting for themselves gets it recorded (the agent cut to 1000 characters, a host that is
    no IP address dropped), staff do not; the opt-in follows the current email consent."""
    staff = _ctx(app_ctx, tenant)
    customer = await CustomerService(staff).create(CustomerCreate(email="eve@example.com"))
    me = Principal("jwt:eve", "eve", frozenset({Role.CUSTOMER}), tenant, customer.id)
    body = {"purpose": "email_marketing", "status": "granted"}
    mine = await ConsentService(_ctx(app_ctx, tenant, me)).record(
        customer.id, body, client_host="::ffff:10.0.0.1", user_agent="A" * 1200
    )
    assert (mine.ip_address, mine.user_agent, mine.actor) == ("::ffff:a00:1", "A" * 1000, "jwt:eve")
    theirs = await ConsentService(staff).record(
        customer.id,
        {"purpose": "profiling", "status": "denied"},
        client_host="10.0.0.2",
        user_agent="Relay/1",
    )
    assert (theirs.ip_address, theirs.user_agent) == (None, None)
    named = await ConsentService(_ctx(app_ctx, tenant, me)).record(
        customer.id, {**body, "status": "withdrawn"}, client_host="testclient", user_agent=None
    )
    assert (named.ip_address, named.user_agent) == (None, None)
    assert (
        await db.fetchval("SELECT marketing_opt_in FROM customers WHERE id = $1", customer.id)
        is False
    )
    changed = await outbox_rows(db, tenant, "customer.consent_changed")
    assert [e["data"]["consent"]["id"] for e in changed] == [
        str(mine.id),
        str(theirs.id),
        str(named.id),
    ]


async def test_a_communication_joins_its_callers_unit_and_rolls_back_with_it(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = _ctx(app_ctx, tenant)
    customer = await CustomerService(ctx).create(CustomerCreate(email="lin@example.com"))

    async def record_then_fail() -> None:
        async with unit_of_work(ctx) as unit:
            created, _ = await CommunicationService(ctx).record(
                customer.id, {"channel": "SMS", "direction": "OUTBOUND"}
            )
            assert created
            assert current_unit() is unit
            raise Boom

    with pytest.raises(Boom):
        await record_then_fail()
    assert (
        await db.fetchval(
            "SELECT count(*) FROM customer_communications WHERE customer_id = $1", customer.id
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT last_interaction_at FROM customers WHERE id = $1", customer.id)
        is None
    )
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]
