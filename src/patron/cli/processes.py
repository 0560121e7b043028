"""``patron relay`` and ``patron worker``: the background services without the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from patron.cli.common import database_errors, database_url, load_settings

if TYPE_CHECKING:
    from patron.config import Settings


async def _run_relay(settings: Settings, url: str) -> None:
    # imported here: the application stack is loaded only when the command runs
    from rich.console import Console

    from patron.context import build_context
    from patron.processes import relay_services
    from patron.runtime import run_services

    console = Console()
    ctx = build_context(settings, url)
    try:
        services = relay_services(ctx)
        if not services:
            console.print("nothing to run: set RABBITMQ_URL or KAFKA_BOOTSTRAP_SERVERS")
            return
        await run_services(services)
    finally:
        await ctx.close()


def relay() -> None:
    """Publish the outbox to RabbitMQ / Kafka (and webhooks) until SIGINT or SIGTERM.

    Several may run at once (docs/decisions/0007-outbox-order.md).
    """
    from patron.logging import configure_logging  # lazy: keeps --help fast
    from patron.runtime import loop

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        loop.run(_run_relay(settings, url))


async def _run_worker(settings: Settings, url: str) -> None:
    # imported here: the application stack is loaded only when the command runs
    from rich.console import Console

    from patron.context import build_context
    from patron.processes import worker_services
    from patron.runtime import run_services

    console = Console()
    ctx = build_context(settings, url)
    try:
        services = worker_services(ctx)
        if not services:
            console.print("nothing to run: set RABBITMQ_URL")
            return
        await run_services(services)
    finally:
        await ctx.close()


def worker() -> None:
    """Consume order and appointment events from RabbitMQ until SIGINT or SIGTERM
    (docs/events-in.md). Several may run at once."""
    from patron.logging import configure_logging  # lazy: keeps --help fast
    from patron.runtime import loop

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        loop.run(_run_worker(settings, url))
