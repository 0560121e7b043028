"""Event types (ARCHITECTURE.md §5) and the shape of their ``data``."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    CUSTOMER_ERASED = "customer.erased"
    CUSTOMER_BLOCKED = "customer.blocked"
    CUSTOMER_UNBLOCKED = "customer.unblocked"
    CUSTOMER_MERGED = "customer.merged"
    CUSTOMER_TAGGED = "customer.tagged"
    CUSTOMER_UNTAGGED = "customer.untagged"
    CUSTOMER_NOTE_ADDED = "customer.note_added"
    CUSTOMER_SEGMENT_ENTERED = "customer.segment_entered"
    CUSTOMER_SEGMENT_EXITED = "customer.segment_exited"
    CUSTOMER_ORDER_RECORDED = "customer.order_recorded"
    CUSTOMER_APPOINTMENT_RECORDED = "customer.appointment_recorded"
    CUSTOMER_CONSENT_CHANGED = "customer.consent_changed"
    CUSTOMER_ADDRESS_ADDED = "customer.address_added"
    CUSTOMER_ADDRESS_UPDATED = "customer.address_updated"
    CUSTOMER_ADDRESS_REMOVED = "customer.address_removed"
    CUSTOMER_NOTE_REMOVED = "customer.note_removed"
    CUSTOMER_DOCUMENT_ADDED = "customer.document_added"
    CUSTOMER_DOCUMENT_VERIFIED = "customer.document_verified"
    CUSTOMER_DOCUMENT_REJECTED = "customer.document_rejected"
    CUSTOMER_DOCUMENT_REMOVED = "customer.document_removed"
    CUSTOMER_PAYMENT_METHOD_ADDED = "customer.payment_method_added"
    CUSTOMER_PAYMENT_METHOD_REMOVED = "customer.payment_method_removed"
    CUSTOMER_COMMUNICATION_RECORDED = "customer.communication_recorded"
    CUSTOMER_AVATAR_CHANGED = "customer.avatar_changed"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


# data shapes, by type:
#   customer.created   {"customer": <CustomerRead without secrets>}
#   customer.updated   {"customer": <CustomerRead>, "fields_changed": [field, ...]}
#   customer.deleted   {"customer_id": id, "deleted_at": time}
#   customer.blocked   {"customer_id": id, "reason": str | null, "blocked_at": time}
#   customer.unblocked {"customer_id": id, "reason": str | null}
#   customer.merged    {"survivor_id": id, "source_id": id, "merge_id": id, "moved": {...}}
#   customer.order_recorded       {"customer_id", "created", "previous_status",
#                                  "order": <OrderRead>, "stats": <CustomerStatsRead>}
#   customer.appointment_recorded {"customer_id", "created", "previous_status",
#                                  "appointment": <AppointmentRead>, "stats": <CustomerStatsRead>}
#   webhook_endpoint.disabled     subject = endpoint id; {"webhook_endpoint_id", "reason",
#                                  "disabled_at", "consecutive_failures", "failing_since"}
#                                  (docs/webhooks.md "Disabling")
