"""Background services: the outbox relay, webhook dispatch and event consumers.

Each is an object with a ``name`` and ``async run(stop)`` that works until ``stop`` is set.
``patron serve`` runs all of them beside the HTTP API in one process; ``patron relay`` and
``patron worker`` run their group alone, so each can be scaled by replicas (ARCHITECTURE.md
§2). All coordination between replicas goes through PostgreSQL or the broker.
"""

from patron.runtime.supervisor import (
    BackgroundService,
    ServiceState,
    ServiceStatus,
    Supervision,
    run_services,
    supervise,
    wait_or_stop,
)

__all__ = [
    "BackgroundService",
    "ServiceState",
    "ServiceStatus",
    "Supervision",
    "run_services",
    "supervise",
    "wait_or_stop",
]
