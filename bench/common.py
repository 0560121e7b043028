"""What the benchmark's parts share: the database, the tenants, the paths and the SQL.

The SQL here is the SQL Patron sends (compiled from ``patron.customers.repository`` and
``patron.customers.listing``), written out once so the raw-asyncpg app and the pgbench
scripts run exactly the same statements against the same rows and indexes.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from patron.config import Settings
from patron.customers import listing
from patron.customers.repository import CustomerRepository
from patron.db.fastpath import CompiledStatement
from patron.tenancy import TenantId

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patron_bench"

TENANT_COUNT = 10
TENANTS = tuple(f"bench-{i}" for i in range(TENANT_COUNT))
# Every HTTP and pgbench request acts for this tenant (a tenant-bound API key, as a
# seller's integration would hold); the other nine make the table 10x larger around it.
BENCH_TENANT = TENANTS[0]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WRK_DIR = BENCH_DIR / "wrk"
PGBENCH_DIR = BENCH_DIR / "pgbench"

SAMPLE_IDS = 10_000  # ids read by GET
SAMPLE_UPSERT_KEYS = 5_000  # per upsert subset ("change" and "same")
SAMPLE_SEARCH_TERMS = 2_000
SEARCH_PAGE_SIZE = 20
# Patron's default SEARCH_COLLECT: a search matching this many is paged the common way.
SEARCH_COLLECT = Settings.model_fields["search_collect"].default
# Patron's default SEARCH_COUNT_CAP: a common term's total is counted up to this many.
SEARCH_COUNT_CAP = Settings.model_fields["search_count_cap"].default


def database_url() -> str:
    """``BENCH_DATABASE_URL`` or the default ``patron_bench`` on 127.0.0.1:5432."""
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def _work_dir() -> Path:
    name = make_url(database_url()).database or "default"
    return RESULTS_DIR / ".work" / name


def dsn(url: str) -> str:
    """The URL as a plain ``postgresql://`` DSN for asyncpg, psql and pgbench."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


WORK_DIR = _work_dir()  # sample files for wrk, per database (gitignored with results/)


def server_dsn(url: str) -> str:
    """DSN of the maintenance database (``postgres``) on the same server."""
    return dsn(make_url(url).set(database="postgres").render_as_string(hide_password=False))


def database_name(url: str) -> str:
    """The database name in ``url``."""
    name = make_url(url).database
    if not name:
        raise ValueError("BENCH_DATABASE_URL must name a database")
    return name


# -- the statements ------------------------------------------------------------------------

# Columns of a customer row as Patron reads them (CustomerRepository READ_COLUMNS).
CUSTOMER_COLUMNS = (
    "customers.email, customers.phone, customers.first_name, customers.last_name, "
    "customers.gender, customers.birth_date, customers.locale, customers.timezone, "
    "customers.avatar_url, customers.profile_pic_url, customers.status, customers.customer_type, "
    "customers.platform, customers.app_id, customers.psid, customers.igsid, customers.user_id, "
    "customers.external_ids, customers.marketing_opt_in, customers.tags, customers.attributes, "
    "customers.preferences, customers.last_interaction_at, customers.blocked_at, "
    "customers.block_reason, customers.profile_fetched_at, customers.version, "
    "customers.deleted_at, customers.merged_into_id, customers.id, customers.tenant_id, "
    "customers.created_at, customers.updated_at, "
    "customers.access_token_encrypted IS NOT NULL AS has_access_token"
)
STATS_COLUMNS = (
    "customer_stats.currency AS stats_currency, "
    "customer_stats.total_orders AS stats_total_orders, "
    "customer_stats.total_spent AS stats_total_spent, "
    "customer_stats.lifetime_value AS stats_lifetime_value, "
    "customer_stats.first_order_date AS stats_first_order_date, "
    "customer_stats.last_order_date AS stats_last_order_date, "
    "customer_stats.total_appointments AS stats_total_appointments, "
    "customer_stats.last_appointment_date AS stats_last_appointment_date"
)

# Upsert by PSID: resolve the identity (locking its customer), then write the customer row.
# $1 tenant, $2 app_id (identity namespace), $3 psid.
UPSERT_LOOKUP_SQL = (
    f"SELECT {CUSTOMER_COLUMNS}, {STATS_COLUMNS} "
    "FROM customer_identities "
    "JOIN customers ON customers.id = customer_identities.customer_id "
    "LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id "
    "WHERE customer_identities.tenant_id = $1 AND customer_identities.kind = 'psid' "
    "AND customer_identities.namespace = $2 AND customer_identities.value = $3 "
    "AND customer_identities.released_at IS NULL AND customers.deleted_at IS NULL "
    "FOR UPDATE OF customers"
)
# $1 id, $2 tenant, $3 first_name, $4 last_name, $5 platform, $6 app_id, $7 psid.
UPSERT_WRITE_SQL = (
    "INSERT INTO customers (id, tenant_id, first_name, last_name, platform, app_id, psid, "
    "status, customer_type, marketing_opt_in, external_ids, tags, attributes, preferences, "
    "version) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, 'ACTIVE', 'RETAIL', false, '{}', '{}', '{}', '{}', 1) "
    "ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name, "
    "last_name = EXCLUDED.last_name, platform = EXCLUDED.platform, "
    "version = customers.version + 1, updated_at = now() "
    f"RETURNING {CUSTOMER_COLUMNS}"
)
# $1 id, $2 tenant, $3 customer id, $4 app_id, $5 psid.
UPSERT_IDENTITY_SQL = (
    "INSERT INTO customer_identities (id, tenant_id, customer_id, kind, namespace, value) "
    "VALUES ($1, $2, $3, 'psid', $4, $5)"
)


# -- Patron's own statements, captured from its code ------------------------------------------

_TENANT_MARK = "bench-tenant-mark"
_Q_MARK = "bench-q-mark"
_ID_MARK = uuid.UUID("00000000-0000-7000-8000-00000000beef")
_MARKS = {_TENANT_MARK: "tenant", _Q_MARK: "q", _ID_MARK: "id"}


@dataclass(frozen=True)
class Statement:
    """One statement as Patron sends it: asyncpg SQL, and its parameters in order.

    A parameter is either a constant Patron binds (a LIKE escape character, a limit) or
    one of the request's values, named ``tenant``, ``q`` or ``id``.
    """

    sql: str
    params: tuple[tuple[str | None, Any], ...]  # (request value name, or None and the constant)

    def args(self, **values: Any) -> list[Any]:
        """Positional arguments for asyncpg, with the request's ``values`` filled in."""
        return [values[name] if name else constant for name, constant in self.params]

    def pgbench(self, values: dict[str, str]) -> str:
        """The SQL for a pgbench script: request values replaced by the SQL text in
        ``values`` (a ``:variable`` or a subquery), constants inline, casts dropped."""

        def replace(match: re.Match[str]) -> str:
            name, constant = self.params[int(match.group(1)) - 1]
            if name:
                return values[name]
            if isinstance(constant, str):
                return "'" + constant.replace("'", "''") + "'"
            return str(constant)

        sql = re.sub(r"\$(\d+)(?:::[A-Z]+(?:\[\])?)?", replace, self.sql)
        return re.sub(r"\s*\n\s*", "\n", sql).strip()


class _Recorder:
    """Stands in for a session: records what Patron's repository code executes."""

    def __init__(self) -> None:
        self.statements: list[Any] = []

    async def execute(self, statement: Any, params: Any = None) -> Any:
        self.statements.append(statement)
        return self

    def first(self) -> None:
        return None

    def scalar_one(self) -> int:
        return 0


def _compile(statement: Any) -> Statement:
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    params = []
    for key in compiled.positiontup:
        value = compiled.params[key]
        name = _MARKS.get(value) if isinstance(value, str | uuid.UUID) else None
        params.append((name, None if name else value))
    return Statement(str(compiled), tuple(params))


def _prepared(statement: CompiledStatement, **constants: Any) -> Statement:
    """A statement Patron compiled once, its request values named, ``constants`` bound."""
    params = tuple(
        (name, None) if name in {"tenant", "q", "id"} else (None, constants[name])
        for name in statement.names
    )
    return Statement(statement.sql, params)


@functools.cache
def patron_statements() -> dict[str, Statement]:
    """Patron's SQL for GET by id and for a search, as it stands now.

    A search runs ``search`` (up to SEARCH_COLLECT matches gathered: the page and, in
    column ``matched``, how many); when that many matched, the term is common and it runs
    ``search_common`` (the page through the date index) and, unless the page is the last,
    ``search_count`` (the total, counted up to SEARCH_COUNT_CAP).

    The search statements are the ones Patron compiled for a plain search
    (``listing.search_statement``); GET and the count are captured by running Patron's
    own repository code against a recorder. Either way the raw endpoint and pgbench
    follow Patron when its queries change.
    """

    async def capture() -> dict[str, Any]:
        recorder = _Recorder()
        repo = CustomerRepository(recorder, TenantId(_TENANT_MARK))  # type: ignore[arg-type]
        await repo.get(_ID_MARK)
        filters = listing.build_filters(listing.CustomerQuery(q=_Q_MARK), "US")
        await repo.count(filters, cap=SEARCH_COUNT_CAP)
        get, count = recorder.statements
        return {"get": get, "search_count": count}

    # The recorder never suspends, so the coroutine runs to its end in one step (and this
    # works inside a running event loop too).
    coroutine = capture()
    try:
        coroutine.send(None)
    except StopIteration as finished:
        captured: dict[str, Any] = finished.value
    else:  # pragma: no cover - Patron's code awaited something real
        coroutine.close()
        raise RuntimeError("capturing Patron's statements suspended unexpectedly")
    statements = {name: _compile(stmt) for name, stmt in captured.items()}
    page = {"limit": SEARCH_PAGE_SIZE + 1, "offset": 0}
    newest_first = listing.SortBy.CREATED_AT
    search = listing.search_statement(newest_first, desc=True, common=False)
    common = listing.search_statement(newest_first, desc=True, common=True)
    statements["search"] = _prepared(search, collect=SEARCH_COLLECT, **page)
    statements["search_common"] = _prepared(common, **page)
    return statements
