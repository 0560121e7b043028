"""Apply Alembic migrations programmatically (``patron db upgrade``, ``patron serve``, tests).

Every upgrade or downgrade holds a PostgreSQL session-level advisory lock on the connection
it migrates with, so replicas of ``patron api`` starting together take turns: the first
migrates, the others wait, then find the schema at head and do nothing
(docs/decisions/0015-migrations-at-start.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from patron.db.engine import create_admin_engine
from patron.db.urls import async_url

# Key of the advisory lock (hashed to a bigint by PostgreSQL, like the identity locks).
MIGRATION_LOCK = "patron.migrations"
_LOCK = text("SELECT pg_advisory_lock(hashtextextended(:key, 0))")
_UNLOCK = text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))")


def migrations_dir() -> Path:
    """Where the migration scripts live: in the wheel, or at the top of a checkout."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "_migrations", here.parents[3] / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("migration scripts not found")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at ``url`` (any PostgreSQL URL form)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option(
        "file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    cfg.set_main_option(
        "sqlalchemy.url", async_url(url).render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


async def _locked(url: str, revision: str, *, up: bool) -> None:
    """Run Alembic on one admin connection while it holds the migration lock."""

    def migrate(connection: Connection) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection  # migrations/env.py runs on it
        (command.upgrade if up else command.downgrade)(cfg, revision)

    engine = create_admin_engine(url)
    try:
        async with engine.connect() as connection:
            # Session-level: held across Alembic's per-migration transactions; waits while
            # another process migrates. Closing the connection releases it too.
            await connection.execute(_LOCK, {"key": MIGRATION_LOCK})
            await connection.commit()
            try:
                await connection.run_sync(migrate)
                await connection.commit()
            finally:
                await connection.rollback()
                await connection.execute(_UNLOCK, {"key": MIGRATION_LOCK})
                await connection.commit()
    finally:
        await engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` under the migration lock (blocking;
    runs its own event loop). Raises what Alembic or the driver raise (e.g. ``OSError``
    when the server cannot be reached)."""
    asyncio.run(_locked(url, revision, up=True))


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` under the migration lock."""
    asyncio.run(_locked(url, revision, up=False))


async def upgrade_async(url: str, revision: str = "head") -> None:
    """:func:`upgrade` from inside a running event loop (in a worker thread)."""
    await asyncio.to_thread(upgrade, url, revision)
