"""background jobs: the ``jobs`` table of the job runner (patron.jobs)

``jobs`` is a tenant table: the ``tenant_isolation`` policy (FORCE RLS) hides every other
tenant's jobs from the application role, so a job row is never readable across tenants
through the API. ``patron_system`` (the job worker and ``patron jobs list``, which work
across tenants) gets a ``system_access`` policy and the grants it needs, like the webhook
tables (migration 0005). See docs/decisions/0017-background-jobs.md.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from patron.db.rls import disable_tenant_rls, enable_tenant_rls

SYSTEM_ROLE = "patron_system"

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status", sa.String(length=16), server_default=sa.text("'queued'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "scheduled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_id", sa.Uuid(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_tenant_id_created_at", "jobs", ["tenant_id", "created_at"])
    op.create_index(
        "ix_jobs_due", "jobs", ["scheduled_at"], postgresql_where=sa.text("status = 'queued'")
    )
    op.create_index(
        "ix_jobs_leased", "jobs", ["locked_until"], postgresql_where=sa.text("status = 'running'")
    )
    enable_tenant_rls("jobs")
    op.execute(
        f"CREATE POLICY system_access ON jobs TO {SYSTEM_ROLE} USING (true) WITH CHECK (true)"
    )
    op.execute(f"GRANT SELECT, UPDATE ON jobs TO {SYSTEM_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON jobs FROM {SYSTEM_ROLE}")
    op.execute("DROP POLICY IF EXISTS system_access ON jobs")
    disable_tenant_rls("jobs")
    op.drop_index(
        "ix_jobs_leased", table_name="jobs", postgresql_where=sa.text("status = 'running'")
    )
    op.drop_index("ix_jobs_due", table_name="jobs", postgresql_where=sa.text("status = 'queued'"))
    op.drop_index("ix_jobs_tenant_id_created_at", table_name="jobs")
    op.drop_table("jobs")
