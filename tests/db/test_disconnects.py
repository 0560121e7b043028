"""A lost or refused database connection is DatabaseUnavailable (503), in every unit of
work, and only that (patron.db.disconnects; issue 10, "a database blip answers 500").

Connections are lost for real here: the test's own backend is ended with
``pg_terminate_backend`` (what PostgreSQL's fast shutdown does to every session, 57P01),
and "refused" is a port or a socket where no server listens. The restart of a whole
server under load is in ``test_outage.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg import exceptions as pg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Message, Receive, Scope, Send

from patron.app import create_app
from patron.auth.principal import Role
from patron.config import Settings
from patron.context import build_context
from patron.db.disconnects import is_disconnect
from patron.db.engine import create_app_engine
from patron.db.fastpath import Executor, driver_connection
from patron.db.session import Database
from patron.db.urls import async_url
from patron.errors import DatabaseUnavailable
from patron.http.middleware import IdempotencyMiddleware
from patron.http.problems import database_error_problem
from patron.idempotency.service import PendingKey
from patron.tenancy import TenantId, trusted_tenant
from tests.conftest import ApiKeyFactory, make_settings
from tests.services import free_port

UnitKind = Callable[[Database, TenantId], AbstractAsyncContextManager[Executor]]
UNITS: dict[str, UnitKind] = {
    "driver_reads": lambda d, t: d.driver_reads(t),
    "driver_unit_of_work": lambda d, t: d.driver_unit_of_work(t),
    "read_only": lambda d, t: d.read_only(t),
    "unit_of_work": lambda d, t: d.unit_of_work(t),
}
WRITES = {"driver_unit_of_work", "unit_of_work"}


# -- classification ----------------------------------------------------------------------


def _wrapped(error: Exception, *, invalidated: bool = False) -> DBAPIError:
    """``error`` as SQLAlchemy's asyncpg dialect raises it: a DBAPIError whose ``orig`` is
    the adapter's error, caused by the driver's."""
    try:
        raise RuntimeError(str(error)) from error
    except RuntimeError as adapted:
        return DBAPIError("SELECT 1", None, adapted, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "connecting", "expected"),
    [
        (
            pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            False,
            True,
        ),
        (pg.AdminShutdownError("terminating connection due to administrator command"), False, True),
        (
            pg.CrashShutdownError(
                "terminating connection because of crash of another server process"
            ),
            False,
            True,
        ),
        (pg.CannotConnectNowError("the database system is shutting down"), True, True),
        (pg.TooManyConnectionsError("sorry, too many clients already"), True, True),
        (pg.ConnectionFailureError("could not receive data from client"), False, True),
        (asyncpg.InterfaceError("connection is closed"), False, True),
        (
            asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            ),
            False,
            True,
        ),
        (_wrapped(asyncpg.InternalClientError("cannot switch to state 12")), False, True),
        (ConnectionRefusedError(111, "Connect call failed"), True, True),
        (FileNotFoundError(2, "No such file or directory"), True, True),
        (ConnectionResetError(104, "Connection reset by peer"), True, True),
        (TimeoutError(), True, True),
        (
            _wrapped(pg.ConnectionDoesNotExistError("closed in the middle of operation")),
            False,
            True,
        ),
        (_wrapped(asyncpg.InterfaceError("whatever"), invalidated=True), False, True),
        # errors of the statement or the program stay what they are
        (pg.PostgresSyntaxError('syntax error at or near "SELEC"'), False, False),
        (pg.UniqueViolationError("duplicate key value"), False, False),
        (pg.InvalidTextRepresentationError("invalid input syntax for type uuid"), False, False),
        (pg.QueryCanceledError("canceling statement due to statement timeout"), False, False),
        (pg.InvalidPasswordError("password authentication failed"), True, False),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            False,
            False,
        ),
        (_wrapped(pg.UniqueViolationError("duplicate key value")), False, False),
        # an OSError once connected is not the database's unless its connection is closed
        (ConnectionResetError(104, "Connection reset by peer"), False, False),
        (OSError("disk full"), False, False),
        (ValueError("connection is closed"), True, False),
    ],
    ids=repr,
)
def test_what_counts_as_a_lost_or_refused_connection(
    error: Exception, connecting: bool, expected: bool
) -> None:
    assert is_disconnect(error, connecting=connecting) is expected


def test_an_escaped_disconnect_renders_as_503_with_retry_after() -> None:
    problem = database_error_problem(
        _wrapped(pg.AdminShutdownError("terminating"), invalidated=True)
    )
    assert isinstance(problem, DatabaseUnavailable)
    assert problem.status == 503
    assert problem.headers == {"Retry-After": "1"}
    body = problem.to_problem()
    assert body["type"] == "/problems/database-unavailable"
    assert body["title"] == "Service Unavailable"
    assert body["retry_after"] == 1
    # and a statement's own error still is what it was
    assert database_error_problem(_wrapped(pg.UniqueViolationError("dup"))).status == 409


# -- real connections, lost -------------------------------------------------------------


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    """A Database whose pool holds one connection, as the application builds it."""
    engine = create_app_engine(
        make_settings(database_pool_size=1, database_max_overflow=0), database_url
    )
    yield Database(engine)
    await engine.dispose()


@pytest.fixture
async def unhooked(database_url: str) -> AsyncIterator[Database]:
    """A Database on a one-connection pool without the application engine's checkout
    hook, so a dead pooled connection reaches ``BEGIN``."""
    engine = create_async_engine(async_url(database_url), pool_size=1, max_overflow=0)
    yield Database(engine)
    await engine.dispose()


async def _pid(executor: Executor) -> int:
    pid: int = (await driver_connection(executor)).get_server_pid()
    return pid


async def _terminate(db: asyncpg.Pool, pid: int) -> None:
    """End backend ``pid`` as a fast shutdown does (57P01), waiting until it is gone."""
    assert await db.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)


async def _until_closed(connection: asyncpg.Connection) -> None:
    for _ in range(500):
        if connection.is_closed():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("asyncpg did not notice the closed connection within 5 s")


async def _idle_pooled_connection_dies(database: Database, db: asyncpg.Pool, tenant: str) -> int:
    """Use the pool's one connection, then end its backend while it sits in the pool;
    returns the dead backend's pid."""
    async with database.driver_reads(trusted_tenant(tenant)) as connection:
        pid: int = connection.get_server_pid()
    await _terminate(db, pid)
    await _until_closed(connection)
    return pid


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    one_connection: Database, db: asyncpg.Pool, tenant: str
) -> None:
    dead = await _idle_pooled_connection_dies(one_connection, db, tenant)
    pooled = await one_connection.engine.raw_connection()
    try:
        connection: asyncpg.Connection = pooled.driver_connection
        assert not connection.is_closed()
        assert connection.get_server_pid() != dead
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        pooled.close()


@pytest.mark.parametrize("kind", UNITS)
async def test_every_unit_starts_on_a_live_connection_after_its_pooled_one_died(
    one_connection: Database, db: asyncpg.Pool, tenant: str, kind: str
) -> None:
    dead = await _idle_pooled_connection_dies(one_connection, db, tenant)
    async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
        assert await _pid(executor) != dead
        assert await (await driver_connection(executor)).fetchval("SELECT 1") == 1


@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_found_dead_at_begin_is_retried_once_on_a_fresh_one(
    unhooked: Database, db: asyncpg.Pool, tenant: str, kind: str
) -> None:
    dead = await _idle_pooled_connection_dies(unhooked, db, tenant)
    runs = 0
    async with UNITS[kind](unhooked, trusted_tenant(tenant)) as executor:
        runs += 1
        assert await _pid(executor) != dead
        assert await (await driver_connection(executor)).fetchval("SELECT 1") == 1
    assert runs == 1


@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_lost_inside_a_unit_is_unavailable_and_never_retried(
    one_connection: Database, db: asyncpg.Pool, tenant: str, kind: str
) -> None:
    runs = 0

    async def use_case() -> None:
        nonlocal runs
        async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
            runs += 1
            await _terminate(db, await _pid(executor))
            if isinstance(executor, asyncpg.Connection):
                await executor.fetchval("SELECT 1")
            else:  # through SQLAlchemy: a DBAPIError, connection invalidated
                await executor.execute(text("SELECT 1"))

    with pytest.raises(DatabaseUnavailable) as raised:
        await use_case()
    assert runs == 1
    assert raised.value.status == 503
    assert raised.value.headers == {"Retry-After": "1"}
    assert "nothing was changed" in raised.value.detail
    # the pool recovers: the next unit gets a live connection
    async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
        assert await (await driver_connection(executor)).fetchval("SELECT 1") == 1


@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_whose_protocol_broke_is_never_pooled_again(
    one_connection: Database, tenant: str, kind: str
) -> None:
    # asyncpg raises this when the server's termination notice reached an idle pooled
    # connection before its socket closed (MagicStack/asyncpg#1069); the connection still
    # says it is open, and SQLAlchemy would pool it again (sqlalchemy/sqlalchemy#13241)
    pids: list[int] = []

    async def use_case() -> None:
        async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
            pids.append(await _pid(executor))
            raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2)")

    with pytest.raises(DatabaseUnavailable):
        await use_case()
    async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
        assert await _pid(executor) != pids[0]


@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_lost_at_commit_says_whether_a_write_may_have_been_saved(
    one_connection: Database, db: asyncpg.Pool, tenant: str, kind: str
) -> None:

    async def use_case() -> None:
        async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
            connection = await driver_connection(executor)
            await _terminate(db, connection.get_server_pid())
            await _until_closed(connection)

    with pytest.raises(DatabaseUnavailable) as raised:
        await use_case()
    if kind in WRITES:
        assert "may or may not have been saved" in raised.value.detail
    else:
        assert "nothing was changed" in raised.value.detail


@pytest.mark.parametrize("kind", UNITS)
async def test_a_statement_error_stays_what_it_is(
    one_connection: Database, tenant: str, kind: str
) -> None:

    async def use_case() -> None:
        async with UNITS[kind](one_connection, trusted_tenant(tenant)) as executor:
            if isinstance(executor, asyncpg.Connection):
                await executor.fetchval("SELEC 1")
            else:
                await executor.execute(text("SELEC 1"))

    with pytest.raises((pg.PostgresSyntaxError, DBAPIError)) as raised:
        await use_case()
    assert not isinstance(raised.value, DatabaseUnavailable)
    assert not is_disconnect(raised.value)


# -- real connections, refused ----------------------------------------------------------


def _unreachable_urls(tmp_path: Path) -> dict[str, str]:
    return {
        "refused": f"postgresql://postgres@127.0.0.1:{free_port()}/patron",
        "socket missing": f"postgresql://postgres@/patron?host={tmp_path / 'no-server'}",
    }


@pytest.mark.parametrize("where", ["refused", "socket missing"])
@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_that_cannot_be_made_is_unavailable(
    tmp_path: Path, where: str, kind: str
) -> None:
    engine = create_app_engine(make_settings(), _unreachable_urls(tmp_path)[where])
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            async with UNITS[kind](Database(engine), trusted_tenant("t-unreachable")):
                raise AssertionError("the unit must not start")
        assert isinstance(raised.value.__cause__, OSError)
    finally:
        await engine.dispose()


async def test_http_answers_503_problem_with_retry_after_when_the_database_is_down(
    settings: Settings, tmp_path: Path, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    headers = await api_key_headers(Role.ADMIN, tenant)  # not cached by the app below
    ctx = build_context(settings, _unreachable_urls(tmp_path)["refused"])
    app = create_app(settings, context=ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as c:
            responses: list[httpx.Response] = [
                await c.get(f"/api/v1/customers/{uuid.uuid4()}", headers=headers),
                await c.post("/api/v1/customers", json={"email": "a@example.com"}, headers=headers),
            ]
    finally:
        await ctx.close()
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
        body: dict[str, Any] = response.json()
        assert body["type"] == "/problems/database-unavailable"
        assert body["title"] == "Service Unavailable"
        assert (
            body["detail"] == "The database is unavailable; nothing was changed. Retry in a moment."
        )
        assert body["retry_after"] == 1


async def test_an_idempotent_response_already_sent_survives_the_database_going_away(
    settings: Settings, tmp_path: Path
) -> None:
    """The response is sent before its Idempotency-Key is completed; when the database is
    gone by then, the middleware must not raise (the server would drop the connection)."""
    ctx = build_context(settings, _unreachable_urls(tmp_path)["refused"])
    app = create_app(settings, context=ctx)

    async def answered(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["idempotency"] = PendingKey(trusted_tenant("t-gone"), "key:1", "k-1")
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/customers",
        "headers": [(b"idempotency-key", b"k-1")],
        "state": {},
        "app": app,
    }
    try:
        await IdempotencyMiddleware(answered)(scope, receive, send)
    finally:
        await ctx.close()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


async def test_a_server_that_never_answers_is_unavailable_after_the_connect_timeout() -> None:
    # a listener that accepts TCP connections and never says a word (a hung server, a
    # firewall that swallows the handshake): DATABASE_CONNECT_TIMEOUT bounds the wait
    silent = socket.create_server(("127.0.0.1", 0))
    url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/patron"
    engine = create_app_engine(make_settings(database_connect_timeout=0.5), url)
    started = time.monotonic()
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            async with UNITS["driver_reads"](Database(engine), trusted_tenant("t-silent")):
                raise AssertionError("the unit must not start")
        assert isinstance(raised.value.__cause__, TimeoutError)
        assert time.monotonic() - started < 5  # asyncpg's own default would be 60 s
    finally:
        await engine.dispose()
        silent.close()
