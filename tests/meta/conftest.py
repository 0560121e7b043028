"""Helpers of the Meta tests (the fake Graph server fixtures, ``graph_server`` and ``graph``,
are in tests/conftest.py: the profile-fetch tests use them too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from patron.meta.graph import GraphClient, GraphCredentials
from tests.meta.fake_graph import APP_SECRET, FakeGraph

TOKEN = "EAAG-page-token-0123456789"


def make_client(graph: FakeGraph, **overrides: Any) -> GraphClient:
    """A client of ``graph`` with fast retries (tests measure counts, not real backoff)."""
    options: dict[str, Any] = {
        "base_url": graph.url,
        "api_version": "v21.0",
        "app_secret": APP_SECRET,
        "read_timeout": 5.0,
        "max_attempts": 4,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "usage_pause": 0.05,
        **overrides,
    }
    return GraphClient(**options)


@pytest.fixture
async def client(graph: FakeGraph) -> AsyncIterator[GraphClient]:
    c = make_client(graph)
    yield c
    await c.aclose()


@pytest.fixture
def creds() -> GraphCredentials:
    """Credentials of a fresh app and page (so cache keys never meet another test's)."""
    return GraphCredentials(
        app_id=f"app{uuid.uuid4().int % 10**12}",
        page_id=f"{uuid.uuid4().int % 10**15}",
        access_token=TOKEN,
    )
