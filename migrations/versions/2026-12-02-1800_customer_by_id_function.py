"""customer_by_id(): GET by id in one round trip, the tenant set inside the statement

A view ``customer_reads`` (the response columns of a customer: every column but the
access token's ciphertext and the search document, whether a token exists, the stats)
and a function ``customer_by_id(tenant, id)`` that sets ``app.tenant_id`` for the
current transaction, returns the live customer through the view and puts the previous
setting back. Called alone (autocommit) the statement is its own transaction, so the
tenant ends with it: a pooled connection never carries one (decision 0016).

Row-level security still applies: the view is ``security_invoker`` (PostgreSQL 15+) and
the function ``SECURITY INVOKER``, so both read as ``patron_app`` under the
``tenant_isolation`` policies, which see the setting the function made (plpgsql runs its
statements one after the other; the policy's ``current_setting`` is read when the query
runs). Without a tenant (``''``) nothing is returned; NULL arguments return nothing
(``STRICT``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns of patron.customers.repository.READ_COLUMNS, in that order
# (tests/customers/test_customer_by_id.py compares them).
VIEW = """
CREATE VIEW customer_reads WITH (security_invoker = true) AS
SELECT c.email, c.phone, c.first_name, c.last_name, c.gender, c.birth_date, c.locale,
       c.timezone, c.avatar_url, c.avatar_storage_key, c.profile_pic_url, c.status,
       c.customer_type, c.platform, c.app_id, c.psid, c.igsid, c.user_id, c.external_ids,
       c.marketing_opt_in, c.tags, c.attributes, c.preferences, c.last_interaction_at,
       c.blocked_at, c.block_reason, c.profile_fetched_at, c.version, c.deleted_at,
       c.merged_into_id, c.id, c.tenant_id, c.created_at, c.updated_at,
       c.access_token_encrypted IS NOT NULL AS has_access_token,
       s.currency AS stats_currency,
       s.total_orders AS stats_total_orders,
       s.total_spent AS stats_total_spent,
       s.lifetime_value AS stats_lifetime_value,
       s.first_order_date AS stats_first_order_date,
       s.last_order_date AS stats_last_order_date,
       s.total_appointments AS stats_total_appointments,
       s.last_appointment_date AS stats_last_appointment_date
FROM customers c LEFT OUTER JOIN customer_stats s ON s.customer_id = c.id
"""

FUNCTION = """
CREATE FUNCTION customer_by_id(p_tenant text, p_id uuid)
RETURNS SETOF customer_reads
LANGUAGE plpgsql STRICT VOLATILE SECURITY INVOKER
AS $$
DECLARE
    previous text := coalesce(current_setting('app.tenant_id', true), '');
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant, true);
    RETURN QUERY
        SELECT * FROM customer_reads r
        WHERE r.tenant_id = p_tenant AND r.deleted_at IS NULL AND r.id = p_id;
    PERFORM set_config('app.tenant_id', previous, true);
END
$$
"""


def upgrade() -> None:
    op.execute(VIEW)
    op.execute("GRANT SELECT ON customer_reads TO patron_app")
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION customer_by_id(text, uuid)")
    op.execute("DROP VIEW customer_reads")
