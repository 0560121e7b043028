"""Domain exceptions and the one handler that renders them as RFC 9457 problem details.

Every error a client can see is a :class:`PatronError` (or a subclass declared in a domain
package), or one of FastAPI's / Starlette's own exceptions which are translated here too.
The body is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``,
``trace_id`` and, for 422, ``errors: [{"loc", "msg", "type"}]`` (API.md "Conventions").
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron.kit.jsonutil import dumps
from patron.ops.tracing import current_trace_id

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("patron.errors")


class PatronError(Exception):
    """Base of every error Patron reports to a client.

    ``status`` is the HTTP status, ``title`` a short constant summary of the problem kind,
    ``detail`` the occurrence-specific explanation; ``extra`` keys become extension members
    of the problem object (RFC 9457 §3.2). ``headers`` are added to the HTTP response.
    """

    status: int = 500
    title: str = "Internal Server Error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        """The problem object (without ``trace_id``, added at render time)."""
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class BadRequest(PatronError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(PatronError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(PatronError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(PatronError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(PatronError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(PatronError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class PayloadTooLarge(PatronError):
    status, title, slug = 413, "Content Too Large", "content-too-large"


class InvalidInput(PatronError):
    """422 with an ``errors`` list in the pydantic shape ``{"loc", "msg", "type"}``."""

    status, title, slug = 422, "Unprocessable Content", "validation-error"

    def __init__(
        self,
        detail: str,
        *,
        loc: Sequence[str | int] = (),
        type: str = "value_error",
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        if errors is None:
            errors = [{"loc": list(loc), "msg": detail, "type": type}]
        super().__init__(detail, errors=errors, **extra)


class RateLimited(PatronError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class UpstreamError(PatronError):
    status, title, slug = 502, "Bad Gateway", "upstream-error"


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


# Errors any tenant route may answer (API.md "Conventions"), declared once on the API router.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ProblemDetails, "description": "No tenant, or a body that is not valid JSON"},
    401: {"model": ProblemDetails, "description": "Missing or invalid credentials"},
    403: {"model": ProblemDetails, "description": "Role not allowed, or another tenant named"},
    404: {"model": ProblemDetails, "description": "No such object in this tenant"},
    409: {"model": ProblemDetails, "description": "Identity held by another customer"},
    412: {"model": ProblemDetails, "description": "If-Match does not match the current ETag"},
    413: {"model": ProblemDetails, "description": "Request body too large"},
    422: {"model": ValidationProblem, "description": "Invalid input"},
    429: {"model": ProblemDetails, "description": "Rate limited; see Retry-After"},
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


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic / FastAPI error dicts reduced to ``loc``, ``msg``, ``type`` (JSON-safe)."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [p if isinstance(p, int | str) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def install_handlers(app: FastAPI) -> None:
    """Register the single problem+json rendering for every exception kind, and say so in
    the OpenAPI document (:func:`document_problems`)."""

    async def on_patron(_: Request, exc: Exception) -> Response:
        exc = cast(PatronError, exc)
        return problem_response(exc.to_problem(), exc.headers)

    async def on_validation(_: Request, exc: Exception) -> Response:
        exc = cast(RequestValidationError | ValidationError, exc)
        errs = validation_errors(exc.errors())
        msg = str(errs[0]["msg"]) if errs else "invalid input"
        where = ".".join(str(p) for p in errs[0]["loc"]) if errs else ""
        detail = f"{where}: {msg}" if where else msg
        return problem_response(InvalidInput(detail, errors=errs).to_problem())

    async def on_http(_: Request, exc: Exception) -> Response:
        exc = cast(StarletteHTTPException, exc)
        status = exc.status_code
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = exc.detail if isinstance(exc.detail, str) else phrase
        problem = {
            "type": f"/problems/{phrase.lower().replace(' ', '-')}",
            "title": phrase,
            "status": status,
            "detail": detail,
        }
        return problem_response(problem, dict(exc.headers or {}))

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem_response(PatronError("An unexpected error occurred.").to_problem())

    app.add_exception_handler(PatronError, on_patron)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)

    # ...and document that rendering in /openapi.json.
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
