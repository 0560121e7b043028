"""The call interceptor of ``patron.v1.CustomerService``: trace id, authentication,
tenant, authorisation and error mapping, in that order, for every unary call.

- Trace id: ``x-trace-id`` or ``traceparent`` metadata in (``patron.tracing``, as HTTP),
  ``x-trace-id`` trailing metadata out, on success and on error.
- Authentication: ``authorization: Bearer <JWT>`` (verified by the process's
  ``JwksVerifier``), ``authorization: Bearer ptk_...`` or ``x-api-key`` (the
  ``ApiKeyAuthenticator``): the same verifiers as :func:`patron.http.scope.authenticate`.
- Tenant: :func:`patron.tenancy.resolve_tenant` with ``x-tenant-id`` metadata.
- Authorisation: :data:`patron.grpc_api.access.METHODS`.
- Rate limits: :data:`patron.grpc_api.access.RATE_LIMITS` (the HTTP routes' limits, on
  the process's ``RateLimiter``), RESOURCE_EXHAUSTED with ``google.rpc.RetryInfo``.
- Access log (``grpc.call``: method, code, duration) and Prometheus metrics
  (``patron_grpc_requests_total{method,code}``, ``patron_grpc_request_duration_seconds``)
  on the process registry, served by ``/metrics``.
- Errors: a :class:`PatronError` becomes its status (:mod:`patron.grpc_api.errors`); any
  other exception is logged and answered INTERNAL, so nothing leaks as UNKNOWN.

The servicer reads the call's :class:`ServiceContext` with :func:`call_context`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any, cast

import grpc
import structlog
from grpc import aio
from prometheus_client import Counter, Histogram

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.errors import Forbidden, NotFound, PatronError, Unauthorized
from patron.grpc_api.access import METHODS, RATE_LIMITS, SERVICE_NAME, RateLimit
from patron.grpc_api.errors import status_for
from patron.ops.metrics import REGISTRY
from patron.tenancy import resolve_tenant
from patron.tracing import set_trace_id, trace_id_from_headers
from patron.usecases import ServiceContext

log = structlog.get_logger("patron.grpc")

_API_KEY_PREFIX = "ptk_"  # patron.auth.api_keys: every key is ptk_<prefix>_<secret>
GRPC_REQUESTS = Counter(
    "patron_grpc_requests_total",
    "gRPC calls of patron.v1.CustomerService by method and status code.",
    ["method", "code"],
    registry=REGISTRY,
)
GRPC_LATENCY = Histogram(
    "patron_grpc_request_duration_seconds",
    "gRPC call latency of patron.v1.CustomerService by method.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
_call: ContextVar[ServiceContext | None] = ContextVar("patron_grpc_call", default=None)

Behavior = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


def call_context() -> ServiceContext:
    """The :class:`ServiceContext` of the running call, set by :class:`CallInterceptor`.
    Raises ``RuntimeError`` outside an intercepted call (a wiring error)."""
    ctx = _call.get()
    if ctx is None:
        raise RuntimeError("no gRPC call context: is CallInterceptor installed?")
    return ctx


async def authenticate(app: AppContext, metadata: dict[str, str]) -> Principal:
    """The caller, from ``authorization`` (``Bearer <JWT>`` or ``Bearer <API key>``) or
    ``x-api-key`` metadata. Raises :class:`Unauthorized` when missing or invalid."""
    api_key = metadata.get("x-api-key")
    authorization = metadata.get("authorization", "")
    if not api_key and authorization[:7].lower() == "bearer ":
        credential = authorization[7:].strip()
        if credential.startswith(_API_KEY_PREFIX):
            api_key = credential
        elif app.jwks is None:
            raise Unauthorized("bearer tokens are not accepted: JWKS_URL is not configured")
        else:
            return await app.jwks.verify(credential)
    if api_key:
        return await app.api_keys.authenticate(app.db, api_key)
    raise Unauthorized("missing credentials: send authorization: Bearer <JWT or API key>")


def authorize(method: str, principal: Principal, request: Any) -> None:
    """Refuse a call ``principal`` may not make (:data:`METHODS`): :class:`Forbidden`, or
    :class:`NotFound` for a customer naming another customer than itself."""
    access = METHODS.get(method)
    if access is None:
        raise Forbidden("this method is not open to any role")
    if principal.has_any(access.roles):
        return
    if not (access.customer_self and Role.CUSTOMER in principal.roles):
        raise Forbidden("this role may not call this operation")
    if _request_customer(request) != principal.customer_id:
        raise NotFound("customer not found")


def _request_customer(request: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(getattr(request, "customer_id", "")))
    except ValueError:
        return None


class CallInterceptor(aio.ServerInterceptor):
    """Wraps every unary method of ``patron.v1.CustomerService`` (other services, health
    and reflection, pass through untouched). ``rate_limits`` by method name defaults to
    :data:`RATE_LIMITS`."""

    def __init__(self, app: AppContext, rate_limits: dict[str, RateLimit] | None = None) -> None:
        self.app = app
        self.rate_limits = RATE_LIMITS if rate_limits is None else rate_limits

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        if service != SERVICE_NAME or handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            # a grpc.aio server's handlers are coroutine functions (typed for sync grpc)
            self._wrap(method, cast(Behavior, handler.unary_unary)),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, behavior: Behavior) -> Behavior:
        requests = {code: GRPC_REQUESTS.labels(method, code.name) for code in grpc.StatusCode}
        latency = GRPC_LATENCY.labels(method)
        rate_limit = self.rate_limits.get(method)

        async def call(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            metadata = _metadata(context.invocation_metadata())
            trace_id = trace_id_from_headers(
                metadata.get("x-trace-id"), metadata.get("traceparent")
            )
            set_trace_id(trace_id)
            trailer = (("x-trace-id", trace_id),)
            code = grpc.StatusCode.OK
            try:
                principal = await authenticate(self.app, metadata)
                tenant = resolve_tenant(principal, metadata.get("x-tenant-id"))
                authorize(method, principal, request)
                if rate_limit is not None:
                    customer = _request_customer(request)
                    await self.app.rate_limiter.hit(
                        rate_limit.limit(self.app.settings),
                        rate_limit.scope,
                        tenant,
                        principal.id,
                        str(customer) if customer else "",
                    )
                _call.set(ServiceContext(self.app, principal, tenant))
                response = await behavior(request, context)
            except PatronError as exc:
                status = status_for(exc)
                code = status.code
                await context.abort(code, status.details, (*status.trailing_metadata, *trailer))
            except aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("grpc.unhandled", method=method, trace_id=trace_id)
                await context.abort(code, f"internal error; trace id {trace_id}", trailer)
            finally:
                elapsed = time.perf_counter() - started
                requests[code].inc()
                latency.observe(elapsed)
                log.info(
                    "grpc.call",
                    method=method,
                    code=code.name,
                    duration_ms=round(elapsed * 1000, 2),
                    trace_id=trace_id,
                )
            context.set_trailing_metadata(trailer)
            return response

        return call


def _metadata(items: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """Text metadata by lowercase key (binary ``-bin`` entries are ignored)."""
    return {k.lower(): v for k, v in items or () if isinstance(v, str)}
