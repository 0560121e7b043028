"""Identity resolution (ARCHITECTURE.md §4): from customer fields to identity keys, and
from keys to the customer who holds them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from patron.errors import Conflict
from patron.identities.repository import IdentityRepository
from patron.identities.schemas import IdentityKey, IdentityKind
from patron.kit.validation import email_identity_value


def keys_from_fields(fields: Mapping[str, Any]) -> set[IdentityKey]:
    """Identity keys named by normalised customer fields.

    ``email`` → email; ``phone`` → phone; ``psid``/``igsid`` → namespace ``app_id``;
    ``user_id``; ``external_ids`` ``{system: id}`` → external, namespace = system.
    """
    keys: set[IdentityKey] = set()
    app_id = fields.get("app_id") or ""
    if fields.get("email"):
        keys.add(IdentityKey(IdentityKind.EMAIL, "", email_identity_value(fields["email"])))
    if fields.get("phone"):
        keys.add(IdentityKey(IdentityKind.PHONE, "", fields["phone"]))
    if fields.get("psid"):
        keys.add(IdentityKey(IdentityKind.PSID, app_id, fields["psid"]))
    if fields.get("igsid"):
        keys.add(IdentityKey(IdentityKind.IGSID, app_id, fields["igsid"]))
    if fields.get("user_id"):
        keys.add(IdentityKey(IdentityKind.USER_ID, "", fields["user_id"]))
    for system, value in (fields.get("external_ids") or {}).items():
        if value:
            keys.add(IdentityKey(IdentityKind.EXTERNAL, system, str(value)))
    return keys


def conflict(key: IdentityKey, holder: uuid.UUID) -> Conflict:
    """The 409 for an identity held by another customer (API.md "Customers")."""
    return Conflict(
        f"{key.describe()} already belongs to another customer",
        conflicting_customer_id=str(holder),
        identity=key.as_json(),
    )


async def ensure_free(
    repo: IdentityRepository, keys: Iterable[IdentityKey], owner: uuid.UUID | None
) -> set[IdentityKey]:
    """Raise 409 if any key is held by a live customer other than ``owner``.

    Returns the keys ``owner`` already holds.
    """
    owned: set[IdentityKey] = set()
    for key, holder in sorted((await repo.holders(keys)).items()):
        if holder != owner:
            raise conflict(key, holder)
        owned.add(key)
    return owned


async def sync(
    repo: IdentityRepository,
    customer_id: uuid.UUID,
    before: set[IdentityKey],
    after: set[IdentityKey],
) -> None:
    """Move the customer's field-derived identities from ``before`` to ``after``.

    Identities not derived from fields (for example PSIDs of other apps gained by a
    merge) are left alone. Raises 409 if a new key is held by another customer.
    """
    added = after - before
    owned = await ensure_free(repo, added, customer_id)
    await repo.remove(customer_id, before - after)
    await repo.add(customer_id, added - owned)
