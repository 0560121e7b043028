"""A local TCP proxy in front of the shared RabbitMQ that a test can cut and restore.

The shared broker is never stopped: the relay connects through the proxy, and the test
breaks the path instead. ``cut()`` drops every open connection and refuses new ones until
``restore()``; ``swallow_replies()`` keeps forwarding the client's bytes to the broker but
throws the broker's answers away (so published messages arrive and their confirms never
come back).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse, urlunparse


class TcpProxy:
    """``async with TcpProxy("127.0.0.1", 5672) as proxy: proxy.url_for(amqp_url)``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.open = True
        self.swallowing = False
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parsed = urlparse(url)
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 5672)

    def url_for(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parsed = urlparse(url)
        netloc = parsed.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunparse(parsed._replace(netloc=f"{auth}127.0.0.1:{self.port}"))

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        """Drop every connection now and refuse new ones (as a dead broker host would)."""
        self.open = False
        self._drop_all()

    def restore(self) -> None:
        """Accept and forward connections again; stop swallowing replies."""
        self.open = True
        self.swallowing = False

    def swallow_replies(self) -> None:
        """From now on, discard what the broker sends (confirms included)."""
        self.swallowing = True

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if not self.open:
            client_w.transport.abort()
            return
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_w, broker_w))
        up = asyncio.create_task(self._pump(client_r, broker_w, upstream=True))
        down = asyncio.create_task(self._pump(broker_r, client_w, upstream=False))
        self._tasks.update((up, down))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
            self._tasks.discard(task)
        for writer in (client_w, broker_w):
            writer.transport.abort()
            self._writers.discard(writer)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if not upstream and self.swallowing:
                    continue
                writer.write(data)
                await writer.drain()
