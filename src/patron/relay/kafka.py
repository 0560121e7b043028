"""Kafka transport (aiokafka): one record per event, key = customer id, header ``event``.

Topics come from ``KAFKA_TOPICS`` (``type=topic`` pairs, ``*`` the fallback). The default
sends ``customer.created`` to topic ``customer.created``, ``customer.deleted`` and
``customer.erased`` to ``customer.deleted`` and every other type to ``customer.updated``
(ARCHITECTURE.md §5: "topic per type family"); the ``event`` header carries the exact
type. A type that matches no pair, with no ``*``, is not sent to Kafka and counts as done
for this transport (docs/decisions/0007).

The value is the structured-mode CloudEvents JSON envelope with header ``content-type:
application/cloudevents+json`` (CloudEvents Kafka binding, structured content mode), the
key is the event's ``subject`` (the customer id), so a customer's events land on one
partition in order. The producer uses ``acks="all"`` and idempotence, which keeps the
order within a partition across retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)

from patron.relay.store import PendingEvent
from patron.relay.transport import CLOUDEVENTS_JSON, BatchResult, BrokerUnavailable, encode


class KafkaProducer(Protocol):
    """The part of :class:`aiokafka.AIOKafkaProducer` the transport calls."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


def parse_topics(spec: str) -> dict[str, str]:
    """``"a=t1,b=t2,*=t3"`` → ``{"a": "t1", "b": "t2", "*": "t3"}``.

    Raises ``ValueError`` for a pair without ``=`` or with an empty side.
    """
    topics: dict[str, str] = {}
    for pair in spec.split(","):
        if not pair.strip():
            continue
        event_type, sep, topic = pair.partition("=")
        if not sep or not event_type.strip() or not topic.strip():
            raise ValueError(f"KAFKA_TOPICS: expected type=topic, got {pair!r}")
        topics[event_type.strip()] = topic.strip()
    return topics


def topic_for(topics: dict[str, str], event_type: str) -> str | None:
    """The topic of ``event_type``, the ``*`` fallback, or None (not sent to Kafka)."""
    return topics.get(event_type, topics.get("*"))


def _default_producer(bootstrap_servers: str) -> KafkaProducer:
    producer: KafkaProducer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        client_id="patron-relay",
    )
    return producer


def _unavailable(exc: BaseException) -> bool:
    """Whether an error means "broker not there" rather than "this record is bad"."""
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError | asyncio.TimeoutError | OSError):
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


class KafkaTransport:
    """Publishes batches with one producer; a batch's sends are awaited together."""

    name = "kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        topics: dict[str, str],
        *,
        confirm_timeout: float = 30.0,
        producer_factory: Callable[[str], KafkaProducer] = _default_producer,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = topics
        self.confirm_timeout = confirm_timeout
        self.producer_factory = producer_factory
        self._producer: KafkaProducer | None = None

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def connect(self) -> None:
        """Start a producer; raises :class:`BrokerUnavailable` when no broker answers."""
        await self.close()
        producer = self.producer_factory(self.bootstrap_servers)
        try:
            await asyncio.wait_for(producer.start(), self.confirm_timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise BrokerUnavailable(f"Kafka: {type(exc).__name__}: {exc}") from exc
        self._producer = producer

    async def send(self, events: list[PendingEvent]) -> asyncio.Future[BatchResult]:
        """Hand ``events`` to the producer in order; the future waits for every
        acknowledgement.

        The outcome lists confirmed ids (including events of types not routed to Kafka)
        and records Kafka refused for good (non-retriable errors such as a record too
        large). Connection errors, retriable errors and timeouts raise
        :class:`BrokerUnavailable` (here when the producer refuses a record, from the
        future when an acknowledgement fails or does not come).
        """
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("Kafka: not connected")
        refused: dict[uuid.UUID, str] = {}
        sent: list[tuple[PendingEvent, asyncio.Future[Any]]] = []
        deadline = asyncio.get_running_loop().time() + self.confirm_timeout
        try:
            async with asyncio.timeout_at(deadline):
                for event in events:
                    topic = topic_for(self.topics, event.type)
                    if topic is None:
                        continue
                    headers = [
                        ("event", event.type.encode()),
                        ("content-type", CLOUDEVENTS_JSON.encode()),
                    ]
                    if event.trace_id is not None:
                        headers.append(("trace_id", event.trace_id.encode()))
                    key = (event.subject or str(event.id)).encode()
                    try:
                        future = await producer.send(
                            topic, value=encode(event), key=key, headers=headers
                        )
                    except KafkaError as exc:
                        if _unavailable(exc):
                            raise BrokerUnavailable(f"Kafka: {type(exc).__name__}: {exc}") from exc
                        refused[event.id] = f"Kafka: {type(exc).__name__}: {exc}"
                        continue
                    sent.append((event, future))
        except TimeoutError as exc:
            raise BrokerUnavailable("Kafka: acknowledgements timed out") from exc
        return asyncio.ensure_future(self._acks(events, sent, refused, deadline))

    async def _acks(
        self,
        events: list[PendingEvent],
        sent: list[tuple[PendingEvent, asyncio.Future[Any]]],
        refused: dict[uuid.UUID, str],
        deadline: float,
    ) -> BatchResult:
        try:
            async with asyncio.timeout_at(deadline):
                outcomes = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        except TimeoutError as exc:
            raise BrokerUnavailable("Kafka: acknowledgements timed out") from exc
        result = BatchResult(rejected=dict(refused))
        failed = {event.id: outcome for (event, _), outcome in zip(sent, outcomes, strict=True)}
        for event in events:
            if event.id in result.rejected:
                continue
            outcome = failed.get(event.id)
            if isinstance(outcome, BaseException):
                if _unavailable(outcome):
                    raise BrokerUnavailable(f"Kafka: {type(outcome).__name__}: {outcome}")
                result.rejected[event.id] = f"Kafka: {type(outcome).__name__}: {outcome}"
            else:
                result.confirmed.append(event.id)
        return result

    async def publish(self, events: list[PendingEvent]) -> BatchResult:
        """:meth:`send` ``events`` and wait for every acknowledgement (raises as
        :meth:`send`)."""
        return await (await self.send(events))

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10.0)
