"""Customer use cases: create, read, list, update, patch, upsert, delete, block, unblock,
interaction, merge; and what other domains ask of a customer (require, holders_of, ...).

Every public operation owns its unit of work (:mod:`patron.usecases`): a transport builds
``CustomerService(ctx)`` and calls one operation, which opens a transaction (or joins the
one of the use case that called it), records its outbox events there, retries identity
races and commits before it returns (STYLE.md "Transactions"). Identity keys are locked
with transaction-scoped advisory locks before they are resolved, so concurrent writes that
name the same identity serialise (``IdentityRepository.lock``; decision 0002).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from patron.config import Settings
from patron.customers import listing
from patron.customers.errors import (
    AmbiguousPsid,
    CustomerNotFound,
    IdentitiesSplit,
    PsidNotFound,
)
from patron.customers.fields import (
    CREATE_DEFAULTS,
    IDENTITY_FIELDS,
    changed_fields,
    key_triples,
    normalise,
    sent_fields,
)
from patron.customers.merge import merge_customers
from patron.customers.profile import FETCH_PROFILE, needs_profile
from patron.customers.repository import CustomerRepository
from patron.customers.schemas import (
    CustomerCreate,
    CustomerFields,
    CustomerPage,
    CustomerRead,
    CustomerStatus,
    CustomerUpdate,
    CustomerUpsert,
    MergeResult,
)
from patron.customers.views import customer_read
from patron.errors import Conflict, Forbidden, InvalidInput, PatronError
from patron.events import outbox
from patron.events.types import EventType
from patron.identities import service as identities
from patron.identities.repository import IdentityRepository, IdentityTaken
from patron.identities.schemas import IdentityKey
from patron.jobs.service import JobService
from patron.kit.crypto import Keyring
from patron.kit.etag import check_if_match
from patron.kit.ids import new_id
from patron.ops.metrics import IDENTITY_RACES
from patron.tags.service import TagService
from patron.usecases import Service, current_unit, read_unit, reads, unit_of_work, writes

T = TypeVar("T")

# A write that loses an identity to a concurrent create looks again: an upsert up to three
# times in all (it may then update the winner), a create once more (its second look
# answers the 409 with the holder's id). An update is not tried again: the winner now
# holds the key, so the answer is that 409 either way. A last loss is answered with the
# 409 naming the holder.
UPSERT_ATTEMPTS = 3
CREATE_ATTEMPTS = 2
UPDATE_ATTEMPTS = 1

# What a customer may change about themselves (PATCH by the customer role).
CUSTOMER_EDITABLE = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "gender",
        "birth_date",
        "locale",
        "timezone",
        "preferences",
    }
)


@dataclass(frozen=True, slots=True)
class UpsertPlan:
    """An upsert resolved before its transaction (:meth:`CustomerService.resolve_upsert`):
    the fields as stored, the identity keys they name and, when read, the live customers
    holding those keys at that moment (``seen``: unlocked rows; None when not read)."""

    values: dict[str, Any]
    keys: set[IdentityKey]
    seen: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """What an upsert did: ``created`` (else updated, or unchanged) and the customer after."""

    created: bool
    customer: CustomerRead


class CustomerService(Service):
    """Customer use cases for one caller (:class:`patron.usecases.ServiceContext`).

    The hot paths run on prepared statements in driver units (no ``AsyncSession``): GET by
    id, and the upsert unless it carries ``tags`` (the tag domain needs a session).
    """

    @property
    def repo(self) -> CustomerRepository:
        return CustomerRepository(self.executor, self.tenant)

    @property
    def identity_repo(self) -> IdentityRepository:
        return IdentityRepository(self.executor, self.tenant)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def keyring(self) -> Keyring:
        return self.app.keyring

    @property
    def tags(self) -> TagService:
        """``tags`` in create/update replaces the set through the tag domain
        (customer_tags), on the unit's session."""
        return TagService(self.ctx, self)

    # -- reading -----------------------------------------------------------------------

    @reads(statements=True)
    async def get(self, customer_id: uuid.UUID) -> CustomerRead:
        """A live customer: one prepared statement, one round trip (no transaction around
        it: ``customer_by_id`` sets the tenant for its own statement; decision 0016).
        Raises :class:`CustomerNotFound` (also for another tenant's id)."""
        row = await self.repo.get_fast(customer_id)
        if row is None:
            raise CustomerNotFound(customer_id)
        return customer_read(row)

    @reads()
    async def get_by_psid(self, psid: str, app_id: str | None) -> CustomerRead:
        """The customer holding a PSID (or IGSID). Raises :class:`PsidNotFound`, or
        :class:`AmbiguousPsid` (409) when it exists under several apps and no ``app_id``
        says which."""
        holders = await self.identity_repo.find_by_psid(psid, app_id)
        if not holders:
            raise PsidNotFound(psid)
        if len(holders) > 1:
            raise AmbiguousPsid(sorted(str(h) for h in holders))
        return await self.get(holders[0])

    async def list(self, query: listing.CustomerQuery) -> CustomerPage:
        """One page of live customers matching ``query`` (:func:`listing.list_customers`).
        A plain search (``q`` alone: :func:`listing.is_plain_search`) runs on a driver unit,
        prepared statements only; any other list on a session unit."""
        if listing.is_plain_search(query):
            return await self._search(query)
        return await self._list(query)

    @reads(driver=True)
    async def _search(self, query: listing.CustomerQuery) -> CustomerPage:
        return await self._list_customers(query)

    @reads()
    async def _list(self, query: listing.CustomerQuery) -> CustomerPage:
        return await self._list_customers(query)

    async def _list_customers(self, query: listing.CustomerQuery) -> CustomerPage:
        return await listing.list_customers(
            self.repo,
            query,
            self.settings.default_phone_region,
            count_cap=self.settings.search_count_cap,
            search_collect=self.settings.search_collect,
        )

    @reads()
    async def require(self, customer_id: uuid.UUID, *, for_update: bool = False) -> None:
        """Raise :class:`CustomerNotFound` unless ``customer_id`` is a live customer of the
        tenant (other domains call this before touching a customer's sub-resources, inside
        their unit; ``for_update`` locks the row)."""
        if await self.repo.get(customer_id, for_update=for_update) is None:
            raise CustomerNotFound(customer_id)

    @reads()
    async def holders_of(self, keys: set[IdentityKey]) -> dict[IdentityKey, uuid.UUID]:
        """The live customer holding each identity key that has one (other domains resolve
        customers by identity through this)."""
        return await self.identity_repo.holders(keys)

    @reads()
    async def avatar_storage_key(self, customer_id: uuid.UUID) -> str | None:
        """Storage key of the customer's uploaded avatar (None without one). Raises
        :class:`CustomerNotFound`."""
        row = await self.repo.get(customer_id)
        if row is None:
            raise CustomerNotFound(customer_id)
        key: str | None = row.avatar_storage_key
        return key

    # -- writing -----------------------------------------------------------------------

    async def create(self, body: CustomerCreate) -> CustomerRead:
        """Create a customer. Raises 403 for a ``tenant_id`` other than the caller's, 409
        (``conflicting_customer_id``) if one of its identities is held by a live customer,
        422 for invalid fields."""
        self.ctx.check_tenant_claim("body tenant_id", body.tenant_id)
        driver = "tags" not in body.model_fields_set

        async def create() -> CustomerRead:
            async with unit_of_work(self.ctx, driver=driver):
                values = {**CREATE_DEFAULTS, **self._normalise(sent_fields(body))}
                keys = identities.keys_from_fields(values)
                await self.identity_repo.lock(keys)
                await identities.ensure_free(self.identity_repo, keys, None)
                return await self._insert(values, keys)

        # an upsert (which takes no identity lock) may create a holder between our look and
        # our insert: the second attempt's look finds it and answers the documented 409
        return await self._retrying_identity_races("create", CREATE_ATTEMPTS, create)

    async def update(
        self, customer_id: uuid.UUID, body: CustomerUpdate, *, if_match: str | None = None
    ) -> CustomerRead:
        """PUT: apply the fields sent (``null`` clears). Raises 403 (tenant claim), 404,
        409 (identity taken), 412 (stale ``If-Match``), 422."""
        self.ctx.check_tenant_claim("body tenant_id", body.tenant_id)

        async def update() -> CustomerRead:
            async with unit_of_work(self.ctx):
                row = await self._locked(customer_id)
                check_if_match(if_match, row.version)
                return await self._apply(row._mapping, self._normalise(sent_fields(body)))

        return await self._retrying_identity_races("update", UPDATE_ATTEMPTS, update)

    async def patch(
        self, customer_id: uuid.UUID, body: CustomerUpdate, *, if_match: str | None = None
    ) -> CustomerRead:
        """PATCH: :meth:`update`, rate limited per principal and customer
        (``CUSTOMER_PATCH_RATE``, 429 with ``Retry-After``); a customer acting on their own
        profile may change only :data:`CUSTOMER_EDITABLE` (403 naming the others)."""
        self.ctx.check_tenant_claim("body tenant_id", body.tenant_id)
        if self.actor.is_customer_only:
            refused = sorted(body.model_fields_set - CUSTOMER_EDITABLE - {"tenant_id"})
            if refused:
                raise Forbidden(f"a customer may not change: {', '.join(refused)}", fields=refused)
        await self.app.rate_limiter.hit(
            self.settings.customer_patch_rate,
            "customer_patch",
            self.tenant,
            self.actor.id,
            str(customer_id),
        )
        return await self.update(customer_id, body, if_match=if_match)

    async def upsert(self, body: CustomerUpsert) -> UpsertOutcome:
        """Create or update the customer named by any identity in ``body``.

        A first look without locks or transaction (a driver read) answers an unchanged
        upsert (a webhook's retry) on its own; the write is then a driver transaction of
        prepared statements, unless ``body`` carries ``tags``. A create that loses an
        identity to a concurrent request looks again, up to :data:`UPSERT_ATTEMPTS` times
        (decision 0002). A created customer with a PSID / IGSID and no name gets a
        ``customers.fetch_profile`` job in the same unit (:mod:`patron.customers.profile`).
        Raises 403 (tenant claim), 409 (identities held by different customers: merge them
        first), 422 (no identity, invalid fields).
        """
        self.ctx.check_tenant_claim("body tenant_id", body.tenant_id)
        driver = "tags" not in body.model_fields_set

        async def upsert() -> UpsertOutcome:
            plan: UpsertPlan | None = None
            if driver and current_unit() is None:
                async with read_unit(self.ctx, driver=True):
                    plan = await self.resolve_upsert(body, read=True)
                unchanged = self.unchanged(plan)
                if unchanged is not None:
                    return UpsertOutcome(False, unchanged)
            async with unit_of_work(self.ctx, driver=driver):
                created, customer = await self.apply_upsert(
                    plan or await self.resolve_upsert(body, read=False)
                )
                if created and needs_profile(customer):
                    # same unit: the job exists if and only if the customer does
                    job = {"customer_id": str(customer.id)}
                    await JobService(self.ctx).defer(FETCH_PROFILE, job)
            return UpsertOutcome(created, customer)

        return await self._retrying_identity_races("upsert", UPSERT_ATTEMPTS, upsert)

    @writes()
    async def delete(self, customer_id: uuid.UUID, *, if_match: str | None = None) -> None:
        """Soft delete: the row stays (``deleted_at``), its identities are released.
        Raises 404, 412."""
        row = await self._locked(customer_id)
        check_if_match(if_match, row.version)
        now = datetime.now(UTC)
        await self.repo.update(customer_id, {"deleted_at": now})
        await self.identity_repo.release_all(customer_id)
        await outbox.record(
            self.executor,
            self.tenant,
            EventType.CUSTOMER_DELETED,
            str(customer_id),
            {"customer_id": str(customer_id), "deleted_at": now.isoformat()},
        )

    @writes()
    async def merge(self, survivor_id: uuid.UUID, source_id: uuid.UUID) -> MergeResult:
        """Merge ``source_id`` into ``survivor_id`` (:func:`merge.merge_customers`, decision
        0003). Raises 404 for either, 422 for the same id twice."""
        return await merge_customers(self, survivor_id, source_id)

    @writes()
    async def block(self, customer_id: uuid.UUID, reason: str | None) -> CustomerRead:
        """Set status BLOCKED with ``blocked_at`` and ``block_reason``. A customer already
        BLOCKED is answered as is: same version, no event (a transition to the state a
        customer is in changes nothing). Raises 404."""
        row = await self._locked(customer_id)
        if row.status == CustomerStatus.BLOCKED.value:
            return customer_read(row)
        now = datetime.now(UTC)
        columns = await self.repo.update(
            customer_id,
            {"status": CustomerStatus.BLOCKED.value, "blocked_at": now, "block_reason": reason},
        )
        await outbox.record(
            self.executor,
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

    @writes()
    async def unblock(self, customer_id: uuid.UUID, reason: str | None) -> CustomerRead:
        """Back to ACTIVE; ``blocked_at`` and ``block_reason`` are cleared. A customer already
        ACTIVE is answered as is: same version, no event. Raises 404."""
        row = await self._locked(customer_id)
        if row.status == CustomerStatus.ACTIVE.value:
            return customer_read(row)
        columns = await self.repo.update(
            customer_id,
            {"status": CustomerStatus.ACTIVE.value, "blocked_at": None, "block_reason": None},
        )
        await outbox.record(
            self.executor,
            self.tenant,
            EventType.CUSTOMER_UNBLOCKED,
            str(customer_id),
            {"customer_id": str(customer_id), "reason": reason},
        )
        return customer_read({**row._mapping, **columns})

    @writes()
    async def record_interaction(
        self, customer_id: uuid.UUID, occurred_at: datetime | None, channel: str | None
    ) -> CustomerRead:
        """Move ``last_interaction_at`` forward to ``occurred_at`` (default now); an older
        time never moves it back. Raises 404."""
        row = await self._locked(customer_id)
        when = (occurred_at or datetime.now(UTC)).astimezone(UTC)
        if row.last_interaction_at is not None and row.last_interaction_at >= when:
            return customer_read(row)
        columns = await self.repo.update(customer_id, {"last_interaction_at": when})
        updated = customer_read({**row._mapping, **columns})
        await outbox.record(
            self.executor,
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

    @writes()
    async def set_marketing_opt_in(self, customer_id: uuid.UUID, value: bool) -> None:
        """Set ``marketing_opt_in`` (driven by the consent ledger); emits customer.updated
        when it changes."""
        row = await self._locked(customer_id)
        if row.marketing_opt_in == value:
            return
        await self._apply(row._mapping, {"marketing_opt_in": value})

    @writes()
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

    # -- the upsert's steps (public for the resolution tests) ---------------------------

    async def resolve_upsert(self, body: CustomerFields, *, read: bool) -> UpsertPlan:
        """An upsert's first step, in the open unit: the fields as stored and the identity
        keys they name; with ``read``, also who holds those keys now, read without locks
        (see :meth:`unchanged`). Raises :class:`InvalidInput` (422) without an identity."""
        values = self._normalise(sent_fields(body))
        keys = identities.keys_from_fields(values)
        if not keys:
            raise InvalidInput(
                "upsert needs at least one identity: "
                "email, phone, psid, igsid, user_id or external_ids",
                loc=["body"],
            )
        seen = await self.repo.holders(key_triples(keys), for_update=False) if read else None
        return UpsertPlan(values, keys, seen)

    @staticmethod
    def unchanged(plan: UpsertPlan) -> CustomerRead | None:
        """The customer when an upsert would change nothing (one holder seen, every field
        sent equal to its own; a webhook's retry, say), so no transaction is needed: the
        answer is the committed state the read saw. None otherwise."""
        if plan.seen is None or len(plan.seen) != 1 or "tags" in plan.values:
            return None
        current = plan.seen[0]
        return None if changed_fields(current, plan.values) else customer_read(current)

    async def apply_upsert(self, plan: UpsertPlan) -> tuple[bool, CustomerRead]:
        """Create or update by the identities of ``plan``, in the open write unit. Returns
        ``(created, customer)``.

        Resolution, optimistic when the keys were read first (``plan.seen``; no lock is
        taken before writing):

        - nobody seen holding the keys: a customer is created. If a concurrent request
          created one with one of the keys meanwhile, the unique index on live identities
          refuses the insert: :class:`IdentityTaken`, the unit of work is aborted and
          :meth:`upsert` runs again (:meth:`resolve_upsert` then sees the winner).
        - one customer seen, and the change moves no identity: it is updated if still at
          the version seen.

        Otherwise (or when the version moved) the holders are looked up and row-locked.
        None held: the identities are locked (advisory locks), looked up again, and a
        customer is created. All held by one customer: update it with the fields sent.
        Held by several customers: :class:`IdentitiesSplit` (409; merge them first).
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
        triples = key_triples(keys)
        # Existing holders are locked by the row lock itself; only a create needs the
        # identity locks, and then a second look (another upsert may have created it).
        holders = await self.repo.holders(triples, for_update=True)
        if not holders:
            await self.identity_repo.lock(keys)
            holders = await self.repo.holders(triples, for_update=True)
        if not holders:
            return True, await self._insert({**CREATE_DEFAULTS, **values}, keys)
        if len(holders) > 1:
            raise IdentitiesSplit(sorted(str(h["id"]) for h in holders))
        return False, await self._apply(holders[0], values)

    # -- internals -----------------------------------------------------------------------

    def _normalise(self, fields: dict[str, Any]) -> dict[str, Any]:
        return normalise(fields, self.keyring, self.settings.default_phone_region)

    async def _retrying_identity_races(
        self, route: str, attempts: int, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``attempt`` (a whole unit of work) again when it loses an identity to a
        concurrent create (:class:`IdentityTaken`, decision 0002), up to ``attempts`` times
        in all; each loss counts in ``patron_identity_races_total{route}``. The last loss
        is the documented 409 naming the holder (:meth:`_race_conflict`, a fresh read).

        Inside another use case's unit nothing is retried: the loss aborted that
        transaction, so :class:`IdentityTaken` goes up to whoever opened it.
        """
        if current_unit() is not None:
            return await attempt()
        for remaining in range(attempts - 1, -1, -1):
            try:
                return await attempt()
            except IdentityTaken as taken:
                IDENTITY_RACES.labels(route).inc()
                if remaining:
                    continue
                named = await self._race_conflict(taken)
                if named is taken:
                    raise
                raise named from taken
        raise ValueError("attempts must be at least 1")

    @reads(driver=True)
    async def _race_conflict(self, taken: IdentityTaken) -> PatronError:
        """The 409 for a write that lost an identity to a concurrent create (``taken``,
        after its unit of work was rolled back): :func:`identities.conflict` naming the
        customer that now holds one of the keys, or ``taken`` itself when none does."""
        try:
            await identities.ensure_free(self.identity_repo, taken.keys, None)
        except Conflict as named:
            return named
        return taken

    async def _insert(self, values: dict[str, Any], keys: set[IdentityKey]) -> CustomerRead:
        customer_id = new_id()
        if values.get("tags"):
            values = {**values, "tags": await self.tags.catalog_labels(values["tags"])}
        created = customer_read(await self.repo.insert({**values, "id": customer_id}, keys))
        await outbox.record(
            self.executor,
            self.tenant,
            EventType.CUSTOMER_CREATED,
            str(customer_id),
            {"customer": created.model_dump(mode="json")},
        )
        if values["tags"]:
            await self.tags.set_labels(customer_id, values["tags"])
        return created

    async def _apply(self, current: Mapping[Any, Any], changes: dict[str, Any]) -> CustomerRead:
        """Write the fields of ``changes`` that differ from ``current`` (the locked row's
        response columns: a SQLAlchemy row mapping or an ``asyncpg.Record``)."""
        customer_id: uuid.UUID = current["id"]
        if "tags" in changes:
            changes = {**changes, "tags": await self.tags.set_labels(customer_id, changes["tags"])}
        changed = changed_fields(current, changes)
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
        changed = changed_fields(seen, changes)
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
            self.executor,
            self.tenant,
            EventType.CUSTOMER_UPDATED,
            str(updated.id),
            {"customer": updated.model_dump(mode="json"), "fields_changed": fields_changed},
        )
        return updated

    async def _locked(self, customer_id: uuid.UUID) -> Any:
        row = await self.repo.get(customer_id, for_update=True)
        if row is None:
            raise CustomerNotFound(customer_id)
        return row
