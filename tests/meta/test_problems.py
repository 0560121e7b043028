"""Graph failures reach an HTTP client as RFC 9457 problems through Patron's one handler:
502 for an upstream failure, 504 for a timeout, with Meta's code and fbtrace_id."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from patron.http.problems import install_handlers
from patron.meta.graph import GraphClient, GraphCredentials
from tests.meta.conftest import TOKEN, make_client
from tests.meta.fake_graph import FakeGraph, Reply

PSID = "6912345678901234"


def _app(client: GraphClient, creds: GraphCredentials) -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.get("/profile")
    async def profile() -> dict[str, str | None]:
        return {"first_name": (await client.messenger_profile(PSID, creds)).first_name}

    return app


@pytest.mark.parametrize(
    ("reply", "status", "kind", "meta_code"),
    [
        (Reply.error("190"), 502, "meta-token-invalid", 190),
        (Reply.error("100"), 502, "meta-request-rejected", 100),
        (Reply(delay=1.0), 504, "meta-timeout", None),
    ],
    ids=["190", "100", "timeout"],
)
async def test_graph_failures_are_problems(
    graph: FakeGraph,
    creds: GraphCredentials,
    reply: Reply,
    status: int,
    kind: str,
    meta_code: int | None,
) -> None:
    client = make_client(graph, read_timeout=0.2, max_attempts=1)
    graph.queue(reply)
    try:
        transport = httpx.ASGITransport(app=_app(client, creds))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/profile")
    finally:
        await client.aclose()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{kind}"
    assert problem["status"] == status
    assert problem["meta_code"] == meta_code
    assert problem["fbtrace_id"] == ("AbCdEfGhIjK" if meta_code else None)
    assert TOKEN not in response.text
