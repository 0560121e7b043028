"""The embedded server's lifecycle (:mod:`patron.db.embedded`) without the service: who
counts as a user, what a stale ``postmaster.pid`` does, and how a failure reads.

Real ``initdb`` / ``postgres`` processes in a private ``PATRON_HOME`` (a few seconds each);
every test kills whatever postmaster of its data directory is left, pass or fail.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from patron.db.embedded import EmbeddedServer, EmbeddedServerError, start_embedded
from tests.db.embedded_support import (
    embedded_home,
    patron_env,
    pg_user,
    postmaster_pid,
    postmasters,
    wait_no_postmaster,
)

# A process that uses the embedded server of the home in argv[1] until its stdin closes.
USER_SCRIPT = """
import sys
import tempfile
from pathlib import Path
from patron.db.embedded import start_embedded
print("URL=" + start_embedded(Path(sys.argv[1])), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def home() -> Iterator[Path]:
    with embedded_home() as home:
        yield home


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not PostgreSQL (its pid stands for a reused one), of the
    user PostgreSQL runs as, so that PostgreSQL and pg_ctl could signal it."""
    user = pg_user()
    process = subprocess.Popen(
        ["sleep", "300"],  # noqa: S607 - coreutils
        user=user,
        group=user,
        extra_groups=[] if user else None,
    )
    yield process
    process.kill()
    process.wait()


_spawned: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_user_left() -> Iterator[None]:
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _user(home: Path) -> subprocess.Popen[str]:
    """A process using the server under ``home``, started and registered when this returns."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter
        [sys.executable, "-c", USER_SCRIPT, str(home)],
        env=patron_env(home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    _spawned.append(process)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("URL="):
            return process
    raise AssertionError(f"no URL from the user process (exit {process.wait(60)})")


def _select_one(url: str) -> int:
    async def query() -> int:
        connection = await asyncpg.connect(url)
        try:
            value: int = await connection.fetchval("SELECT 1")
            return value
        finally:
            await connection.close()

    return asyncio.run(query())


def test_the_server_runs_while_any_live_process_uses_it(home: Path) -> None:
    """One process ending leaves the server to the others; the last one stops it; a user
    killed with SIGKILL (which never gives its use back) does not count."""
    pgdata = home / "pgdata"
    service = _user(home)
    postmaster = postmaster_pid(pgdata)

    # A short command beside it ends: the server stays for the service.
    command = _user(home)
    command.communicate(timeout=60)
    assert command.returncode == 0
    assert [p.pid for p in postmasters(pgdata)] == [postmaster]

    # The service is killed; the next user adopts the server and, last, stops it.
    service.kill()
    service.wait(30)
    assert [p.pid for p in postmasters(pgdata)] == [postmaster]
    last = _user(home)
    assert postmaster_pid(pgdata) == postmaster  # adopted, not restarted
    last.communicate(timeout=60)
    assert last.returncode == 0
    assert wait_no_postmaster(pgdata) == []


def test_a_reused_pid_in_the_users_file_is_no_user(
    home: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """A live process whose start time is not the registered one took a dead user's pid."""
    server = EmbeddedServer(home)
    server.start()
    users = home / "run" / "postgres-users.json"
    entries = json.loads(users.read_text())
    users.write_text(json.dumps([*entries, {"pid": sleeper.pid, "started": 1.0}]))
    assert server.release() is True
    assert wait_no_postmaster(home / "pgdata") == []


def test_a_stale_postmaster_pid_does_not_block_start_and_is_never_signalled(
    home: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """``postmaster.pid`` naming a live process that is not this data directory's
    postmaster (a pid reused after a crash or reboot): start clears it and starts the
    server; stop sends that process nothing."""
    pgdata = home / "pgdata"
    server = EmbeddedServer(home)
    server.start()
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    server.release()
    stale = "\n".join([str(sleeper.pid), *lines[1:]]) + "\n"
    (pgdata / "postmaster.pid").write_text(stale)
    (pgdata / ".s.PGSQL.5432.lock").write_text(stale)

    url = server.start()
    assert _select_one(url) == 1
    assert postmaster_pid(pgdata) != sleeper.pid

    # The server dies without cleaning up and its pid goes to the sleeper again.
    for process in postmasters(pgdata):
        process.kill()
        process.wait(30)
    (pgdata / "postmaster.pid").write_text(stale)
    assert server.release() is False
    assert sleeper.poll() is None, "pg_ctl stop signalled a process that is not PostgreSQL"


def test_a_failed_start_is_one_line_naming_the_log(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """initdb refuses a non-empty directory; the error names the log, which holds why, and
    nothing of initdb reaches the terminal."""
    (home / "pgdata").mkdir(parents=True)
    (home / "pgdata" / "stray").write_text("not a database")
    with pytest.raises(EmbeddedServerError) as raised:
        start_embedded(home)
    message = str(raised.value)
    log = home / "postgres.log"
    assert message == f"initdb failed for the embedded PostgreSQL (exit 1); see {log}"
    assert "exists but is not empty" in log.read_text()
    out, err = capfd.readouterr()
    assert "initdb" not in out + err


def test_a_home_too_deep_for_a_socket_name_gets_a_private_socket_directory() -> None:
    """A socket's path must fit ``sun_path`` (108 bytes on Linux, 104 on macOS): under a
    deep home the socket goes to a directory of its own under the temp dir, mode 0700."""
    with embedded_home(depth="deep-" * 20) as home:
        server = EmbeddedServer(home)
        url = server.start()
        try:
            socket_dir = Path(url.split("host=", 1)[1])
            assert socket_dir.parent == Path(tempfile.gettempdir())
            assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
            assert _select_one(url) == 1
        finally:
            server.release()
            shutil.rmtree(socket_dir, ignore_errors=True)
