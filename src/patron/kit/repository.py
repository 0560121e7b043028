"""The one place where tenant scoping is written (STYLE.md "Tenancy").

A :class:`TenantScopedRepository` is built with a :class:`~patron.tenancy.TenantId` and adds
``tenant_id = :tenant`` to every statement it makes and stamps it on every row it creates.
Row-level security in PostgreSQL is the second wall behind it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from patron.db.base import Base
from patron.tenancy import TenantId

ModelT = TypeVar("ModelT", bound=Base)


class TenantScopedRepository(Generic[ModelT]):
    """Base of repositories for tenant tables. Subclasses set ``model``."""

    model: type[ModelT]

    def __init__(self, session: AsyncSession, tenant: TenantId) -> None:
        self.session = session
        self.tenant = tenant

    def select(self, *entities: Any) -> Select[Any]:
        """``SELECT`` of ``entities`` (default: the model) filtered to this tenant."""
        stmt = select(*entities) if entities else select(self.model)
        return stmt.where(self.model.tenant_id == self.tenant)  # type: ignore[attr-defined]

    def scoped(self, stmt: Any, model: Any = None) -> Any:
        """Add this tenant's filter to an ``update``/``delete``/``select`` on ``model``."""
        target: Any = model if model is not None else self.model
        return stmt.where(target.tenant_id == self.tenant)

    def stamp(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` for an insert, with this tenant's id."""
        return {**values, "tenant_id": self.tenant}

    def add(self, obj: ModelT) -> ModelT:
        """Stage a new row, stamped with this tenant."""
        obj.tenant_id = self.tenant  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj
