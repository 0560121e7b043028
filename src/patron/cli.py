"""The ``patron`` command line (API.md "CLI")."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from patron.auth.api_keys import count_api_keys, create_api_key
from patron.auth.principal import Role
from patron.config import get_settings
from patron.db import migrate
from patron.db.bootstrap import resolve_database_url
from patron.db.engine import create_admin_engine, create_sessionmaker
from patron.events.retention import OutboxMaintenance
from patron.logging import configure_logging
from patron.orders.rebuild import rebuild_database
from patron.processes import run_relay, run_worker
from patron.runtime import loop

app = typer.Typer(help="Patron: the customer service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.")
apikey_app = typer.Typer(help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
events_app = typer.Typer(help="Outbox events.")
app.add_typer(events_app, name="events")
stats_app = typer.Typer(help="Customer order and appointment stats.")
app.add_typer(stats_app, name="stats")
console = Console()


async def _create_key(url: str, tenant: str | None, role: Role, name: str) -> str:
    engine = create_admin_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return (await create_api_key(session, tenant_id=tenant, role=role, name=name)).secret
    finally:
        await engine.dispose()


async def _bootstrap_key(url: str) -> str | None:
    """A platform admin key on first start (no live key yet); None otherwise."""
    engine = create_admin_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if await count_api_keys(session):
                return None
            return (
                await create_api_key(session, tenant_id=None, role=Role.ADMIN, name="bootstrap")
            ).secret
    finally:
        await engine.dispose()


def _serve(host: str | None, port: int | None, *, background: bool) -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    url = resolve_database_url(settings)
    migrate.upgrade(url)
    secret = asyncio.run(_bootstrap_key(url))
    bind_host, bind_port = host or settings.host, port or settings.port
    if secret:
        console.print(
            "[bold]First start: a platform admin API key was created. It is shown once:[/bold]"
        )
        # plain print: the key and the curl line must not be wrapped or styled
        print(f"  {secret}")
        print(
            f"  curl -H 'X-API-Key: {secret}' -H 'X-Tenant-Id: demo' "
            f"http://{bind_host}:{bind_port}/api/v1/customers"
        )
    from patron.app import create_app

    # After its graceful shutdown uvicorn raises the SIGTERM it caught again; with the
    # default action that ends the process before atexit runs, and the embedded
    # PostgreSQL (stopped from atexit) would be left running. Exit normally instead.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    uvicorn.run(
        create_app(settings, url, background=background),
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
    )


def _exit_after_shutdown(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler for the moment after uvicorn's shutdown: exit 0, running atexit."""
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default PORT or 8007)")] = None,
) -> None:
    """Run everything in one process (HTTP, relay, webhooks, consumers); starts the
    embedded PostgreSQL without DATABASE_URL."""
    _serve(host, port, background=True)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
) -> None:
    """Run the HTTP API only (run ``patron relay`` and ``patron worker`` beside it)."""
    _serve(host, port, background=False)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    migrate.upgrade(resolve_database_url(get_settings()), revision)
    console.print(f"database upgraded to {revision}")


@apikey_app.command("create")
def apikey_create(
    role: Annotated[Role, typer.Option(help="Role of the key")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant the key is bound to; omit for a platform key")
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "cli",
) -> None:
    """Create an API key and print it (shown once, stored only as a hash)."""
    url = resolve_database_url(get_settings())
    secret = asyncio.run(_create_key(url, tenant, role, name))
    typer.echo(secret)


ProbePort = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="Serve /health, /ready and /metrics on this port, bound on HOST "
        "(default PROBE_PORT; none when unset)",
    ),
]


@app.command()
def relay(probe_port: ProbePort = None) -> None:
    """Publish the outbox to RabbitMQ / Kafka (and webhooks) until SIGINT or SIGTERM.

    Several may run at once (docs/decisions/0007-outbox-order.md).
    """
    settings = get_settings()
    configure_logging(settings.log_level)
    loop.run(run_relay(settings, resolve_database_url(settings), probe_port=probe_port))


@events_app.command("resend")
def events_resend(
    since: Annotated[
        datetime | None,
        typer.Option(help="Republish every event from this time on (ISO 8601; UTC if no zone)"),
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Republish the event with this id")
    ] = None,
) -> None:
    """Mark events for republishing: the relays publish them again on every transport."""
    if (since is None) == (event_id is None):
        raise typer.BadParameter("give exactly one of --since and --id")
    parsed_id = None
    if event_id is not None:
        try:
            parsed_id = uuid.UUID(event_id)
        except ValueError as exc:
            raise typer.BadParameter(f"--id: not a UUID: {event_id}") from exc
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    settings = get_settings()
    outbox = OutboxMaintenance(settings, resolve_database_url(settings))
    count = asyncio.run(outbox.resend(since=since, event_id=parsed_id))
    typer.echo(f"{count} event(s) marked for republishing")


@events_app.command("prune")
def events_prune(
    older_than_days: Annotated[
        int,
        typer.Option(
            "--older-than-days",
            min=1,
            help="Delete what finished longer ago than this many days",
        ),
    ],
) -> None:
    """Delete published outbox events (already fanned out to webhooks), finished webhook
    deliveries and consumed-message ids older than the cut-off; pending and dead-lettered
    events stay. The events feed then starts at the cut-off. Run it from cron."""
    before = datetime.now(UTC) - timedelta(days=older_than_days)
    settings = get_settings()
    pruned = asyncio.run(OutboxMaintenance(settings, resolve_database_url(settings)).prune(before))
    typer.echo(
        f"deleted {pruned.events} event(s), {pruned.deliveries} webhook delivery(ies), "
        f"{pruned.inbox_messages} inbox message id(s) older than {before.isoformat()}"
    )


@app.command()
def worker(probe_port: ProbePort = None) -> None:
    """Consume order and appointment events from RabbitMQ until SIGINT or SIGTERM
    (docs/events-in.md). Several may run at once."""
    settings = get_settings()
    configure_logging(settings.log_level)
    loop.run(run_worker(settings, resolve_database_url(settings), probe_port=probe_port))


@stats_app.command("rebuild")
def stats_rebuild_command(
    tenant: Annotated[
        list[str] | None, typer.Option(help="Only this tenant (repeatable); default: all")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report drift without fixing it; exit 1 if any")
    ] = False,
) -> None:
    """Recompute every customer's stats from order and appointment history, report each
    stored value that differed (customer, field, stored, recomputed) and fix it."""
    settings = get_settings()
    configure_logging(settings.log_level)
    url = resolve_database_url(settings)
    found = asyncio.run(rebuild_database(settings, url, tenant or None, fix=not check))
    drifted = 0
    for name, drift in found.items():
        for d in drift:
            drifted += 1
            typer.echo(
                f"drift tenant={name} customer={d.customer_id} field={d.field} "
                f"stored={d.stored} recomputed={d.recomputed}"
            )
    verb = "found" if check else "fixed"
    if not found:
        typer.echo(
            "no tenant with orders, appointments or stats is visible to this database role "
            "(enumerating tenants needs one that bypasses row-level security); use --tenant"
        )
    typer.echo(f"{len(found)} tenant(s) checked, {drifted} drifted value(s) {verb}")
    if check and drifted:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
