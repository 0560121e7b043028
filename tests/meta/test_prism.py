"""The Graph client against Prism (Stoplight's mock server) serving the project's contract
``tests/meta/spec/meta-graph-user-profile.openapi.yaml``: Prism validates each request
against the spec (path pattern, ``fields`` pattern, a token) and answers the spec's
examples, chosen with ``Prefer`` headers.

Prism is found as ``PATRON_TEST_PRISM`` (a path to the ``prism`` executable), ``prism`` on
``PATH``, or ``npx --yes @stoplight/prism-cli@5.14.2`` (downloads once from the npm
registry). Without any of them, or when it does not start, the tests are skipped, saying
why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patron.meta.errors import GraphThrottled, GraphTokenInvalid
from patron.meta.graph import GraphClient, GraphCredentials, InstagramProfile
from tests.services import free_port

SPEC = Path(__file__).resolve().parent / "spec" / "meta-graph-user-profile.openapi.yaml"
PRISM_VERSION = "5.14.2"
PSID = "6912345678901234"
CREDS = GraphCredentials(app_id="1", access_token="page-token", app_secret="app-secret")


def _command() -> list[str] | None:
    explicit = os.environ.get("PATRON_TEST_PRISM") or shutil.which("prism")
    if explicit:
        return [explicit]
    npx = shutil.which("npx")
    if npx:
        return [npx, "--yes", f"@stoplight/prism-cli@{PRISM_VERSION}"]
    return None


@pytest.fixture(scope="module")
def prism_url() -> Iterator[str]:
    command = _command()
    if command is None:
        pytest.skip("Prism not found: set PATRON_TEST_PRISM, put prism on PATH, or install node")
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [*command, "mock", str(SPEC), "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # npx may download Prism first
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.skip(f"Prism exited before serving (offline npm?): {output[-400:]}")
            try:
                httpx.get(f"{url}/v21.0/1?fields=id", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.skip("Prism did not start within 180 s")
                time.sleep(0.3)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # our own session: npx, node and prism
            process.wait(timeout=30)


class _Prefer(httpx.AsyncHTTPTransport):
    """Adds Prism's ``Prefer`` header (which example / status to answer) to every request."""

    def __init__(self, prefer: str) -> None:
        super().__init__()
        self.prefer = prefer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Prefer"] = self.prefer
        return await super().handle_async_request(request)


def _client(url: str, prefer: str | None = None) -> GraphClient:
    return GraphClient(
        base_url=url,
        max_attempts=2,
        backoff_initial=0.01,
        transport=_Prefer(prefer) if prefer else None,
    )


async def test_messenger_request_passes_the_spec(prism_url: str) -> None:
    client = _client(prism_url)
    try:
        profile = await client.messenger_profile(PSID, CREDS)
    finally:
        await client.aclose()
    assert (profile.first_name, profile.last_name, profile.timezone) == ("Jane", "Doe", -5.0)


async def test_instagram_request_passes_the_spec(prism_url: str) -> None:
    client = _client(prism_url, "example=instagram")
    try:
        profile = await client.instagram_profile("5310000000000042", CREDS)
    finally:
        await client.aclose()
    assert profile == InstagramProfile(
        id="17841400000000001",
        name="Jane Doe",
        username="jane.doe",
        profile_pic="https://scontent.cdninstagram.com/v/example.jpg",
        follower_count=1234,
        is_user_follow_business=True,
        is_business_follow_user=False,
        is_verified_user=False,
    )


async def test_the_spec_errors_are_classified(prism_url: str) -> None:
    expired = _client(prism_url, "code=400, example=invalid_token")
    throttled = _client(prism_url, "code=400, example=page_rate_limit")
    try:
        with pytest.raises(GraphTokenInvalid) as token:
            await expired.messenger_profile(PSID, CREDS)
        with pytest.raises(GraphThrottled) as limit:
            await throttled.messenger_profile(PSID, CREDS)
    finally:
        await expired.aclose()
        await throttled.aclose()
    assert (token.value.meta_code, token.value.fbtrace_id) == (190, "AbCdEfGhIjK")
    assert limit.value.meta_code == 32


async def test_prism_refuses_what_the_spec_refuses(prism_url: str) -> None:
    """The check is real: a request outside the spec (a field it does not know, no token)
    is refused by Prism, so the passes above mean something."""
    async with httpx.AsyncClient(base_url=prism_url) as http:
        unknown = await http.get(
            f"/v21.0/{PSID}?fields=first_name,foo", headers={"Authorization": "Bearer t"}
        )
        anonymous = await http.get(f"/v21.0/{PSID}?fields=first_name")
    assert unknown.status_code == 400
    assert anonymous.status_code == 401
