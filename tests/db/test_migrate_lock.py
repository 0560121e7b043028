"""Replicas starting together do not race on migrations: each upgrade holds an advisory
lock (docs/decisions/0015-migrations-at-start.md)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from alembic.script import ScriptDirectory

from patron.db import migrate
from patron.db.urls import libpq_dsn
from tests.conftest import _drop_database, _recreate_database, _with_database

PATRON = Path(sys.executable).with_name("patron")
WAITING = (
    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1"
)


async def test_concurrent_upgrades_of_a_fresh_database_both_succeed(
    server_url: str, tmp_path: Path
) -> None:
    name = f"patron_migrate_lock_{uuid.uuid4().hex[:8]}"
    await _recreate_database(server_url, name)
    url = _with_database(server_url, name)
    env = {**os.environ, "DATABASE_URL": url, "PATRON_ENV": "test", "LOG_LEVEL": "WARNING"}
    holder = await asyncpg.connect(libpq_dsn(url))
    try:
        # Hold the migration lock so both processes are surely at the same point, then let go.
        await holder.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))", migrate.MIGRATION_LOCK
        )
        replicas = [
            await asyncio.create_subprocess_exec(
                str(PATRON),
                "db",
                "upgrade",
                env=env,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 90  # two interpreters starting on a busy machine
        while await holder.fetchval(WAITING, name) < 2:
            assert time.monotonic() < deadline, "the upgrades never waited on the lock"
            assert all(r.returncode is None for r in replicas)
            await asyncio.sleep(0.1)
        await holder.execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))", migrate.MIGRATION_LOCK
        )
        outputs = [(await r.communicate())[0].decode() for r in replicas]
        assert [r.returncode for r in replicas] == [0, 0], outputs
        head = ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
        assert await holder.fetch("SELECT version_num FROM alembic_version") == [(head,)]
        assert await holder.fetchval(WAITING.replace("NOT l.granted", "true"), name) == 0
    finally:
        await holder.close()
        await _drop_database(server_url, name)
