"""Engine and session factory.

The application connects with ``DATABASE_URL`` but runs every statement as the
``patron_app`` role (startup parameter ``role``): a role without BYPASSRLS, so PostgreSQL
row-level security applies even when the URL names a superuser (ARCHITECTURE.md §6).
Migrations use :func:`create_admin_engine`, which keeps the URL's own role.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from patron.config import Settings
from patron.db.urls import async_url
from patron.kit.jsonutil import dumps, loads


def _json_serializer(value: object) -> str:
    return dumps(value).decode()


# JSON and JSONB columns go through orjson (kit/jsonutil) rather than the stdlib json
# module: a customer row carries three JSONB documents, read and written on hot paths.
JSON_CODECS = {"json_serializer": _json_serializer, "json_deserializer": loads}


def _drop_closed(
    _dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """Pool ``checkout`` hook: a pooled connection whose socket the server has closed (a
    restart, an idle timeout) is replaced by a fresh one before anyone uses it.

    asyncpg notices the close as soon as the event loop reads the socket's end, so
    ``is_closed()`` is a local check: no round trip, unlike ``pool_pre_ping`` (which sends
    a statement on every checkout; decision 0014 has the measurement). SQLAlchemy
    invalidates the connection and reconnects when a ``checkout`` hook raises
    ``DisconnectionError`` ("Disconnect Handling - Pessimistic", custom checkout events:
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic).
    """
    connection = record.driver_connection
    if connection is not None and connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def drop_closed_connections(engine: AsyncEngine) -> AsyncEngine:
    """Install :func:`_drop_closed` on ``engine``'s pool; returns ``engine``."""
    event.listen(engine.sync_engine.pool, "checkout", _drop_closed)
    return engine


def create_app_engine(settings: Settings, url: str) -> AsyncEngine:
    """The pooled engine that serves requests and jobs, subject to row-level security.

    Dead pooled connections are replaced at checkout without a round trip
    (:func:`drop_closed_connections`); a lost connection in a unit of work is a
    ``DatabaseUnavailable`` (:mod:`patron.db.disconnects`).
    """
    engine = create_async_engine(
        async_url(url),
        **JSON_CODECS,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=False,
        connect_args={
            "server_settings": {
                "role": settings.database_app_role,
                "application_name": "patron",
                "jit": "off",
            },
            "timeout": settings.database_connect_timeout,
        },
    )
    return drop_closed_connections(engine)


def create_system_engine(
    settings: Settings, url: str, pool_size: int = 2, *, synchronous_commit: bool = True
) -> AsyncEngine:
    """An engine for background services (relay, webhook dispatch) that work across tenants.

    Runs as ``patron_system``: no BYPASSRLS either, but policies on the few tables those
    services need (``outbox_events``, webhook tables) let it see every tenant's rows there,
    and nothing else (migration 0004). ``synchronous_commit=False`` sets PostgreSQL's
    ``synchronous_commit = off`` for its sessions: commits return before their WAL is
    flushed, for bookkeeping that may be lost in a crash and redone (the relay's marks).
    """
    server_settings = {
        "role": settings.database_system_role,
        "application_name": "patron-system",
        "jit": "off",
    }
    if not synchronous_commit:
        server_settings["synchronous_commit"] = "off"
    return drop_closed_connections(
        create_async_engine(
            async_url(url),
            **JSON_CODECS,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={
                "server_settings": server_settings,
                "timeout": settings.database_connect_timeout,
            },
        )
    )


def create_admin_engine(url: str) -> AsyncEngine:
    """A small engine with the URL's own privileges, for migrations and set-up."""
    return create_async_engine(async_url(url), pool_size=1, max_overflow=0)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
