"""Errors of the Meta Graph API client, rendered as RFC 9457 problems like every
:class:`~patron.errors.PatronError`.

Every failure of a Graph call is a :class:`GraphError` (502, an upstream failure) or its
:class:`GraphTimeout` (504); API.md "Conventions" pins both statuses. The problem names
Meta's ``error.code`` (``meta_code``), ``error_subcode`` (``meta_subcode``) and
``fbtrace_id`` when Meta sent them, so support can quote them to Meta. Never the access
token or the ``appsecret_proof``.

Callers branch on the class: :class:`GraphTokenInvalid` (code 190) means the channel's
token is expired or revoked and must be replaced (mark the channel as needing attention;
retrying cannot help), :class:`GraphThrottled` that Meta's rate limits were hit and
``retry_after`` seconds is the earliest sensible retry.
"""

from __future__ import annotations

from typing import Any

from patron.errors import UpstreamError


class GraphError(UpstreamError):
    """502: the Graph API answered with an error, or with something that is not a profile.

    ``meta_code`` / ``meta_subcode`` / ``fbtrace_id`` are Meta's ``error.code``,
    ``error.error_subcode`` and ``error.fbtrace_id`` (developers.facebook.com/docs/
    graph-api/guides/error-handling), ``None`` when the failure had none (a transport
    error, a 5xx without a Graph body). Extension members of the problem: the same names.
    """

    title, slug = "Meta Graph API error", "meta-graph-error"

    def __init__(
        self,
        detail: str,
        *,
        meta_code: int | None = None,
        meta_subcode: int | None = None,
        fbtrace_id: str | None = None,
        **extra: Any,
    ) -> None:
        self.meta_code = meta_code
        self.meta_subcode = meta_subcode
        self.fbtrace_id = fbtrace_id
        super().__init__(
            detail, meta_code=meta_code, meta_subcode=meta_subcode, fbtrace_id=fbtrace_id, **extra
        )


class GraphTokenInvalid(GraphError):
    """Code 190: the access token expired, was revoked or is invalid. Not retried; the
    channel (or the customer's own token) needs a new token."""

    title, slug = "Meta access token invalid", "meta-token-invalid"


class GraphRequestRejected(GraphError):
    """Code 100: an unknown user id, a field the token may not read, or a bad parameter.
    Not retried: the same request fails the same way."""

    title, slug = "Meta Graph API rejected the request", "meta-request-rejected"


class GraphThrottled(GraphError):
    """Meta's rate limits (codes 4, 17, 32, 613 and the Business-Use-Case codes 80001 to
    80006) still hit after the retries, or a usage header said access is blocked for longer
    than the call may wait. ``retry_after`` is in seconds."""

    title, slug = "Meta Graph API rate limit reached", "meta-throttled"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after, **extra
        )


class GraphUnavailable(GraphError):
    """The Graph API could not be reached, or answered 5xx / a transient error on every
    attempt."""

    title, slug = "Meta Graph API unavailable", "meta-unavailable"


class GraphTimeout(GraphError):
    """504: the Graph API did not answer within the client's timeouts on every attempt."""

    status, title, slug = 504, "Meta Graph API timeout", "meta-timeout"
