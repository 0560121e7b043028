"""Deliveries end to end: customer changes through the API, the dispatcher, a real receiver
that verifies the signature (docs/webhooks.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from patron.context import AppContext
from patron.events.outbox import to_cloudevent
from patron.models.webhook_cursor import FANOUT_CURSOR
from patron.webhooks.dispatcher import Outcome, build_webhook_services
from patron.webhooks.service import SECRET_CONTEXT
from patron.webhooks.signing import new_secret
from tests.conftest import create_customer, outbox_rows
from tests.webhooks.conftest import DispatcherFactory, EndpointFactory, drive, wait_for
from tests.webhooks.receiver import Receiver, localhost_certificate
from tests.webhooks.test_signing import legacy_secret


async def deliveries(db: asyncpg.Pool, endpoint_id: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at, id",
            uuid.UUID(endpoint_id),
        )
    )


def first_attempt_made(
    db: asyncpg.Pool, endpoint_id: str, *, released: bool = False
) -> Callable[[], Awaitable[bool]]:
    """A :func:`drive` condition: the endpoint's first delivery has been attempted (and,
    with ``released``, its lease let go)."""

    async def made() -> bool:
        rows = await deliveries(db, endpoint_id)
        return (
            bool(rows)
            and rows[0]["attempts"] >= 1
            and (not released or rows[0]["lease_id"] is None)
        )

    return made


async def endpoint_row(db: asyncpg.Pool, endpoint_id: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM webhook_endpoints WHERE id = $1", uuid.UUID(endpoint_id))
    assert row is not None
    return row


def cloudevent_of(row: asyncpg.Record) -> dict[str, Any]:
    """The envelope Patron must send for an outbox row (read with the superuser pool)."""
    return to_cloudevent(SimpleNamespace(**dict(row)))


async def test_customer_changes_arrive_signed_as_cloudevents(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created", "customer.updated"])
    customer = await create_customer(client, admin, first_name="Ada", email="ada@example.com")
    patched = await client.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"last_name": "Lovelace"},
        headers={**admin, "X-Trace-Id": "trace-webhook-1"},
    )
    assert patched.status_code == 200, patched.text
    dispatcher = make_dispatcher()

    async def both_delivered() -> bool:
        rows = await deliveries(db, endpoint["id"])
        return len(rows) == 2 and all(r["status"] == "succeeded" for r in rows)

    await drive(dispatcher, both_delivered)

    events = [
        r
        for r in await outbox_rows(db, tenant)
        if r["type"] in ("customer.created", "customer.updated")
    ]
    assert [r["type"] for r in events] == ["customer.created", "customer.updated"]
    assert receiver.count == 2
    # a batch is sent concurrently: match requests to events by id
    by_id = {r.headers["patron-event-id"]: r for r in receiver.requests}
    assert set(by_id) == {str(e["id"]) for e in events}
    arrived = [by_id[str(e["id"])] for e in events]
    for received, event in zip(arrived, events, strict=True):
        assert received.path == "/hooks"
        assert received.signature_valid, received.headers
        assert received.headers["content-type"] == "application/json"
        assert received.headers["patron-event-id"] == str(event["id"])
        assert received.headers["patron-event-type"] == event["type"]
        assert received.json() == cloudevent_of(event)
        assert received.json()["subject"] == customer["id"]
        assert received.json()["tenantid"] == tenant
    assert arrived[1].json()["traceid"] == "trace-webhook-1"
    assert arrived[1].json()["data"]["fields_changed"] == ["last_name"]

    rows = await deliveries(db, endpoint["id"])
    assert [(r["event_type"], r["attempts"], r["last_status_code"]) for r in rows] == [
        ("customer.created", 1, 200),
        ("customer.updated", 1, 200),
    ]
    # the attempt history through the API
    history = await client.get(
        f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=admin
    )
    assert history.status_code == 200
    body = history.json()
    assert body["total"] == 2
    assert {d["event_id"] for d in body["deliveries"]} == {str(e["id"]) for e in events}
    assert {d["status"] for d in body["deliveries"]} == {"succeeded"}
    assert all(d["delivered_at"] is not None for d in body["deliveries"])


async def test_a_delivery_verifies_with_the_standardwebhooks_library(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    await create_customer(client, admin, first_name="Standard")

    async def one() -> bool:
        return receiver.count == 1

    await drive(make_dispatcher(), one)
    [received] = receiver.requests
    [event] = await outbox_rows(db, tenant, "customer.created")
    # what a receiver does with the reference library: the secret as shown, the raw body
    # and the request's headers; it answers the parsed body
    assert Webhook(endpoint["secret"]).verify(received.body, received.headers) == cloudevent_of(
        event
    )
    assert received.headers["webhook-id"] == str(event["id"]) == received.json()["id"]
    assert received.headers["webhook-timestamp"] == str(received.timestamp)
    assert received.headers["webhook-signature"].startswith("v1,")
    assert " " not in received.headers["webhook-signature"]  # one secret, one signature
    assert received.signature_valid  # and the legacy header, for receivers of before
    assert received.standard_valid
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(received.body, received.headers)


@pytest.mark.parametrize("url_safe_characters", [True, False], ids=["not-base64", "base64"])
async def test_an_endpoint_with_a_secret_of_the_old_format(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    app_ctx: AppContext,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
    url_safe_characters: bool,
) -> None:
    """Endpoints made before the Standard Webhooks format keep their secret: the legacy
    header verifies; the standard one is signed only if the secret is standard base64."""
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    old = legacy_secret(with_url_safe_characters=url_safe_characters)
    await db.execute(
        "UPDATE webhook_endpoints SET secret_encrypted = $1 WHERE id = $2",
        app_ctx.keyring.encrypt(old, SECRET_CONTEXT),
        uuid.UUID(endpoint["id"]),
    )
    receiver.secret = old
    await create_customer(client, admin, first_name="Old")

    async def one() -> bool:
        return receiver.count == 1

    await drive(make_dispatcher(), one)
    [received] = receiver.requests
    assert received.signature_valid
    assert received.headers["webhook-id"] == received.headers["patron-event-id"]
    if url_safe_characters:
        assert "webhook-signature" not in received.headers
        assert not received.standard_valid
    else:
        assert received.standard_valid


async def test_event_type_filter(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    created_only, updated_only, everything = Receiver(), Receiver(), Receiver()
    try:
        a = await create_endpoint(created_only, event_types=["customer.created"])
        b = await create_endpoint(updated_only, event_types=["customer.updated"])
        c = await create_endpoint(everything, event_types=["*"])
        customer = await create_customer(client, admin, first_name="Filter")
        await client.patch(
            f"/api/v1/customers/{customer['id']}", json={"first_name": "F2"}, headers=admin
        )
        await client.post(f"/api/v1/customers/{customer['id']}/block", json={}, headers=admin)

        async def done() -> bool:
            return everything.count == 3 and created_only.count == 1 and updated_only.count == 1

        await drive(make_dispatcher(), done)
        assert [r.json()["type"] for r in created_only.requests] == ["customer.created"]
        assert [r.json()["type"] for r in updated_only.requests] == ["customer.updated"]
        assert sorted(r.json()["type"] for r in everything.requests) == [
            "customer.blocked",
            "customer.created",
            "customer.updated",
        ]
        # no delivery rows for the types an endpoint did not ask for
        assert [r["event_type"] for r in await deliveries(db, a["id"])] == ["customer.created"]
        assert [r["event_type"] for r in await deliveries(db, b["id"])] == ["customer.updated"]
        assert len(await deliveries(db, c["id"])) == 3
    finally:
        for r in (created_only, updated_only, everything):
            r.close()


async def test_events_before_the_endpoint_existed_are_not_sent(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    await create_customer(client, admin, first_name="Before")
    endpoint = await create_endpoint(receiver)
    after = await create_customer(client, admin, first_name="After")
    dispatcher = make_dispatcher()

    async def one() -> bool:
        return receiver.count >= 1

    await drive(dispatcher, one)
    for _ in range(5):
        await dispatcher.run_once()
    assert receiver.count == 1
    assert receiver.requests[0].json()["subject"] == after["id"]
    assert len(await deliveries(db, endpoint["id"])) == 1


async def test_without_endpoints_fan_out_moves_the_cursor_to_the_feed_end(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = make_dispatcher()  # every other test's endpoint is disabled by now
    for i in range(3):
        await create_customer(client, admin, first_name=f"Unwatched{i}")

    async def at_feed_end() -> bool:
        # The cursor only passes events below the feed's horizon (decision 0007): a
        # transaction still open anywhere on the server (another test run's) holds it back
        # for a while, so rounds are repeated until it has moved.
        assert await dispatcher.fan_out() == 0  # nothing read event by event
        last = await db.fetchrow(
            "SELECT xid::text::bigint AS xid, seq FROM outbox_events "
            "ORDER BY xid::text::bigint DESC, seq DESC LIMIT 1"
        )
        cursor = await db.fetchrow(
            "SELECT xid::text::bigint AS xid, seq FROM webhook_cursors WHERE name = $1",
            FANOUT_CURSOR,
        )
        return bool((cursor["xid"], cursor["seq"]) == (last["xid"], last["seq"]))

    await wait_for(at_feed_end)
    endpoint = await create_endpoint(receiver)
    watched = await create_customer(client, admin, first_name="Watched")

    async def one() -> bool:
        return receiver.count >= 1

    await drive(dispatcher, one)
    assert [r.json()["subject"] for r in receiver.requests] == [watched["id"]]
    assert len(await deliveries(db, endpoint["id"])) == 1


async def test_receiver_500_is_retried_until_it_recovers(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    flaky = Receiver(status=lambda n: 500 if n <= 2 else 204)
    try:
        endpoint = await create_endpoint(flaky, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Retry")
        dispatcher = make_dispatcher()

        failed_once = first_attempt_made(db, endpoint["id"])

        await drive(dispatcher, failed_once)
        first = (await deliveries(db, endpoint["id"]))[0]
        assert first["status"] == "pending"
        assert first["last_status_code"] == 500
        assert first["last_error"] == "HTTP 500"
        assert (await endpoint_row(db, endpoint["id"]))["consecutive_failures"] == 1

        async def succeeded() -> bool:
            rows = await deliveries(db, endpoint["id"])
            return bool(rows[0]["status"] == "succeeded")

        await drive(dispatcher, succeeded)
        row = (await deliveries(db, endpoint["id"]))[0]
        assert row["attempts"] == 3
        assert row["last_status_code"] == 204
        assert row["last_error"] is None
        assert flaky.count == 3
        assert len({r.headers["patron-event-id"] for r in flaky.requests}) == 1
        # the Standard Webhooks message id is the event id: the same on every retry
        assert {r.headers["webhook-id"] for r in flaky.requests} == {
            flaky.requests[0].headers["patron-event-id"]
        }
        assert all(r.signature_valid and r.standard_valid for r in flaky.requests)
        healed = await endpoint_row(db, endpoint["id"])
        assert healed["consecutive_failures"] == 0
        assert healed["failing_since"] is None
        assert healed["status"] == "enabled"
    finally:
        flaky.close()


async def test_delivery_is_dead_after_the_retry_window(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    down = Receiver(status=503)
    try:
        endpoint = await create_endpoint(down, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Dead")
        # The window is counted from the delivery's creation; 2 s leaves room for a slow
        # first attempt on a loaded CI machine while backoff (20-100 ms) allows many more.
        dispatcher = make_dispatcher(webhooks_retry_window_seconds=2.0)

        async def dead() -> bool:
            rows = await deliveries(db, endpoint["id"])
            return bool(rows) and rows[0]["status"] == "failed"

        await drive(dispatcher, dead)
        row = (await deliveries(db, endpoint["id"]))[0]
        assert row["attempts"] >= 2
        assert row["last_status_code"] == 503
        assert row["attempts"] == down.count
        for _ in range(5):  # a dead delivery is not tried again: the rounds do nothing
            assert await dispatcher.run_once() == 0
        assert down.count == row["attempts"]
        assert (await deliveries(db, endpoint["id"]))[0]["attempts"] == row["attempts"]
        assert (await endpoint_row(db, endpoint["id"]))["status"] == "enabled"
    finally:
        down.close()


async def test_sustained_failure_disables_the_endpoint(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    down = Receiver(status=500)
    try:
        endpoint = await create_endpoint(down, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Down")
        dispatcher = make_dispatcher(webhooks_disable_after_failures=3)

        async def disabled() -> bool:
            return bool((await endpoint_row(db, endpoint["id"]))["status"] == "disabled")

        await drive(dispatcher, disabled)
        row = await endpoint_row(db, endpoint["id"])
        assert row["disabled_at"] is not None
        assert row["consecutive_failures"] == 3
        assert "3 consecutive failed attempts" in row["disabled_reason"]
        events = await outbox_rows(db, tenant, "webhook_endpoint.disabled")
        assert len(events) == 1
        assert events[0]["subject"] == endpoint["id"]
        assert events[0]["data"]["webhook_endpoint_id"] == endpoint["id"]
        assert events[0]["data"]["consecutive_failures"] == 3
        assert set(events[0]["data"]) == {
            "webhook_endpoint_id",
            "reason",
            "disabled_at",
            "consecutive_failures",
            "failing_since",
        }
        # nothing of it stays pending, and nothing more is sent
        rows = await deliveries(db, endpoint["id"])
        assert {r["status"] for r in rows} == {"failed"}
        sent = down.count
        assert sent == 3
        await create_customer(client, admin, first_name="AfterDisable")
        for _ in range(5):
            await dispatcher.run_once()
        assert down.count == sent
        assert len(await deliveries(db, endpoint["id"])) == len(rows)
        shown = await client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=admin)
        assert shown.json()["status"] == "disabled"
        assert shown.json()["disabled_reason"] == row["disabled_reason"]

        # re-enabled: the streak is cleared and new events flow again
        down.status = 200
        enabled = await client.patch(
            f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=admin
        )
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["status"] == "enabled"
        assert enabled.json()["consecutive_failures"] == 0
        assert enabled.json()["disabled_at"] is None
        back = await create_customer(client, admin, first_name="Back")

        async def delivered_again() -> bool:
            return any(r.json()["subject"] == back["id"] for r in down.requests[sent:] if r.body)

        await drive(dispatcher, delivered_again)
    finally:
        down.close()


async def test_delivery_time_ssrf_check_refuses_without_sending(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    # created while private targets were allowed; the dispatcher no longer allows them
    # (as when DNS of a public name starts answering 127.0.0.1)
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    await create_customer(client, admin, first_name="Rebind")
    dispatcher = make_dispatcher(webhooks_allow_private_targets=False)

    attempted = first_attempt_made(db, endpoint["id"])

    await drive(dispatcher, attempted)
    row = (await deliveries(db, endpoint["id"]))[0]
    assert row["status"] == "pending"
    assert row["last_status_code"] is None
    assert row["last_error"].startswith("refused by SSRF guard")
    # the refusal was recorded after the round that made it had finished: nothing was sent
    assert receiver.count == 0


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    mover = Receiver(status=302)
    try:
        endpoint = await create_endpoint(mover, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Moved")

        attempted = first_attempt_made(db, endpoint["id"])

        await drive(make_dispatcher(), attempted)
        row = (await deliveries(db, endpoint["id"]))[0]
        assert row["last_status_code"] == 302
        assert row["status"] == "pending"
        assert all(r.path == "/hooks" for r in mover.requests)
    finally:
        mover.close()


async def test_two_dispatchers_deliver_each_event_once(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    one, two = make_dispatcher(webhooks_batch_size=3), make_dispatcher(webhooks_batch_size=3)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(d.run(stop)) for d in (one, two)]
    try:
        customers = await asyncio.gather(
            *(create_customer(client, admin, first_name=f"Twin{n}") for n in range(12))
        )

        async def all_delivered() -> bool:
            rows = await deliveries(db, endpoint["id"])
            return len(rows) == 12 and all(r["status"] == "succeeded" for r in rows)

        await wait_for(all_delivered)
    finally:
        # Both dispatchers finish the round they are in before they return: every send
        # either made, a duplicate included, has been answered once they have stopped.
        stop.set()
        # a round ends only once its attempts have; so once both have stopped, no attempt
        # is in flight, and a duplicate would have reached the receiver
        await asyncio.gather(*tasks)
    for dispatcher in (one, two):  # and neither can claim anything more
        await dispatcher.fan_out()
        assert await dispatcher.deliver_due() == 0
    subjects = [r.json()["subject"] for r in receiver.requests]
    assert sorted(subjects) == sorted(c["id"] for c in customers)
    assert len({r.headers["patron-event-id"] for r in receiver.requests}) == 12
    assert all(r.signature_valid for r in receiver.requests)
    assert {r["attempts"] for r in await deliveries(db, endpoint["id"])} == {1}


async def test_an_abandoned_attempt_is_taken_over_and_the_late_outcome_ignored(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    await create_customer(client, admin, first_name="Crash")
    crashed, healthy = make_dispatcher(), make_dispatcher()
    while await crashed.fan_out():
        pass
    claims = [c for c in await crashed.claim() if str(c.endpoint_id) == endpoint["id"]]
    assert len(claims) == 1  # ... and then this dispatcher dies before sending
    for _ in range(3):  # the lease keeps the delivery from everyone else
        await healthy.run_once()
    assert receiver.count == 0
    # the lease runs out (WEBHOOKS_REQUEST_TIMEOUT + DNS timeout + 30 s; here: now)
    await db.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1", claims[0].id
    )

    async def delivered() -> bool:
        rows = await deliveries(db, endpoint["id"])
        return bool(rows[0]["status"] == "succeeded")

    await drive(healthy, delivered)
    assert receiver.count == 1
    # the first holder comes back with a failure: it no longer holds the lease
    await crashed.record(claims[0], Outcome(ok=False, status_code=500, error="HTTP 500"))
    row = (await deliveries(db, endpoint["id"]))[0]
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("succeeded", 2, 200)
    assert (await endpoint_row(db, endpoint["id"]))["consecutive_failures"] == 0


async def test_the_runtime_gets_the_dispatcher(
    app_ctx: AppContext,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    receiver: Receiver,
    create_endpoint: EndpointFactory,
) -> None:
    services = build_webhook_services(app_ctx)
    assert [s.name for s in services] == ["webhooks"]
    endpoint = await create_endpoint(receiver, event_types=["customer.created"])
    stop = asyncio.Event()
    task = asyncio.create_task(services[0].run(stop))
    try:
        await create_customer(client, admin, first_name="Runtime")

        async def delivered() -> bool:
            rows = await deliveries(db, endpoint["id"])
            return bool(rows) and rows[0]["status"] == "succeeded"

        await wait_for(delivered)  # it polls and delivers, rather than having crashed
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert receiver.count == 1


async def test_https_delivery_connects_to_the_checked_address_with_the_name_verified(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tmp_path: Path,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    # https://localhost:<port>: the dispatcher resolves "localhost", connects to the address
    # it checked, and still sends SNI and Host "localhost" and verifies the certificate for it
    cert = localhost_certificate(tmp_path)
    secure = Receiver(tls=cert.server)
    try:
        endpoint = await create_endpoint(secure, event_types=["customer.created"])
        assert endpoint["url"].startswith("https://localhost:")
        await create_customer(client, admin, first_name="Tls")

        async def delivered() -> bool:
            rows = await deliveries(db, endpoint["id"])
            return bool(rows) and rows[0]["status"] == "succeeded"

        await drive(make_dispatcher(tls_verify=cert.client), delivered)
        assert secure.count == 1
        assert secure.requests[0].signature_valid
        assert secure.requests[0].headers["host"] == f"localhost:{secure.port}"
    finally:
        secure.close()


async def test_https_certificate_not_trusted_is_a_failed_attempt(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tmp_path: Path,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    secure = Receiver(tls=localhost_certificate(tmp_path).server)
    try:
        endpoint = await create_endpoint(secure, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Untrusted")

        attempted = first_attempt_made(db, endpoint["id"])

        await drive(make_dispatcher(), attempted)  # the system's CAs: self-signed refused
        row = (await deliveries(db, endpoint["id"]))[0]
        assert row["status"] == "pending"
        assert row["last_status_code"] is None
        assert "ConnectError" in row["last_error"]
        assert "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
        assert secure.count == 0
    finally:
        secure.close()


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    create_endpoint: EndpointFactory,
    make_dispatcher: DispatcherFactory,
) -> None:
    slow = Receiver(delay=1.5)
    try:
        endpoint = await create_endpoint(slow, event_types=["customer.created"])
        await create_customer(client, admin, first_name="Slow")

        attempted = first_attempt_made(db, endpoint["id"], released=True)

        await drive(make_dispatcher(webhooks_request_timeout_seconds=0.3), attempted)
        row = (await deliveries(db, endpoint["id"]))[0]
        assert row["status"] == "pending"
        assert row["last_error"] == "timed out after 0.3 s"
        assert row["last_status_code"] is None
    finally:
        slow.close()
