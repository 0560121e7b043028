-- Written by bench/run.py from Patron's own code (bench/common.py); do not edit.
-- GET /customers?q= as Patron runs it: a common term's total too
\set n random(1, :nterms)
SELECT q FROM bench_search_terms WHERE n = :n \gset
SELECT coalesce(max(matched), 0) AS matched FROM (
WITH matches AS MATERIALIZED
(SELECT customers.id AS id, customers.created_at AS sort_key
FROM customers LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id
WHERE customers.tenant_id = :tenant AND customers.deleted_at IS NULL AND customers.search_document LIKE ('%' || replace(replace(replace(patron_unaccent(lower(:q)), '\', '\\'), '%', '\%'), '_', '\_') || '%') ESCAPE '\'
LIMIT 2000)
SELECT customers.email, customers.phone, customers.first_name, customers.last_name, customers.gender, customers.birth_date, customers.locale, customers.timezone, customers.avatar_url, customers.avatar_storage_key, customers.profile_pic_url, customers.status, customers.customer_type, customers.platform, customers.app_id, customers.psid, customers.igsid, customers.user_id, customers.external_ids, customers.marketing_opt_in, customers.tags, customers.attributes, customers.preferences, customers.last_interaction_at, customers.blocked_at, customers.block_reason, customers.profile_fetched_at, customers.version, customers.deleted_at, customers.merged_into_id, customers.id, customers.tenant_id, customers.created_at, customers.updated_at, customers.access_token_encrypted IS NOT NULL AS has_access_token, customer_stats.currency AS stats_currency, customer_stats.total_orders AS stats_total_orders, customer_stats.total_spent AS stats_total_spent, customer_stats.lifetime_value AS stats_lifetime_value, customer_stats.first_order_date AS stats_first_order_date, customer_stats.last_order_date AS stats_last_order_date, customer_stats.total_appointments AS stats_total_appointments, customer_stats.last_appointment_date AS stats_last_appointment_date, (SELECT count(*) AS count_1
FROM matches) AS matched
FROM customers LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id
WHERE customers.tenant_id = :tenant AND customers.deleted_at IS NULL AND customers.id IN (SELECT matches.id
FROM matches ORDER BY matches.sort_key DESC, matches.id DESC
LIMIT 21 OFFSET 0) ORDER BY customers.created_at DESC, customers.id DESC
) AS page \gset
\if :matched >= 2000
SELECT customers.email, customers.phone, customers.first_name, customers.last_name, customers.gender, customers.birth_date, customers.locale, customers.timezone, customers.avatar_url, customers.avatar_storage_key, customers.profile_pic_url, customers.status, customers.customer_type, customers.platform, customers.app_id, customers.psid, customers.igsid, customers.user_id, customers.external_ids, customers.marketing_opt_in, customers.tags, customers.attributes, customers.preferences, customers.last_interaction_at, customers.blocked_at, customers.block_reason, customers.profile_fetched_at, customers.version, customers.deleted_at, customers.merged_into_id, customers.id, customers.tenant_id, customers.created_at, customers.updated_at, customers.access_token_encrypted IS NOT NULL AS has_access_token, customer_stats.currency AS stats_currency, customer_stats.total_orders AS stats_total_orders, customer_stats.total_spent AS stats_total_spent, customer_stats.lifetime_value AS stats_lifetime_value, customer_stats.first_order_date AS stats_first_order_date, customer_stats.last_order_date AS stats_last_order_date, customer_stats.total_appointments AS stats_total_appointments, customer_stats.last_appointment_date AS stats_last_appointment_date
FROM customers LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id
WHERE customers.tenant_id = :tenant AND customers.deleted_at IS NULL AND customers.search_document LIKE ('%' || replace(replace(replace(patron_unaccent(lower(:q)), '\', '\\'), '%', '\%'), '_', '\_') || '%') ESCAPE '\' ORDER BY customers.created_at DESC, customers.id DESC
LIMIT 21 OFFSET 0;
SELECT count(*) AS count_1
FROM (SELECT 1
FROM customers LEFT OUTER JOIN customer_stats ON customer_stats.customer_id = customers.id
WHERE customers.tenant_id = :tenant AND customers.deleted_at IS NULL AND customers.search_document LIKE ('%' || replace(replace(replace(patron_unaccent(lower(:q)), '\', '\\'), '%', '\%'), '_', '\_') || '%') ESCAPE '\'
LIMIT 10000) AS anon_1;
\endif
