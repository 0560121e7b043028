"""webhook secret rotation: a previous secret that signs until it expires

``webhook_endpoints`` gets ``previous_secret_encrypted`` (encrypted like
``secret_encrypted``) and ``previous_secret_expires_at``: after
``POST /api/v1/webhook-endpoints/{id}/rotate-secret`` the replaced secret keeps signing
deliveries until then (docs/webhooks.md "Rotating the secret"). Both are set or both
null. The table's grants and policies cover new columns (table-level grants).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "ck_webhook_endpoints_previous_secret_pair"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints", sa.Column("previous_secret_encrypted", sa.LargeBinary(), nullable=True)
    )
    op.add_column(
        "webhook_endpoints",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_check_constraint(
        op.f(CHECK),
        "webhook_endpoints",
        "(previous_secret_encrypted IS NULL) = (previous_secret_expires_at IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f(CHECK), "webhook_endpoints", type_="check")
    op.drop_column("webhook_endpoints", "previous_secret_expires_at")
    op.drop_column("webhook_endpoints", "previous_secret_encrypted")
