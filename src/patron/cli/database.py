"""``patron db``: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.common import database_errors, database_url, load_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upgrade")
def upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default head). Safe to run from several processes
    at once: they take turns (docs/decisions/0015-migrations-at-start.md)."""
    from patron.db import migrate  # lazy: Alembic and SQLAlchemy only when migrating

    url = database_url(load_settings())
    with database_errors(url):
        migrate.upgrade(url, revision)
    typer.echo(f"database upgraded to {revision}")
