"""``patron stats rebuild``: recompute every customer's stats from history, report drift
and fix it.

Tenants are enumerated with an engine that keeps the database URL's own role (row-level
security hides other tenants from ``patron_app``); each tenant's customers are then
checked by one use case per tenant (:meth:`StatsRebuild.run`, as the system principal
``cli:stats-rebuild``), a batch of customers per transaction, each under the same
stats-row lock that recordings take, so a rebuild running beside live traffic never
overwrites a concurrent change with a stale result.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from patron.auth.principal import Principal, Role
from patron.config import Settings
from patron.context import AppContext, build_context
from patron.db.engine import create_admin_engine
from patron.orders.repository import StatsRepository
from patron.orders.stats import Drift, StatsKeeper, differences
from patron.tenancy import TenantId, trusted_tenant
from patron.usecases import Service, ServiceContext, read_unit, unit_of_work

BATCH = 200

_TENANTS_SQL = text(
    "SELECT tenant_id FROM customer_stats UNION SELECT tenant_id FROM customer_orders "
    "UNION SELECT tenant_id FROM customer_appointments ORDER BY 1"
)


async def tenants_with_history(admin_engine: AsyncEngine) -> list[str]:
    """Every tenant that has stats, orders or appointments (needs a role that sees them
    all: the URL's own, e.g. the migration role)."""
    async with admin_engine.connect() as conn:
        return [row[0] for row in await conn.execute(_TENANTS_SQL)]


class StatsRebuild(Service):
    """The stats rebuild of one tenant (:class:`patron.usecases.ServiceContext`)."""

    async def run(self, *, fix: bool = True) -> list[Drift]:
        """Recompute the stats of every customer of the tenant with history; store the
        fresh values where they differ (unless ``fix`` is False: then nothing is written,
        not even a missing stats row) and return the differences.

        Opens its units itself: one per batch of :data:`BATCH` customers, so a large
        tenant never holds one long transaction (and its row locks) beside live traffic.
        """
        async with read_unit(self.ctx):
            customer_ids = await StatsRepository(self.session, self.tenant).customers_with_history()
        drift: list[Drift] = []
        for start in range(0, len(customer_ids), BATCH):
            async with unit_of_work(self.ctx):
                keeper = StatsKeeper(self.session, self.tenant, self.app.settings)
                for customer_id in customer_ids[start : start + BATCH]:
                    await keeper.lock(customer_id, create=fix)
                    stored = await keeper.stored(customer_id)
                    fresh = await keeper.recompute(customer_id)
                    found = differences(customer_id, stored, fresh)
                    if found and fix:
                        await keeper.write(customer_id, fresh)
                    drift.extend(found)
        return drift


def rebuild_context(ctx: AppContext, tenant: TenantId) -> ServiceContext:
    """The system context ``patron stats rebuild`` acts in for ``tenant``."""
    principal = Principal(
        id="cli:stats-rebuild",
        subject="patron stats rebuild",
        roles=frozenset({Role.SERVICE}),
        tenant_id=tenant,
    )
    return ServiceContext(ctx, principal, tenant)


async def rebuild(
    ctx: AppContext,
    admin_engine: AsyncEngine,
    tenants: Sequence[str] | None = None,
    *,
    fix: bool = True,
) -> dict[str, list[Drift]]:
    """Drift per tenant for ``tenants`` (default: every tenant with history)."""
    names = list(tenants) if tenants else await tenants_with_history(admin_engine)
    drift: dict[str, list[Drift]] = {}
    for name in names:
        tenant = trusted_tenant(name)
        drift[name] = await StatsRebuild(rebuild_context(ctx, tenant)).run(fix=fix)
    return drift


async def rebuild_database(
    settings: Settings, url: str, tenants: Sequence[str] | None = None, *, fix: bool = True
) -> dict[str, list[Drift]]:
    """:func:`rebuild` on the database at ``url`` (``patron stats rebuild``): builds the
    process context and the enumerating admin engine, and closes both before it returns."""
    ctx = build_context(settings, url)
    admin_engine = create_admin_engine(url)
    try:
        return await rebuild(ctx, admin_engine, tenants, fix=fix)
    finally:
        await admin_engine.dispose()
        await ctx.close()
