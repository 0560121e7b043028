"""A real Patron HTTP server (uvicorn) in a background thread, for tests that need a socket.

The server builds its own application context inside its own event loop (the app's
lifespan), so it never shares the async engine of the session-scoped ``app_ctx`` fixture,
whose loop belongs to pytest-asyncio.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Literal, Self

import uvicorn
from starlette.types import ASGIApp

from patron.app import create_app
from patron.config import Settings


class ThreadedServer:
    """Any ASGI ``app`` served by uvicorn on ``127.0.0.1`` (a free port) in a background
    thread: ``with ThreadedServer(app) as server: server.url`` → ``http://127.0.0.1:N``."""

    def __init__(self, app: ASGIApp, *, lifespan: Literal["on", "off"] = "off") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()


class LiveServer(ThreadedServer):
    """``with LiveServer(settings, database_url) as server: server.url`` → ``http://127.0.0.1:N``."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        super().__init__(create_app(settings, database_url), lifespan="on")
