"""The curl examples of README.md, run as written with real curl against a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from patron.auth.principal import Role
from patron.config import Settings
from tests.conftest import ApiKeyFactory
from tests.live_server import LiveServer

README = Path(__file__).resolve().parents[1] / "README.md"
TOKEN = "EAAB-example-token"  # the access token the first example stores


def readme_commands() -> list[str]:
    """The curl commands of the ``sh`` block under "## Examples", continuations joined."""
    section = README.read_text().split("\n## Examples", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "no ```sh block under ## Examples"
    joined = block.group(1).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]


@pytest.fixture(scope="module")
def server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    with LiveServer(settings, database_url) as live:
        yield live


@pytest.fixture
async def platform_key(api_key_headers: ApiKeyFactory) -> str:
    """A platform admin key (no tenant of its own), like the one `make run` prints."""
    headers = await api_key_headers(Role.ADMIN, None, platform=True)
    return headers["X-API-Key"]


def run_curl(command: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Run one README command in bash with KEY and PATRON set; returns (status, JSON body)."""
    # Only addition: -w prints the status code on a last line of its own.
    result = subprocess.run(  # noqa: S603 - the command is the README's, run on purpose
        ["bash", "-c", command + " -w '\\n%{http_code}'"],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = result.stdout.rpartition("\n")
    assert TOKEN not in result.stdout
    parsed = json.loads(body)
    assert "access_token" not in parsed
    assert "access_token" not in parsed.get("customer", {})
    return int(status), parsed


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_examples_work_as_written(server: LiveServer, platform_key: str) -> None:
    commands = readme_commands()
    assert len(commands) == 5, commands
    assert all('-H "X-Tenant-Id: demo"' in c for c in commands)
    # The test database is shared by the tests of this worker (and "demo" may exist from an
    # earlier run), so the tenant is made unique; everything else runs exactly as written.
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    commands = [c.replace("X-Tenant-Id: demo", f"X-Tenant-Id: {tenant}") for c in commands]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KEY": platform_key,
        "PATRON": server.url,
    }

    status, ada = run_curl(commands[0], env)
    assert status == 201, ada
    assert (ada["first_name"], ada["last_name"]) == ("Ada", "Lovelace")
    assert ada["tenant_id"] == tenant
    assert (ada["app_id"], ada["psid"], ada["platform"]) == (
        "1234567890",
        "6789012345",
        "instagram",
    )
    assert ada["has_access_token"] is True

    status, upserted = run_curl(commands[1], env)
    assert status == 201, upserted
    assert upserted["created"] is True
    grace = upserted["customer"]
    assert (grace["first_name"], grace["last_name"], grace["psid"]) == (
        "Grace",
        "Hopper",
        "5550001111",
    )
    assert grace["profile_pic_url"] == "https://example.com/grace.jpg"

    status, by_psid = run_curl(commands[2], env)
    assert status == 200, by_psid
    assert by_psid["id"] == grace["id"]
    assert by_psid["first_name"] == "Grace"

    status, page = run_curl(commands[3], env)
    assert status == 200, page
    assert [c["id"] for c in page["customers"]] == [ada["id"]]
    assert (page["total"], page["page_size"]) == (1, 10)

    assert "CUSTOMER_ID" in commands[4]
    status, blocked = run_curl(commands[4].replace("CUSTOMER_ID", ada["id"]), env)
    assert status == 200, blocked
    assert blocked["id"] == ada["id"]
    assert (blocked["status"], blocked["block_reason"]) == ("BLOCKED", "spam")
    assert blocked["blocked_at"] is not None


def test_readme_names_the_default_port() -> None:
    assert "export PATRON=http://127.0.0.1:8007" in README.read_text()
    assert Settings(_env_file=None).port == 8007  # type: ignore[call-arg]
