"""Structured JSON logs (ARCHITECTURE.md §7).

Each line carries ``timestamp``, ``level``, ``service_name``, ``trace_id``, ``message`` and
any extra fields. Keys that look secret are redacted before rendering, so a token passed
by mistake never reaches the log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from patron.tracing import bound_trace_id

SERVICE_NAME = "patron"
_SECRET_MARKERS = ("token", "secret", "password", "api_key", "authorization", "credential")


def _add_service(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["service_name"] = SERVICE_NAME
    trace = bound_trace_id()
    if trace is not None:
        event.setdefault("trace_id", trace)
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event[key] = "[redacted]"
    return event


def _rename_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["message"] = event.pop("event", "")
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    _add_service,
    _redact,
    structlog.processors.format_exc_info,
]


def json_formatter() -> logging.Formatter:
    """The formatter that renders every record as one JSON object."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _rename_event,
            structlog.processors.JSONRenderer(),
        ],
    )


def configure_logging(level: str = "INFO") -> None:
    """Route structlog and the standard library through one JSON renderer on stdout."""
    structlog.configure(
        # filter_by_level first: a disabled level costs no timestamping or rendering
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).handlers = []
        logging.getLogger(noisy).propagate = False
