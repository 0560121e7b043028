"""Resolve the database for a process: ``DATABASE_URL``, or the embedded server."""

from __future__ import annotations

from patron.config import Settings
from patron.db.embedded import start_embedded


def resolve_database_url(settings: Settings) -> str:
    """``DATABASE_URL`` if set (never starts a server), else the embedded server's URL.

    The embedded server (:mod:`patron.db.embedded`) under ``PATRON_HOME`` is started or
    joined, and this process gives its use back at exit. Raises
    :class:`patron.db.embedded.EmbeddedServerError`, whose message is one line naming
    ``$PATRON_HOME/postgres.log``, when it cannot start.
    """
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.patron_home)
