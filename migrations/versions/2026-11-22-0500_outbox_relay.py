"""outbox relay: commit-order position and the system role for cross-tenant workers.

- ``outbox_events.xid``: the id of the transaction that wrote the event
  (``pg_current_xact_id()``). Readers order the outbox by ``(xid, seq)`` and only read up
  to the oldest transaction still running (``pg_snapshot_xmin``), so an event committed
  late by a long transaction is never skipped by a reader that has moved past it
  (docs/decisions/0007-outbox-order.md).
- relay state: ``published_to`` (the transports that confirmed the event), ``next_attempt_at``
  and ``last_error`` (backoff after a broker rejection), ``dead_at`` (dead letter after
  ``RELAY_MAX_ATTEMPTS`` rejections); the pending index leaves published and dead events out.
- ``patron_outbox_backlog()``: pending count, oldest pending time and dead-letter count over
  every tenant, for ``/metrics`` and ``/ready`` in the API process (which runs as
  ``patron_app`` and cannot read other tenants' rows). It returns aggregates only.
- ``patron_system``: the role background services (relay, webhook dispatcher) run as. Like
  ``patron_app`` it has no BYPASSRLS; a policy on each table it needs lets it see every
  tenant's rows of *that table only*. Tenant requests never run as it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:00:00
"""

from collections.abc import Sequence

from alembic import op

SYSTEM_ROLE = "patron_system"
APP_ROLE = "patron_app"
PENDING = "published_at IS NULL AND dead_at IS NULL"

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE outbox_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.execute("CREATE INDEX ix_outbox_events_xid_seq ON outbox_events (xid, seq)")
    op.execute(
        "CREATE INDEX ix_outbox_events_tenant_id_xid_seq ON outbox_events (tenant_id, xid, seq)"
    )
    # Roles are cluster-wide: migrations of several databases may race to create it.
    op.execute(
        f"""
        DO $$
        BEGIN
            BEGIN
                CREATE ROLE {SYSTEM_ROLE} NOLOGIN NOBYPASSRLS;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
            IF NOT pg_has_role(current_user, '{SYSTEM_ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {SYSTEM_ROLE} TO %I', current_user);
            END IF;
        END
        $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE ON outbox_events TO {SYSTEM_ROLE}")
    op.execute(
        f"CREATE POLICY system_access ON outbox_events TO {SYSTEM_ROLE} USING (true) WITH CHECK (true)"
    )
    op.execute(
        "ALTER TABLE outbox_events "
        "ADD COLUMN published_to text[] NOT NULL DEFAULT '{}'::text[], "
        "ADD COLUMN next_attempt_at timestamptz, "
        "ADD COLUMN last_error text, "
        "ADD COLUMN dead_at timestamptz, "
        "ALTER COLUMN attempts SET DEFAULT 0"
    )
    op.execute("DROP INDEX IF EXISTS ix_outbox_events_pending")
    op.execute(f"CREATE INDEX ix_outbox_events_pending ON outbox_events (seq) WHERE {PENDING}")
    op.execute(
        "CREATE INDEX ix_outbox_events_tenant_id_dead_at ON outbox_events (tenant_id, dead_at) "
        "WHERE dead_at IS NOT NULL"
    )
    # Aggregates over every tenant for the API process's /metrics and /ready. SECURITY
    # DEFINER runs it as the migration's (table-owning) role; it reveals counts only.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION patron_outbox_backlog()
        RETURNS TABLE (pending bigint, oldest_pending_at timestamptz, dead bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
            SELECT
                (SELECT count(*) FROM public.outbox_events WHERE {PENDING}),
                (SELECT created_at FROM public.outbox_events WHERE {PENDING}
                 ORDER BY seq LIMIT 1),
                (SELECT count(*) FROM public.outbox_events WHERE dead_at IS NOT NULL)
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION patron_outbox_backlog() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION patron_outbox_backlog() TO {APP_ROLE}, {SYSTEM_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS patron_outbox_backlog()")
    op.execute("DROP INDEX IF EXISTS ix_outbox_events_tenant_id_dead_at")
    op.execute("DROP INDEX IF EXISTS ix_outbox_events_pending")
    op.execute(
        "CREATE INDEX ix_outbox_events_pending ON outbox_events (seq) WHERE published_at IS NULL"
    )
    op.execute(
        "ALTER TABLE outbox_events DROP COLUMN dead_at, DROP COLUMN last_error, "
        "DROP COLUMN next_attempt_at, DROP COLUMN published_to, "
        "ALTER COLUMN attempts DROP DEFAULT"
    )
    op.execute("DROP POLICY IF EXISTS system_access ON outbox_events")
    op.execute(f"REVOKE ALL ON outbox_events FROM {SYSTEM_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {SYSTEM_ROLE}")
    op.execute("DROP INDEX IF EXISTS ix_outbox_events_tenant_id_xid_seq")
    op.execute("DROP INDEX IF EXISTS ix_outbox_events_xid_seq")
    op.execute("ALTER TABLE outbox_events DROP COLUMN xid")
