"""Queries on ``idempotency_keys``: one record per (tenant, principal, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.dialects.postgresql import insert

from patron.db.repository import TenantScopedRepository
from patron.models import IdempotencyKey

K = IdempotencyKey


class IdempotencyKeyRepository(TenantScopedRepository[IdempotencyKey]):
    model = IdempotencyKey

    def _one(self, principal_id: str, key: str) -> tuple[ColumnElement[bool], ...]:
        return (K.principal_id == principal_id, K.key == key)

    async def delete_expired(self, principal_id: str, key: str, now: datetime) -> None:
        """Drop the record of ``key`` if it expired before ``now``."""
        stmt = delete(K).where(*self._one(principal_id, key), K.expires_at < now)
        await self.session.execute(self.scoped(stmt))

    async def insert_new(self, principal_id: str, key: str, **values: Any) -> bool:
        """Insert the record of ``key`` unless one exists; True when this call inserted it."""
        stmt = (
            insert(K)
            .values(self.stamp({"principal_id": principal_id, "key": key, **values}))
            .on_conflict_do_nothing()
            .returning(K.key)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get_for_update(self, principal_id: str, key: str) -> IdempotencyKey:
        """The record of ``key``, row-locked until the transaction ends (it must exist)."""
        stmt = self.select().where(*self._one(principal_id, key)).with_for_update()
        row: IdempotencyKey = (await self.session.execute(stmt)).scalar_one()
        return row

    async def set(self, principal_id: str, key: str, **values: Any) -> None:
        """Update the record of ``key`` with ``values``."""
        stmt = update(K).where(*self._one(principal_id, key)).values(**values)
        await self.session.execute(self.scoped(stmt))

    async def remove(self, principal_id: str, key: str) -> None:
        """Delete the record of ``key`` (absent: nothing happens)."""
        await self.session.execute(self.scoped(delete(K).where(*self._one(principal_id, key))))
