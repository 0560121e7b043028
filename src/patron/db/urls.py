"""Database URL helpers."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url


def async_url(url: str) -> URL:
    """``postgresql://`` (libpq style) URL as SQLAlchemy's asyncpg URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


def libpq_dsn(url: str) -> str:
    """The URL as a plain ``postgresql://`` DSN (for asyncpg, psql, pgbench)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
