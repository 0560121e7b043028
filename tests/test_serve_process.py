"""``patron serve`` as ``make run`` starts it on a fresh machine: no ``DATABASE_URL``, so it
starts the embedded PostgreSQL in ``PATRON_HOME``, migrates, prints one banner on the
terminal (URL, docs, the first admin key once) and serves; on SIGTERM it shuts down
cleanly and stops the embedded server too. A restart's banner has no key."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.db.embedded_support import embedded_home
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


@contextmanager
def serving(tmp_path: Path, home: Path, port: int, run: str) -> Iterator[tuple[Path, Path]]:
    """``patron serve`` until its banner is out and ``/health`` answers; SIGTERM on exit.
    Yields the files its stdout (the JSON log stream) and stderr (the terminal) go to."""
    out, err = tmp_path / f"{run}.out", tmp_path / f"{run}.err"
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env |= {"PATRON_HOME": str(home), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    env |= {"GRPC_PORT": "0"}  # serve runs gRPC too: any free port, never a clash
    with out.open("w") as stdout, err.open("w") as stderr:
        # cwd: no developer's .env is read
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(PATRON), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120  # initdb and every migration on a busy CI box
        while True:
            assert process.poll() is None, err.read_text()
            assert time.monotonic() < deadline, f"no banner within 120 s:\n{err.read_text()}"
            if "API docs:" in err.read_text():
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).raise_for_status()
                break
            time.sleep(0.2)
        yield out, err
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err.read_text()


@pytest.fixture
def home() -> Iterator[Path]:
    """``PATRON_HOME`` outside pytest's temp root (see ``embedded_home``)."""
    with embedded_home() as path:
        yield path


def test_patron_serve_runs_on_embedded_postgres_and_stops_it_on_sigterm(
    tmp_path: Path, home: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(tmp_path, home, port, "first") as (out, err):
        terminal = err.read_text()
        found = KEY_LINE.search(terminal)
        assert found, terminal
        key = found.group(1)
        banner = terminal[terminal.index("Patron is serving") :].splitlines()
        assert banner[:5] == [
            f"Patron is serving {base}   API docs: {base}/docs",
            "First start: a platform admin API key was created. It is shown this once:",
            f"  {key}",
            f"  curl -H 'X-API-Key: {key}' -H 'X-Tenant-Id: demo' {base}/api/v1/customers",
            "Make another key: patron apikey create --role admin (add --tenant T to bind it "
            "to one tenant)",
        ]
        assert banner[5].startswith("Development keys: SECRET_KEY and ENCRYPTION_KEYS are")
        response = httpx.post(
            f"{base}/api/v1/customers/upsert",
            params={"app_id": "1", "psid": "42", "first_name": "Ann"},
            headers={"X-API-Key": key, "X-Tenant-Id": "demo"},
        )
        assert response.status_code == 201, response.text
        assert httpx.get(f"{base}/docs").status_code == 200
        # the background services run supervised beside the API, reported on /metrics
        metrics = httpx.get(f"{base}/metrics").text
        assert 'patron_background_service_up{service="webhooks"} 1.0' in metrics
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)
    # the key went to the terminal only: the JSON log stream (stdout) never had it
    log = out.read_text()
    assert key not in log
    assert all(json.loads(line) for line in log.splitlines())
    # atexit ran: the embedded server was stopped (pg_ctl stop -w) with the last process
    # using it; its postmaster may stay a zombie for a moment until its parent reaps it
    deadline = time.monotonic() + 10
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.1)
    left_running = _alive(postmaster)
    if left_running:  # do not leave it behind on this machine either
        os.kill(postmaster, signal.SIGTERM)
    assert not left_running, "the embedded PostgreSQL was left running"

    # a restart says where it serves and how to make a key, and shows no key
    with serving(tmp_path, home, port, "again") as (_, err):
        terminal = err.read_text()
        assert "ptk_" not in terminal
        banner = terminal[terminal.index("Patron is serving") :].splitlines()
        assert banner[:2] == [
            f"Patron is serving {base}   API docs: {base}/docs",
            "API keys: patron apikey create --role admin (add --tenant T to bind it to one tenant)",
        ]
