"""The outbox relay against the real RabbitMQ (ARCHITECTURE.md §5).

Writes go through the HTTP API (the ``client`` fixture); a queue bound to ``v1.customer.#``
on a per-test exchange receives what the relay publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict

import asyncpg
import httpx

from patron.ops.metrics import REGISTRY, RELAY_STATUS
from patron.relay.store import lock_key
from tests.conftest import create_customer, outbox_rows
from tests.relay.conftest import (
    Consumer,
    RelayFactory,
    Running,
    nacking_queue,
    running,
    wait_until,
)
from tests.relay.proxy import TcpProxy


async def _published(db: asyncpg.Pool, tenant: str, count: int) -> bool:
    rows = await outbox_rows(db, tenant)
    return len(rows) == count and all(r["published_at"] is not None for r in rows)


async def test_queue_receives_exactly_the_events_with_cloudevents_fields_and_trace_id(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
) -> None:
    trace = f"trace-{uuid.uuid4().hex}"
    headers = {**admin, "X-Trace-Id": trace}
    published_before = _metric("patron_relay_published_total", transport="rabbitmq")
    async with running(make_relay()):
        customer = await create_customer(client, headers, first_name="Ada")
        patched = await client.patch(
            f"/api/v1/customers/{customer['id']}", json={"last_name": "Lovelace"}, headers=headers
        )
        assert patched.status_code == 200, patched.text
        blocked = await client.post(
            f"/api/v1/customers/{customer['id']}/block", json={"reason": "spam"}, headers=headers
        )
        assert blocked.status_code == 200, blocked.text
        await wait_until(lambda: _published(db, tenant, 3), what="3 events marked published")
    await consumer.barrier()

    rows = await outbox_rows(db, tenant)
    got = consumer.of_tenant(tenant)
    assert [m.routing_key for m in got] == [
        "v1.customer.created",
        "v1.customer.updated",
        "v1.customer.blocked",
    ]
    for message, row in zip(got, rows, strict=True):
        assert message.message_id == str(row["id"])
        assert message.content_type == "application/cloudevents+json"
        assert message.delivery_mode == 2
        assert message.headers == {"trace_id": trace}
        body = message.body
        assert body["specversion"] == "1.0"
        assert body["id"] == str(row["id"])
        assert body["type"] == row["type"]
        assert body["source"] == "/patron/customers"
        assert body["subject"] == customer["id"]
        assert body["tenantid"] == tenant
        assert body["traceid"] == trace
        assert body["datacontenttype"] == "application/json"
        assert body["time"].endswith("Z")
        assert row["published_to"] == ["rabbitmq"]
    assert got[1].body["data"]["fields_changed"] == ["last_name"]
    # the counter counts every tenant's events the relay published, ours included
    assert _metric("patron_relay_published_total", transport="rabbitmq") >= published_before + 3
    assert got[2].body["data"]["reason"] == "spam"


async def test_order_per_customer_holds_with_two_relays_and_nothing_is_published_twice(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
) -> None:
    customers = [await create_customer(client, admin, first_name=f"C{i}") for i in range(4)]

    async def patch_many(customer_id: str, n: int) -> None:
        for i in range(n):
            response = await client.patch(
                f"/api/v1/customers/{customer_id}",
                json={"last_name": f"v{i}-{uuid.uuid4().hex[:8]}"},
                headers=admin,
            )
            assert response.status_code == 200, response.text

    async with running(make_relay(), make_relay(), make_relay()):
        # 4 customers x 3 concurrent writers x 10 PATCHes, while three relays publish
        await asyncio.gather(*(patch_many(c["id"], 10) for c in customers for _ in range(3)))
        total = 4 + 4 * 3 * 10
        await wait_until(lambda: _published(db, tenant, total), what=f"{total} events published")
    await consumer.barrier()

    got = consumer.of_tenant(tenant)
    ids = [m.body["id"] for m in got]
    assert Counter(ids).most_common(1)[0][1] == 1, "an event was published twice"
    assert len(ids) == total
    seq_of = {str(r["id"]): r["seq"] for r in await outbox_rows(db, tenant)}
    per_customer: dict[str, list[int]] = defaultdict(list)
    for m in got:
        per_customer[m.body["subject"]].append(seq_of[m.body["id"]])
    assert set(per_customer) == {c["id"] for c in customers}
    for seqs in per_customer.values():
        assert seqs == sorted(seqs)
        assert len(seqs) == 31


def _metric(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def _row(db: asyncpg.Pool, event_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM outbox_events WHERE id = $1", event_id)
    assert row is not None
    return row


async def test_broker_outage_loses_nothing_and_publishes_after_it_returns(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
    rabbitmq_url: str,
) -> None:
    async with TcpProxy.for_url(rabbitmq_url) as proxy:
        relay = make_relay(url=proxy.url_for(rabbitmq_url), confirm_timeout=2.0)
        async with running(relay):
            first = await create_customer(client, admin, first_name="Before")
            await wait_until(lambda: _published(db, tenant, 1), what="the first event")

            proxy.cut()
            during = [await create_customer(client, admin, first_name=f"D{i}") for i in range(3)]
            for c in during:
                response = await client.patch(
                    f"/api/v1/customers/{c['id']}", json={"last_name": "Out"}, headers=admin
                )
                assert response.status_code == 200

            async def relay_saw_outage() -> bool:
                return RELAY_STATUS.brokers.get("rabbitmq", "").startswith("unavailable")

            await wait_until(relay_saw_outage, what="the relay to notice the outage")
            rows = await outbox_rows(db, tenant)
            assert len(rows) == 7
            assert [r["published_at"] is None for r in rows] == [False] + [True] * 6
            # the API keeps working and shows the backlog; the broker does not fail /ready
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["outbox"]["pending"] >= 6
            assert ready.json()["relay"]["rabbitmq"].startswith("unavailable")
            metrics = (await client.get("/metrics")).text
            assert "patron_outbox_pending" in metrics
            assert _metric("patron_outbox_pending") >= 6
            assert _metric("patron_outbox_oldest_pending_age_seconds") > 0

            proxy.restore()
            await wait_until(lambda: _published(db, tenant, 7), what="the backlog after restore")
            assert RELAY_STATUS.brokers["rabbitmq"] == "ok"
    await consumer.barrier()

    got = [m.body["id"] for m in consumer.of_tenant(tenant)]
    rows = await outbox_rows(db, tenant)
    # nothing lost, nothing twice (the first event was confirmed before the cut)
    assert sorted(got) == sorted(str(r["id"]) for r in rows)
    assert got[0] == str(rows[0]["id"])
    assert first["id"] == rows[0]["subject"]
    for c in during:
        mine = [m.routing_key for m in consumer.of_tenant(tenant) if m.body["subject"] == c["id"]]
        assert mine == ["v1.customer.created", "v1.customer.updated"]


async def test_relay_killed_between_publish_and_mark_is_recovered_by_another(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
    rabbitmq_url: str,
) -> None:
    async with TcpProxy.for_url(rabbitmq_url) as proxy:
        doomed = Running(make_relay(url=proxy.url_for(rabbitmq_url), confirm_timeout=60.0))
        await create_customer(client, admin, first_name="Warm-up")
        await wait_until(lambda: _published(db, tenant, 1), what="the warm-up event")

        # the broker still receives what the relay publishes, but its confirms never return
        proxy.swallow_replies()
        customer = await create_customer(client, admin, first_name="Kill")

        def delivered() -> list[str]:
            return [m.routing_key for m in consumer.of_tenant(tenant)[1:]]

        async def broker_has_it() -> bool:
            return delivered() == ["v1.customer.created"]

        await wait_until(broker_has_it, what="the broker to receive the published event")
        # the relay now waits for a confirm that will not come; a later write waits too
        response = await client.patch(
            f"/api/v1/customers/{customer['id']}", json={"last_name": "Me"}, headers=admin
        )
        assert response.status_code == 200
        rows = await outbox_rows(db, tenant)
        assert [r["published_at"] is None for r in rows] == [False, True, True]

        # kill it: cancelled while awaiting confirms; its sockets die with it
        doomed.task.cancel()
        proxy.cut()
        with contextlib.suppress(asyncio.CancelledError):
            await doomed.task
        rows = await outbox_rows(db, tenant)
        assert [r["published_at"] is None for r in rows] == [False, True, True]

    async with running(make_relay()):
        await wait_until(lambda: _published(db, tenant, 3), what="recovery by the second relay")
    await consumer.barrier()
    # at least once: the dead relay's copy of the first event, then both in order
    assert delivered() == [
        "v1.customer.created",
        "v1.customer.created",
        "v1.customer.updated",
    ]
    copies = [m.body["id"] for m in consumer.of_tenant(tenant)[1:]]
    assert copies[0] == copies[1] == str(rows[1]["id"])


async def test_poison_event_is_dead_lettered_visible_and_requeueable(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
    rabbitmq_url: str,
    exchange: str,
) -> None:
    dead_before = _metric("patron_relay_dead_lettered_total", transport="rabbitmq")
    # a queue that makes the broker nack every customer.blocked message
    async with nacking_queue(rabbitmq_url, exchange, "v1.customer.blocked") as rejecting:
        async with running(make_relay()):
            customer = await create_customer(client, admin, first_name="Poison")
            blocked = await client.post(f"/api/v1/customers/{customer['id']}/block", headers=admin)
            assert blocked.status_code == 200
            rows = await outbox_rows(db, tenant)
            poison_id = rows[1]["id"]

            async def rejected_once() -> bool:
                return (await _row(db, poison_id))["attempts"] >= 1

            # the update is written while the blocked event backs off: it must wait
            await wait_until(rejected_once, what="the first rejection")
            patched = await client.patch(
                f"/api/v1/customers/{customer['id']}", json={"last_name": "After"}, headers=admin
            )
            assert patched.status_code == 200
            rows = await outbox_rows(db, tenant)
            poison_id = rows[1]["id"]

            async def dead() -> bool:
                return (await _row(db, poison_id))["dead_at"] is not None

            await wait_until(dead, what="the poison event to be dead-lettered")
            row = await _row(db, poison_id)
            assert row["attempts"] == 3
            assert row["published_at"] is None
            assert "nack" in row["last_error"]

            async def update_published() -> bool:
                return (await _row(db, rows[2]["id"]))["published_at"] is not None

            await wait_until(update_published, what="the update after the dead letter")

            # visible through the API and the metrics
            listed = await client.get("/api/v1/events/dead-letters", headers=admin)
            assert listed.status_code == 200
            body = listed.json()
            assert [d["event"]["id"] for d in body["dead_letters"]] == [str(poison_id)]
            assert body["dead_letters"][0]["attempts"] == 3
            assert body["next_cursor"] is None
            metrics = (await client.get("/metrics")).text
            assert "patron_outbox_dead_letters" in metrics
            assert _metric("patron_outbox_dead_letters") >= 1
            assert (
                _metric("patron_relay_dead_lettered_total", transport="rabbitmq") == dead_before + 1
            )

            # the broker is fixed; an admin requeues the event and it is published
            await rejecting.delete(if_unused=False, if_empty=False)
            requeued = await client.post(f"/api/v1/events/{poison_id}/requeue", headers=admin)
            assert requeued.status_code == 200, requeued.text
            assert requeued.json() == {"id": str(poison_id), "status": "pending"}

            async def republished() -> bool:
                return (await _row(db, poison_id))["published_at"] is not None

            await wait_until(republished, what="the requeued event")
        await consumer.barrier()
        # A nack with several bound queues still leaves copies in the others (RabbitMQ
        # promises nothing for a nacked message): the consumer sees each of the three
        # attempts. The update was held back until the blocked event was dead-lettered,
        # and the requeued event comes last.
        assert [m.routing_key for m in consumer.of_tenant(tenant)] == [
            "v1.customer.created",
            "v1.customer.blocked",
            "v1.customer.blocked",
            "v1.customer.blocked",
            "v1.customer.updated",
            "v1.customer.blocked",
        ]
        again = await client.get("/api/v1/events/dead-letters", headers=admin)
        assert again.json() == {"dead_letters": [], "next_cursor": None}


async def test_a_leased_partition_is_left_to_its_holder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
) -> None:
    """Another relay holds customer A's partition: this relay publishes B's events only,
    and A's once the lease ends."""
    relay = make_relay()
    a = await create_customer(client, admin, first_name="A")
    partitions = relay.config.partitions
    partition_a = await db.fetchval(
        "SELECT mod(hashtext($1)::bigint + 2147483648, $2)", a["id"], partitions
    )
    b = None
    while (
        b is None
        or await db.fetchval(
            "SELECT mod(hashtext($1)::bigint + 2147483648, $2)", b["id"], partitions
        )
        == partition_a
    ):
        b = await create_customer(client, admin, first_name="B")
    await relay.transport.connect()
    try:
        async with db.acquire() as holder, holder.transaction():
            await holder.execute(
                "SELECT pg_advisory_xact_lock($1, $2)", lock_key("rabbitmq"), partition_a
            )
            await relay.step()
            published = {
                r["subject"]: r["published_at"] is not None for r in await outbox_rows(db, tenant)
            }
            assert published[a["id"]] is False
            assert published[b["id"]] is True
        await relay.step()
        assert all(r["published_at"] is not None for r in await outbox_rows(db, tenant))
    finally:
        await relay.transport.close()
    await consumer.barrier()
    subjects = [m.body["subject"] for m in consumer.of_tenant(tenant)]
    assert subjects.index(b["id"]) < subjects.index(a["id"])  # A waited for its lease
