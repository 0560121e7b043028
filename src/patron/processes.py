"""Which background services each process runs (a composition root, like :mod:`patron.app`).

``relay`` publishes: the outbox relay to RabbitMQ / Kafka and the webhook dispatcher.
``worker`` consumes: order and appointment events from RabbitMQ.
``patron serve`` runs both beside the HTTP API. A service whose transport is not configured
(no ``RABBITMQ_URL``, say) is left out.

It sits above the domain packages, which implement :class:`~patron.runtime.BackgroundService`
against :mod:`patron.runtime` below them; the supervisor never knows which services exist.
"""

from __future__ import annotations

from patron.context import AppContext
from patron.orders.consumer import build_consumer_services
from patron.relay.service import build_relay_services
from patron.runtime import BackgroundService
from patron.webhooks.dispatcher import build_webhook_services


def relay_services(ctx: AppContext) -> list[BackgroundService]:
    """The publishing side: outbox relay and webhook dispatcher."""
    return [*build_relay_services(ctx), *build_webhook_services(ctx)]


def worker_services(ctx: AppContext) -> list[BackgroundService]:
    """The consuming side: order and appointment event consumers."""
    return [*build_consumer_services(ctx)]
