"""``patron apikey``: create, list and revoke API keys (``X-API-Key``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from patron.auth.principal import Role
from patron.cli.common import database_errors, database_url, fail, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(help="API keys.", no_args_is_help=True, rich_markup_mode=None)
T = TypeVar("T")


def _in_unit(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the admin connection of the configured database;
    an unreachable database is one line and exit 1."""
    # imported here: SQLAlchemy is loaded only by commands that use the database
    from patron.db.engine import create_admin_engine, create_sessionmaker

    url = database_url(load_settings())

    async def run() -> T:
        engine = create_admin_engine(url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    with database_errors(url):
        return asyncio.run(run())


@app.command("create")
def create(
    role: Annotated[Role, typer.Option(help="Role of the key")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant the key is bound to; omit for a platform key")
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key")] = "cli",
) -> None:
    """Create an API key and print it (shown once, stored only as a hash)."""
    from patron.auth.api_keys import create_api_key  # lazy: see _in_unit

    async def work(session: AsyncSession) -> str:
        return (await create_api_key(session, tenant_id=tenant, role=role, name=name)).secret

    typer.echo(_in_unit(work))


@app.command("list")
def list_keys() -> None:
    """List API keys: id, name, role, tenant ('platform' for a platform key), when it was
    created and when it was revoked. Secrets are never stored, so never shown."""
    from patron.auth.api_keys import ApiKeyInfo, list_api_keys  # lazy: see _in_unit

    keys: list[ApiKeyInfo] = _in_unit(list_api_keys)
    rows = [("ID", "NAME", "ROLE", "TENANT", "CREATED", "REVOKED")]
    rows += [
        (
            k.id,
            k.name,
            k.role,
            k.tenant_id or "platform",
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
        )
        for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="Id of the key (see 'apikey list')")],
) -> None:
    """Revoke an API key: it stops authenticating at once, in every running process."""
    from patron.auth.api_keys import revoke_api_key  # lazy: see _in_unit

    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise typer.BadParameter(f"not a key id (a UUID): {key_id}") from None

    async def work(session: AsyncSession) -> bool:
        return await revoke_api_key(session, str(parsed))

    if not _in_unit(work):
        fail(f"no live API key has id {parsed} (unknown or already revoked)")
    typer.echo(f"API key {parsed} revoked")
