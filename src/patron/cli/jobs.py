"""``patron jobs``: the background jobs of every tenant, for operators."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

app = typer.Typer(help="Background jobs.", no_args_is_help=True, rich_markup_mode=None)

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
COLUMNS = ("id", "kind", "tenant", "status", "attempts", "scheduled", "started", "finished")


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's jobs")] = None,
    status: Annotated[
        str | None, typer.Option(help=f"Only jobs in this status: {', '.join(STATUSES)}")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 50,
) -> None:
    """List jobs, newest first: id, kind, tenant, status, attempts (made/allowed), when
    scheduled, started and finished (UTC), and the last error on the line below."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"--status must be one of {', '.join(STATUSES)}")
    from patron.errors import PatronError  # lazy: keeps --help fast
    from patron.jobs.listing import list_jobs  # lazy: keeps --help fast
    from patron.tenancy import trusted_tenant  # lazy: keeps --help fast

    scoped = None
    if tenant is not None:
        try:
            scoped = trusted_tenant(tenant)
        except PatronError as exc:
            raise typer.BadParameter(f"--tenant: {exc.detail}") from exc
    settings = load_settings()
    url = database_url(settings)
    with database_errors(url):
        rows = asyncio.run(list_jobs(settings, url, tenant=scoped, status=status, limit=limit))
    if not rows:
        typer.echo("no jobs")
        return
    table = [COLUMNS]
    for row in rows:
        table.append(
            (
                str(row.id),
                row.kind,
                row.tenant_id,
                row.status,
                f"{row.attempts}/{row.max_attempts}",
                _time(row.scheduled_at),
                _time(row.started_at),
                _time(row.finished_at),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    errors = {str(row.id): row.last_error for row in rows}
    for index, line in enumerate(table):
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())
        error = errors.get(line[0]) if index else None
        if error:
            typer.echo(f"    last error: {error}")
