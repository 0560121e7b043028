"""retention: patron_system may prune what has done its work

``patron events prune`` (``patron.events.retention``) runs as ``patron_system``, the
cross-tenant role of the background services (migration 0004), and deletes published
outbox events, finished webhook deliveries and old inbox message ids. It gets DELETE on
those three tables, and on ``inbox_messages`` (until now read and written only per
tenant, by the consumer) SELECT and a ``system_access`` policy like the other tables it
works on.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 04:45:00
"""

from collections.abc import Sequence

from alembic import op

SYSTEM_ROLE = "patron_system"

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(f"GRANT DELETE ON outbox_events, webhook_deliveries TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON inbox_messages TO {SYSTEM_ROLE}")
    op.execute(
        f"CREATE POLICY system_access ON inbox_messages TO {SYSTEM_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS system_access ON inbox_messages")
    op.execute(f"REVOKE SELECT, DELETE ON inbox_messages FROM {SYSTEM_ROLE}")
    op.execute(f"REVOKE DELETE ON outbox_events, webhook_deliveries FROM {SYSTEM_ROLE}")
