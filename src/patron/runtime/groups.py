"""Which background services each process runs.

``relay`` publishes: the outbox relay to RabbitMQ / Kafka and the webhook dispatcher.
``worker`` consumes: order and appointment events from RabbitMQ.
A service whose transport is not configured (no ``RABBITMQ_URL``, say) is left out.
"""

from __future__ import annotations

from patron.context import AppContext
from patron.runtime.supervisor import BackgroundService


def relay_services(ctx: AppContext) -> list[BackgroundService]:
    """The publishing side: outbox relay and webhook dispatcher."""
    from patron.relay.service import build_relay_services
    from patron.webhooks.dispatcher import build_webhook_services

    return [*build_relay_services(ctx), *build_webhook_services(ctx)]


def worker_services(ctx: AppContext) -> list[BackgroundService]:
    """The consuming side: order and appointment event consumers."""
    from patron.orders.consumer import build_consumer_services

    return [*build_consumer_services(ctx)]
