"""Apply Alembic migrations programmatically (``patron db upgrade``, ``patron serve``, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from patron.db.urls import async_url


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


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (blocking; runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision``."""
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """:func:`upgrade` from inside a running event loop (in a worker thread)."""
    await asyncio.to_thread(upgrade, url, revision)
