"""Health, readiness, metrics, problem details for unknown routes, trace ids, logs."""

from __future__ import annotations

import io
import json
import logging
import platform
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from patron.app import create_app
from patron.context import AppContext
from patron.kit.ratelimit import RateLimiter
from patron.logging import json_formatter
from patron.ops.metrics import REGISTRY
from tests import services
from tests.conftest import ApiKeyFactory, create_customer


async def test_health_and_alias(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/healthcheck"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_ready_checks_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_metrics_by_route_template(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="M")
    await client.get(f"/api/v1/customers/{customer['id']}", headers=admin)
    text = (await client.get("/metrics")).text
    assert (
        'patron_http_requests_total{method="GET",route="/api/v1/customers/{customer_id}",status="200"}'
        in text
    )
    assert "patron_http_request_duration_seconds_bucket" in text
    assert "patron_db_pool_size" in text
    assert customer["id"] not in text


async def test_a_camel_case_query_keeps_its_route_label(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # pageSize is renamed to page_size before routing; the label is still the route's
    labels = {"method": "GET", "route": "/api/v1/customers", "status": "200"}
    before = REGISTRY.get_sample_value("patron_http_requests_total", labels) or 0.0
    response = await client.get("/api/v1/customers?pageSize=1&sortOrder=asc", headers=admin)
    assert response.status_code == 200, response.text
    assert REGISTRY.get_sample_value("patron_http_requests_total", labels) == before + 1


async def test_unknown_route_and_method_are_problem_json(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    missing = await client.get("/api/v1/nothing-here", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    wrong = await client.put("/health")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["title"] == "Method Not Allowed"


async def test_trace_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Trace-Id": "abc-123"})
    assert response.headers["x-trace-id"] == "abc-123"
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get("/health", headers={"traceparent": parent})
    assert response.headers["x-trace-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    made = (await client.get("/health")).headers["x-trace-id"]
    assert len(made) == 32


async def test_outbox_event_carries_request_trace_id(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db
) -> None:
    await client.post(
        "/api/v1/customers", json={"first_name": "T"}, headers={**admin, "X-Trace-Id": "trace-xyz"}
    )
    assert (
        await db.fetchval("SELECT trace_id FROM outbox_events WHERE tenant_id = $1", tenant)
        == "trace-xyz"
    )


async def test_logs_are_json_with_trace_id_and_no_secrets(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        await client.post(
            "/api/v1/customers",
            json={"first_name": "L", "access_token": "EAAB-never-log-me"},
            headers={**admin, "X-Trace-Id": "log-trace"},
        )
    finally:
        root.setLevel(logging.WARNING)
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    request_lines = [line for line in lines if line.get("trace_id") == "log-trace"]
    assert request_lines, lines
    entry = next(line for line in request_lines if line["message"] == "request")
    assert {"timestamp", "level", "service_name", "trace_id", "message"} <= entry.keys()
    assert entry["service_name"] == "patron"
    assert entry["route"] == "/api/v1/customers"
    assert "EAAB-never-log-me" not in json.dumps(lines)
    assert admin["X-API-Key"] not in json.dumps(lines)


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/customers/upsert" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200


def _app_with_redis(app_ctx: AppContext, settings: Any, url: str) -> Any:
    configured = settings.model_copy(update={"redis_url": url})
    ctx = AppContext(
        **{**app_ctx.__dict__, "settings": configured, "rate_limiter": RateLimiter(url)}
    )
    return create_app(configured, context=ctx)


async def test_ready_is_503_when_configured_redis_is_down(
    app_ctx: AppContext, settings: Any
) -> None:
    app = _app_with_redis(app_ctx, settings, "redis://127.0.0.1:1/0")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("error")


async def test_ready_checks_redis_when_configured(app_ctx: AppContext, settings: Any) -> None:
    url = services.redis_url()
    if url is None:
        pytest.skip(
            "Redis is not reachable on 127.0.0.1:6379 (set PATRON_TEST_REDIS_URL); CI requires it"
        )
    app = _app_with_redis(app_ctx, settings, url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_oversized_body_is_413_problem(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db
) -> None:
    big = {"first_name": "A", "attributes": {"blob": "x" * (1024 * 1024 + 10)}}
    response = await client.post("/api/v1/customers", json=big, headers=admin)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus text exposition as ``{(sample name, sorted labels): value}``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


async def test_metrics_include_process_platform_and_gc_collectors(
    client: httpx.AsyncClient,
) -> None:
    found = samples((await client.get("/metrics")).text)
    names = {name for name, _ in found}
    assert found[("process_resident_memory_bytes", ())] > 0
    assert {"process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"} <= (
        names
    )
    [(_, info_labels)] = [key for key in found if key[0] == "python_info"]
    assert dict(info_labels)["implementation"] == platform.python_implementation()
    assert ("python_gc_objects_collected_total", (("generation", "0"),)) in found


async def test_ready_stays_200_without_a_broker_and_shows_the_backlog_and_its_age(
    app_ctx: AppContext, settings: Any, api_key_headers: ApiKeyFactory, tenant: str, db
) -> None:
    """No broker configured: events only pile up in the outbox. /ready stays 200 (the API
    works) and its body and /metrics show how many wait and since when."""
    unbrokered = settings.model_copy(update={"rabbitmq_url": None, "kafka_bootstrap_servers": None})
    app = create_app(unbrokered, context=AppContext(**{**app_ctx.__dict__, "settings": unbrokered}))
    admin = await api_key_headers("admin", tenant)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await create_customer(c, admin, first_name="Pending")
        await create_customer(c, admin, first_name="Pending too")
        pending = "WHERE published_at IS NULL AND dead_at IS NULL"
        count = await db.fetchval(f"SELECT count(*) FROM outbox_events {pending}")  # noqa: S608
        oldest = await db.fetchval(
            f"SELECT created_at FROM outbox_events {pending} ORDER BY seq LIMIT 1"  # noqa: S608
        )
        assert (
            await db.fetchval(
                f"SELECT count(*) FROM outbox_events {pending} AND tenant_id = $1",  # noqa: S608
                tenant,
            )
            == 2
        )
        response = await c.get("/ready")
        exposition = (await c.get("/metrics")).text
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    outbox = body["outbox"]
    assert outbox["pending"] == count >= 2
    assert datetime.fromisoformat(outbox["oldest_pending_at"]) == oldest
    assert outbox["oldest_pending_age_seconds"] > 0
    assert outbox["dead_letters"] >= 0
    assert outbox["transports"] == []
    found = samples(exposition)
    assert found[("patron_outbox_pending", ())] == count
    assert found[("patron_outbox_oldest_pending_age_seconds", ())] > 0
    assert ("patron_outbox_dead_letters", ()) in found
