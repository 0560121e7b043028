"""Customer use cases: create, read, list, update, upsert, delete, block, interaction.

Every write runs in the caller's unit of work and records its outbox event there
(STYLE.md "Transactions"); nothing here commits. Identity keys are locked with
transaction-scoped advisory locks before they are resolved, so concurrent writes that
name the same identity serialise (see ``IdentityRepository.lock``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from patron.auth.dependencies import RequestContext
from patron.auth.principal import Principal
from patron.config import Settings
from patron.customers.repository import CustomerRepository
from patron.customers.schemas import (
    CustomerFields,
    CustomerRead,
    CustomerStatus,
)
from patron.customers.views import customer_read
from patron.errors import Conflict, InvalidInput, NotFound, PatronError
from patron.events import outbox
from patron.events.types import EventType
from patron.identities import service as identities
from patron.identities.repository import IdentityRepository, IdentityTaken
from patron.identities.schemas import IdentityKey
from patron.kit.crypto import Keyring
from patron.kit.etag import check_if_match
from patron.kit.ids import new_id
from patron.kit.repository import require_session
from patron.kit.sql import Executor
from patron.kit.validation import ContactPointError, normalize_phone
from patron.tags.service import TagService
from patron.tenancy import TenantId

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


async def read_customer(
    connection: asyncpg.Connection, tenant: TenantId, customer_id: uuid.UUID
) -> CustomerRead:
    """GET by id on a driver connection (``RequestContext.driver_reads``): one prepared
    statement. Raises :class:`NotFound` (also for another tenant's id)."""
    row = await CustomerRepository(connection, tenant).get_fast(customer_id)
    if row is None:
        raise NotFound("customer not found", customer_id=str(customer_id))
    return customer_read(row)


@dataclass(frozen=True, slots=True)
class UpsertPlan:
    """An upsert resolved before its transaction (:meth:`CustomerService.resolve_upsert`):
    the fields as stored, the identity keys they name and, when read, the live customers
    holding those keys at that moment (``seen``: unlocked rows; None when not read)."""

    values: dict[str, Any]
    keys: set[IdentityKey]
    seen: list[Any] | None = None


@dataclass
class CustomerService:
    """Customer use cases for one tenant inside one unit of work.

    ``session`` is the unit's ``AsyncSession``, or the driver connection of a
    ``Database.driver_unit_of_work``: :meth:`upsert` without ``tags`` runs on prepared
    statements only and needs no session; tag work raises ``RuntimeError`` there.
    """

    session: Executor
    tenant: TenantId
    settings: Settings
    keyring: Keyring
    actor: Principal

    @classmethod
    def from_context(cls, ctx: RequestContext) -> CustomerService:
        """The service for a request's tenant, transaction and principal."""
        return cls(
            session=ctx.executor,
            tenant=ctx.tenant,
            settings=ctx.app.settings,
            keyring=ctx.app.keyring,
            actor=ctx.principal,
        )

    def __post_init__(self) -> None:
        self.repo = CustomerRepository(self.session, self.tenant)
        self.identity_repo = IdentityRepository(self.session, self.tenant)
        self._tags: TagService | None = None

    @property
    def tags(self) -> TagService:
        """``tags`` in create/update replaces the set through the tag domain
        (customer_tags); built on first use, on the unit's session."""
        if self._tags is None:
            session = require_session(self.session)
            self._tags = TagService(session, self.tenant, self.actor.id, self)
        return self._tags

    # -- reading -----------------------------------------------------------------------

    async def get(self, customer_id: uuid.UUID) -> CustomerRead:
        """A live customer. Raises :class:`NotFound` (also for another tenant's id)."""
        row = await self.repo.get_fast(customer_id)
        if row is None:
            raise NotFound("customer not found", customer_id=str(customer_id))
        return customer_read(row)

    async def get_by_psid(self, psid: str, app_id: str | None) -> CustomerRead:
        """The customer holding a PSID (or IGSID). 409 when it is ambiguous across apps."""
        holders = await self.identity_repo.find_by_psid(psid, app_id)
        if not holders:
            raise NotFound("no customer with this PSID", psid=psid)
        if len(holders) > 1:
            raise Conflict(
                "this PSID exists under several apps; pass app_id",
                customer_ids=sorted(str(h) for h in holders),
            )
        return await self.get(holders[0])

    # -- writing -----------------------------------------------------------------------

    def _normalise(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Field values as stored: phone in E.164, access token encrypted, no NULL where the
        column has none (422 for a null status, customer_type or marketing_opt_in)."""
        out = dict(fields)
        out.pop("tenant_id", None)
        for key in CLEARED_TO_EMPTY:
            if key in out and out[key] is None:
                out[key] = type(CREATE_DEFAULTS[key])()
        refused = [key for key in NOT_NULLABLE if key in out and out[key] is None]
        if refused:
            errors = [
                {"loc": ["body", k], "msg": "may not be null", "type": "value_error"}
                for k in refused
            ]
            raise InvalidInput(f"{refused[0]} may not be null", errors=errors)
        if out.get("phone") is not None:
            try:
                out["phone"] = normalize_phone(out["phone"], self.settings.default_phone_region)
            except ContactPointError as exc:
                raise InvalidInput(f"invalid phone number: {exc}", loc=["body", "phone"]) from exc
        if "access_token" in out:
            token = out.pop("access_token")
            secret = token.get_secret_value() if token is not None else None
            out["access_token_encrypted"] = (
                self.keyring.encrypt(secret, ACCESS_TOKEN_CONTEXT) if secret else None
            )
        if out.get("status") == CustomerStatus.BLOCKED.value:
            out.setdefault("blocked_at", datetime.now(UTC))
        return out

    async def create(self, body: CustomerFields) -> CustomerRead:
        """Create a customer. 409 if one of its identities is held by a live customer."""
        values = {**CREATE_DEFAULTS, **self._normalise(_dump(body))}
        keys = identities.keys_from_fields(values)
        await self.identity_repo.lock(keys)
        await identities.ensure_free(self.identity_repo, keys, None)
        return await self._insert(values, keys)

    async def _insert(self, values: dict[str, Any], keys: set[IdentityKey]) -> CustomerRead:
        customer_id = new_id()
        if values.get("tags"):
            values = {**values, "tags": await self.tags.catalog_labels(values["tags"])}
        created = customer_read(await self.repo.insert({**values, "id": customer_id}, keys))
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_CREATED,
            str(customer_id),
            {"customer": created.model_dump(mode="json")},
        )
        if values["tags"]:
            await self.tags.set_labels(customer_id, values["tags"])
        return created

    async def update(
        self, customer_id: uuid.UUID, body: CustomerFields, *, if_match: str | None = None
    ) -> CustomerRead:
        """Apply the fields sent (``null`` clears). 404, 409 (identity taken), 412 (If-Match)."""
        row = await self.repo.get(customer_id, for_update=True)
        if row is None:
            raise NotFound("customer not found", customer_id=str(customer_id))
        check_if_match(if_match, row.version)
        return await self._apply(row._mapping, self._normalise(_dump(body)))

    async def _apply(self, current: Mapping[Any, Any], changes: dict[str, Any]) -> CustomerRead:
        """Write the fields of ``changes`` that differ from ``current`` (the locked row's
        response columns: a SQLAlchemy row mapping or an ``asyncpg.Record``)."""
        customer_id: uuid.UUID = current["id"]
        if "tags" in changes:
            changes = {**changes, "tags": await self.tags.set_labels(customer_id, changes["tags"])}
        changed = _changed(current, changes)
        if not changed:
            return customer_read(current)
        if IDENTITY_FIELDS & changed.keys():
            before = identities.keys_from_fields(current)
            after = identities.keys_from_fields({**dict(current), **changed})
            await self.identity_repo.lock(after - before)
            await identities.sync(self.identity_repo, customer_id, before, after)
        columns = await self.repo.update(customer_id, changed)
        return await self._updated(current, changed, columns)

    async def _apply_seen(
        self, seen: Mapping[Any, Any], changes: dict[str, Any]
    ) -> CustomerRead | None:
        """:meth:`_apply` to a row read without a lock (an upsert's first look): written only
        if the customer is still at the version seen. None when it is not, or when the
        change moves identities (that needs the locked path: the caller falls back to it).

        Sound because a customer's identities only change with its version: if none of the
        identity fields changes, the customer seen still holds every key it was found by.
        """
        changed = _changed(seen, changes)
        if not changed:
            return customer_read(seen)
        if IDENTITY_FIELDS & changed.keys() or "tags" in changed:
            return None
        columns = await self.repo.update_at_version(seen["id"], changed, seen["version"])
        if columns is None:
            return None
        return await self._updated(seen, changed, columns)

    async def _updated(
        self, before: Mapping[Any, Any], changed: dict[str, Any], columns: dict[str, Any]
    ) -> CustomerRead:
        """Record ``customer.updated`` for a written change; returns the customer after it."""
        # stats are not touched by a profile update: keep the ones read before
        updated = customer_read({**before, **columns})
        fields_changed = sorted(
            {"access_token" if k == "access_token_encrypted" else k for k in changed}
            - {"avatar_storage_key"}
        )
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_UPDATED,
            str(updated.id),
            {"customer": updated.model_dump(mode="json"), "fields_changed": fields_changed},
        )
        return updated

    async def resolve_upsert(self, body: CustomerFields, *, read: bool) -> UpsertPlan:
        """An upsert's first step: the fields as stored and the identity keys they name;
        with ``read``, also who holds those keys now, read without locks (the caller may
        run this outside any transaction, see :meth:`unchanged`). 422 without an identity.
        """
        values = self._normalise(_dump(body))
        keys = identities.keys_from_fields(values)
        if not keys:
            raise InvalidInput(
                "upsert needs at least one identity: "
                "email, phone, psid, igsid, user_id or external_ids",
                loc=["body"],
            )
        seen = await self.repo.holders(_triples(keys), for_update=False) if read else None
        return UpsertPlan(values, keys, seen)

    @staticmethod
    def unchanged(plan: UpsertPlan) -> CustomerRead | None:
        """The customer when an upsert would change nothing (one holder seen, every field
        sent equal to its own; a webhook's retry, say), so no transaction is needed: the
        answer is the committed state the read saw. None otherwise."""
        if plan.seen is None or len(plan.seen) != 1 or "tags" in plan.values:
            return None
        current = plan.seen[0]
        return None if _changed(current, plan.values) else customer_read(current)

    async def upsert(self, plan: UpsertPlan) -> tuple[bool, CustomerRead]:
        """Create or update by any identity given (:meth:`resolve_upsert` first). Returns
        ``(created, customer)``.

        Resolution, optimistic when the keys were read first (``plan.seen``; no lock is
        taken before writing):

        - nobody seen holding the keys: a customer is created. If a concurrent request
          created one with one of the keys meanwhile, the unique index on live identities
          refuses the insert: :class:`IdentityTaken`, the unit of work is aborted and the
          caller retries the whole upsert (:func:`resolve_upsert` then sees the winner).
        - one customer seen, and the change moves no identity: it is updated if still at
          the version seen.

        Otherwise (or when the version moved) the holders are looked up and row-locked.
        None held: the identities are locked (advisory locks), looked up again, and a
        customer is created. All held by one customer: update it with the fields sent.
        Held by several customers: 409 naming them (merge them first).
        """
        values, keys = plan.values, plan.keys
        if plan.seen is not None and "tags" not in values:
            if not plan.seen:
                # optimistic: the unique index on live identities stops a concurrent twin
                return True, await self._insert({**CREATE_DEFAULTS, **values}, keys)
            if len(plan.seen) == 1:
                updated = await self._apply_seen(plan.seen[0], values)
                if updated is not None:
                    return False, updated
        triples = _triples(keys)
        # Existing holders are locked by the row lock itself; only a create needs the
        # identity locks, and then a second look (another upsert may have created it).
        holders = await self.repo.holders(triples, for_update=True)
        if not holders:
            await self.identity_repo.lock(keys)
            holders = await self.repo.holders(triples, for_update=True)
        if not holders:
            return True, await self._insert({**CREATE_DEFAULTS, **values}, keys)
        if len(holders) > 1:
            ids = sorted(str(h["id"]) for h in holders)
            raise Conflict(
                "the identities given belong to different customers; merge them first",
                conflicting_customer_id=ids[0],
                conflicting_customer_ids=ids,
            )
        return False, await self._apply(holders[0], values)

    async def race_conflict(self, taken: IdentityTaken) -> PatronError:
        """The 409 for a write that lost an identity to a concurrent create (``taken``,
        after its unit of work was rolled back): :func:`identities.conflict` naming the
        customer that now holds one of the keys, or ``taken`` itself when none does any
        more. Reads only; run it in a fresh unit (a driver read will do)."""
        try:
            await identities.ensure_free(self.identity_repo, taken.keys, None)
        except Conflict as named:
            return named
        return taken

    async def delete(self, customer_id: uuid.UUID, *, if_match: str | None = None) -> None:
        """Soft delete: the row stays (``deleted_at``), its identities are released."""
        row = await self.repo.get(customer_id, for_update=True)
        if row is None:
            raise NotFound("customer not found", customer_id=str(customer_id))
        check_if_match(if_match, row.version)
        now = datetime.now(UTC)
        await self.repo.update(customer_id, {"deleted_at": now})
        await self.identity_repo.release_all(customer_id)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_DELETED,
            str(customer_id),
            {"customer_id": str(customer_id), "deleted_at": now.isoformat()},
        )

    async def block(self, customer_id: uuid.UUID, reason: str | None) -> CustomerRead:
        """Set status BLOCKED with ``blocked_at`` and ``block_reason``."""
        row = await self._locked(customer_id)
        now = datetime.now(UTC)
        columns = await self.repo.update(
            customer_id,
            {"status": CustomerStatus.BLOCKED.value, "blocked_at": now, "block_reason": reason},
        )
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_BLOCKED,
            str(customer_id),
            {
                "customer_id": str(customer_id),
                "reason": reason,
                "blocked_at": now.isoformat(),
                "previous_status": row.status,
            },
        )
        return customer_read({**row._mapping, **columns})

    async def unblock(self, customer_id: uuid.UUID, reason: str | None) -> CustomerRead:
        """Back to ACTIVE; ``blocked_at`` and ``block_reason`` are cleared."""
        row = await self._locked(customer_id)
        columns = await self.repo.update(
            customer_id,
            {"status": CustomerStatus.ACTIVE.value, "blocked_at": None, "block_reason": None},
        )
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_UNBLOCKED,
            str(customer_id),
            {"customer_id": str(customer_id), "reason": reason},
        )
        return customer_read({**row._mapping, **columns})

    async def record_interaction(
        self, customer_id: uuid.UUID, occurred_at: datetime | None, channel: str | None
    ) -> CustomerRead:
        """Move ``last_interaction_at`` forward (an older time never moves it back)."""
        row = await self._locked(customer_id)
        when = (occurred_at or datetime.now(UTC)).astimezone(UTC)
        if row.last_interaction_at is not None and row.last_interaction_at >= when:
            return customer_read(row)
        columns = await self.repo.update(customer_id, {"last_interaction_at": when})
        updated = customer_read({**row._mapping, **columns})
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_UPDATED,
            str(customer_id),
            {
                "customer": updated.model_dump(mode="json"),
                "fields_changed": ["last_interaction_at"],
                "channel": channel,
            },
        )
        return updated

    async def require(self, customer_id: uuid.UUID, *, for_update: bool = False) -> None:
        """404 unless ``customer_id`` is a live customer of the tenant (other domains call
        this before touching a customer's sub-resources; ``for_update`` locks the row)."""
        if await self.repo.get(customer_id, for_update=for_update) is None:
            raise NotFound("customer not found", customer_id=str(customer_id))

    async def holders_of(self, keys: set[IdentityKey]) -> dict[IdentityKey, uuid.UUID]:
        """The live customer holding each identity key that has one (other domains resolve
        customers by identity through this)."""
        return await self.identity_repo.holders(keys)

    async def set_marketing_opt_in(self, customer_id: uuid.UUID, value: bool) -> None:
        """Set ``marketing_opt_in`` (driven by the consent ledger); emits customer.updated
        when it changes."""
        row = await self._locked(customer_id)
        if row.marketing_opt_in == value:
            return
        await self._apply(row._mapping, {"marketing_opt_in": value})

    async def set_avatar(
        self, customer_id: uuid.UUID, avatar_url: str | None, storage_key: str | None
    ) -> str | None:
        """Point the customer at a new avatar; returns the previous storage key (to delete
        once the transaction commits). Emits customer.updated with ``avatar_url``."""
        row = await self._locked(customer_id)
        previous: str | None = row.avatar_storage_key
        await self._apply(
            row._mapping, {"avatar_url": avatar_url, "avatar_storage_key": storage_key}
        )
        return previous

    async def avatar_storage_key(self, customer_id: uuid.UUID) -> str | None:
        """Storage key of the customer's uploaded avatar (None without one); 404 unless
        ``customer_id`` is a live customer of the tenant."""
        row = await self.repo.get(customer_id)
        if row is None:
            raise NotFound("customer not found", customer_id=str(customer_id))
        key: str | None = row.avatar_storage_key
        return key

    async def _locked(self, customer_id: uuid.UUID) -> Any:
        row = await self.repo.get(customer_id, for_update=True)
        if row is None:
            raise NotFound("customer not found", customer_id=str(customer_id))
        return row


def _changed(current: Mapping[Any, Any], changes: dict[str, Any]) -> dict[str, Any]:
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


def _triples(keys: set[IdentityKey]) -> list[tuple[str, str, str]]:
    return [(str(k.kind), k.namespace, k.value) for k in keys]


def _dump(body: CustomerFields) -> dict[str, Any]:
    """Fields the client sent (unset ones absent), enums as values, secrets kept wrapped."""
    data = body.model_dump(exclude_unset=True, mode="python")
    for key, value in list(data.items()):
        if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
            data[key] = value.value
    if "access_token" in body.model_fields_set:
        data["access_token"] = body.access_token
    return data
