"""The outbox relay as a background service: one per configured transport.

Loop (docs/decisions/0007-outbox-order.md): in one transaction, lease the free customer
partitions (advisory locks), read their pending events in ``seq`` order, publish them as a
batch, await the broker's confirms together, mark the confirmed ones in one statement and
commit. Pipelined: while a batch's confirms are pending, the next batch (without the
customers of the one in flight) is claimed and sent, up to ``pipeline_batches`` per
transaction (:meth:`OutboxRelay.step`), so a backlog drains at the rate the relay can
encode and send rather than one broker round trip per batch. A customer whose oldest
pending event is backing off after a rejection waits: its later events are held back so
they never overtake it.

Failures:

- broker unreachable, connection lost, confirms timing out (:class:`BrokerUnavailable`):
  the round commits the marks of the batches confirmed before the failing one and nothing
  after them (what the broker did receive of the rest is sent again: at least once), the
  relay waits ``RELAY_BACKOFF_INITIAL`` doubling to
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
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from patron.config import Settings
from patron.context import AppContext
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.kit.backoff import capped_exponential
from patron.kit.extras import require_extra
from patron.ops.metrics import (
    RELAY_DEAD_LETTERED,
    RELAY_PUBLISHED,
    RELAY_REJECTED,
    RELAY_STATUS,
)
from patron.relay import store
from patron.relay.rabbitmq import RabbitMQTransport
from patron.relay.store import PendingEvent
from patron.relay.transport import BatchResult, BrokerUnavailable, Transport
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
    # Batches one round (one transaction) sends, each claimed while the previous one's
    # confirms are pending (docs/decisions/0007-outbox-order.md).
    pipeline_batches: int = 8

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
        """One round: lease partitions, then publish their pending events batch after
        batch, pipelined, marking each batch as its confirms arrive; commit.

        Pipelining: while a batch's confirms are pending, the next batch is claimed and
        sent. It leaves out the batch in flight and every customer with an event in it,
        so one customer's events are never in two unconfirmed batches: a rejection or a
        broker failure in one batch cannot let a later event of its customer overtake it.
        Batches are marked in the order they were sent, each only from its own confirms;
        after a failed batch nothing later is marked. A round ends when a claim finds
        nothing to send, or after ``pipeline_batches`` batches (so the transaction, its
        partition leases and its unmarked work stay bounded).

        Raises :class:`BrokerUnavailable` when the broker fails; the batches confirmed
        before the failure are marked and committed, nothing after them is.
        """
        name = self.transport.name
        totals = _Totals()
        failure: BrokerUnavailable | None = None
        async with self.sessionmaker() as session, session.begin():
            locked = await store.lock_partitions(session, name, self.config.partitions)
            if not locked:
                return StepResult(0, 0, 0)
            in_flight: _Flight | None = None
            following: _Flight | None = None
            try:
                for sent in range(self.config.pipeline_batches + 1):
                    if sent < self.config.pipeline_batches:
                        following = await self._claim_and_send(session, locked, in_flight, totals)
                    if in_flight is not None:
                        await self._mark(session, in_flight.batch, await in_flight.confirms, totals)
                    in_flight, following = following, None
                    if in_flight is None:
                        break
            except BrokerUnavailable as exc:
                failure = exc  # commit the marks of the batches confirmed before it
            finally:
                for flight in (in_flight, following):  # abandoned: never marked
                    if flight is not None and not flight.confirms.done():
                        flight.confirms.cancel()
        if failure is not None:
            raise failure
        RELAY_PUBLISHED.labels(name).inc(totals.published)
        if totals.rejected:
            RELAY_REJECTED.labels(name).inc(totals.rejected)
            log.warning("events rejected", transport=name, count=totals.rejected)
        if totals.dead:
            RELAY_DEAD_LETTERED.labels(name).inc(totals.dead)
        return StepResult(totals.claimed, totals.published, totals.rejected)

    async def _claim_and_send(
        self,
        session: AsyncSession,
        locked: list[int],
        in_flight: _Flight | None,
        totals: _Totals,
    ) -> _Flight | None:
        """Claim the next batch (without ``in_flight``'s events and customers) and send
        it; None when nothing may go out now."""
        events = await store.claim(
            session,
            self.transport.name,
            partitions=self.config.partitions,
            locked=locked,
            limit=self.config.batch_size,
            in_flight=in_flight.ids if in_flight is not None else (),
        )
        totals.claimed += len(events)
        busy = in_flight.customers if in_flight is not None else frozenset()
        batch = _publishable(events, datetime.now(UTC), busy=busy)
        if not batch:
            return None
        return _Flight(batch, await self.transport.send(batch))

    async def _mark(
        self, session: AsyncSession, batch: list[PendingEvent], result: BatchResult, totals: _Totals
    ) -> None:
        """Record a batch's outcome: confirmed ids published, rejected ones backed off or
        dead-lettered."""
        name = self.transport.name
        await store.mark_published(session, name, result.confirmed, self.required)
        for event_id, error in result.rejected.items():
            if await store.mark_rejected(
                session,
                event_id,
                error,
                max_attempts=self.config.max_attempts,
                backoff_initial=self.config.backoff_initial,
                backoff_max=self.config.backoff_max,
            ):
                totals.dead += 1
                log.error(
                    "event dead-lettered", transport=name, event_id=str(event_id), error=error
                )
        totals.published += len(result.confirmed)
        totals.rejected += len(result.rejected)


@dataclass
class _Totals:
    """What a round did so far."""

    claimed: int = 0
    published: int = 0
    rejected: int = 0
    dead: int = 0


class _Flight:
    """A batch sent and waiting for its confirms."""

    __slots__ = ("batch", "confirms", "customers", "ids")

    def __init__(self, batch: list[PendingEvent], confirms: asyncio.Future[BatchResult]) -> None:
        self.batch = batch
        self.confirms = confirms
        self.ids = [event.id for event in batch]
        self.customers = frozenset(_customer(event) for event in batch)


def _customer(event: PendingEvent) -> str:
    """The key events are ordered by: the subject (customer id), else the event itself."""
    return event.subject or str(event.id)


def _publishable(
    events: Sequence[PendingEvent], now: datetime, *, busy: frozenset[str] = frozenset()
) -> list[PendingEvent]:
    """The part of ``events`` (in seq order) that may go out now, so that no event
    overtakes an earlier one of its customer: an event backing off holds back itself and
    the customer's later events; an event being retried goes alone, without the
    customer's later events, which follow once it is confirmed (or dead-lettered); the
    customers in ``busy`` (with a batch in flight) wait for it."""
    held: set[str] = set(busy)
    out: list[PendingEvent] = []
    for event in events:
        key = _customer(event)
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
    """RabbitMQ when ``RABBITMQ_URL`` is set, Kafka when ``KAFKA_BOOTSTRAP_SERVERS`` is.
    Raises :class:`~patron.kit.extras.MissingExtra` for Kafka without the ``kafka`` extra."""
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
        require_extra("kafka", "aiokafka", "KAFKA_BOOTSTRAP_SERVERS is set")
        # imported here: aiokafka is the optional `kafka` extra, loaded only when configured
        from patron.relay.kafka import KafkaTransport, parse_topics

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
