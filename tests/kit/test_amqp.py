"""patron.kit.amqp.connect: a failed connect closes what it made."""

from __future__ import annotations

import gc

import aio_pika
import aiormq
import pytest

from patron.kit import amqp
from tests.services import free_port


async def test_a_failed_connect_leaves_no_open_connection_behind() -> None:
    # aio_pika.connect leaves its Connection open, in a reference cycle, for the garbage
    # collector to close from __del__ (with no loop: "close was never awaited")
    port = free_port()  # nothing listens on it
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        await amqp.connect(f"amqp://guest:guest@127.0.0.1:{port}/", connect_timeout=2)
    left_open = [
        o
        for o in gc.get_objects()
        if isinstance(o, aio_pika.Connection) and o.url.port == port and not o.is_closed
    ]
    assert left_open == []
