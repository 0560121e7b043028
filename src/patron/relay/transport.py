"""What a relay needs from a broker client: connect, publish a batch, close.

A transport publishes a whole batch and reports, per event, whether the broker confirmed
it. Two kinds of failure are kept apart:

- :class:`BrokerUnavailable`: the broker cannot be reached or stopped answering (connection
  refused or lost, confirm timeout). Nothing of the batch counts as published; the relay
  backs off, reconnects and tries the same events again. Events are not blamed.
- a per-event rejection (RabbitMQ ``basic.nack``, a Kafka record error that retrying will
  not fix): returned in :attr:`BatchResult.rejected`; the event's ``attempts`` grows and
  after ``RELAY_MAX_ATTEMPTS`` it is dead-lettered.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from patron.events.outbox import to_cloudevent
from patron.kit.jsonutil import dumps
from patron.relay.store import PendingEvent

CLOUDEVENTS_JSON = "application/cloudevents+json"


class BrokerUnavailable(Exception):
    """The broker cannot take messages now (connect failed, connection lost, timed out)."""


@dataclass
class BatchResult:
    """Outcome of one batch: ids the broker confirmed, and rejected ids with the reason."""

    confirmed: list[uuid.UUID] = field(default_factory=list)
    rejected: dict[uuid.UUID, str] = field(default_factory=dict)


class Transport(Protocol):
    """A broker client as the relay uses it. ``name`` is stored in ``published_to``."""

    name: str

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None:
        """Open the connection; raises :class:`BrokerUnavailable` when it cannot."""

    async def send(self, events: list[PendingEvent]) -> asyncio.Future[BatchResult]:
        """Hand ``events`` to the client in order, without waiting for the broker.

        When this returns, the messages are queued in order ahead of anything a later
        ``send`` queues (so the relay may claim and send the next batch while these
        confirms are pending). The returned future resolves to the batch's outcome once
        every confirm has arrived, or raises :class:`BrokerUnavailable` when the broker
        is not there to confirm; cancelling it abandons the batch. Raises
        :class:`BrokerUnavailable` itself when not connected.
        """

    async def publish(self, events: list[PendingEvent]) -> BatchResult:
        """:meth:`send` ``events`` and wait for the outcome."""

    async def close(self) -> None:
        """Close the connection; safe to call when not connected."""


def encode(event: PendingEvent) -> bytes:
    """The message body: the CloudEvents 1.0 JSON envelope, structured content mode
    (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md)."""
    envelope: dict[str, Any] = to_cloudevent(event)
    return dumps(envelope)
