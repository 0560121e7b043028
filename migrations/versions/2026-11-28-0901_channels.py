"""channels: a Meta app and page (or Instagram account) tied to a tenant

- ``channels`` (tenant table): platform, app id, page id (or Instagram business account
  id), name, the page access token and optional app secret encrypted at rest, status.
  ``(platform, page_id)`` is unique across all tenants: an incoming Meta webhook names
  only the page, and must find exactly one tenant.
- Row-level security like every tenant table (``enable_tenant_rls``), plus a
  ``system_lookup`` policy: ``patron_system`` (migration 0004) may SELECT every tenant's
  channels, and nothing else here (no INSERT, UPDATE or DELETE), so the Meta webhook
  receiver can find a page's tenant before it knows one
  (docs/decisions/0018-channel-lookup.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from patron.db.rls import disable_tenant_rls, enable_tenant_rls

SYSTEM_ROLE = "patron_system"
TABLE = "channels"

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("page_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("app_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column(
            "status", sa.String(length=32), server_default=sa.text("'active'"), nullable=False
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("platform", "page_id", name=op.f("uq_channels_platform_page_id")),
    )
    op.create_index("ix_channels_tenant_id_created_at", TABLE, ["tenant_id", "created_at"])
    op.create_index(
        "ix_channels_tenant_id_platform_app_id", TABLE, ["tenant_id", "platform", "app_id"]
    )
    enable_tenant_rls(TABLE)
    op.execute(f"GRANT SELECT ON {TABLE} TO {SYSTEM_ROLE}")
    op.execute(f"CREATE POLICY system_lookup ON {TABLE} FOR SELECT TO {SYSTEM_ROLE} USING (true)")


def downgrade() -> None:
    op.execute(f"DROP POLICY IF EXISTS system_lookup ON {TABLE}")
    op.execute(f"REVOKE ALL ON {TABLE} FROM {SYSTEM_ROLE}")
    disable_tenant_rls(TABLE)
    op.drop_index("ix_channels_tenant_id_platform_app_id", table_name=TABLE)
    op.drop_index("ix_channels_tenant_id_created_at", table_name=TABLE)
    op.drop_table(TABLE)
