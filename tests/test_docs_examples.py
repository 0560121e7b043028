"""The curl examples of docs/api-guide.md, run in order with real curl against a real server.

Each ``curl`` line of a ``sh`` block follows a comment that ends with the status it
promises (``# Create ... → 201``). ``export NAME=...`` lines stand for a value the reader
copies from the previous answer; the test copies it the same way (:data:`COPIED`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from patron.auth.principal import Role
from patron.config import Settings
from tests.conftest import ApiKeyFactory
from tests.live_server import LiveServer

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "api-guide.md"
PROMISE = re.compile(r"→ (\d{3})\b")
PLACEHOLDER = re.compile(r"^export ([A-Z_]+)=\.\.\.")
# What an `export NAME=...` line copies from the answer before it.
COPIED = {"ID": "id", "CURSOR": "next_cursor", "AFTER": "next_cursor"}
# Set by the reader from `make run`'s output; the test provides its own.
GIVEN = {"KEY", "PATRON"}
# How long an empty event feed is polled (another transaction may hold it back).
FEED_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Step:
    """One line of the guide's examples: a curl command and the status it promises, or a
    value to copy from the previous answer into ``name``."""

    command: str | None = None
    status: int | None = None
    name: str | None = None


def guide_steps() -> list[Step]:
    """The steps of every ``sh`` block of the guide, in order (continuations joined)."""
    steps: list[Step] = []
    for token in MarkdownIt("commonmark").parse(GUIDE.read_text(encoding="utf-8")):
        if token.type != "fence" or token.info.strip() != "sh":
            continue
        promised: int | None = None
        for raw in token.content.replace("\\\n", " ").splitlines():
            line = raw.strip()
            if line.startswith("#"):
                found = PROMISE.search(line)
                promised = int(found.group(1)) if found else promised
            elif line.startswith("curl "):
                assert promised is not None, f"no '→ status' comment above: {line}"
                steps.append(Step(command=line, status=promised))
                promised = None
            elif (placeholder := PLACEHOLDER.match(line)) and placeholder.group(1) not in GIVEN:
                assert placeholder.group(1) in COPIED, line
                steps.append(Step(name=placeholder.group(1)))
    return steps


def run(command: str, env: dict[str, str]) -> tuple[int, str, Any]:
    """Run one command in bash; returns (status, response head, JSON body or None)."""
    result = subprocess.run(  # noqa: S603 - the guide's command, run on purpose
        ["bash", "-c", command + " -w '\\n%{http_code}'"],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output, _, status = result.stdout.rpartition("\n")
    head = ""
    if output.startswith("HTTP/"):
        head, _, output = output.partition("\r\n\r\n")
    return int(status), head, json.loads(output) if output.strip() else None


@pytest.fixture(scope="module")
def server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    with LiveServer(settings, database_url) as live:
        yield live


@pytest.fixture
async def platform_key(api_key_headers: ApiKeyFactory) -> str:
    """A platform admin key (no tenant of its own), like the one `make run` prints."""
    headers = await api_key_headers(Role.ADMIN, None, platform=True)
    return headers["X-API-Key"]


def test_the_guide_has_examples_for_each_topic() -> None:
    steps = guide_steps()
    commands = [s.command for s in steps if s.command]
    assert len(commands) >= 20
    assert {s.status for s in steps if s.status} >= {200, 201, 400, 401, 409, 412, 422}
    assert any("Idempotency-Key" in c for c in commands)
    assert any("If-Match" in c for c in commands)
    assert any("cursor=$CURSOR" in c for c in commands)
    assert any("/api/v1/events" in c for c in commands)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_every_example_answers_the_status_it_promises(
    server: LiveServer, platform_key: str
) -> None:
    # The test database is shared by this worker's tests: the tenant is made unique,
    # everything else runs exactly as written.
    tenant = f"demo-{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KEY": platform_key}
    env["PATRON"] = server.url
    answer: Any = None
    seen: list[tuple[int, str]] = []
    for step in guide_steps():
        if step.name is not None:
            value = answer.get(COPIED[step.name]) if isinstance(answer, dict) else None
            assert value, f"nothing to copy into {step.name} from {answer}"
            env[step.name] = str(value)
            continue
        assert step.command is not None
        command = step.command.replace("X-Tenant-Id: demo", f"X-Tenant-Id: {tenant}")
        status, head, answer = run(command, env)
        deadline = time.monotonic() + FEED_WAIT_SECONDS
        while "/api/v1/events?" in command and not answer["events"] and time.monotonic() < deadline:
            # the feed shows a transaction's events once every older transaction on the
            # server has ended (decision 0007); a reader polls again, and so does the test
            time.sleep(0.5)
            status, head, answer = run(command, env)
        seen.append((status, step.command))
        assert status == step.status, (step.command, answer)
        if status >= 400:
            assert answer["status"] == status, answer
            assert answer["type"].startswith("/problems/"), answer
            assert platform_key not in json.dumps(answer)
        if head:
            assert re.search(r"(?im)^etag: \"\d+\"", head), head
    assert len(seen) == len([s for s in guide_steps() if s.command])
