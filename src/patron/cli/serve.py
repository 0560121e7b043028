"""``patron serve`` and ``patron api``: migrate, make the first admin key, print the
banner, serve HTTP with uvicorn."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.common import database_errors, database_url, fail, load_settings, stderr

if TYPE_CHECKING:
    import uvicorn

    from patron.config import Settings

# How a key is made, said on every start.
MAKE_KEY = "patron apikey create --role admin"


def banner(base: str, secret: str | None, *, development_keys: bool, embedded: bool) -> list[str]:
    """The start-up banner's lines: where Patron answers, its docs, the first admin key
    (shown once, on first start only) and how to make another."""
    lines = [f"Patron is serving {base}   API docs: {base}/docs"]
    if secret:
        lines += [
            "First start: a platform admin API key was created. It is shown this once:",
            f"  {secret}",
            f"  curl -H 'X-API-Key: {secret}' -H 'X-Tenant-Id: demo' {base}/api/v1/customers",
            f"Make another key: {MAKE_KEY} (add --tenant T to bind it to one tenant)",
        ]
    else:
        lines.append(f"API keys: {MAKE_KEY} (add --tenant T to bind it to one tenant)")
    if development_keys:
        where = "the embedded PostgreSQL" if embedded else "this database"
        lines.append(
            f"Development keys: SECRET_KEY and ENCRYPTION_KEYS are the public development "
            f"values; fine for {where} on a laptop, never for real customer data."
        )
    return lines


def base_url(host: str, port: int) -> str:
    """The URL to show for a bind address: a wildcard address is reached on loopback."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


async def _bootstrap_key(url: str) -> str | None:
    """A platform admin key on first start (no live key yet); None otherwise."""
    from patron.auth.api_keys import bootstrap_admin_key  # lazy: keeps --help fast
    from patron.db.engine import create_admin_engine, create_sessionmaker

    engine = create_admin_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            created = await bootstrap_admin_key(session)
            return created.secret if created else None
    finally:
        await engine.dispose()


def _announce(server: uvicorn.Server, lines: list[str]) -> None:
    """Print ``lines`` on stderr once uvicorn listens (never into the JSON log stream)."""
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        stderr("\n".join(["", *lines, ""]))


def _serve(host: str | None, port: int | None, *, background: bool) -> None:
    # imported here: the application stack is loaded only by the commands that serve
    import uvicorn

    from patron.db import migrate
    from patron.logging import configure_logging

    settings: Settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        migrate.upgrade(url)
        secret = asyncio.run(_bootstrap_key(url))
    bind_host, bind_port = host or settings.host, port or settings.port
    from patron.app import create_app

    # After its graceful shutdown uvicorn raises the SIGTERM it caught again; with the
    # default action that ends the process before atexit runs, and the embedded
    # PostgreSQL (stopped from atexit) would be left running. Exit normally instead.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, url, background=background),
            host=bind_host,
            port=bind_port,
            log_config=None,
            access_log=False,
        )
    )
    lines = banner(
        base_url(bind_host, bind_port),
        secret,
        development_keys=settings.uses_development_keys,
        embedded=not settings.database_url,
    )
    threading.Thread(target=_announce, args=(server, lines), daemon=True).start()
    server.run()
    if not server.started:
        fail(f"could not serve on {bind_host}:{bind_port} (the log above says why)", 3)


def _exit_after_shutdown(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler for the moment after uvicorn's shutdown: exit 0, running atexit."""
    raise SystemExit(0)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default PORT or 8007)")] = None,
) -> None:
    """Run everything in one process (HTTP, relay, webhooks, consumers); starts the
    embedded PostgreSQL without DATABASE_URL."""
    _serve(host, port, background=True)


def api(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
) -> None:
    """Run the HTTP API only (run 'patron relay' and 'patron worker' beside it)."""
    _serve(host, port, background=False)
