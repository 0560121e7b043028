"""The trace id of the running request or job, carried in a context variable.

Low in the layers (it imports nothing of Patron), so logging, events, the HTTP transport
and the consumers can all read and set it. HTTP accepts it from ``X-Trace-Id`` or the
trace-id part of a W3C ``traceparent`` header
(https://www.w3.org/TR/trace-context/#traceparent-header); otherwise a new one is made.
Every response echoes it in ``X-Trace-Id``; logs and outbox events record it.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_trace_id: ContextVar[str | None] = ContextVar("patron_trace_id", default=None)
_TRACE_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_trace_id() -> str:
    """A random 128-bit trace id in W3C form (32 lowercase hex digits)."""
    return secrets.token_hex(16)


def trace_id_from_headers(x_trace_id: str | None, traceparent: str | None) -> str:
    """Pick the caller's trace id if it is well formed, else make one."""
    if x_trace_id and _TRACE_ID_RE.match(x_trace_id):
        return x_trace_id
    if traceparent:
        m = _TRACEPARENT_RE.match(traceparent.strip().lower())
        if m and m.group(1) != "0" * 32:
            return m.group(1)
    return new_trace_id()


def set_trace_id(trace_id: str) -> None:
    """Make ``trace_id`` the running request's or job's trace id (this context only)."""
    _trace_id.set(trace_id)


def bound_trace_id() -> str | None:
    """The trace id set in this context, or None (unlike :func:`current_trace_id`, it never
    makes one: a log line outside any request carries no trace id)."""
    return _trace_id.get()


def current_trace_id() -> str:
    """The trace id of the running request or job (a new one outside any)."""
    value = _trace_id.get()
    if value is None:
        value = new_trace_id()
        _trace_id.set(value)
    return value
