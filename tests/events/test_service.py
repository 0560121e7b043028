"""Event use cases called without HTTP (a ServiceContext built here): requeue owns its
unit of work, and the errors render the problem bodies the HTTP API gave before."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from patron.context import AppContext
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.errors import PatronError
from patron.events.errors import EventNotDeadLettered, EventNotFound, UnknownAfter
from patron.events.service import EventService
from tests.conftest import outbox_rows
from tests.contexts import staff_context
from tests.problems import problem_of


async def test_requeue_outside_http_commits_and_refuses_what_is_not_dead(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = staff_context(app_ctx, tenant)
    await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    [event] = await outbox_rows(db, tenant)
    await db.execute(
        "UPDATE outbox_events SET attempts = 10, dead_at = now(), last_error = 'nacked' "
        "WHERE id = $1",
        event["id"],
    )
    events = EventService(ctx)
    assert (await events.requeue(event["id"])).status == "pending"
    row = await db.fetchrow(
        "SELECT dead_at, attempts, last_error FROM outbox_events WHERE id = $1", event["id"]
    )
    assert tuple(row) == (None, 0, None)
    with pytest.raises(EventNotDeadLettered):
        await events.requeue(event["id"])
    with pytest.raises(EventNotFound):
        await events.requeue(uuid.uuid4())
    with pytest.raises(UnknownAfter):
        await events.feed(uuid.uuid4(), 10)


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (
            EventNotFound(),
            {"type": "/problems/not-found", "status": 404, "detail": "event not found"},
        ),
        (
            EventNotDeadLettered(),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "the event is not dead-lettered",
            },
        ),
        (
            UnknownAfter(),
            {
                "type": "/problems/validation-error",
                "status": 422,
                "detail": "after is not the id of an event of this tenant",
                "errors": [
                    {
                        "loc": ["query", "after"],
                        "msg": "after is not the id of an event of this tenant",
                        "type": "value_error",
                    }
                ],
            },
        ),
    ],
)
def test_error_classes_render_the_problem_bodies_of_before(
    error: PatronError, problem: dict[str, object]
) -> None:
    assert problem_of(error) == problem
