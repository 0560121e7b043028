"""Prometheus metrics (https://prometheus.io/docs/practices/naming/).

Requests are counted and timed by method, route *template* (never the raw path, so ids do
not explode cardinality) and status. The database pool is reported at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
