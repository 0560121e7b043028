"""``patron serve`` on the embedded PostgreSQL, as ``make run`` starts it (issue 10): the
server it starts never outlives the service for good, and its tools stay off the terminal.

Real processes only: ``patron serve`` in a private ``PATRON_HOME`` (no ``DATABASE_URL``),
the wheel's own ``pg_ctl``, and a scan of the machine's processes for postmasters of that
data directory. Slow (initdb and every migration): few tests, generous timeouts.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.db.embedded_support import (
    PATRON,
    START_TIMEOUT,
    embedded_home,
    patron_env,
    pg_program,
    pg_user,
    postmaster_pid,
    postmasters,
    start_serve,
    terminate,
    wait_healthy,
    wait_no_postmaster,
)


def test_a_clean_stop_after_a_sigkill_stops_the_server(tmp_path: Path) -> None:
    """SIGKILL leaves the postmaster (nothing can stop it then); the next start adopts it,
    a CLI command run beside the service leaves it alone, and SIGTERM stops it."""
    with embedded_home() as home:
        pgdata = home / "pgdata"
        first, port = start_serve(home, tmp_path / "first.log")
        try:
            wait_healthy(first, port, tmp_path / "first.log")
        finally:
            first.kill()
            first.wait(30)
        left_over = postmaster_pid(pgdata)
        assert [p.pid for p in postmasters(pgdata)] == [left_over]

        second, port = start_serve(home, tmp_path / "second.log")
        try:
            wait_healthy(second, port, tmp_path / "second.log")
            # A second Patron process on the same home must not stop the service's server.
            cli = subprocess.run(  # noqa: S603 - our own console script
                [str(PATRON), "db", "upgrade"],
                env=patron_env(home),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT,
            )
            assert cli.returncode == 0, cli.stdout + cli.stderr
            assert [p.pid for p in postmasters(pgdata)] == [left_over]
            assert httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200
        finally:
            status = terminate(second)
        assert status == 0, (tmp_path / "second.log").read_text()
        assert wait_no_postmaster(pgdata) == [], "the embedded PostgreSQL was left running"
        assert not psutil.pid_exists(left_over) or (
            psutil.Process(left_over).status() == psutil.STATUS_ZOMBIE
        )


def test_a_server_restarted_under_the_service_is_stopped_with_it(tmp_path: Path) -> None:
    """``pg_ctl restart`` under a running service replaces the postmaster; stopping the
    service stops the new one (the one ``postmaster.pid`` names then)."""
    with embedded_home() as home:
        pgdata = home / "pgdata"
        service, port = start_serve(home, tmp_path / "serve.log")
        try:
            wait_healthy(service, port, tmp_path / "serve.log")
            before = postmaster_pid(pgdata)
            restart = ["restart", "-D", str(pgdata), "-m", "fast", "-w", "-t", "120"]
            with (tmp_path / "pg_ctl.log").open("w") as out:
                subprocess.run(  # noqa: S603 - the wheel's pg_ctl
                    [str(pg_program("pg_ctl")), *restart],
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    user=pg_user(),
                    group=pg_user(),
                    extra_groups=[] if pg_user() else None,
                    cwd="/",
                    timeout=150,
                )
            after = postmaster_pid(pgdata)
            assert after != before
            # The old postmaster is gone for good (reaped, not a zombie any more), as a
            # normal init makes it at once; a zombie would still pass for "running".
            deadline = time.monotonic() + 60
            while psutil.pid_exists(before) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not psutil.pid_exists(before)
            assert [p.pid for p in postmasters(pgdata)] == [after]
        finally:
            status = terminate(service)
        assert status == 0, (tmp_path / "serve.log").read_text()
        assert wait_no_postmaster(pgdata) == [], "the restarted PostgreSQL was left running"


# What initdb, pg_ctl and postgres print on a first start.
TOOL_OUTPUT = (
    "initdb",
    "The files belonging to this database system",
    "Success. You can now start the database server",
    "waiting for server to start",
    "server started",
    "pg_ctl",
    "database system is ready",
)


def test_the_first_start_keeps_the_servers_output_in_its_log_file(tmp_path: Path) -> None:
    """Nothing of initdb, pg_ctl or postgres on the terminal or in the JSON log (INFO level);
    it is all in ``$PATRON_HOME/postgres.log``."""
    terminal = tmp_path / "serve.log"
    with embedded_home() as home:
        pgdata = home / "pgdata"
        service, port = start_serve(home, terminal, LOG_LEVEL="INFO")
        try:
            wait_healthy(service, port, terminal)
        finally:
            status = terminate(service)
        assert status == 0, terminal.read_text()
        assert wait_no_postmaster(pgdata) == []
        server_log = (home / "postgres.log").read_text()
    output = terminal.read_text()
    assert "embedded_postgres_ready" in output  # Patron's own line: the output was captured
    assert [marker for marker in TOOL_OUTPUT if marker in output] == [], output
    assert "The files belonging to this database system" in server_log
    assert "database system is ready to accept connections" in server_log
