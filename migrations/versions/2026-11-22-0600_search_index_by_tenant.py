"""search index by tenant: one GIN index on (tenant_id, search_document trigrams).

Every search is within one tenant. With trigrams alone PostgreSQL intersected the trigram
bitmap with a bitmap of the whole tenant (20 ms at 100,000 customers per search, before
reading a row); ``btree_gin`` puts ``tenant_id`` in the same GIN index. Measured in
bench/ (in process, 2,000 searches): p50 20.1 -> 13.8 ms, p95 38.4 -> 21.4 ms.
``btree_gin`` is a trusted extension (PostgreSQL 13+): a database owner may create it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_customers_tenant_id_search_document_trgm ON customers "
        "USING gin (tenant_id, search_document gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    op.execute("DROP INDEX IF EXISTS ix_customers_search_document_trgm")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_customers_search_document_trgm ON customers "
        "USING gin (search_document gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    op.execute("DROP INDEX IF EXISTS ix_customers_tenant_id_search_document_trgm")
