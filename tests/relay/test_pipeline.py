"""The relay's pipelining (relay/service.py ``OutboxRelay.step``): the next batch is claimed
and sent while the previous batch's confirms are pending, against the real RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict

import asyncpg
import httpx
import pytest

from patron.relay.transport import BrokerUnavailable
from tests.conftest import create_customer, outbox_rows
from tests.relay.conftest import (
    FAST,
    Consumer,
    RelayFactory,
    nacking_queue,
    running,
    wait_until,
)
from tests.relay.proxy import TcpProxy


async def _write(
    client: httpx.AsyncClient, admin: dict[str, str], customers: int, updates: int
) -> list[str]:
    """``customers`` new customers, then ``updates`` PATCHes of each: their ids."""
    ids = [
        (await create_customer(client, admin, first_name=f"P{i}"))["id"] for i in range(customers)
    ]
    for n in range(updates):
        for customer_id in ids:
            response = await client.patch(
                f"/api/v1/customers/{customer_id}", json={"last_name": f"v{n}"}, headers=admin
            )
            assert response.status_code == 200, response.text
    return ids


async def test_one_round_sends_batch_after_batch_in_each_customers_order(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
) -> None:
    ids = await _write(client, admin, customers=12, updates=2)
    relay = make_relay(config=dataclasses.replace(FAST, batch_size=4, pipeline_batches=20))
    await relay.transport.connect()
    try:
        step = await relay.step()
    finally:
        await relay.transport.close()
    # 36 events in batches of at most 4, all in one round (one transaction)
    assert (step.published, step.rejected) == (36, 0)
    rows = await outbox_rows(db, tenant)
    assert len(rows) == 36
    assert all(r["published_at"] is not None for r in rows)
    await consumer.barrier()

    got = consumer.of_tenant(tenant)
    assert Counter(m.body["id"] for m in got) == Counter(str(r["id"]) for r in rows)
    seq_of = {str(r["id"]): r["seq"] for r in rows}
    per_customer: dict[str, list[int]] = defaultdict(list)
    for m in got:
        per_customer[m.body["subject"]].append(seq_of[m.body["id"]])
    assert set(per_customer) == set(ids)
    for seqs in per_customer.values():
        assert len(seqs) == 3
        assert seqs == sorted(seqs)


async def test_broker_failing_mid_pipeline_marks_nothing_unconfirmed_and_loses_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
    rabbitmq_url: str,
) -> None:
    # one event per customer, batches of 2
    ids = await _write(client, admin, customers=6, updates=0)
    config = dataclasses.replace(FAST, batch_size=2, pipeline_batches=8)
    async with TcpProxy.for_url(rabbitmq_url) as proxy:
        relay = make_relay(url=proxy.url_for(rabbitmq_url), confirm_timeout=1.0, config=config)
        await relay.transport.connect()
        # the broker receives what is published, its confirms never come back
        proxy.swallow_replies()
        round_ = asyncio.create_task(relay.step())

        async def two_batches_sent() -> bool:
            return len(consumer.of_tenant(tenant)) >= 4

        # the second batch goes out while the first one's confirms are pending
        await wait_until(two_batches_sent, what="two batches at the broker")
        with pytest.raises(BrokerUnavailable):
            await round_
        await relay.transport.close()
        await consumer.barrier()
        sent = [m.body["id"] for m in consumer.of_tenant(tenant)]
        # the first batch failed: nothing after it was sent, nothing at all was marked
        assert len(sent) == 4
        rows = await outbox_rows(db, tenant)
        assert [str(r["id"]) for r in rows][:4] == sent
        assert [(r["published_at"], r["published_to"]) for r in rows] == [(None, [])] * 6

        proxy.restore()
        async with running(make_relay(url=proxy.url_for(rabbitmq_url), config=config)):

            async def all_published() -> bool:
                rows = await outbox_rows(db, tenant)
                return all(r["published_at"] is not None for r in rows)

            await wait_until(all_published, what="every event published after the failure")
    await consumer.barrier()
    # at least once: the failed round's 4 again, the other 2 once; each customer's event
    got = Counter(m.body["id"] for m in consumer.of_tenant(tenant))
    assert got == Counter({**dict.fromkeys(sent, 2), **{str(r["id"]): 1 for r in rows[4:]}})
    assert {m.body["subject"] for m in consumer.of_tenant(tenant)} == set(ids)


async def test_a_rejected_event_is_not_overtaken_by_its_customers_next_batch(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    make_relay: RelayFactory,
    rabbitmq_url: str,
    exchange: str,
) -> None:
    # a queue that makes the broker nack every customer.blocked message
    async with nacking_queue(rabbitmq_url, exchange, "v1.customer.blocked"):
        customer = (await create_customer(client, admin, first_name="Nacked"))["id"]
        blocked = await client.post(f"/api/v1/customers/{customer}/block", headers=admin)
        assert blocked.status_code == 200
        patched = await client.patch(
            f"/api/v1/customers/{customer}", json={"last_name": "Later"}, headers=admin
        )
        assert patched.status_code == 200
        created, poison, update = await outbox_rows(db, tenant)
        # batches of 2: [created, blocked], then the update would be the next batch,
        # claimed while the first one's confirms (a nack among them) are pending
        relay = make_relay(config=dataclasses.replace(FAST, batch_size=2, pipeline_batches=8))
        async with running(relay):

            async def update_published() -> bool:
                rows = await outbox_rows(db, tenant)
                return rows[2]["published_at"] is not None

            await wait_until(update_published, what="the update after the dead letter")
        rows = await outbox_rows(db, tenant)
        assert rows[1]["dead_at"] is not None
        assert rows[1]["attempts"] == FAST.max_attempts
        await consumer.barrier()
        # every copy of the rejected event reached the bound queue before the update
        got = [m.body["id"] for m in consumer.of_tenant(tenant)]
        assert got == [str(created["id"])] + [str(poison["id"])] * FAST.max_attempts + [
            str(update["id"])
        ]
