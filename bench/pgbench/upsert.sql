-- POST /customers/upsert: the raw endpoint's statements (bench/common.py UPSERT_*), with the
-- same mix as bench/wrk/upsert.lua: a third new customers, a third renamed, a third unchanged.
-- The payload is drawn from bench_upsert_keys first (one extra primary-key SELECT, counted).
-- The lookup is wrapped to \gset whether a write is needed; it reads and locks the same row.
\set pick random(1, 3)
\set n random(1, :nkeys)
\set k random(1000000000000000, 7999999999999999)
\set other random(1, :nkeys)
\set row CASE WHEN :pick = 3 THEN :n + :nkeys ELSE :n END
SELECT k.app_id, CASE WHEN CAST(:pick AS int) = 1 THEN '8' || CAST(:k AS text) ELSE k.psid END AS psid, k.platform,
       CASE WHEN CAST(:pick AS int) = 3 THEN k.first_name ELSE o.first_name END AS first_name,
       CASE WHEN CAST(:pick AS int) = 2 THEN o.last_name ELSE k.last_name END AS last_name
FROM bench_upsert_keys k, bench_upsert_keys o
WHERE k.n = :row AND o.n = :other \gset
BEGIN;
WITH hit AS (
  SELECT customers.email, customers.phone, customers.first_name, customers.last_name, customers.gender, customers.birth_date, customers.locale, customers.timezone, customers.avatar_url, customers.profile_pic_url, customers.status, customers.customer_type, customers.platform, customers.app_id, customers.psid, customers.igsid, customers.user_id, customers.external_ids, customers.marketing_opt_in, customers.tags, customers.attributes, customers.preferences, customers.last_interaction_at, customers.blocked_at, customers.block_reason, customers.profile_fetched_at, customers.version, customers.deleted_at, customers.merged_into_id, customers.id, customers.tenant_id, customers.created_at, customers.updated_at, customers.access_token_encrypted IS NOT NULL AS has_access_token, customer_stats.currency AS stats_currency, customer_stats.total_orders AS stats_total_orders, customer_stats.total_spent AS stats_total_spent, customer_stats.lifetime_value AS stats_lifetime_value, customer_stats.first_order_date AS stats_first_order_date, customer_stats.last_order_date AS stats_last_order_date, customer_stats.total_appointments AS stats_total_appointments, customer_stats.last_appointment_date AS stats_last_appointment_date
  FROM customer_identities
  JOIN customers ON customers.id = customer_identities.customer_id
  LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id
  WHERE customer_identities.tenant_id = :tenant AND customer_identities.kind = 'psid'
    AND customer_identities.namespace = :app_id AND customer_identities.value = :psid
    AND customer_identities.released_at IS NULL AND customers.deleted_at IS NULL
  FOR UPDATE OF customers)
SELECT count(*) AS found, coalesce(max(id::text), bench_uuid7()::text) AS cid,
       CASE WHEN count(*) = 0 OR bool_or((first_name, last_name, platform)
            IS DISTINCT FROM (:first_name, :last_name, :platform)) THEN 1 ELSE 0 END AS write
FROM hit \gset
\if :write
INSERT INTO customers (id, tenant_id, first_name, last_name, platform, app_id, psid,
  status, customer_type, marketing_opt_in, external_ids, tags, attributes, preferences, version)
VALUES (CAST(:cid AS uuid), :tenant, :first_name, :last_name, :platform, :app_id, :psid,
  'ACTIVE', 'RETAIL', false, '{}', '{}', '{}', '{}', 1)
ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name,
  last_name = EXCLUDED.last_name, platform = EXCLUDED.platform,
  version = customers.version + 1, updated_at = now()
RETURNING customers.email, customers.phone, customers.first_name, customers.last_name, customers.gender, customers.birth_date, customers.locale, customers.timezone, customers.avatar_url, customers.profile_pic_url, customers.status, customers.customer_type, customers.platform, customers.app_id, customers.psid, customers.igsid, customers.user_id, customers.external_ids, customers.marketing_opt_in, customers.tags, customers.attributes, customers.preferences, customers.last_interaction_at, customers.blocked_at, customers.block_reason, customers.profile_fetched_at, customers.version, customers.deleted_at, customers.merged_into_id, customers.id, customers.tenant_id, customers.created_at, customers.updated_at, customers.access_token_encrypted IS NOT NULL AS has_access_token;
\endif
\if :found = 0
INSERT INTO customer_identities (id, tenant_id, customer_id, kind, namespace, value)
VALUES (bench_uuid7(), :tenant, CAST(:cid AS uuid), 'psid', :app_id, :psid);
\endif
COMMIT;
