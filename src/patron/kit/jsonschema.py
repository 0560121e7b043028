"""Small helpers that make a pydantic model's JSON Schema say what its service enforces."""

from __future__ import annotations

from typing import Any


def not_null(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of an optional field that may be left out but not sent as
    ``null`` (the service refuses null with 422): drops the ``null`` branch and the
    ``null`` default from ``schema``, in place."""
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if "default" in schema and schema["default"] is None:
        del schema["default"]
