"""Customer fields as stored: from a request body to column values, and what a change
changes. Pure functions, no database: the service calls them inside its unit of work."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from patron.customers.schemas import CustomerFields, CustomerStatus
from patron.errors import InvalidInput
from patron.identities.schemas import IdentityKey
from patron.kit.crypto import Keyring
from patron.kit.validation import ContactPointError, normalize_phone

ACCESS_TOKEN_CONTEXT = b"customers.access_token"
IDENTITY_FIELDS = frozenset(
    {"email", "phone", "app_id", "psid", "igsid", "user_id", "external_ids"}
)
CREATE_DEFAULTS: dict[str, Any] = {
    "status": CustomerStatus.ACTIVE.value,
    "customer_type": "RETAIL",
    "marketing_opt_in": False,
    "external_ids": {},
    "tags": [],
    "attributes": {},
    "preferences": {},
}
# Columns that cannot be NULL: ``null`` empties a collection and is refused for a scalar.
CLEARED_TO_EMPTY = ("external_ids", "tags", "attributes", "preferences")
NOT_NULLABLE = ("status", "customer_type", "marketing_opt_in")


def normalise(fields: dict[str, Any], keyring: Keyring, phone_region: str) -> dict[str, Any]:
    """Field values as stored: phone in E.164 (national numbers read in ``phone_region``),
    the access token encrypted under ``keyring``, no NULL where the column has none.

    Raises :class:`InvalidInput` (422) for a null status, customer_type or
    marketing_opt_in, and for a phone number libphonenumber does not accept.
    """
    out = dict(fields)
    out.pop("tenant_id", None)
    for key in CLEARED_TO_EMPTY:
        if key in out and out[key] is None:
            out[key] = type(CREATE_DEFAULTS[key])()
    refused = [key for key in NOT_NULLABLE if key in out and out[key] is None]
    if refused:
        errors = [
            {"loc": ["body", k], "msg": "may not be null", "type": "value_error"} for k in refused
        ]
        raise InvalidInput(f"{refused[0]} may not be null", errors=errors)
    if out.get("phone") is not None:
        try:
            out["phone"] = normalize_phone(out["phone"], phone_region)
        except ContactPointError as exc:
            raise InvalidInput(f"invalid phone number: {exc}", loc=["body", "phone"]) from exc
    if "access_token" in out:
        token = out.pop("access_token")
        secret = token.get_secret_value() if token is not None else None
        out["access_token_encrypted"] = (
            keyring.encrypt(secret, ACCESS_TOKEN_CONTEXT) if secret else None
        )
    if out.get("status") == CustomerStatus.BLOCKED.value:
        out.setdefault("blocked_at", datetime.now(UTC))
    return out


def changed_fields(current: Mapping[Any, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The part of ``changes`` (fields as stored) that differs from ``current`` (response
    columns), with what follows from it: a status other than BLOCKED clears the block."""
    changed = {
        k: v for k, v in changes.items() if k == "access_token_encrypted" or current.get(k) != v
    }
    # an access token is stored encrypted (a new ciphertext each time): any value sent is a
    # change, except clearing one that is not there
    if (
        "access_token_encrypted" in changed
        and changed["access_token_encrypted"] is None
        and not current["has_access_token"]
    ):
        changed.pop("access_token_encrypted")
    if "status" in changed and changed["status"] != CustomerStatus.BLOCKED.value:
        changed.update(blocked_at=None, block_reason=None)
    return changed


def key_triples(keys: set[IdentityKey]) -> list[tuple[str, str, str]]:
    """Identity keys as ``(kind, namespace, value)`` rows for the holders query."""
    return [(str(k.kind), k.namespace, k.value) for k in keys]


def sent_fields(body: CustomerFields) -> dict[str, Any]:
    """Fields the client sent (unset ones absent), enums as values, secrets kept wrapped."""
    data = body.model_dump(exclude_unset=True, mode="python")
    for key, value in list(data.items()):
        if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
            data[key] = value.value
    if "access_token" in body.model_fields_set:
        data["access_token"] = body.access_token
    return data
