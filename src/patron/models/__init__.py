"""All ORM models, re-exported so that importing this package registers every table."""

from patron.models.api_key import ApiKey
from patron.models.appointment import CustomerAppointment
from patron.models.channel import Channel
from patron.models.customer import Customer
from patron.models.customer_address import CustomerAddress
from patron.models.customer_communication import CustomerCommunication
from patron.models.customer_consent import CustomerConsent
from patron.models.customer_document import CustomerDocument
from patron.models.customer_identity import CustomerIdentity
from patron.models.customer_merge import CustomerMerge
from patron.models.customer_note import CustomerNote
from patron.models.customer_stats import CustomerCurrencyStats, CustomerStats
from patron.models.idempotency_key import IdempotencyKey
from patron.models.inbox_message import InboxMessage
from patron.models.job import Job
from patron.models.order import CustomerOrder
from patron.models.outbox_event import OutboxEvent
from patron.models.payment_method import PaymentMethod
from patron.models.tag import CustomerTag, Tag
from patron.models.webhook_cursor import WebhookCursor
from patron.models.webhook_delivery import WebhookDelivery
from patron.models.webhook_endpoint import WebhookEndpoint

__all__ = [
    "ApiKey",
    "Channel",
    "Customer",
    "CustomerAddress",
    "CustomerAppointment",
    "CustomerCommunication",
    "CustomerConsent",
    "CustomerCurrencyStats",
    "CustomerDocument",
    "CustomerIdentity",
    "CustomerMerge",
    "CustomerNote",
    "CustomerOrder",
    "CustomerStats",
    "CustomerTag",
    "IdempotencyKey",
    "InboxMessage",
    "Job",
    "OutboxEvent",
    "PaymentMethod",
    "Tag",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
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
    "customer_orders",
    "customer_appointments",
    "customer_currency_stats",
    "inbox_messages",
    "webhook_endpoints",
    "webhook_deliveries",
    "jobs",
    "channels",
)
