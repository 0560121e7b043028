"""Prometheus metrics (https://prometheus.io/docs/practices/naming/).

Requests are counted and timed by method, route *template* (never the raw path, so ids do
not explode cardinality) and status. The database pool is reported at scrape time, and so
is the outbox backlog (``patron_outbox_pending``, ``..._oldest_pending_age_seconds``,
``patron_outbox_dead_letters``); the relay counts what it publishes and rejects; the
background services of ``patron relay`` / ``patron worker`` report whether they run and
how often they were restarted. prometheus_client's process, platform and garbage-collector
collectors add ``process_*`` (memory, CPU, open files), ``python_info`` and ``python_gc_*``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

REGISTRY = CollectorRegistry(auto_describe=True)
# The standard process and runtime metrics (prometheus_client registers them only on its
# own default registry, which Patron does not serve).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)  # registers nothing on interpreters without gc.get_stats

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


class ServiceView(Protocol):
    """One supervised background service, as :class:`patron.runtime.ServiceStatus` shows it
    (``ops`` and ``runtime`` are sibling layers, so the shape is restated here)."""

    @property
    def state(self) -> str: ...

    @property
    def restarts(self) -> int: ...


class ServicesView(Protocol):
    """The background services of a process (:class:`patron.runtime.Supervision`)."""

    @property
    def services(self) -> Mapping[str, ServiceView]: ...

    def ready(self) -> bool: ...

    def report(self) -> Mapping[str, Mapping[str, object]]: ...


class BackgroundServicesCollector(Collector):
    """Reports the supervised background services of this process when scraped:
    ``patron_background_service_up`` (1 while running) and
    ``patron_background_service_restarts_total`` (crashes since start), by ``service``."""

    def __init__(self) -> None:
        self.source: ServicesView | None = None

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        if self.source is None:
            return
        up = GaugeMetricFamily(
            "patron_background_service_up",
            "1 while the background service runs, 0 while it starts, waits to restart "
            "after a crash, or has stopped.",
            labels=["service"],
        )
        restarts = CounterMetricFamily(
            "patron_background_service_restarts",
            "Times the background service crashed and was restarted since the process began.",
            labels=["service"],
        )
        for name, status in self.source.services.items():
            up.add_metric([name], 1.0 if status.state == "running" else 0.0)
            restarts.add_metric([name], float(status.restarts))
        yield from (up, restarts)


BACKGROUND_SERVICES = BackgroundServicesCollector()
REGISTRY.register(BACKGROUND_SERVICES)

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

# The age is measured on the database's clock, which stamped created_at, so a skew between
# the service's and the database's hosts does not show as age.
_BACKLOG = text(
    "SELECT pending, oldest_pending_at, dead, "
    "extract(epoch FROM clock_timestamp() - oldest_pending_at) AS age "
    "FROM patron_outbox_backlog()"
)


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """Outbox totals over every tenant: pending events, when the oldest was written (UTC,
    None when nothing is pending) and its age (s, 0 when none), dead letters."""

    pending: int
    oldest_pending_at: datetime | None
    oldest_pending_age_seconds: float
    dead: int


async def outbox_backlog(engine: AsyncEngine) -> OutboxBacklog:
    """Read the backlog through ``patron_outbox_backlog()`` (migration 0004: a SECURITY
    DEFINER function returning aggregates only, so the RLS-bound app role may call it) and
    set the outbox gauges from it."""
    async with engine.connect() as conn:
        row = (await conn.execute(_BACKLOG)).one()
    backlog = OutboxBacklog(
        pending=int(row.pending),
        oldest_pending_at=row.oldest_pending_at,
        oldest_pending_age_seconds=max(float(row.age or 0.0), 0.0),
        dead=int(row.dead),
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
