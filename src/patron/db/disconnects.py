"""Telling a lost or refused database connection from an error of the statement itself.

A database restart, a failover or a network fault shows up in several shapes, depending on
where it hits and which path ran the statement (SQLAlchemy wraps driver errors in
``DBAPIError``; the driver fast path, :mod:`patron.db.fastpath`, and the ``BEGIN`` of every
unit, :mod:`patron.db.rls`, see asyncpg's own):

- connecting: ``ConnectionRefusedError`` (server down), ``FileNotFoundError`` (its Unix
  socket is gone), ``TimeoutError``, any other ``OSError``, or the server's refusal
  ``CannotConnectNowError`` (57P03, starting up or shutting down) or
  ``TooManyConnectionsError`` (53300);
- on an open connection: ``ConnectionDoesNotExistError`` (08003, "closed in the middle
  of operation"), the server's ``AdminShutdownError`` (57P01, fast shutdown) or
  ``CrashShutdownError`` (57P02), asyncpg's ``InterfaceError`` "connection is closed"
  (a pooled connection the server dropped while idle), asyncpg's
  ``InternalClientError`` "cannot switch to state ..." (the server's termination notice
  reached an idle connection before its socket closed, and left the protocol unusable:
  MagicStack/asyncpg#1069, sqlalchemy/sqlalchemy#13241), SQLAlchemy's ``DBAPIError``
  with ``connection_invalidated`` (its dialect's own disconnect test).

Those are :class:`patron.errors.DatabaseUnavailable` (503, ``Retry-After``); anything else
(syntax, constraint, data errors, ``InterfaceError`` about another operation in progress)
stays what it is. SQLSTATE codes:
https://www.postgresql.org/docs/current/errcodes-appendix.html
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError

from patron.db.rls import tenant_transaction
from patron.errors import DatabaseUnavailable

Held = TypeVar("Held")

# Class 08 (connection exception) as a whole; 57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now; 53300 too_many_connections (refused at connect, transient).
_DISCONNECT_CLASSES = ("08",)
_DISCONNECT_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# asyncpg's InterfaceError text for a statement on a closed connection (SQLAlchemy's
# asyncpg dialect tests the same text in ``is_disconnect``).
_CLOSED_TEXT = "connection is closed"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig`` and explicit causes (``raise ...
    from``). Not ``__context__``: an error raised while handling another is its own."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            current = current.__cause__


def is_disconnect(
    exc: BaseException,
    *,
    connecting: bool = False,
    connection: asyncpg.Connection | None = None,
) -> bool:
    """Whether ``exc`` means the database connection was lost or could not be made.

    ``connecting``: ``exc`` came from checking a connection out of the pool (which may
    open one), where any ``OSError`` is about reaching the server. ``connection``: the
    connection the failed work ran on; an ``OSError`` later on counts only if that
    connection is now closed.
    """
    closed = connection is not None and connection.is_closed()
    for error in _chain(exc):
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, asyncpg.PostgresError):
            state = str(getattr(error, "sqlstate", "") or "")
            return state.startswith(_DISCONNECT_CLASSES) or state in _DISCONNECT_STATES
        if isinstance(error, asyncpg.InterfaceError):
            return closed or _CLOSED_TEXT in str(error)
        if isinstance(error, asyncpg.InternalClientError):
            return True  # the connection's protocol state is broken: it cannot be used again
        if isinstance(error, OSError):
            return connecting or closed
    return False


# Refusals that make a database unusable for a whole command, not only for a moment:
# class 28 (invalid authorization) and 3D000 (no such database).
_UNUSABLE_STATES = ("28", "3D000")


def unreachable(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain saying a new connection to the database cannot be
    made or used (a disconnect while connecting, bad credentials, no such database), or
    None. For a one-line "cannot reach the database" of a command (``patron.cli``)."""
    for error in _chain(exc):
        state = str(getattr(error, "sqlstate", "") or "")
        if state.startswith(_UNUSABLE_STATES) or is_disconnect(error, connecting=True):
            return error
    return None


@asynccontextmanager
async def unit_transaction(
    checkout: Callable[[], Awaitable[tuple[Held, asyncpg.Connection]]],
    release: Callable[[Held], Awaitable[None]],
    tenant: str,
    *,
    read_only: bool,
) -> AsyncIterator[tuple[Held, asyncpg.Connection]]:
    """A unit of work's transaction on a pooled connection, with database outages turned
    into :class:`DatabaseUnavailable`: ``BEGIN`` with the tenant, the block, ``COMMIT``
    (``ROLLBACK`` when the block raises; :func:`patron.db.rls.tenant_transaction`).

    ``checkout()`` gives what the unit holds (a pooled connection, a session) and its
    asyncpg connection, which the block gets; ``release(held)`` gives it back, invalidating
    a closed connection. A connection lost anywhere here is terminated first, so it is
    closed and never pooled again (asyncpg may leave a dead one looking open).

    - A pooled connection found dead at ``BEGIN`` (the server restarted while it sat in
      the pool and its close was not seen yet) is released and the unit starts once more
      on a fresh one: nothing ran yet, so that retry is safe for reads and writes alike.
      A connection that cannot be made is not retried.
    - Lost in the block or at ``COMMIT``: never retried (the block may have written, its
      commit may have happened). At the ``COMMIT`` of a write the problem says that the
      change may or may not have been saved (``committing``).

    Raises :class:`DatabaseUnavailable` for a lost or refused connection
    (:func:`is_disconnect`); other errors propagate as they are.
    """
    for attempt in (1, 2):
        try:
            held, connection = await checkout()
        except Exception as exc:
            if is_disconnect(exc, connecting=True):
                raise DatabaseUnavailable() from exc
            raise
        begun = committing = False
        try:
            async with tenant_transaction(connection, tenant, read_only=read_only):
                begun = True
                yield held, connection
                committing = not read_only
            return
        except DatabaseUnavailable:
            raise  # a unit opened inside this one already judged it
        except Exception as exc:
            if not is_disconnect(exc, connection=connection):
                raise
            connection.terminate()  # so that release() invalidates it, never pools it
            if begun or attempt == 2:
                raise DatabaseUnavailable(committing=committing) from exc
        finally:
            await release(held)
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def unit_connection(
    checkout: Callable[[], Awaitable[tuple[Held, asyncpg.Connection]]],
    release: Callable[[Held], Awaitable[None]],
) -> AsyncIterator[tuple[Held, asyncpg.Connection]]:
    """A pooled connection with no transaction around the block (each statement is its
    own, PostgreSQL's implicit one), with database outages turned into
    :class:`DatabaseUnavailable` as in :func:`unit_transaction`.

    There is no ``BEGIN`` to find a dead connection at, so nothing is retried: a
    connection lost at the block's first statement is a 503 (``Retry-After``) like one
    lost later; the pool's checkout hook already drops connections seen closed. A lost
    connection is terminated so that ``release(held)`` invalidates it.
    """
    try:
        held, connection = await checkout()
    except Exception as exc:
        if is_disconnect(exc, connecting=True):
            raise DatabaseUnavailable() from exc
        raise
    try:
        yield held, connection
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if not is_disconnect(exc, connection=connection):
            raise
        connection.terminate()
        raise DatabaseUnavailable() from exc
    finally:
        await release(held)
