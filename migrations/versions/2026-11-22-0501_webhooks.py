"""outgoing webhook endpoints and deliveries

- ``webhook_endpoints`` (tenant table): receivers, their event-type filter, the signing
  secret encrypted at rest, enabled / disabled state and the current failure streak.
- ``webhook_deliveries`` (tenant table): one row per (endpoint, event) with attempts.
- ``webhook_cursors``: the fan-out's position in the outbox feed (one row, ``fanout``).

Both tenant tables get the ``tenant_isolation`` policy (FORCE RLS) like every tenant
table, and a ``system_access`` policy for ``patron_system``, the role of the webhook
dispatcher, which works across tenants (migration 0004). ``patron_system`` may also insert
outbox rows: the dispatcher records ``webhook_endpoint.disabled``.
See docs/decisions/0008-webhook-deliveries.md.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "patron_app"
SYSTEM_ROLE = "patron_system"
NEW_TENANT_TABLES = ("webhook_endpoints", "webhook_deliveries")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE webhook_cursors ("
        " name VARCHAR(64) NOT NULL,"
        " xid xid8,"
        " seq BIGINT,"
        " updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,"
        " CONSTRAINT pk_webhook_cursors PRIMARY KEY (name))"
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "event_types",
            postgresql.ARRAY(sa.String(length=100)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'enabled'"), nullable=False
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column(
            "consecutive_failures", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_tenant_id_created_at",
        "webhook_endpoints",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_created",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "created_at"],
        unique=False,
    )
    # Start the fan-out at the end of today's outbox: no endpoint exists yet to want older
    # events, and a long outbox is then not read through once for nothing.
    op.execute(
        "INSERT INTO webhook_cursors (name, xid, seq) "
        "SELECT 'fanout', last.xid, last.seq FROM (SELECT NULL) AS empty "
        "LEFT JOIN LATERAL (SELECT xid, seq FROM outbox_events "
        "ORDER BY xid DESC, seq DESC LIMIT 1) AS last ON true"
    )

    for table in NEW_TENANT_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        )
        op.execute(
            f"CREATE POLICY system_access ON {table} TO {SYSTEM_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
    # the cursor is the dispatcher's alone
    op.execute(f"REVOKE ALL ON webhook_cursors FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE ON webhook_cursors TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE ON webhook_endpoints TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO {SYSTEM_ROLE}")
    # webhook_endpoint.disabled is recorded by the dispatcher
    op.execute(f"GRANT INSERT ON outbox_events TO {SYSTEM_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE INSERT ON outbox_events FROM {SYSTEM_ROLE}")
    for table in NEW_TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS system_access ON {table}")
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    for table in (*NEW_TENANT_TABLES, "webhook_cursors"):
        op.execute(f"REVOKE ALL ON {table} FROM {SYSTEM_ROLE}")
    op.drop_index("ix_webhook_deliveries_endpoint_created", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_tenant_id_created_at", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_table("webhook_cursors")
