"""The ``patron`` command line against the test database: commands, their help, their
one-line failures, and API keys listed and revoked."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from patron.auth.principal import Role
from patron.cli import app as cli
from patron.config import get_settings
from tests.conftest import cli_failure
from tests.problems import usage_error
from tests.services import free_port

PATRON = Path(sys.executable).with_name("patron")
HEAVY = ("sqlalchemy", "alembic", "boto3", "fastapi", "pydantic")


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``patron ARGS`` as a user runs it: its own process, this environment only."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(PATRON), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def bare_env(**values: str) -> dict[str, str]:
    """The process environment without Patron's settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return env | values


def test_the_cli_module_loads_no_application_stack() -> None:
    """``patron --help`` stays fast because importing the CLI and rendering its help load
    none of the heavy libraries (a stable proxy for the timing)."""
    code = (
        "import sys\n"
        "from patron.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='patron')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage: patron" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_version_from_package_metadata(tmp_path: Path) -> None:
    expected = f"patron {version('patron')}"
    assert CliRunner().invoke(cli, ["--version"]).output.strip() == expected
    as_module = subprocess.run(
        [sys.executable, "-m", "patron", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (as_module.returncode, as_module.stdout.strip()) == (0, expected)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command`` (typer's own click: groups have ``commands``)."""
    found = [path]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def test_help_has_no_raw_markup() -> None:
    commands = _commands(get_command(cli))
    assert ("apikey", "revoke") in commands
    assert len(commands) >= 15
    for path in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "``" not in result.output, path
        assert ":class:" not in result.output, path


@pytest.mark.usefixtures("cli_env")
def test_db_upgrade_is_idempotent() -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "upgraded to head" in result.output


@pytest.mark.usefixtures("cli_env")
async def test_apikey_create_prints_a_working_key(client: httpx.AsyncClient, tenant: str) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["apikey", "create", "--tenant", tenant, "--role", "manager"]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ptk_")
    listed = await client.get("/api/v1/customers", headers={"X-API-Key": key})
    assert listed.status_code == 200
    refused = await client.post(
        "/api/v1/customers/upsert", json={"email": "a@example.com"}, headers={"X-API-Key": key}
    )
    assert refused.status_code == 403


@pytest.mark.usefixtures("cli_env")
def test_apikey_create_rejects_bad_role() -> None:
    result = CliRunner().invoke(cli, ["apikey", "create", "--role", "overlord"])
    assert "Invalid value for '--role': Value error, 'overlord' is not one of" in usage_error(
        result
    )


async def _invoke(*args: str) -> str:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("cli_env")
async def test_apikey_list_shows_keys_without_their_secrets(tenant: str, db: object) -> None:
    name = f"list-{uuid.uuid4().hex[:8]}"
    secret = (
        await _invoke("apikey", "create", "--tenant", tenant, "--role", "agent", "--name", name)
    ).strip()
    platform = (await _invoke("apikey", "create", "--role", "service", "--name", name)).strip()
    listed = await _invoke("apikey", "list")
    header, *rows = listed.splitlines()
    assert header.split() == ["ID", "NAME", "ROLE", "TENANT", "CREATED", "REVOKED"]
    mine = [row.split() for row in rows if name in row.split()]
    assert [(r[1], r[2], r[3], r[5]) for r in mine] == [
        (name, "agent", tenant, "-"),
        (name, "service", "platform", "-"),
    ]
    assert all(uuid.UUID(r[0]) and re.fullmatch(r"\d{4}-\d\d-\d\dT\S+", r[4]) for r in mine)
    digest_like = re.compile(r"\b[0-9a-f]{64}\b")
    # the random part alone (ptk_<prefix>_<random>; the random part may hold "_" itself)
    for shown in (secret, platform, secret.split("_", 2)[-1]):
        assert shown not in listed
    assert not digest_like.search(listed)


@pytest.mark.usefixtures("cli_env")
async def test_apikey_revoke_stops_a_cached_key_at_once(
    client: httpx.AsyncClient, tenant: str
) -> None:
    key = (await _invoke("apikey", "create", "--tenant", tenant, "--role", "agent")).strip()
    headers = {"X-API-Key": key}
    # twice: the second answer comes from the process's key cache
    for _ in range(2):
        assert (await client.get("/api/v1/customers", headers=headers)).status_code == 200
    key_id = next(
        row.split()[0]
        for row in (await _invoke("apikey", "list")).splitlines()
        if tenant in row.split()
    )
    assert (await _invoke("apikey", "revoke", key_id)).strip() == f"API key {key_id} revoked"
    # PostgreSQL hands a NOTIFY to its listeners just after the commit, not within it
    # (milliseconds); the cache would otherwise serve the key for CACHE_SECONDS (30 s)
    deadline = time.monotonic() + 2
    while (refused := await client.get("/api/v1/customers", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key still authenticates"
        await asyncio.sleep(0.01)
    assert refused.status_code == 401, refused.text
    listed = await _invoke("apikey", "list")
    assert next(r for r in listed.splitlines() if r.startswith(key_id)).split()[5] != "-"
    again = await asyncio.to_thread(CliRunner().invoke, cli, ["apikey", "revoke", key_id])
    assert cli_failure(again, 1) == (
        f"patron: no live API key has id {key_id} (unknown or already revoked)"
    )
    assert "not a key id" in usage_error(CliRunner().invoke(cli, ["apikey", "revoke", "nope"]))


# fixed ids: xdist workers must collect the same test names
SOME_ID = "00000000-0000-7000-8000-000000000001"
UNREACHABLE_COMMANDS = [
    ["db", "upgrade"],
    ["api"],
    ["apikey", "create", "--role", "admin"],
    ["apikey", "list"],
    ["apikey", "revoke", SOME_ID],
    ["events", "resend", "--id", SOME_ID],
    ["events", "prune", "--older-than-days", "1"],
    ["stats", "rebuild"],
]


@pytest.mark.parametrize("args", UNREACHABLE_COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://patron:pw-s3cret@127.0.0.1:{port}/x")
    monkeypatch.setenv("PATRON_ENV", "test")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        get_settings.cache_clear()
    line = cli_failure(result, 1)
    assert line.startswith(f"patron: cannot reach the database at 127.0.0.1:{port}/x: "), line
    assert "pw-s3cret" not in result.output


def test_a_missing_database_is_one_line(tmp_path: Path, server_url: str) -> None:
    url = server_url.rsplit("/", 1)[0] + "/patron_no_such_database"
    done = run("db", "upgrade", env=bare_env(DATABASE_URL=url, PATRON_ENV="test"), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"patron: cannot reach the database at {url.split('@')[-1]}: "
        'database "patron_no_such_database" does not exist'
    ]


def test_api_in_production_with_settings_missing_refuses_in_one_line_each(
    tmp_path: Path,
) -> None:
    """The refusal an operator sees: one line per setting, exit 78 (EX_CONFIG), no
    traceback, no value of a secret."""
    env = bare_env(PATRON_ENV="production", SECRET_KEY="too-short-s3cret", PORT="80")
    done = run("api", env=env, cwd=tmp_path)
    assert done.returncode == 78
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "patron: configuration error: SECRET_KEY must be at least 32 characters",
        "patron: configuration error: DATABASE_URL must be set when PATRON_ENV=production "
        "(the embedded PostgreSQL is for development only)",
        "patron: configuration error: ENCRYPTION_KEYS must be set: the development key is "
        "public (PATRON_ENV=production)",
    ]
    env |= {"SECRET_KEY": "x" * 40, "DATABASE_URL": "postgresql://u:pw-s3cret@127.0.0.1/db"}
    env |= {"ENCRYPTION_KEYS": "k1:bm90LWJhc2U2NA", "PORT": "not-a-port-s3cret"}
    done = run("api", env=env, cwd=tmp_path)
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        "patron: configuration error: PORT: Input should be a valid integer, unable to parse "
        "string as an integer"
    ]
    env["PORT"] = "8007"
    done = run("api", env=env, cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (
        78,
        ["patron: configuration error: ENCRYPTION_KEYS: key 'k1' is not valid base64"],
    )
    assert "s3cret" not in done.stdout + done.stderr


def test_a_configured_feature_without_its_extra_is_one_line(tmp_path: Path) -> None:
    # hide the installed aiokafka as if the extra were not installed: None in sys.modules
    # makes both importlib.util.find_spec and import say it is missing
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['aiokafka'] = None\n")
    env = bare_env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9092", PYTHONPATH=str(shadow))
    done = run("relay", env=env, cwd=tmp_path)
    assert (done.returncode, done.stderr.splitlines()) == (
        78,
        [
            "patron: configuration error: KAFKA_BOOTSTRAP_SERVERS is set but the 'kafka' "
            "extra is not installed (aiokafka is missing): pip install 'patron[kafka]', or "
            "uv sync --extra kafka in a checkout"
        ],
    )


@pytest.mark.usefixtures("cli_env")
def test_unknown_patron_variables_are_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATRON_ENVIRONMENT", "production")
    monkeypatch.setenv("SMS_WEBHOOK_URL", "https://sms.example/send")
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    # (alembic's log records may follow on stderr in-process)
    assert [line for line in result.stderr.splitlines() if line.startswith("patron:")] == [
        "patron: warning: PATRON_ENVIRONMENT is not a Patron setting and is ignored "
        "(check its spelling)",
        "patron: warning: SMS_WEBHOOK_URL is set but does nothing yet in this version",
    ]


def test_apikey_roles_are_the_known_roles() -> None:
    help_text = CliRunner().invoke(cli, ["apikey", "create", "--help"]).output
    for role in Role:
        assert role.value in help_text
