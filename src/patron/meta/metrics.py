"""Prometheus metrics of the Meta Graph client and the profile cache, on Patron's one
registry (:data:`patron.ops.metrics.REGISTRY`, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

from patron.ops.metrics import REGISTRY

GRAPH_REQUESTS = Counter(
    "patron_meta_graph_requests_total",
    "Graph API requests (every attempt) by platform and outcome: ok, throttled, "
    "server_error, transport_error, timeout, token_invalid, rejected, error.",
    ["platform", "outcome"],
    registry=REGISTRY,
)
GRAPH_USAGE_PAUSES = Counter(
    "patron_meta_graph_usage_pauses_total",
    "Graph API calls delayed because Meta's usage headers reported the threshold reached.",
    registry=REGISTRY,
)
PROFILE_CACHE = Counter(
    "patron_meta_profile_cache_total",
    "Profile look-ups by platform and result: hit (no Graph call) or miss.",
    ["platform", "result"],
    registry=REGISTRY,
)
