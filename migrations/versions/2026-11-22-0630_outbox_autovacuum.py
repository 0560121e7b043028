"""outbox autovacuum: vacuum the outbox as a queue table, not as a history table.

Every event is inserted, updated once or twice (published, per transport) and, in time,
pruned: dead row versions pile up far faster than PostgreSQL's default thresholds (20%
of the table) let autovacuum notice, and the relay's claim and mark statements slow down
with them. Measured with bench/relay.py: after a few runs left 282,000 dead tuples in
a table of 560 live rows (323 MB), the relay fell from 101% to 35% of the publisher's
rate. Vacuum at 1% (or 1,000 rows) changed, without cost-based throttling.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 06:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE outbox_events SET ("
        "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, "
        "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE outbox_events RESET ("
        "autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
        "autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay)"
    )
