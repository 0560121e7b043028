"""Relay fixtures: a per-test exchange on the real RabbitMQ, a consumer bound to it, relays.

The relay reads every tenant's outbox of the test database. Events that other test files
left pending are marked published before each test here (``settled_outbox``), so a relay
test does not first publish the whole suite's backlog; assertions look at this test's
tenant only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from patron.config import Settings
from patron.db.engine import create_system_engine
from patron.kit.jsonutil import loads
from patron.relay.rabbitmq import RabbitMQTransport
from patron.relay.service import OutboxRelay, RelayConfig

FAST = RelayConfig(
    batch_size=200,
    poll_interval=0.02,
    partitions=8,
    max_attempts=3,
    backoff_initial=0.05,
    backoff_max=0.3,
)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Received:
    routing_key: str
    body: dict[str, Any]
    headers: dict[str, Any]
    message_id: str | None
    content_type: str | None
    delivery_mode: int | None


@dataclass
class Consumer:
    """Messages of an exclusive queue bound to ``binding`` on ``exchange``, in arrival order."""

    url: str
    exchange: str
    binding: str = "v1.customer.#"
    messages: list[Received] = field(default_factory=list)
    _connection: Any = None
    _exchange: Any = None
    _barriers: set[str] = field(default_factory=set)

    async def start(self) -> None:
        self._connection = await aio_pika.connect(self.url)
        channel = await self._connection.channel()
        self._exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(self._exchange, self.binding)
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.type == "barrier":
            self._barriers.add(message.message_id or "")
            return
        self.messages.append(
            Received(
                routing_key=message.routing_key or "",
                body=loads(message.body),
                headers=dict(message.headers),
                message_id=message.message_id,
                content_type=message.content_type,
                delivery_mode=int(message.delivery_mode) if message.delivery_mode else None,
            )
        )

    def of_tenant(self, tenant: str) -> list[Received]:
        return [m for m in self.messages if m.body.get("tenantid") == tenant]

    async def barrier(self) -> None:
        """Wait until everything confirmed to the exchange before now has been delivered:
        publish a marker after it and wait for the marker."""
        marker = uuid.uuid4().hex
        channel = await self._connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(self.exchange)
        await exchange.publish(
            aio_pika.Message(b"{}", type="barrier", message_id=marker), "v1.customer.barrier"
        )

        async def seen() -> bool:
            return marker in self._barriers

        await wait_until(seen, what="the barrier message")
        await channel.close()

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                channel = await self._connection.channel()
                await channel.exchange_delete(self.exchange)
            await self._connection.close()


@contextlib.asynccontextmanager
async def nacking_queue(url: str, exchange: str, binding: str) -> AsyncIterator[Any]:
    """A queue bound to ``binding`` on ``exchange`` that makes the broker nack every
    message routed to it (``x-max-length`` 0 with ``reject-publish``); yields the
    aio-pika queue (``delete()`` it to stop the nacks)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(
            f"reject-{uuid.uuid4().hex}",
            exclusive=True,
            arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
        )
        await queue.bind(ex, binding)
        yield queue
    finally:
        await connection.close()


@pytest.fixture(autouse=True)
async def settled_outbox(db: asyncpg.Pool) -> None:
    """Mark every pending event of the test database published (other tests' leftovers)."""
    await db.execute(
        "UPDATE outbox_events SET published_at = now() "
        "WHERE published_at IS NULL AND dead_at IS NULL"
    )


@pytest.fixture
def exchange() -> str:
    return f"patron.test.{uuid.uuid4().hex}"


@pytest.fixture
async def consumer(rabbitmq_url: str, exchange: str) -> AsyncIterator[Consumer]:
    c = Consumer(rabbitmq_url, exchange)
    await c.start()
    yield c
    await c.close()


RelayFactory = Callable[..., OutboxRelay]


@pytest.fixture
async def make_relay(
    settings: Settings, database_url: str, rabbitmq_url: str, exchange: str
) -> AsyncIterator[RelayFactory]:
    """``make_relay(url=..., confirm_timeout=..., config=...)``: a relay
    with its own ``patron_system`` engine (as a separate process would have)."""
    engines = []

    def make(
        *,
        url: str | None = None,
        confirm_timeout: float = 5.0,
        config: RelayConfig = FAST,
    ) -> OutboxRelay:
        engine = create_system_engine(settings, database_url, pool_size=1)
        engines.append(engine)
        transport = RabbitMQTransport(
            url or rabbitmq_url, exchange, confirm_timeout=confirm_timeout
        )
        return OutboxRelay(engine, transport, config)

    yield make
    for engine in engines:
        await engine.dispose()


class Running:
    """A relay running as a task; ``kill()`` cancels it wherever it is."""

    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(relay.run(self.stop))

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def running(*relays: OutboxRelay) -> AsyncIterator[list[Running]]:
    """Run ``relays`` for the block; stops them (or what is left of them) afterwards."""
    tasks = [Running(r) for r in relays]
    try:
        yield tasks
    finally:
        for t in tasks:
            if not t.task.done():
                await t.shutdown()
