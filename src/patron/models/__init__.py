"""All ORM models, re-exported so that importing this package registers every table."""

from patron.models.api_key import ApiKey
from patron.models.customer import Customer
from patron.models.customer_identity import CustomerIdentity
from patron.models.customer_merge import CustomerMerge
from patron.models.customer_stats import CustomerStats
from patron.models.idempotency_key import IdempotencyKey
from patron.models.outbox_event import OutboxEvent

__all__ = [
    "ApiKey",
    "Customer",
    "CustomerIdentity",
    "CustomerMerge",
    "CustomerStats",
    "IdempotencyKey",
    "OutboxEvent",
]

# Tables protected by row-level security on tenant_id (migrations create the policies).
TENANT_TABLES = (
    "customers",
    "customer_identities",
    "customer_merges",
    "customer_stats",
    "idempotency_keys",
    "outbox_events",
)
