"""Comparing a domain error with the problem body the HTTP API rendered before it had
its own class."""

from __future__ import annotations

from typing import Any

from patron.errors import PatronError


def problem_of(error: PatronError) -> dict[str, Any]:
    """``error``'s problem object as the one handler renders it (without ``trace_id``),
    less ``title``, which follows from the status."""
    body = error.to_problem()
    body.pop("title")
    return body
