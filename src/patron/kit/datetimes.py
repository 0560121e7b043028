"""Date-times as the API takes them: RFC 3339 strings (API.md "Pinned shapes").

Pydantic, left to itself, also reads a number as a Unix time (``0`` is 1970-01-01); the
schema says ``format: date-time``, so input fields use :data:`Rfc3339DateTime`, which
refuses anything but a string (or a ``datetime`` built in code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator


def _text_only(value: object) -> object:
    """Pass strings and datetimes on to pydantic's parser; refuse numbers and the rest."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("must be an RFC 3339 date-time string, such as 2026-11-22T10:15:00Z")


Rfc3339DateTime = Annotated[datetime, BeforeValidator(_text_only)]
