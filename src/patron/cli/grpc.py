"""``patron grpc``: the gRPC API alone (API.md "gRPC"), on ``GRPC_PORT``, until SIGTERM
or SIGINT, which drain the calls in flight (:mod:`patron.grpc_api.server`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

if TYPE_CHECKING:
    from patron.config import Settings

Grace = Annotated[
    float,
    typer.Option(min=0, help="Seconds calls in flight may take to finish on SIGTERM"),
]


def grpc(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default GRPC_PORT)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default HOST)")] = None,
    grace: Grace = 10.0,
) -> None:
    """Serve the gRPC API (patron.v1.CustomerService, health, reflection) without HTTP."""
    # imported here: the application stack is loaded only when the command runs
    from patron.logging import configure_logging
    from patron.runtime import loop

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
        loop.run(_run(settings, url, host=host or settings.host, port=port, grace=grace))


async def _run(settings: Settings, url: str, *, host: str, port: int | None, grace: float) -> None:
    # imported here: see the module docstring of patron.cli
    from patron.context import build_context
    from patron.grpc_api.server import serve

    app = build_context(settings, url)
    try:
        await serve(app, host=host, port=settings.grpc_port if port is None else port, grace=grace)
    finally:
        await app.close()
