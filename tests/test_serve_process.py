"""``patron serve`` as ``make run`` starts it on a fresh machine: no ``DATABASE_URL``, so it
starts the embedded PostgreSQL in ``PATRON_HOME``, migrates, prints a platform admin key
once and serves; on SIGTERM it shuts down cleanly and stops the embedded server too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import free_port

PATRON = Path(sys.executable).with_name("patron")
# Settings that would point the process at this machine's services instead.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL", "KAFKA_BOOTSTRAP_SERVERS")
KEY_LINE = re.compile(r"curl -H 'X-API-Key: (\S+)'")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_patron_serve_runs_on_embedded_postgres_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "serve.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env |= {"PATRON_HOME": str(home), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        # cwd: no developer's .env is read
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(PATRON), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120  # initdb and every migration on a busy CI box
        key = None
        while key is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (
                f"no key and /health within 120 s:\n{log.read_text()}"
            )
            found = KEY_LINE.search(log.read_text())
            if found:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).raise_for_status()
                    key = found.group(1)
                except httpx.HTTPError:
                    pass
            if key is None:
                time.sleep(0.2)
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/customers/upsert",
            params={"app_id": "1", "psid": "42", "first_name": "Ann"},
            headers={"X-API-Key": key, "X-Tenant-Id": "demo"},
        )
        assert response.status_code == 201, response.text
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
    # atexit ran: the embedded server was stopped (pg_ctl stop -w) with the last process
    # using it; its postmaster may stay a zombie for a moment until its parent reaps it
    deadline = time.monotonic() + 10
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.1)
    left_running = _alive(postmaster)
    if left_running:  # do not leave it behind on this machine either
        os.kill(postmaster, signal.SIGTERM)
    assert process.returncode == 0, log.read_text()
    assert not left_running, "the embedded PostgreSQL was left running"
