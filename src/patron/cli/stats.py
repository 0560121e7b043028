"""``patron stats``: customer order and appointment stats."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

app = typer.Typer(
    help="Customer order and appointment stats.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("rebuild")
def rebuild(
    tenant: Annotated[
        list[str] | None, typer.Option(help="Only this tenant (repeatable); default: all")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Report drift without fixing it; exit 1 if any")
    ] = False,
) -> None:
    """Recompute every customer's stats from order and appointment history, report each
    stored value that differed (customer, field, stored, recomputed) and fix it."""
    # imported here: the application stack is loaded only when the command runs
    from patron.logging import configure_logging
    from patron.orders.rebuild import rebuild_database

    settings = load_settings()
    configure_logging(settings.log_level)
    url = database_url(settings)
    with database_errors(url):
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
