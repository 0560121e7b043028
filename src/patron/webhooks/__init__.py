"""Outgoing signed webhooks: endpoints API, fan-out of outbox events into deliveries, and
the dispatcher that signs and sends them (docs/webhooks.md)."""
