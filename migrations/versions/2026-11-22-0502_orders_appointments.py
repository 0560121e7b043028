"""orders, appointments, stats columns and the consumer inbox

- ``customer_orders`` / ``customer_appointments``: history recorded by the orders and
  scheduling services (API or events), unique per tenant by their external id.
- ``customer_currency_stats``: a customer's order aggregates in currencies other than the
  tenant's (``customer_stats`` keeps the tenant's currency only).
- ``inbox_messages``: ids of consumed broker messages, for idempotent consumption.

Row-level security (tenant_isolation, FORCE) on every new table, as in 0001/0002.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

APP_ROLE = "patron_app"
NEW_TENANT_TABLES = (
    "customer_orders",
    "customer_appointments",
    "customer_currency_stats",
    "inbox_messages",
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "customer_orders",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("total", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_orders_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_orders")),
    )
    op.create_index(
        "uq_customer_orders_order_id", "customer_orders", ["tenant_id", "order_id"], unique=True
    )
    op.create_index(
        "ix_customer_orders_customer",
        "customer_orders",
        ["tenant_id", "customer_id", "placed_at"],
        unique=False,
    )
    op.create_index(
        "ix_customer_orders_customer_id", "customer_orders", ["customer_id"], unique=False
    )

    op.create_table(
        "customer_appointments",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_appointments_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_appointments")),
    )
    op.create_index(
        "uq_customer_appointments_appointment_id",
        "customer_appointments",
        ["tenant_id", "appointment_id"],
        unique=True,
    )
    op.create_index(
        "ix_customer_appointments_customer",
        "customer_appointments",
        ["tenant_id", "customer_id", "starts_at"],
        unique=False,
    )
    op.create_index(
        "ix_customer_appointments_customer_id",
        "customer_appointments",
        ["customer_id"],
        unique=False,
    )

    op.create_table(
        "customer_currency_stats",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_orders", sa.Integer(), nullable=False),
        sa.Column("total_spent", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("lifetime_value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("first_order_date", sa.Date(), nullable=True),
        sa.Column("last_order_date", sa.Date(), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_currency_stats_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "currency", name=op.f("pk_customer_currency_stats")),
    )

    op.create_table(
        "inbox_messages",
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("message_type", sa.String(length=100), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
    )
    op.create_index(
        "uq_inbox_messages_message_id", "inbox_messages", ["tenant_id", "message_id"], unique=True
    )
    op.create_index(
        "ix_inbox_messages_received_at", "inbox_messages", ["received_at"], unique=False
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


def downgrade() -> None:
    for table in NEW_TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_index("ix_inbox_messages_received_at", table_name="inbox_messages")
    op.drop_index("uq_inbox_messages_message_id", table_name="inbox_messages")
    op.drop_table("inbox_messages")
    op.drop_table("customer_currency_stats")
    op.drop_index("ix_customer_appointments_customer_id", table_name="customer_appointments")
    op.drop_index("ix_customer_appointments_customer", table_name="customer_appointments")
    op.drop_index("uq_customer_appointments_appointment_id", table_name="customer_appointments")
    op.drop_table("customer_appointments")
    op.drop_index("ix_customer_orders_customer_id", table_name="customer_orders")
    op.drop_index("ix_customer_orders_customer", table_name="customer_orders")
    op.drop_index("uq_customer_orders_order_id", table_name="customer_orders")
    op.drop_table("customer_orders")
