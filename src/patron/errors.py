"""Domain exceptions: :class:`PatronError` and its kinds, for every transport.

Every error a client can see is a :class:`PatronError` (or a subclass declared in a domain
package). This module is pure: it imports no web framework and nothing else of Patron, so
services, jobs and the CLI raise the same classes that HTTP renders as RFC 9457 problem
details (:mod:`patron.http.problems`) and any other transport maps the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


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


class UnsupportedMediaType(PatronError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


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


class DatabaseUnavailable(PatronError):
    """503: the database could not be reached, or dropped the connection mid-request (a
    restart, a failover, a network fault), as opposed to refusing a statement. Transient:
    ``Retry-After`` (RFC 9110 §10.2.3) says when to try again, in seconds (API.md
    "Conventions": database unavailable is 503 with ``Retry-After``).

    ``committing`` says the connection was lost while a ``COMMIT`` was in flight, so the
    change may or may not have been saved; otherwise nothing was changed.
    """

    status, title, slug = 503, "Service Unavailable", "database-unavailable"
    RETRY_AFTER_SECONDS = 1

    def __init__(self, *, committing: bool = False) -> None:
        if committing:
            detail = (
                "The database connection was lost while the change was being committed: it "
                "may or may not have been saved. Read the resource before repeating the "
                "request."
            )
        else:
            detail = "The database is unavailable; nothing was changed. Retry in a moment."
        seconds = self.RETRY_AFTER_SECONDS
        super().__init__(detail, headers={"Retry-After": str(seconds)}, retry_after=seconds)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic / FastAPI error dicts reduced to ``loc``, ``msg``, ``type`` (JSON-safe)."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [p if isinstance(p, int | str) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out
