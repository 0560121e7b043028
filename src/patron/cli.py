"""The ``patron`` command line (API.md "CLI")."""

from __future__ import annotations

import asyncio
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
from patron.logging import configure_logging

app = typer.Typer(help="Patron: the customer service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.")
apikey_app = typer.Typer(help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
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


def _serve(host: str | None, port: int | None) -> None:
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

    uvicorn.run(
        create_app(settings, url), host=bind_host, port=bind_port, log_config=None, access_log=False
    )


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default PORT or 8007)")] = None,
) -> None:
    """Run everything in one process; starts the embedded PostgreSQL without DATABASE_URL."""
    _serve(host, port)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
) -> None:
    """Run the HTTP API only."""
    _serve(host, port)


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


if __name__ == "__main__":  # pragma: no cover
    app()
