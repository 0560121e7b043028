"""Merging two customers who turn out to be one person (ARCHITECTURE.md §4).

Rules, applied in one transaction with both rows locked in primary-key order:

- **Identities**: each live identity of the source moves to the survivor unless the
  survivor already holds one of the same kind and namespace (one email, one phone, one
  PSID per app, one id per external system); such a source identity is *dropped*
  (released, kept in history).
- **Profile fields**: the survivor's values win; a field the survivor lacks is filled from
  the source. ``app_id``/``psid``/``igsid`` move together, only when the survivor has
  neither a PSID nor an IGSID.
- **Collections**: ``tags`` are united (case-insensitively); ``attributes``,
  ``preferences`` and ``external_ids`` are united with the survivor winning per key.
- **Times**: ``last_interaction_at`` is the later of the two.
- **Source**: soft-deleted with ``merged_into_id`` = survivor; its remaining identities
  are released, so nothing can resolve to it any more.
- **Journal**: a ``customer_merges`` row records who merged what, and exactly what
  moved, was filled and was dropped; a ``customer.merged`` event carries the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal
from patron.customers.errors import CustomerNotFound, MergeSourceNotFound
from patron.customers.repository import CustomerRepository
from patron.customers.schemas import CustomerRead, MergeResult
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.identities.repository import IdentityRepository
from patron.identities.schemas import IdentityKey
from patron.kit.ids import new_id
from patron.models import CustomerMerge
from patron.tags.service import TagService
from patron.tenancy import TenantId

FILLABLE = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "locale",
    "timezone",
    "avatar_url",
    "profile_pic_url",
    "platform",
    "user_id",
)
MESSAGING = ("app_id", "psid", "igsid")


class Merging(Protocol):
    """What a merge needs of the customer service, inside its open write unit."""

    @property
    def repo(self) -> CustomerRepository: ...
    @property
    def identity_repo(self) -> IdentityRepository: ...
    @property
    def tags(self) -> TagService: ...
    @property
    def session(self) -> AsyncSession: ...
    @property
    def tenant(self) -> TenantId: ...
    @property
    def actor(self) -> Principal: ...
    async def get(self, customer_id: uuid.UUID) -> CustomerRead: ...


def _slot(key: IdentityKey) -> tuple[str, str]:
    return (key.kind.value, key.namespace)


async def merge_customers(
    svc: Merging, survivor_id: uuid.UUID, source_id: uuid.UUID
) -> MergeResult:
    """Merge ``source_id`` into ``survivor_id`` in the open write unit of ``svc`` (the
    customer service). Raises :class:`InvalidInput` (422) if they are the same,
    :class:`CustomerNotFound` / :class:`MergeSourceNotFound` (404) if either is not a live
    customer of the tenant."""
    if survivor_id == source_id:
        raise InvalidInput("a customer cannot be merged into itself", loc=["body", "source_id"])
    rows = {r.id: r for r in await svc.repo.get_many_for_update([survivor_id, source_id])}
    if survivor_id not in rows:
        raise CustomerNotFound(survivor_id)
    if source_id not in rows:
        raise MergeSourceNotFound(source_id)
    survivor, source = rows[survivor_id]._mapping, rows[source_id]._mapping

    survivor_keys = await svc.identity_repo.of_customer(survivor_id)
    source_keys = await svc.identity_repo.of_customer(source_id)
    taken = {_slot(k) for k in survivor_keys}
    moved = sorted(k for k in source_keys if _slot(k) not in taken)
    dropped = sorted(k for k in source_keys if _slot(k) in taken)

    changes: dict[str, Any] = {}
    for name in FILLABLE:
        if survivor[name] is None and source[name] is not None:
            changes[name] = source[name]
    if (
        survivor["psid"] is None
        and survivor["igsid"] is None
        and (source["psid"] or source["igsid"])
    ):
        # they move together; only the ones the source has are filled
        changes.update({name: source[name] for name in MESSAGING if source[name] is not None})
    if not survivor["has_access_token"] and source["has_access_token"]:
        changes["access_token_encrypted"] = await svc.repo.access_token_ciphertext(source_id)
    known = {t.casefold() for t in survivor["tags"]}
    tags_added = [t for t in source["tags"] if t.casefold() not in known]
    if tags_added:
        changes["tags"] = [*survivor["tags"], *tags_added]
    keys_added: dict[str, list[str]] = {}
    for name in ("attributes", "preferences", "external_ids"):
        added = {k: v for k, v in source[name].items() if k not in survivor[name]}
        if added:
            changes[name] = {**survivor[name], **added}
            keys_added[name] = sorted(added)
    if source["last_interaction_at"] and (
        survivor["last_interaction_at"] is None
        or source["last_interaction_at"] > survivor["last_interaction_at"]
    ):
        changes["last_interaction_at"] = source["last_interaction_at"]

    # Move what the survivor lacks, then release what is left of the source's identities.
    await svc.identity_repo.move(source_id, survivor_id, moved)
    await svc.identity_repo.release_all(source_id)
    await svc.tags.move_links(source_id, survivor_id)  # customer_tags follow the united tags
    now = datetime.now(UTC)
    await svc.repo.update(source_id, {"deleted_at": now, "merged_into_id": survivor_id})
    if changes:
        await svc.repo.update(survivor_id, changes)

    details: dict[str, Any] = {
        "moved_identities": [k.as_json() for k in moved],
        "dropped_identities": [k.as_json() for k in dropped],
        "fields_filled": sorted(
            "access_token" if k == "access_token_encrypted" else k
            for k in changes
            if k in (*FILLABLE, *MESSAGING, "access_token_encrypted")
        ),
        "tags_added": tags_added,
        "keys_added": keys_added,
        "stats": "not merged: order history stays with each customer id",
    }
    merge_id = new_id()
    await svc.session.execute(
        insert(CustomerMerge).values(
            id=merge_id,
            tenant_id=svc.tenant,
            survivor_id=survivor_id,
            source_id=source_id,
            actor=svc.actor.id,
            details=details,
        )
    )
    customer = await svc.get(survivor_id)
    await outbox.record(
        svc.session,
        svc.tenant,
        EventType.CUSTOMER_MERGED,
        str(survivor_id),
        {
            "merge_id": str(merge_id),
            "survivor_id": str(survivor_id),
            "source_id": str(source_id),
            "details": details,
            "customer": customer.model_dump(mode="json"),
        },
    )
    return MergeResult(merge_id=merge_id, customer=customer, source_id=source_id, details=details)
