"""JSON bodies that a route validates itself, after its own checks.

Two reasons a route takes its body as a plain JSON object and validates it later:

* the customer named in the path must be found (404) before the body is judged (422), so
  another tenant's customer is never revealed by a validation error;
* a check must run on the raw values before pydantic sees them (card numbers, see
  :mod:`patron.kit.cards`).

:func:`parse` validates with the route's model and raises the same 422 problem FastAPI
would (``loc`` starting with ``"body"``); :func:`documented` puts the model's schema in
the OpenAPI document as the request body.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from patron.errors import InvalidInput, validation_errors

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(model: type[ModelT], payload: dict[str, Any]) -> ModelT:
    """``model`` validated from ``payload``; 422 (``loc`` ``["body", ...]``) when invalid.

    The problem never echoes the input (``validation_errors`` keeps loc, msg and type).
    """
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = validation_errors(exc.errors(include_input=False, include_context=False))
        for err in errors:
            err["loc"] = ["body", *err["loc"]]
        first = errors[0] if errors else {"loc": ["body"], "msg": "invalid input"}
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}", errors=errors) from exc


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` (self-contained) as the required JSON body."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, defs)}},
        }
    }
