"""The outbox relay: publishes outbox events to RabbitMQ and Kafka (ARCHITECTURE.md §5).

``service.build_relay_services`` builds one relay per configured transport; see
docs/decisions/0007-outbox-order.md for claiming, ordering, backoff and dead letters.
"""
