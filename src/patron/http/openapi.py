"""The OpenAPI document as client generators and "Try it out" need it (issue 10).

FastAPI builds the document from the routes; :func:`install_openapi` adds what a route
cannot say by itself, once, when ``/openapi.json`` is first asked for:

- ``components.securitySchemes``: ``bearerAuth`` (``Authorization: Bearer <JWT>``) and
  ``apiKeyAuth`` (``X-API-Key``), required by every route that takes a
  :class:`~patron.http.scope.Scope` (the ops routes take none and need none);
- on those routes the ``X-Tenant-Id`` header (platform credentials name their tenant with
  it) and, on POST, ``Idempotency-Key`` (honoured on POST only: :mod:`patron.http.idempotency`);
- the error statuses each route can really answer (:func:`problem_statuses`), as
  ``application/problem+json``, with ``Retry-After`` on 429 and 503;
- ``X-Trace-Id`` on every response (:class:`~patron.http.middleware.RequestContextMiddleware`).

Operation ids are camelCase verb + noun (:func:`operation_id`), so generated clients get
``getCustomerByPsid`` rather than FastAPI's ``get_customer_by_psid_api_v1_customers_...``.
Routes whose response carries ``ETag`` or ``Location`` declare it themselves with
:func:`success_headers`.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from patron.http.problems import PROBLEM_JSON, PROBLEM_RESPONSES
from patron.http.scope import Scope

# Operation ids of routes whose function name does not make one: the ops router serves one
# function at two paths (/health and its alias /healthcheck), keyed by full path.
OPERATION_IDS_BY_PATH: dict[str, str] = {
    "/health": "getHealth",
    "/healthcheck": "getHealthcheck",
    "/ready": "getReadiness",
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from the identity provider (JWKS_URL), or Patron's own "
        "customer token from POST /api/v1/auth/login.",
    },
    "apiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`patron apikey create`), bound to a tenant or the platform.",
    },
}
# Ops routes answer more than 200 (they have no Scope, so no problem statuses).
OPS_RESPONSES: dict[str, dict[str, dict[str, Any]]] = {
    "/ready": {
        "503": {
            "description": "Not ready: a check failed (`checks` names it)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
}
# Either credential will do (OpenAPI: the entries of `security` are alternatives).
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyAuth": []}]

# ARCHITECTURE.md §4: 1..64 characters of [A-Za-z0-9._:-] (patron.tenancy.TENANT_ID_RE).
TENANT_HEADER: dict[str, Any] = {
    "name": "X-Tenant-Id",
    "in": "header",
    "required": False,
    "description": "The tenant to act for, needed with a platform credential (no tenant: 400). "
    "A tenant-bound credential may repeat its own tenant; another one is 403.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
}
# draft-ietf-httpapi-idempotency-key-header; 1..255 characters (patron.idempotency.service).
IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key with the same request within 24 h answers the first response "
    "again (`Idempotent-Replayed: true`); with another request, 422; while the first is "
    "still running, 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

_HEADER_DOCS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'The customer\'s version as a strong entity tag (`"3"`), for If-Match',
        "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
    },
    "Location": {
        "description": "Path of the created resource",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again (RFC 9110 §10.2.3)",
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-Trace-Id": {
        "description": "The request's trace id: the caller's (X-Trace-Id or traceparent) "
        "or a new one",
        "schema": {"type": "string"},
    },
}


def success_headers(*names: str, description: str | None = None) -> dict[str, Any]:
    """A ``responses=`` entry declaring response headers that the route always sends:
    ``{200: success_headers("ETag")}``. Known names: ETag, Location."""
    entry: dict[str, Any] = {
        "headers": {name: {**_HEADER_DOCS[name], "required": True} for name in names}
    }
    if description is not None:
        entry["description"] = description
    return entry


def operation_id(route: APIRoute) -> str:
    """camelCase of the route function's name (``get_customer_by_psid`` →
    ``getCustomerByPsid``), or an id of :data:`OPERATION_IDS_BY_PATH`. Used as FastAPI's
    ``generate_unique_id_function``; a route's own ``operation_id=`` wins over it."""
    by_path = OPERATION_IDS_BY_PATH.get(route.path_format)
    if by_path is not None:
        return by_path
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _scope_of(dependant: Any) -> Scope | None:
    """The :class:`Scope` among a route's dependencies (also under ``known_customer``)."""
    for dep in dependant.dependencies:
        if isinstance(dep.call, Scope):
            return dep.call
        found = _scope_of(dep)
        if found is not None:
            return found
    return None


def problem_statuses(method: str, path: str, operation: dict[str, Any]) -> dict[int, list[str]]:
    """The error statuses a tenant route can answer, each with its reasons (API.md
    "Conventions"), from what the route takes:

    - every route: 400 (no tenant), 401, 403, 422 (a malformed X-Tenant-Id, or any
      parameter), 503 (database unavailable: every route authenticates against it);
    - a path id: 404; ``If-Match``: 412; a body: 413, and for a JSON body 400 (not JSON)
      and 415 (sent as another media type);
    - POST: 409 and 422 for its ``Idempotency-Key``.

    Statuses only some routes answer (409 on a conflict, 429 when rate limited) are declared
    by the route itself in ``responses=`` and kept.
    """
    reasons: dict[int, list[str]] = {
        400: ["No tenant: a platform credential without X-Tenant-Id"],
        401: [],
        403: [],
        422: [],
        503: [],
    }
    if "{" in path:
        reasons[404] = []
    names = {p.get("name", "").lower() for p in operation.get("parameters", [])}
    if "if-match" in names:
        reasons[412] = []
    content = (operation.get("requestBody") or {}).get("content", {})
    if content:
        reasons[413] = []
    if "application/json" in content:
        reasons[400].append("a body that is not valid JSON (line and column named)")
        reasons[415] = []
    elif content:
        reasons[400].append("a form body that cannot be parsed")
    if method == "post":
        reasons.setdefault(409, []).append("a request with this Idempotency-Key is still running")
        reasons[422].append("the Idempotency-Key was used for another request")
    return reasons


def _problem_response(status: int, reasons: list[str], declared: dict[str, Any]) -> dict[str, Any]:
    known = PROBLEM_RESPONSES.get(status) or {"description": HTTPStatus(status).phrase}
    general = str(known["description"])
    texts = [declared["description"]] if declared.get("description") else [general]
    texts += [r for r in reasons if r not in texts]
    name = "ValidationProblem" if status == 422 else "ProblemDetails"
    response: dict[str, Any] = {
        "description": "; ".join(texts),
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }
    if status in (429, 503):
        response["headers"] = {"Retry-After": {**_HEADER_DOCS["Retry-After"], "required": True}}
    return response


def describe(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """Add security, headers and each route's real error statuses to ``document`` (the one
    FastAPI built for ``app``, problems already documented); returns it."""
    components = document.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    paths = document.get("paths", {})
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if not (isinstance(route, APIRoute) and route.include_in_schema and rc.path):
            continue
        scope = _scope_of(route.dependant)
        for method in sorted(route.methods or ()):
            operation = paths.get(rc.path, {}).get(method.lower())
            if operation is not None and scope is None:
                operation["responses"].update(OPS_RESPONSES.get(rc.path, {}))
            if operation is None or scope is None:
                continue
            operation["security"] = SECURITY
            parameters = operation.setdefault("parameters", [])
            parameters.append(TENANT_HEADER)
            if method == "POST":
                parameters.append(IDEMPOTENCY_HEADER)
            responses = operation["responses"]
            declared_errors = {
                int(code): responses.pop(code) for code in list(responses) if code[0] in "45"
            }
            statuses = problem_statuses(method.lower(), rc.path, operation)
            for status in sorted(statuses.keys() | declared_errors.keys()):
                responses[str(status)] = _problem_response(
                    status, statuses.get(status, []), declared_errors.get(status, {})
                )
    refuse_nul(document)
    for operations in paths.values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                headers = response.setdefault("headers", {})
                headers["X-Trace-Id"] = {**_HEADER_DOCS["X-Trace-Id"], "required": True}
    return document


# PostgreSQL text and jsonb cannot hold U+0000: such a string is refused with 422
# (SQLSTATE 22021 / 22P05, patron.http.problems.database_error_problem).
NO_NUL = "^[^\\u0000]*$"


def _no_nul(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    """Give every free string of ``schema`` (no pattern, format, enum or const) the
    :data:`NO_NUL` pattern, following ``$ref`` into ``components`` once each."""
    if isinstance(schema, list):
        for item in schema:
            _no_nul(item, components, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            _no_nul(components.get(name), components, seen)
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = NO_NUL
    for key in ("properties", "$defs"):
        for child in (schema.get(key) or {}).values():
            _no_nul(child, components, seen)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        _no_nul(schema.get(key), components, seen)


def refuse_nul(document: dict[str, Any]) -> None:
    """State in ``document`` that request strings (parameters and bodies) cannot carry NUL."""
    components = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _no_nul(parameter.get("schema"), components, seen)
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                _no_nul(media.get("schema"), components, seen)


_VALID_ID = re.compile(r"^[a-z][A-Za-z0-9]+$")


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`describe`'s document at ``/openapi.json`` (built once, then cached).

    Call after :func:`patron.http.problems.install_handlers` and after the routes are
    mounted. Raises ``ValueError`` at first build for an operation id that is not camelCase.
    """
    build = app.openapi  # FastAPI's document with problems documented (install_handlers)
    described: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not described:
            document = describe(app, build())
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    if not _VALID_ID.match(operation.get("operationId", "")):
                        raise ValueError(f"not a camelCase operation id: {operation}")
            described.append(document)
            app.openapi_schema = document
        return described[0]

    app.openapi = openapi  # type: ignore[method-assign]
