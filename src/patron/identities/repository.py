"""Queries on ``customer_identities``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import (
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.dml import Insert

from patron.db.fastpath import CompiledStatement, PreparedQuery
from patron.db.repository import TenantScopedRepository, tenant_filter
from patron.errors import Conflict
from patron.identities.schemas import IdentityKey, IdentityKind
from patron.kit.ids import new_id
from patron.models import CustomerIdentity
from patron.models.customer_identity import LIVE_IDENTITY_CONSTRAINT


class IdentityTaken(Conflict):
    """409: an identity being given to a customer was taken by a concurrent request that
    committed first (the partial unique index on live identities refused it). The
    transaction is aborted; ``keys`` are the identities the refused statement carried, so
    the caller can look again or name the holder (decision 0002)."""

    def __init__(self, keys: Iterable[IdentityKey]) -> None:
        self.keys = frozenset(keys)
        super().__init__(
            "an identity given was taken by a concurrent request; retry",
            identities=[k.as_json() for k in sorted(self.keys)],
        )


@contextmanager
def guarding_live_identities(keys: Iterable[IdentityKey]) -> Iterator[None]:
    """Turn the live-identity unique violation of a statement run inside into
    :class:`IdentityTaken` for ``keys``; any other error passes unchanged."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != LIVE_IDENTITY_CONSTRAINT:
            raise
        raise IdentityTaken(keys) from exc


_LOCK = CompiledStatement(
    text(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
        "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
    ).bindparams(bindparam("keys", type_=ARRAY(Text)))
)

# A new customer's identities in one statement (parallel arrays, one element per identity).
_NEW = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Uuid)),
        bindparam("kinds", type_=ARRAY(Text)),
        bindparam("namespaces", type_=ARRAY(Text)),
        bindparam("values", type_=ARRAY(Text)),
    )
    .table_valued("id", "kind", "namespace", "value")
    .render_derived()
)


def insert_identities(customer_id: Any) -> Insert:
    """``INSERT`` of one customer's new identities from parallel arrays (bind parameters
    ``ids``, ``kinds``, ``namespaces``, ``values``; see :func:`new_identity_params`) for
    ``customer_id`` (a bind parameter, or a column of an enclosing statement). The
    customer repository runs it as a CTE of a new customer's own ``INSERT``."""
    return insert(CustomerIdentity).from_select(
        ["id", "tenant_id", "customer_id", "kind", "namespace", "value"],
        select(
            _NEW.c.id,
            bindparam("tenant", type_=String),
            customer_id,
            _NEW.c.kind,
            _NEW.c.namespace,
            _NEW.c.value,
        ),
    )


def new_identity_params(keys: Iterable[IdentityKey]) -> dict[str, list[Any]]:
    """Parameters of :func:`insert_identities` for ``keys`` (each gets a new id)."""
    wanted = list(keys)
    return {"ids": [new_id() for _ in wanted], **_key_arrays(wanted)}


_ADD = PreparedQuery(insert_identities(bindparam("customer_id", type_=Uuid)))

# Identity keys as three parallel arrays, for the statements below.
_KEYS = (
    func.unnest(
        bindparam("kinds", type_=ARRAY(Text)),
        bindparam("namespaces", type_=ARRAY(Text)),
        bindparam("values", type_=ARRAY(Text)),
    )
    .table_valued("kind", "namespace", "value")
    .render_derived()
)
_I = CustomerIdentity
# ``customer_identities`` rows whose key is one of the arrays' (the customer repository's
# holder look-up uses it too); parameters as in :func:`_key_arrays`.
KEY_MATCH = tuple_(_I.kind, _I.namespace, _I.value).in_(
    select(_KEYS.c.kind, _KEYS.c.namespace, _KEYS.c.value)
)
_HOLDERS = PreparedQuery(
    select(_I.kind, _I.namespace, _I.value, _I.customer_id).where(
        tenant_filter(_I), _I.released_at.is_(None), KEY_MATCH
    )
)
_REMOVE = PreparedQuery(
    delete(_I).where(
        tenant_filter(_I),
        _I.customer_id == bindparam("customer_id", type_=Uuid),
        _I.released_at.is_(None),
        KEY_MATCH,
    )
)


def _key_arrays(keys: Iterable[IdentityKey]) -> dict[str, list[str]]:
    wanted = list(keys)
    return {
        "kinds": [str(k.kind) for k in wanted],
        "namespaces": [k.namespace for k in wanted],
        "values": [k.value for k in wanted],
    }


class IdentityRepository(TenantScopedRepository[CustomerIdentity]):
    model = CustomerIdentity

    async def lock(self, keys: Iterable[IdentityKey]) -> None:
        """Transaction-scoped advisory locks on identity keys, taken in sorted order so two
        concurrent upserts of the same identity serialise instead of both creating."""
        names = sorted({f"{self.tenant}\x1f{k.kind}\x1f{k.namespace}\x1f{k.value}" for k in keys})
        if names:
            await _LOCK.execute(self.executor, {"keys": names})

    async def holders(self, keys: Iterable[IdentityKey]) -> dict[IdentityKey, uuid.UUID]:
        """Live holder of each key that has one (one prepared statement)."""
        wanted = set(keys)
        if not wanted:
            return {}
        rows = await self.fetch(_HOLDERS, **_key_arrays(wanted))
        return {
            IdentityKey(IdentityKind(r["kind"]), r["namespace"], r["value"]): r["customer_id"]
            for r in rows
        }

    async def of_customer(self, customer_id: uuid.UUID) -> set[IdentityKey]:
        """Live identities of one customer."""
        m = CustomerIdentity
        stmt = self.select(m.kind, m.namespace, m.value).where(
            m.customer_id == customer_id, m.released_at.is_(None)
        )
        rows = (await self.session.execute(stmt)).all()
        return {IdentityKey(IdentityKind(r.kind), r.namespace, r.value) for r in rows}

    async def add(self, customer_id: uuid.UUID, keys: Iterable[IdentityKey]) -> None:  # type: ignore[override]
        """Give ``customer_id`` the identities ``keys`` (one statement). Raises
        :class:`IdentityTaken` when a concurrent create took one first (callers check with
        :func:`~patron.identities.service.ensure_free` before, but an optimistic create
        takes no identity lock)."""
        wanted = list(keys)
        if wanted:
            with guarding_live_identities(wanted):
                await self.execute(_ADD, customer_id=customer_id, **new_identity_params(wanted))

    async def remove(self, customer_id: uuid.UUID, keys: Iterable[IdentityKey]) -> None:
        """Delete identities a customer no longer has (a changed email, say; one prepared
        statement)."""
        wanted = set(keys)
        if wanted:
            await self.execute(_REMOVE, customer_id=customer_id, **_key_arrays(wanted))

    async def release_all(self, customer_id: uuid.UUID) -> None:
        """Release every live identity of a deleted or merged-away customer."""
        m = CustomerIdentity
        await self.session.execute(
            self.scoped(
                update(m)
                .where(m.customer_id == customer_id, m.released_at.is_(None))
                .values(released_at=func.now())
            )
        )

    async def move(
        self, source_id: uuid.UUID, survivor_id: uuid.UUID, keys: Iterable[IdentityKey]
    ) -> None:
        """Re-point live identities from ``source_id`` to ``survivor_id`` (merge)."""
        wanted = [tuple(k) for k in keys]
        if not wanted:
            return
        m = CustomerIdentity
        await self.session.execute(
            self.scoped(
                update(m)
                .where(
                    m.customer_id == source_id,
                    m.released_at.is_(None),
                    tuple_(m.kind, m.namespace, m.value).in_(wanted),
                )
                .values(customer_id=survivor_id)
            )
        )

    async def find_by_psid(self, psid: str, app_id: str | None) -> list[uuid.UUID]:
        """Live customers holding ``psid`` as a PSID or IGSID (in ``app_id`` if given)."""
        m = CustomerIdentity
        cond = and_(
            m.released_at.is_(None),
            or_(m.kind == IdentityKind.PSID.value, m.kind == IdentityKind.IGSID.value),
            m.value == psid,
        )
        if app_id is not None:
            cond = and_(cond, m.namespace == app_id)
        rows = (await self.session.execute(self.select(m.customer_id).where(cond).distinct())).all()
        return [r.customer_id for r in rows]
