"""The outbox relay as a background service: one per configured transport.

Loop (docs/decisions/0007-outbox-order.md): in one transaction, lease the free customer
partitions (advisory locks), read their pending events in ``seq`` order, publish them as a
batch, await the broker's confirms together, mark the confirmed ones in one statement and
commit. A customer whose oldest pending event is backing off after a rejection waits: its
later events are held back so they never overtake it.

Failures:

- broker unreachable, connection lost, confirms timing out (:class:`BrokerUnavailable`):
  the transaction rolls back (nothing is marked; what the broker did receive is sent again:
  at least once), the relay waits ``RELAY_BACKOFF_INITIAL`` doubling to
  ``RELAY_BACKOFF_MAX`` seconds and reconnects. Events wait in the outbox meanwhile.
- one event rejected by the broker: its ``attempts`` grows and it backs off; after
  ``RELAY_MAX_ATTEMPTS`` rejections it is dead-lettered (``dead_at``), visible at
  ``GET /api/v1/events/dead-letters`` and in ``patron_outbox_dead_letters``, never dropped.
- the relay dies between publishing and marking: its transaction never commits, its locks
  go with its connection, and another relay publishes the events again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from patron.config import Settings
from patron.context import AppContext
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.kit.backoff import capped_exponential
from patron.ops.metrics import (
    RELAY_DEAD_LETTERED,
    RELAY_PUBLISHED,
    RELAY_REJECTED,
    RELAY_STATUS,
)
from patron.relay import store
from patron.relay.kafka import KafkaTransport, parse_topics
from patron.relay.rabbitmq import RabbitMQTransport
from patron.relay.store import PendingEvent
from patron.relay.transport import BrokerUnavailable, Transport
from patron.runtime.supervisor import BackgroundService, wait_or_stop

log = structlog.get_logger("patron.relay")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The relay's knobs (settings ``RELAY_*``); seconds for every duration."""

    batch_size: int = 500
    poll_interval: float = 0.05
    partitions: int = 16
    max_attempts: int = 10
    backoff_initial: float = 1.0
    backoff_max: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayConfig:
        return cls(
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            partitions=settings.relay_partitions,
            max_attempts=settings.relay_max_attempts,
            backoff_initial=settings.relay_backoff_initial,
            backoff_max=settings.relay_backoff_max,
        )


@dataclass(frozen=True, slots=True)
class StepResult:
    """One claim-publish-mark round: events read, published, rejected."""

    claimed: int
    published: int
    rejected: int


class OutboxRelay:
    """Publishes the outbox to one transport until stopped (a ``BackgroundService``).

    ``required`` names every transport the deployment publishes to; an event is fully
    published (``published_at``) when all of them have confirmed it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        transport: Transport,
        config: RelayConfig,
        *,
        required: Sequence[str] | None = None,
        dispose_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.config = config
        self.required = list(required) if required is not None else [transport.name]
        self.dispose_engine = dispose_engine
        self.sessionmaker = create_sessionmaker(engine)
        self.name = f"outbox-relay-{transport.name}"

    def _backoff(self, failures: int) -> float:
        """Capped exponential backoff with +-20% jitter, in seconds."""
        return capped_exponential(
            failures,
            initial=self.config.backoff_initial,
            maximum=self.config.backoff_max,
            jitter=(0.8, 1.2),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; database errors propagate (the supervisor restarts
        the service), broker errors are retried here with backoff."""
        failures = 0
        name = self.transport.name
        try:
            while not stop.is_set():
                try:
                    if not self.transport.connected:
                        await self.transport.connect()
                        RELAY_STATUS.up(name)
                        log.info("relay connected", transport=name)
                    step = await self.step()
                    failures = 0
                except BrokerUnavailable as exc:
                    RELAY_STATUS.down(name, str(exc)[:200])
                    delay = self._backoff(failures)
                    failures += 1
                    log.warning(
                        "broker unavailable", transport=name, error=str(exc), retry_in=delay
                    )
                    await self.transport.close()
                    await wait_or_stop(stop, delay)
                    continue
                if step.published == 0:  # nothing to do (or all held back): poll later
                    await wait_or_stop(stop, self.config.poll_interval)
        finally:
            RELAY_STATUS.stopped(name)
            await self.transport.close()
            if self.dispose_engine:
                await self.engine.dispose()

    async def step(self) -> StepResult:
        """One round: lease partitions, publish their next batch, mark it, commit.

        Raises :class:`BrokerUnavailable` (nothing marked) when the broker fails.
        """
        name = self.transport.name
        async with self.sessionmaker() as session, session.begin():
            locked = await store.lock_partitions(session, name, self.config.partitions)
            if not locked:
                return StepResult(0, 0, 0)
            events = await store.claim(
                session,
                name,
                partitions=self.config.partitions,
                locked=locked,
                limit=self.config.batch_size,
            )
            batch = _publishable(events, datetime.now(UTC))
            if not batch:
                return StepResult(len(events), 0, 0)
            result = await self.transport.publish(batch)
            await store.mark_published(session, name, result.confirmed, self.required)
            dead = 0
            for event_id, error in result.rejected.items():
                if await store.mark_rejected(
                    session,
                    event_id,
                    error,
                    max_attempts=self.config.max_attempts,
                    backoff_initial=self.config.backoff_initial,
                    backoff_max=self.config.backoff_max,
                ):
                    dead += 1
                    log.error(
                        "event dead-lettered", transport=name, event_id=str(event_id), error=error
                    )
        RELAY_PUBLISHED.labels(name).inc(len(result.confirmed))
        if result.rejected:
            RELAY_REJECTED.labels(name).inc(len(result.rejected))
            log.warning("events rejected", transport=name, count=len(result.rejected))
        if dead:
            RELAY_DEAD_LETTERED.labels(name).inc(dead)
        return StepResult(len(events), len(result.confirmed), len(result.rejected))


def _publishable(events: Sequence[PendingEvent], now: datetime) -> list[PendingEvent]:
    """The part of ``events`` (in seq order) that may go out now, so that no event
    overtakes an earlier one of its customer: an event backing off holds back itself and
    the customer's later events; an event being retried goes alone, without the
    customer's later events, which follow once it is confirmed (or dead-lettered)."""
    held: set[str] = set()
    out: list[PendingEvent] = []
    for event in events:
        key = event.subject or str(event.id)
        if key in held:
            continue
        if event.next_attempt_at is not None and event.next_attempt_at > now:
            held.add(key)
            continue
        if event.attempts > 0:
            held.add(key)
        out.append(event)
    return out


def transports_from_settings(settings: Settings) -> list[Transport]:
    """RabbitMQ when ``RABBITMQ_URL`` is set, Kafka when ``KAFKA_BOOTSTRAP_SERVERS`` is."""
    transports: list[Transport] = []
    if settings.rabbitmq_url:
        transports.append(
            RabbitMQTransport(
                settings.rabbitmq_url,
                settings.rabbitmq_exchange,
                confirm_timeout=settings.relay_confirm_timeout,
            )
        )
    if settings.kafka_bootstrap_servers:
        transports.append(
            KafkaTransport(
                settings.kafka_bootstrap_servers,
                parse_topics(settings.kafka_topics),
                confirm_timeout=settings.relay_confirm_timeout,
            )
        )
    return transports


def create_relay_engine(settings: Settings, url: str) -> AsyncEngine:
    """The relay's engine: one ``patron_system`` connection (cross-tenant; migration 0004)
    with ``synchronous_commit = off``. A mark is bookkeeping: if a crash loses the last
    ones (at most ``3 * wal_writer_delay``), those events are published again, which
    at-least-once delivery allows; meanwhile no round waits for a WAL flush."""
    return create_system_engine(settings, url, pool_size=1, synchronous_commit=False)


def build_relay_services(ctx: AppContext) -> list[BackgroundService]:
    """One :class:`OutboxRelay` per configured transport (none without a broker), each with
    its own engine (:func:`create_relay_engine`)."""
    transports = transports_from_settings(ctx.settings)
    config = RelayConfig.from_settings(ctx.settings)
    required = [t.name for t in transports]
    return [
        OutboxRelay(
            create_relay_engine(ctx.settings, ctx.database_url),
            t,
            config,
            required=required,
            dispose_engine=True,
        )
        for t in transports
    ]
