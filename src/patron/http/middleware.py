"""ASGI middleware: trace ids, access log and metrics, idempotent-response capture.

Written as plain ASGI (not ``BaseHTTPMiddleware``) to stay cheap on the hot path and to
keep streaming responses intact.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patron.errors import DatabaseUnavailable, InvalidInput, PayloadTooLarge
from patron.http.idempotency import finish_idempotent_request
from patron.http.problems import error_response
from patron.idempotency.service import PendingKey
from patron.ops.metrics import HTTP_LATENCY, HTTP_REQUESTS
from patron.tracing import set_trace_id, trace_id_from_headers

log = structlog.get_logger("patron.http")

# Routes without an access log line (probes and scrapes).
_QUIET_ROUTES = frozenset({"/metrics", "/health", "/healthcheck"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Sets the trace id, echoes ``X-Trace-Id``, records metrics and one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None
        # Metric children by label values: prometheus-client's ``labels()`` validates and
        # looks them up under a lock on every call (about 18 Python calls a request).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def _template(self, scope: Scope) -> str:
        """The matched route's full path template (``/api/v1/customers/{customer_id}``)."""
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if self._templates is None:
            # Routers included with a prefix keep their own relative path on the route object;
            # FastAPI's route contexts know the full one.
            self._templates = {
                id(rc.original_route): rc.path
                for rc in iter_route_contexts(scope["app"].routes)
                if rc.path
            }
        return self._templates.get(id(route)) or str(getattr(route, "path", "unmatched"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = trace_id_from_headers(
            _header(scope, b"x-trace-id"), _header(scope, b"traceparent")
        )
        set_trace_id(trace_id)
        structlog.contextvars.bind_contextvars(trace_id=trace_id)
        started = time.perf_counter()
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-trace-id", trace_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            elapsed = time.perf_counter() - started
            template = self._template(scope)
            method = scope.get("method", "")
            counter = self._counters.get((method, template, status))
            if counter is None:
                counter = HTTP_REQUESTS.labels(method, template, str(status))
                self._counters[method, template, status] = counter
            counter.inc()
            latency = self._latencies.get((method, template))
            if latency is None:
                latency = self._latencies[method, template] = HTTP_LATENCY.labels(method, template)
            latency.observe(elapsed)
            if template not in _QUIET_ROUTES:
                log.info(
                    "request",
                    method=method,
                    path=scope.get("path"),
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("trace_id")


class IdempotencyMiddleware:
    """Stores the first response of a POST that claimed an ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or _header(scope, b"idempotency-key") is None
        ):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        pending = scope.get("state", {}).get("idempotency")
        if isinstance(pending, PendingKey) and start:
            ctx = scope["app"].state.ctx
            try:
                await finish_idempotent_request(
                    ctx.db, pending, start["status"], start.get("headers", []), bytes(body)
                )
            except DatabaseUnavailable:
                # The response is sent; raising now would only make the server drop the
                # client's connection. The key stays claimed until its lock lapses
                # (idempotency.service.LOCK_SECONDS): a retry before that gets 409.
                log.warning("idempotency_response_not_stored", status=start["status"])


class BodyLimitMiddleware:
    """413 problem details for request bodies over ``max_bytes`` (``max_upload_bytes`` for
    ``multipart/form-data``, the file uploads; their routes check each file's own limit).

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body (no length) is read here up to the limit and refused once it passes it,
    else handed on whole.
    (FastAPI's own ``max_body_size`` answers outside the app's problem+json handler.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = (_header(scope, b"content-type") or "").lower()
        limit = (
            self.max_upload_bytes
            if content_type.startswith("multipart/form-data")
            else self.max_bytes
        )
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = error_response(self._error(limit))
            await response(scope, receive, send)
            return
        if declared is None and "chunked" in (_header(scope, b"transfer-encoding") or ""):
            # No length declared: read the body here, up to the limit, so an oversized one
            # is refused as 413 before the app starts parsing it (FastAPI would turn an
            # error raised mid-parse into 400 "error parsing the body").
            body = await _read_at_most(receive, limit)
            if body is None:
                response = error_response(self._error(limit))
                await response(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, receive, send)

    def _error(self, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than {limit} bytes", max_bytes=limit)


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; the app will see an empty body
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` as one message, then defers to ``receive``
    (which then reports a disconnect when the client goes)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# A camelCase query parameter name (``pageSize``, ``sortBy``, ``createdAfter``).
_CAMEL_KEY = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+")
_UPPER = re.compile(rb"[A-Z]")


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


class CamelCaseQueryMiddleware:
    """Query parameters accept their camelCase aliases (API.md "Conventions"), for every
    route in one place: ``?pageSize=5&sortBy=email`` reaches the routes as
    ``?page_size=5&sort_by=email``. A parameter given both ways with different values is
    422 naming both (``page_size and pageSize disagree``); the same value twice is one.

    Query strings without an upper-case letter (most requests) pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"") if scope["type"] == "http" else b""
        if not query or not _UPPER.search(query):
            await self.app(scope, receive, send)
            return
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        given = {key: value for key, value in pairs}
        renamed: list[tuple[str, str]] = []
        for key, value in pairs:
            if _CAMEL_KEY.fullmatch(key):
                snake = _snake(key)
                if snake in given and given[snake] != value:
                    detail = f"{snake} and {key} disagree"
                    response = error_response(InvalidInput(detail, loc=["query", snake]))
                    await response(scope, receive, send)
                    return
                if snake in given:
                    continue  # the same value under both names: once is enough
                key = snake
            renamed.append((key, value))
        # in place, not a copy: the router records the matched route in this scope, which the
        # outer RequestContextMiddleware reads for its metrics and log labels
        scope["query_string"] = urlencode(renamed).encode("latin-1")
        await self.app(scope, receive, send)
