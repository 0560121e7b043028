"""Prometheus metrics (https://prometheus.io/docs/practices/naming/).

Requests are counted and timed by method, route *template* (never the raw path, so ids do
not explode cardinality) and status. The database pool is reported at scrape time, and so
is the outbox backlog (``patron_outbox_pending``, ``..._oldest_pending_age_seconds``,
``patron_outbox_dead_letters``); the relay counts what it publishes and rejects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "patron_http_requests_total",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "patron_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


class PoolCollector(Collector):
    """Reports a SQLAlchemy pool's size and use when scraped."""

    def __init__(self) -> None:
        self.pool: Any = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.pool is None:
            return
        size = GaugeMetricFamily("patron_db_pool_size", "Configured connections in the pool.")
        size.add_metric([], float(self.pool.size()))
        out = GaugeMetricFamily("patron_db_pool_checked_out", "Connections in use.")
        out.add_metric([], float(self.pool.checkedout()))
        overflow = GaugeMetricFamily("patron_db_pool_overflow", "Connections beyond the pool size.")
        overflow.add_metric([], float(max(self.pool.overflow(), 0)))
        yield from (size, out, overflow)


POOL = PoolCollector()
REGISTRY.register(POOL)

# -- outbox and relay (docs/decisions/0007-outbox-order.md) --------------------------------
OUTBOX_PENDING = Gauge(
    "patron_outbox_pending",
    "Outbox events not yet published on every configured transport (dead letters excluded).",
    registry=REGISTRY,
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "patron_outbox_oldest_pending_age_seconds",
    "Age in seconds of the oldest pending outbox event (0 when none is pending).",
    registry=REGISTRY,
)
OUTBOX_DEAD_LETTERS = Gauge(
    "patron_outbox_dead_letters",
    "Outbox events the relay gave up on after RELAY_MAX_ATTEMPTS broker rejections.",
    registry=REGISTRY,
)
IDENTITY_RACES = Counter(
    "patron_identity_races_total",
    "Customer writes that lost an identity to a concurrent create and were run again or "
    "answered 409 (decision 0002), by route: create, upsert, update.",
    ["route"],
    registry=REGISTRY,
)
RELAY_PUBLISHED = Counter(
    "patron_relay_published_total",
    "Outbox events published and confirmed by the broker, by transport.",
    ["transport"],
    registry=REGISTRY,
)
RELAY_REJECTED = Counter(
    "patron_relay_rejected_total",
    "Broker rejections of single events (each one is retried or dead-lettered), by transport.",
    ["transport"],
    registry=REGISTRY,
)
RELAY_DEAD_LETTERED = Counter(
    "patron_relay_dead_lettered_total",
    "Events this process moved to the dead-letter state, by transport.",
    ["transport"],
    registry=REGISTRY,
)
RELAY_BROKER_UP = Gauge(
    "patron_relay_broker_up",
    "1 while this process's relay is connected to the transport's broker, else 0.",
    ["transport"],
    registry=REGISTRY,
)

_BACKLOG = text("SELECT pending, oldest_pending_at, dead FROM patron_outbox_backlog()")


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Outbox totals over every tenant: pending events, age of the oldest (s), dead letters."""

    pending: int
    oldest_pending_age_seconds: float
    dead: int


async def outbox_backlog(engine: AsyncEngine) -> OutboxBacklog:
    """Read the backlog through ``patron_outbox_backlog()`` (migration 0004: a SECURITY
    DEFINER function returning aggregates only, so the RLS-bound app role may call it) and
    set the outbox gauges from it."""
    async with engine.connect() as conn:
        row = (await conn.execute(_BACKLOG)).one()
    age = 0.0
    if row.oldest_pending_at is not None:
        age = max((datetime.now(UTC) - row.oldest_pending_at).total_seconds(), 0.0)
    backlog = OutboxBacklog(
        pending=int(row.pending), oldest_pending_age_seconds=age, dead=int(row.dead)
    )
    OUTBOX_PENDING.set(backlog.pending)
    OUTBOX_OLDEST_PENDING_AGE.set(backlog.oldest_pending_age_seconds)
    OUTBOX_DEAD_LETTERS.set(backlog.dead)
    return backlog


class RelayStatus:
    """The broker state of the relays running in this process, for ``/ready``."""

    def __init__(self) -> None:
        self.brokers: dict[str, str] = {}

    def up(self, transport: str) -> None:
        self.brokers[transport] = "ok"
        RELAY_BROKER_UP.labels(transport).set(1)

    def down(self, transport: str, reason: str) -> None:
        self.brokers[transport] = f"unavailable: {reason}"
        RELAY_BROKER_UP.labels(transport).set(0)

    def stopped(self, transport: str) -> None:
        self.brokers.pop(transport, None)
        RELAY_BROKER_UP.labels(transport).set(0)


RELAY_STATUS = RelayStatus()
