"""The ``patron`` command line (API.md "CLI").

One module per command group; each command imports the application stack it needs
inside its body, so ``patron --help`` and ``patron --version`` load typer and little else
(no SQLAlchemy, Alembic, FastAPI or boto3: tests/test_cli_imports.py checks it).
Failures a user can fix (a bad setting, a database that cannot be reached, a missing
extra) are one line on stderr and a non-zero exit, never a traceback
(:mod:`patron.cli.common`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from patron.cli import apikeys, database, events, grpc, jobs, processes, serve, stats

app = typer.Typer(help="Patron: the customer service.", no_args_is_help=True, rich_markup_mode=None)
app.command()(serve.serve)
app.command()(serve.api)
app.command()(processes.relay)
app.command()(processes.worker)
app.command()(grpc.grpc)
app.add_typer(database.app, name="db")
app.add_typer(apikeys.app, name="apikey")
app.add_typer(events.app, name="events")
app.add_typer(jobs.app, name="jobs")
app.add_typer(stats.app, name="stats")


def package_version() -> str:
    """The installed distribution's version (package metadata), else the source's."""
    try:
        return version("patron")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        from patron import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"patron {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Patron: the customer service. Configured by environment variables or a .env file
    (see .env.example)."""
