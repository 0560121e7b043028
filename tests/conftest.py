"""Test fixtures: a migrated database per xdist worker, the app over ASGI, credentials.

Tests isolate by tenant: each test gets fresh tenant ids, so tests never see each other's
rows and nothing needs truncating. Writes go through the app's real units of work.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from click.testing import Result
from sqlalchemy.engine import make_url

from patron.app import create_app
from patron.auth.api_keys import create_api_key
from patron.auth.principal import Role
from patron.config import Settings, get_settings
from patron.context import AppContext, build_context
from patron.db import migrate
from patron.db.engine import create_admin_engine, create_sessionmaker
from patron.db.urls import libpq_dsn
from patron.logging import json_formatter
from tests import services
from tests.jwks_server import AUDIENCE, ISSUER, Issuer
from tests.meta.fake_graph import APP_SECRET as GRAPH_APP_SECRET
from tests.meta.fake_graph import FakeGraph


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _recreate_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(libpq_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> str:
    return services.server_database_url()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(libpq_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this xdist worker of this test run, migrated to head by Alembic.

    The name carries the process id, so concurrent test runs on one server never drop
    each other's database; it is dropped again at the end of the run.
    """
    name = f"patron_test_{_worker()}_{os.getpid()}"
    asyncio.run(_recreate_database(server_url, name))
    url = _with_database(server_url, name)
    migrate.upgrade(url)
    yield url
    asyncio.run(_drop_database(server_url, name))


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    yield iss
    iss.close()


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "patron_env": "test",
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "customer_patch_rate": "1000/minute",
        "log_level": "WARNING",
        "database_pool_size": 5,
        # `patron serve` apps (background=True) run gRPC too: any free port, no clashes
        "grpc_port": 0,
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(issuer: Issuer) -> Settings:
    return make_settings(jwks_url=issuer.url)


@pytest.fixture(scope="session")
async def app_ctx(settings: Settings, database_url: str) -> AsyncIterator[AppContext]:
    ctx = build_context(settings, database_url)
    if ctx.jwks is not None:
        ctx.jwks.min_refresh_seconds = 0
    yield ctx
    await ctx.close()


@pytest.fixture(scope="session")
def app(app_ctx: AppContext, settings: Settings) -> Any:
    return create_app(settings, context=app_ctx)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as c:
        yield c


@pytest.fixture
def tenant() -> str:
    """A tenant id no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def other_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def admin_engine(database_url: str) -> AsyncIterator[Any]:
    engine = create_admin_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A superuser pool for assertions on rows (bypasses row-level security)."""

    async def init(conn: asyncpg.Connection) -> None:
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )

    pool = await asyncpg.create_pool(libpq_dsn(database_url), min_size=1, max_size=4, init=init)
    yield pool
    await pool.close()


ApiKeyFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def api_key_headers(admin_engine: Any) -> ApiKeyFactory:
    """``await api_key_headers(role, tenant)`` → headers of a new API key (platform key and
    ``X-Tenant-Id`` when ``platform=True``)."""

    async def make(
        role: Role | str, tenant: str | None, *, platform: bool = False
    ) -> dict[str, str]:
        async with create_sessionmaker(admin_engine)() as session, session.begin():
            key = await create_api_key(
                session, tenant_id=None if platform else tenant, role=Role(role)
            )
        headers = {"X-API-Key": key.secret}
        if platform and tenant is not None:
            headers["X-Tenant-Id"] = tenant
        return headers

    return make


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def token_headers(issuer: Issuer) -> TokenFactory:
    """``token_headers(role, tenant, sub=...)`` → ``Authorization: Bearer`` headers."""

    def make(
        role: str, tenant: str | None, *, sub: str | None = None, **kwargs: Any
    ) -> dict[str, str]:
        token = issuer.token(
            sub=sub or f"user-{secrets.token_hex(4)}", roles=[role], tenant_id=tenant, **kwargs
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
async def admin(api_key_headers: ApiKeyFactory, tenant: str) -> dict[str, str]:
    """Headers of a tenant admin API key."""
    return await api_key_headers(Role.ADMIN, tenant)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """Environment for ``patron`` CLI commands run in-process: the test database (with
    the development keys, which ``PATRON_ENV=test`` allows there), and settings read
    afresh."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PATRON_ENV", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def cli_failure(result: Result, exit_code: int) -> str:
    """The message of a ``patron`` command that refused as designed: it ended through
    ``SystemExit`` with ``exit_code`` (an uncaught exception ends with 1 too, but is not a
    ``SystemExit``) and printed no traceback. The message comes back as one line: rich's box
    drawing and line wrapping removed, whitespace collapsed."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", result.output).split())


async def create_customer(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    """POST a customer and return its body (asserting 201)."""
    response = await client.post("/api/v1/customers", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def outbox_rows(
    db: asyncpg.Pool, tenant: str, type_: str | None = None
) -> list[asyncpg.Record]:
    sql = "SELECT * FROM outbox_events WHERE tenant_id = $1"
    args: list[Any] = [tenant]
    if type_:
        sql += " AND type = $2"
        args.append(type_)
    return list(await db.fetch(sql + " ORDER BY seq", *args))


TenantWrites = tuple[list[tuple[Any, ...]], list[str]]


async def tenant_writes(db: asyncpg.Pool, tenant: str) -> TenantWrites:
    """What a refused request must leave as it was: every customer row of ``tenant`` (all
    columns, and ``xmin`` so that a rewrite with equal values shows too), ordered by id, and
    the ids of the tenant's outbox events in feed order. Compare before and after."""
    customers = await db.fetch(
        "SELECT xmin::text AS row_version, c.* FROM customers c WHERE tenant_id = $1 ORDER BY id",
        tenant,
    )
    events = await outbox_rows(db, tenant)
    return [tuple(r) for r in customers], [str(e["id"]) for e in events]


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line written while the test runs (JSON, as in production)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    level = root.level
    # httpx here is the tests' client (it logs request URLs), not the service
    client_log = logging.getLogger("httpx")
    client_level = client_log.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    client_log.setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.setLevel(level)
        client_log.setLevel(client_level)
        root.removeHandler(handler)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The test broker's URL; skips (saying why) when no RabbitMQ answers outside CI."""
    url = services.rabbitmq_url()
    if url is None:
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672 (PATRON_TEST_RABBITMQ_URL)")
    return url


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraph]:
    """A fake Meta Graph API (tests/meta/fake_graph.py) per test module, checking
    ``appsecret_proof`` with ``tests.meta.fake_graph.APP_SECRET``."""
    with FakeGraph(app_secret=GRAPH_APP_SECRET) as server:
        yield server


@pytest.fixture
def graph(graph_server: FakeGraph) -> FakeGraph:
    """The module's fake Graph server with no queued answers and no recorded requests."""
    graph_server.requests.clear()
    graph_server.script.clear()
    graph_server.default_headers = {}
    return graph_server
