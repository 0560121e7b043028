"""All ORM models, re-exported so that importing this package registers every table."""

from patron.models.api_key import ApiKey
from patron.models.customer import Customer
from patron.models.customer_address import CustomerAddress
from patron.models.customer_communication import CustomerCommunication
from patron.models.customer_consent import CustomerConsent
from patron.models.customer_document import CustomerDocument
from patron.models.customer_identity import CustomerIdentity
from patron.models.customer_merge import CustomerMerge
from patron.models.customer_note import CustomerNote
from patron.models.customer_stats import CustomerStats
from patron.models.idempotency_key import IdempotencyKey
from patron.models.outbox_event import OutboxEvent
from patron.models.payment_method import PaymentMethod
from patron.models.tag import CustomerTag, Tag

__all__ = [
    "ApiKey",
    "Customer",
    "CustomerAddress",
    "CustomerCommunication",
    "CustomerConsent",
    "CustomerDocument",
    "CustomerIdentity",
    "CustomerMerge",
    "CustomerNote",
    "CustomerStats",
    "CustomerTag",
    "IdempotencyKey",
    "OutboxEvent",
    "PaymentMethod",
    "Tag",
]

# Tables protected by row-level security on tenant_id (migrations create the policies).
TENANT_TABLES = (
    "customers",
    "customer_identities",
    "customer_merges",
    "customer_stats",
    "idempotency_keys",
    "outbox_events",
    "customer_addresses",
    "tags",
    "customer_tags",
    "customer_notes",
    "customer_documents",
    "payment_methods",
    "customer_communications",
    "customer_consents",
)
