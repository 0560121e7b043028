"""The baseline: a minimal FastAPI app on a raw asyncpg pool, running Patron's SQL.

``python -m bench.raw_app --port 8172``

Three routes, each the shortest honest way to do what Patron's route does, with the same
statements against the same rows and indexes (``bench/common.py``; GET and search run
the exact SQL Patron's repository code produces, captured from it at start-up):

- ``GET /customers/{id}``: one ``SELECT`` of the customer row (with the stats join).
- ``POST /customers/upsert``: in one transaction, resolve the PSID identity (locking its
  customer), then ``INSERT ... ON CONFLICT (id) DO UPDATE`` the customer row when it is
  new or changed, and insert the identity of a new customer.
- ``GET /customers?q=``: Patron's search statements (its matches gathered through the
  trigram index first; a common term paged through the date index), ``LIMIT 21`` (a page
  of 20 and whether there is more), without the total of a common term.

What it leaves out is what Patron adds on top: authentication, row-level security, the
outbox event, advisory locks, the total count of a search, response models. The tenant
comes from ``X-Tenant-Id``; the pool connects with the URL's own role.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from bench import common
from patron.kit.ids import new_id

POOL_MIN, POOL_MAX = 10, 20
# Patron's statements, captured from its repository code (bench/common.py).
GET = common.patron_statements()["get"]
SEARCH = common.patron_statements()["search"]
SEARCH_COMMON = common.patron_statements()["search_common"]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):  # asyncpg's UUID subclass is not orjson's
        return str(value)
    raise TypeError


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data, default=_default), status_code=status_code, media_type="application/json"
    )


class UpsertBody(BaseModel):
    """What a messaging webhook knows about a customer."""

    psid: str = Field(min_length=1, max_length=128)
    app_id: str = Field(default="", max_length=128)
    platform: str | None = Field(default=None, max_length=16)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns decoded to objects, as an application (and SQLAlchemy) does.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the pool on start-up and close it on shutdown."""
    app.state.pool = await asyncpg.create_pool(
        common.dsn(common.database_url()),
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        server_settings={"application_name": "bench_raw", "jit": "off"},
        init=_init_connection,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
Tenant = Annotated[str, Header(alias="X-Tenant-Id", min_length=1, max_length=64)]


@app.get("/health")
async def health() -> Response:
    """Liveness."""
    return _json({"status": "ok"})


@app.get("/customers/{customer_id}")
async def get_customer(customer_id: uuid.UUID, tenant: Tenant, request: Request) -> Response:
    """One customer by id."""
    row = await request.app.state.pool.fetchrow(GET.sql, *GET.args(tenant=tenant, id=customer_id))
    if row is None:
        raise HTTPException(404, "customer not found")
    return _json(dict(row))


@app.post("/customers/upsert")
async def upsert_customer(body: UpsertBody, tenant: Tenant, request: Request) -> Response:
    """Create or update the customer holding a PSID; 201 when created."""
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(common.UPSERT_LOOKUP_SQL, tenant, body.app_id, body.psid)
        if current is not None and (
            current["first_name"],
            current["last_name"],
            current["platform"],
        ) == (
            body.first_name,
            body.last_name,
            body.platform,
        ):
            return _json({"created": False, "customer": dict(current)})
        customer_id = current["id"] if current is not None else new_id()
        values = (body.first_name, body.last_name, body.platform, body.app_id, body.psid)
        row = await conn.fetchrow(common.UPSERT_WRITE_SQL, customer_id, tenant, *values)
        if current is None:
            await conn.execute(
                common.UPSERT_IDENTITY_SQL, new_id(), tenant, customer_id, body.app_id, body.psid
            )
    created = current is None
    return _json({"created": created, "customer": dict(row)}, 201 if created else 200)


@app.get("/customers")
async def search_customers(
    tenant: Tenant, request: Request, q: Annotated[str, Query(min_length=1, max_length=200)]
) -> Response:
    """A page of 20 customers matching ``q``, newest first: Patron's two statements (the
    matches gathered first; for a term matching SEARCH_COLLECT or more, the page through
    the date index), without the total of a common term."""
    pool = request.app.state.pool
    args = {"tenant": tenant, "q": q.strip()}
    rows = await pool.fetch(SEARCH.sql, *SEARCH.args(**args))
    if rows and rows[0]["matched"] >= common.SEARCH_COLLECT:
        rows = await pool.fetch(SEARCH_COMMON.sql, *SEARCH_COMMON.args(**args))
    return _json({"customers": [dict(r) for r in rows[:20]], "has_more": len(rows) > 20})


def main() -> None:
    """Serve the app with uvicorn (one worker, like Patron's server here)."""
    parser = argparse.ArgumentParser(description="raw asyncpg baseline server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8172)
    args = parser.parse_args()
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
