"""Connecting to RabbitMQ (AMQP 0-9-1) with aio-pika."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.connection import make_url


async def connect(url: str, *, connect_timeout: float | None = None) -> AbstractConnection:
    """``aio_pika.connect(url, timeout=connect_timeout)`` (seconds) that closes the
    connection object it made when connecting fails, then re-raises (``OSError``,
    ``TimeoutError``, ``aiormq.exceptions.AMQPError``...).

    Why: aio-pika 10's ``connect`` leaves a failed ``Connection`` to the garbage
    collector, whose ``__del__`` schedules ``close()`` on whatever loop is current, or
    on none ("coroutine 'Connection.close' was never awaited"): a relay retrying an
    unreachable broker would leave one behind per attempt.
    """
    connection = aio_pika.Connection(make_url(url))
    try:
        await connection.connect(timeout=connect_timeout)
    except BaseException:
        await connection.close()  # aio-pika: safe when no transport was created
        raise
    return connection
