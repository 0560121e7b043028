"""``patron events``: republish and prune outbox events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

app = typer.Typer(help="Outbox events.", no_args_is_help=True, rich_markup_mode=None)


@app.command("resend")
def resend(
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
    from patron.events.retention import OutboxMaintenance  # lazy: keeps --help fast

    settings = load_settings()
    url = database_url(settings)
    with database_errors(url):
        count = asyncio.run(
            OutboxMaintenance(settings, url).resend(since=since, event_id=parsed_id)
        )
    typer.echo(f"{count} event(s) marked for republishing")


@app.command("prune")
def prune(
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
    from patron.events.retention import OutboxMaintenance  # lazy: keeps --help fast

    before = datetime.now(UTC) - timedelta(days=older_than_days)
    settings = load_settings()
    url = database_url(settings)
    with database_errors(url):
        pruned = asyncio.run(OutboxMaintenance(settings, url).prune(before))
    typer.echo(
        f"deleted {pruned.events} event(s), {pruned.deliveries} webhook delivery(ies), "
        f"{pruned.inbox_messages} inbox message id(s) older than {before.isoformat()}"
    )
