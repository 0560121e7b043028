"""The one handler that renders every error as RFC 9457 problem details.

:class:`~patron.errors.PatronError` (and its domain subclasses), FastAPI's / Starlette's own
exceptions and the database errors that input can cause are all rendered here. The body is
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``, ``trace_id``
and, for 422, ``errors: [{"loc", "msg", "type"}]`` (API.md "Conventions").
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from patron.db.disconnects import is_disconnect
from patron.errors import (
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    PatronError,
    UnsupportedMediaType,
    validation_errors,
)
from patron.kit.jsonutil import dumps
from patron.tracing import current_trace_id

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("patron.errors")


class ValidationIssue(BaseModel):
    """One entry of a 422 problem's ``errors``."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """The body of every error (RFC 9457); extension members such as
    ``conflicting_customer_id`` or ``retry_after`` may follow."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    trace_id: str


class ValidationProblem(ProblemDetails):
    """A 422 problem: ``errors`` names every invalid input."""

    errors: list[ValidationIssue]


# What each error status means, in general (API.md "Conventions"). Which of them a route
# can answer is decided per route by patron.http.openapi.problem_statuses.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ProblemDetails, "description": "Bad request"},
    401: {"model": ProblemDetails, "description": "Missing or invalid credentials"},
    403: {"model": ProblemDetails, "description": "Role not allowed, or another tenant named"},
    404: {"model": ProblemDetails, "description": "No such object in this tenant"},
    409: {"model": ProblemDetails, "description": "Conflict with the current state"},
    412: {"model": ProblemDetails, "description": "If-Match does not match the current ETag"},
    413: {"model": ProblemDetails, "description": "Request body too large"},
    415: {"model": ProblemDetails, "description": "A body sent as another media type than JSON"},
    422: {"model": ValidationProblem, "description": "Invalid input; `errors` names each field"},
    429: {"model": ProblemDetails, "description": "Rate limited; see Retry-After"},
    503: {
        "model": ProblemDetails,
        "description": "Database unavailable; try again after Retry-After seconds",
    },
}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what the handlers do: errors are problem+json.

    Every 4xx/5xx response documented as JSON, or without content, is documented as
    ``application/problem+json`` with the :class:`ProblemDetails` (422:
    :class:`ValidationProblem`) schema. Other media types are left as declared.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    ref_template = "#/components/schemas/{model}"
    for model in (ProblemDetails, ValidationProblem):
        found = model.model_json_schema(ref_template=ref_template)
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if not (code[0] in "45" and isinstance(response, dict)):
                    continue
                content = response.get("content") or {}
                if set(content) - {"application/json"}:
                    continue
                name = "ValidationProblem" if code == "422" else "ProblemDetails"
                response["content"] = {
                    PROBLEM_JSON: {"schema": {"$ref": ref_template.format(model=name)}}
                }
    return openapi


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """Render a problem object, stamping the current trace id."""
    problem.setdefault("trace_id", current_trace_id())
    return Response(
        content=dumps(problem),
        status_code=int(problem["status"]),
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def error_response(error: PatronError) -> Response:
    """``error`` rendered as its problem+json response, with its headers."""
    return problem_response(error.to_problem(), error.headers)


def database_error_problem(exc: Exception) -> PatronError:
    """The problem a database error stands for: those caused by input (SQLSTATE class 22,
    data exceptions → 422; 23505, unique violation → 409) are the client's, a lost or
    refused connection is 503 (:class:`DatabaseUnavailable`, which the units of work
    raise themselves; this catches one that escaped them), the rest 500.

    They arrive wrapped by SQLAlchemy (``DBAPIError``) or, from the prepared statements of
    :mod:`patron.db.fastpath`, straight from asyncpg (``asyncpg.PostgresError``). SQLSTATE codes:
    https://www.postgresql.org/docs/current/errcodes-appendix.html
    """
    if is_disconnect(exc):
        return DatabaseUnavailable()
    orig: Any = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate: Any = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if sqlstate == "23505":
        return Conflict("a unique value is already in use")
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        return InvalidInput("a value cannot be stored (invalid characters or out of range)")
    log.error("database_error", sqlstate=sqlstate, error_type=type(orig).__name__)
    return PatronError("An unexpected database error occurred.")


_JSON_TYPES = ("application/json", "application/problem+json")


async def _unreadable_body(request: Request, errors: Sequence[Any]) -> PatronError | None:
    """A body that is not JSON at all, as opposed to JSON with invalid fields (422): 400
    with the line and column of a syntax error, or 415 when it was sent as another media
    type to a route that takes JSON (API.md "Conventions"). None otherwise."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
            text = (await request.body()).decode("utf-8", "replace")
            line = text.count("\n", 0, loc[1]) + 1
            column = loc[1] - (text.rfind("\n", 0, loc[1]) + 1) + 1
            reason = str((error.get("ctx") or {}).get("error") or "JSON decode error")
            return BadRequest(
                f"the body is not valid JSON: {reason} at line {line}, column {column}",
                line=line,
                column=column,
            )
        if loc == ("body",) and error.get("type") == "model_attributes_type":
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type and media_type not in _JSON_TYPES and not media_type.endswith("+json"):
                return UnsupportedMediaType(
                    f"this route takes application/json, not {media_type}",
                    accepted=["application/json"],
                )
    return None


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every HTTP method some route of ``app`` serves at ``path``, sorted (for ``Allow``)."""
    methods: set[str] = set()
    for rc in iter_route_contexts(app.routes):
        route_methods = getattr(rc.original_route, "methods", None)
        if rc.path and route_methods and compile_path(rc.path)[0].match(path):
            methods |= set(route_methods)
    return sorted(methods)


def install_handlers(app: FastAPI) -> None:
    """Register the single problem+json rendering for every exception kind, and say so in
    the OpenAPI document (:func:`document_problems`)."""

    async def on_patron(_: Request, exc: Exception) -> Response:
        return error_response(cast(PatronError, exc))

    async def on_validation(request: Request, exc: Exception) -> Response:
        exc = cast(RequestValidationError | ValidationError, exc)
        if isinstance(exc, RequestValidationError):
            refused = await _unreadable_body(request, exc.errors())
            if refused is not None:
                return error_response(refused)
        errs = validation_errors(exc.errors())
        msg = str(errs[0]["msg"]) if errs else "invalid input"
        where = ".".join(str(p) for p in errs[0]["loc"]) if errs else ""
        detail = f"{where}: {msg}" if where else msg
        return error_response(InvalidInput(detail, errors=errs))

    async def on_http(request: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)
        status = exc.status_code
        headers = dict(exc.headers or {})
        if status == 405:
            # Starlette names only the first route that matched the path; RFC 9110 §15.5.6
            # wants every method the resource supports
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = exc.detail if isinstance(exc.detail, str) else phrase
        problem = {
            "type": f"/problems/{phrase.lower().replace(' ', '-')}",
            "title": phrase,
            "status": status,
            "detail": detail,
        }
        return problem_response(problem, headers)

    async def on_database(_: Request, exc: Exception) -> Response:
        return error_response(database_error_problem(exc))

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return error_response(PatronError("An unexpected error occurred."))

    app.add_exception_handler(PatronError, on_patron)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(asyncpg.PostgresError, on_database)
    app.add_exception_handler(Exception, on_unexpected)

    # ...and document that rendering in /openapi.json.
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
