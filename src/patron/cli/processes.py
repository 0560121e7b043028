"""``patron relay`` and ``patron worker``: the background services without the API, each one
call to :mod:`patron.processes` (which also serves the probe port)."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

ProbePort = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="Serve /health, /ready and /metrics on this port, bound on HOST "
        "(default PROBE_PORT; none when unset)",
    ),
]


def relay(probe_port: ProbePort = None) -> None:
    """Publish the outbox to RabbitMQ / Kafka (and webhooks) until SIGINT or SIGTERM.

    Several may run at once (docs/decisions/0007-outbox-order.md).
    """
    # imported here: the application stack is loaded only when the command runs
    from patron.logging import configure_logging
    from patron.processes import run_relay
    from patron.runtime import loop

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        loop.run(run_relay(settings, url, probe_port=probe_port))


def worker(probe_port: ProbePort = None) -> None:
    """Run the background jobs, and consume order and appointment events from RabbitMQ
    when RABBITMQ_URL is set (docs/events-in.md), until SIGINT or SIGTERM. Several may run
    at once."""
    # imported here: the application stack is loaded only when the command runs
    from patron.logging import configure_logging
    from patron.processes import run_worker
    from patron.runtime import loop

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        loop.run(run_worker(settings, url, probe_port=probe_port))
