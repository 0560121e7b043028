"""What the benchmark's parts share: the database, the tenants, the paths and the SQL.

The SQL here is the SQL Patron sends (compiled from ``patron.customers.repository`` and
``patron.customers.listing``), written out once so the raw-asyncpg app and the pgbench
scripts run exactly the same statements against the same rows and indexes.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patron_bench"

TENANT_COUNT = 10
TENANTS = tuple(f"bench-{i}" for i in range(TENANT_COUNT))
# Every HTTP and pgbench request acts for this tenant (a tenant-bound API key, as a
# seller's integration would hold); the other nine make the table 10x larger around it.
BENCH_TENANT = TENANTS[0]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = RESULTS_DIR / ".work"  # sample files for wrk (gitignored with results/)
WRK_DIR = BENCH_DIR / "wrk"
PGBENCH_DIR = BENCH_DIR / "pgbench"

SAMPLE_IDS = 10_000  # ids read by GET
SAMPLE_UPSERT_KEYS = 5_000  # per upsert subset ("change" and "same")
SAMPLE_SEARCH_TERMS = 2_000


def database_url() -> str:
    """``BENCH_DATABASE_URL`` or the default ``patron_bench`` on 127.0.0.1:5432."""
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def dsn(url: str) -> str:
    """The URL as a plain ``postgresql://`` DSN for asyncpg, psql and pgbench."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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
READ_FROM = (
    f"SELECT {CUSTOMER_COLUMNS}, {STATS_COLUMNS} "
    "FROM customers LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id "
)

# GET /customers/{id}: $1 tenant, $2 id.
GET_SQL = READ_FROM + "WHERE customers.tenant_id = $1 AND customers.deleted_at IS NULL AND customers.id = $2"

# GET /customers?q=: $1 tenant, $2 LIKE pattern (listing.like_pattern), $3 limit, $4 offset.
SEARCH_SQL = (
    READ_FROM
    + "WHERE customers.tenant_id = $1 AND customers.deleted_at IS NULL "
    "AND customers.search_document LIKE patron_unaccent($2) ESCAPE '\\' "
    "ORDER BY customers.created_at DESC, customers.id DESC LIMIT $3 OFFSET $4"
)
# The total Patron's list response also carries (not run by the raw endpoint).
SEARCH_COUNT_SQL = (
    "SELECT count(1) FROM customers "
    "LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id "
    "WHERE customers.tenant_id = $1 AND customers.deleted_at IS NULL "
    "AND customers.search_document LIKE patron_unaccent($2) ESCAPE '\\'"
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
    "status, customer_type, marketing_opt_in, external_ids, tags, attributes, preferences, version) "
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
