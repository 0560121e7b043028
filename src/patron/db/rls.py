"""Row-level security, the second tenant wall (STYLE.md "Tenancy", decision 0001).

Two halves, both kept here so the setting's name is written once:

- **At run time** every unit of work opens its transaction with
  :func:`tenant_transaction`: ``BEGIN`` and ``set_config('app.tenant_id', <tenant>, true)``
  sent as one simple query, so the setting is transaction-local. ``COMMIT`` or
  ``ROLLBACK`` ends it, and a connection goes back to the pool holding no tenant: code
  that takes a connection straight from the engine (readiness, metrics) sees none, and
  the policies show it no tenant rows. It costs no round trip over a plain ``BEGIN``.
- **In migrations** :func:`enable_tenant_rls` gives a new tenant table the policy every
  tenant table has (enabled and forced row-level security, ``tenant_isolation``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncpg
from alembic import op

from patron.tenancy import TENANT_ID_RE

# The custom setting the policies read (current_setting('app.tenant_id', true)).
TENANT_SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
# The role the application runs as (created by the initial migration; DATABASE_APP_ROLE).
APP_ROLE = "patron_app"


def begin_for(tenant: str, *, read_only: bool = False) -> str:
    """SQL text: ``BEGIN`` and the transaction-local tenant setting, one simple query.

    ``tenant`` is a tenant id (1..64 characters of ``[A-Za-z0-9._:-]``, ARCHITECTURE.md
    §4) or ``""`` for none; it is written into the text as a literal, which that alphabet
    makes safe (no quote, no backslash) and which lets the two statements travel in one
    message (the simple query protocol takes no parameters). Raises ``ValueError`` for
    anything else. ``read_only`` opens a ``READ ONLY`` transaction (PostgreSQL then refuses
    writes and row locks).
    """
    if tenant and not TENANT_ID_RE.match(tenant):
        raise ValueError(f"not a tenant id: {tenant!r}")
    mode = " READ ONLY" if read_only else ""
    return f"BEGIN{mode}; SELECT set_config('{TENANT_SETTING}', '{tenant}', true)"


@asynccontextmanager
async def tenant_transaction(
    connection: asyncpg.Connection, tenant: str, *, read_only: bool = False
) -> AsyncIterator[None]:
    """One transaction on ``connection`` in which row-level security sees ``tenant``
    (``""``: no tenant, every tenant table reads empty); see :func:`begin_for`.

    Commits when the block exits normally, rolls back when it raises. Raises
    ``RuntimeError`` when the ``COMMIT`` is answered ``ROLLBACK`` (a statement failed
    inside and its error was swallowed): nothing was written. If the ``ROLLBACK`` itself
    fails (a broken connection, a cancelled statement still running), the block's own
    error propagates and the connection is left in its transaction: the caller must then
    invalidate it rather than pool it (``connection.is_in_transaction()``).
    """
    await connection.execute(begin_for(tenant, read_only=read_only))
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the block's error is the one to report
            await connection.execute("ROLLBACK")
        raise
    status = await connection.execute("COMMIT")
    if status != "COMMIT":
        raise RuntimeError(f"the transaction was aborted and rolled back ({status})")


def _plain(table: str) -> str:
    if not table.isidentifier() or table != table.lower():
        raise ValueError(f"not a plain table name: {table!r}")
    return table


def tenant_rls_statements(table: str) -> list[str]:
    """The DDL that puts ``table`` (a tenant table, with a ``tenant_id`` text column)
    behind row-level security, as the existing migrations do for theirs: the app role's
    grants, row-level security enabled and forced (so the table's owner is subject to it
    too), and the ``tenant_isolation`` policy for reads and writes. ``table`` is a plain
    identifier (``[a-z_][a-z0-9_]*``, STYLE.md names); ``ValueError`` otherwise."""
    table = _plain(table)
    condition = f"tenant_id = current_setting('{TENANT_SETTING}', true)"
    return [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}",
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {table} USING ({condition}) WITH CHECK ({condition})",
    ]


def enable_tenant_rls(table: str) -> None:
    """In an Alembic migration's ``upgrade()``, after ``op.create_table``: put the new
    tenant table ``table`` behind row-level security (:func:`tenant_rls_statements`).
    Needs Alembic's migration context (``op``)."""
    for statement in tenant_rls_statements(table):
        op.execute(statement)


def disable_tenant_rls(table: str) -> None:
    """The ``downgrade()`` counterpart of :func:`enable_tenant_rls` (before the table is
    dropped, or to keep it without the policy)."""
    table = _plain(table)
    op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
