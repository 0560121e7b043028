"""Order use cases called without HTTP (a ServiceContext built here, as the consumer and
the CLI build theirs): they own their unit of work, commit row, stats and event together,
and their errors render the problem bodies the HTTP API gave before."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from patron.context import AppContext
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.errors import PatronError
from patron.kit.jsonutil import dumps
from patron.orders.appointments import AppointmentService
from patron.orders.errors import AppointmentTaken, CustomerIdentityNotFound, OrderTaken
from patron.orders.inbox import InboxService, consumer_principal, parse
from patron.orders.rebuild import StatsRebuild, rebuild_context
from patron.orders.schemas import AppointmentRecord, OrderRecord
from patron.orders.service import OrderService
from patron.tenancy import trusted_tenant
from patron.usecases import ServiceContext, current_unit
from tests.conftest import outbox_rows
from tests.problems import problem_of


def _ctx(app_ctx: AppContext, tenant: str) -> ServiceContext:
    return rebuild_context(app_ctx, trusted_tenant(tenant))


async def test_record_outside_http_commits_order_stats_and_event(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = _ctx(app_ctx, tenant)
    customer = await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    recorded = await OrderService(ctx).record(
        customer.id, OrderRecord(order_id="A-1", total=Decimal("19.99"), currency="USD")
    )
    assert (recorded.created, recorded.changed) == (True, True)
    assert current_unit() is None
    row = await db.fetchrow(
        "SELECT customer_id, total FROM customer_orders WHERE tenant_id = $1", tenant
    )
    assert (row["customer_id"], row["total"]) == (customer.id, Decimal("19.99"))
    stats = await OrderService(ctx).customer_stats(customer.id)
    assert (stats.total_orders, stats.total_spent) == (1, "19.99")
    [event] = await outbox_rows(db, tenant, "customer.order_recorded")
    assert event["data"]["order"]["order_id"] == "A-1"


async def test_inbox_apply_records_once_and_a_redelivery_changes_nothing(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = _ctx(app_ctx, tenant)
    customer = await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    event = parse(
        dumps(
            {
                "specversion": "1.0",
                "id": "evt-1",
                "source": "/orders",
                "type": "order.paid",
                "tenantid": tenant,
                "data": {
                    "customer": {"email": "ada@example.com"},
                    "order": {"order_id": "A-1", "total": "5.00", "currency": "USD"},
                },
            }
        )
    )
    call = ServiceContext(app_ctx, consumer_principal(ctx.tenant, "/orders"), ctx.tenant)
    first = await InboxService(call).apply(event)
    again = await InboxService(call).apply(event)
    assert (first.result, first.customer_id) == ("recorded", customer.id)
    assert (again.result, again.customer_id) == ("duplicate", None)
    assert len(await outbox_rows(db, tenant, "customer.order_recorded")) == 1
    count = await db.fetchval("SELECT count(*) FROM customer_orders WHERE tenant_id = $1", tenant)
    assert count == 1


async def test_stats_rebuild_outside_the_cli_fixes_drift(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = _ctx(app_ctx, tenant)
    customer = await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    await AppointmentService(ctx).record(
        customer.id,
        AppointmentRecord.model_validate(
            {"appointment_id": "B-1", "service": "cut", "starts_at": "2030-01-02T10:00:00Z"}
        ),
    )
    await db.execute(
        "UPDATE customer_stats SET total_appointments = 9 WHERE customer_id = $1", customer.id
    )
    [drift] = await StatsRebuild(ctx).run(fix=True)
    assert (drift.field, drift.stored, drift.recomputed) == ("total_appointments", 9, 1)
    assert await StatsRebuild(ctx).run(fix=False) == []


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (
            OrderTaken("A-1"),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "this order_id is recorded for another customer",
                "order_id": "A-1",
            },
        ),
        (
            AppointmentTaken("B-1"),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "this appointment_id is recorded for another customer",
                "appointment_id": "B-1",
            },
        ),
        (
            CustomerIdentityNotFound(["email", "phone"]),
            {
                "type": "/problems/not-found",
                "status": 404,
                "detail": "no customer with this identity",
                "identity": ["email", "phone"],
            },
        ),
    ],
)
def test_error_classes_render_the_problem_bodies_of_before(
    error: PatronError, problem: dict[str, object]
) -> None:
    assert problem_of(error) == problem
