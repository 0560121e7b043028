"""Search (``GET /customers?q=``) over real HTTP, with Hypothesis.

Hypothesis drives a synchronous ``httpx.Client`` against a uvicorn server in a background
thread (its own loop and engine), so no test shares the pytest-asyncio event loop. The
oracle for matching is plain substring containment over the stored search documents,
folded by the database's own ``patron_unaccent(lower(...))``: any difference from the
LIKE-based implementation is an escaping or folding bug.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from patron.auth.principal import Role
from patron.config import Settings
from patron.db.urls import libpq_dsn
from tests.conftest import ApiKeyFactory
from tests.live_server import LiveServer

T = TypeVar("T")
MAX_Q = 200  # Query(max_length=200) on q in customers/endpoints.py

SEED: list[dict[str, Any]] = [
    {"first_name": "José", "last_name": "Núñez", "email": "jose@example.com"},
    {"first_name": "50%_off", "last_name": "Deal"},
    {"first_name": "5000off", "last_name": "Deal"},
    {"first_name": "back\\slash", "psid": "PS-100"},
    {"first_name": "under_score", "phone": "+1 415 555 0100"},
    {"first_name": "Zoë 😀", "last_name": "Ærø"},
    {"first_name": "ΣΟΦΙΑ", "last_name": "Ivanova"},
]

# Fullwidth and small forms that unaccent folds to the LIKE metacharacters % _ \.
PCT, LOW, BSL, SMALL_PCT = "\uff05", "\uff3f", "\uff3c", "\ufe6a"
SPECIAL = [*"%_\\\x00 é😀ÆΣİ'\"*?[]^$.-+", PCT, LOW, BSL, SMALL_PCT]
queries = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(SPECIAL), max_size=MAX_Q + 20
)


class Folder:
    """``fold(text)`` = ``patron_unaccent(lower(text))`` computed by PostgreSQL, from sync code
    (an asyncpg pool on a private event loop in a daemon thread)."""

    def __init__(self, database_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._pool: asyncpg.Pool = self._run(self._connect(libpq_dsn(database_url)))

    @staticmethod
    async def _connect(dsn: str) -> asyncpg.Pool:
        return await asyncpg.create_pool(dsn, min_size=1, max_size=1)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def fold(self, text: str) -> str:
        return str(self._run(self._pool.fetchval("SELECT patron_unaccent(lower($1))", text)))

    def documents(self, tenant: str) -> dict[str, str]:
        rows = self._run(
            self._pool.fetch(
                "SELECT id, search_document FROM customers WHERE tenant_id = $1 AND deleted_at IS NULL",
                tenant,
            )
        )
        return {str(r["id"]): r["search_document"] for r in rows}

    def close(self) -> None:
        self._run(self._pool.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    with LiveServer(settings, database_url) as live:
        yield live


@pytest.fixture(scope="module")
def folder(database_url: str) -> Iterator[Folder]:
    f = Folder(database_url)
    yield f
    f.close()


@pytest.fixture
async def headers(api_key_headers: ApiKeyFactory, tenant: str) -> dict[str, str]:
    return await api_key_headers(Role.ADMIN, tenant)


@pytest.fixture
def http(server: LiveServer, headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def seeded(http: httpx.Client) -> dict[str, str]:
    """The SEED customers of this test's tenant: first_name -> id."""
    ids = {}
    for fields in SEED:
        response = http.post("/api/v1/customers", json=fields)
        assert response.status_code == 201, response.text
        ids[fields["first_name"]] = response.json()["id"]
    return ids


def search(http: httpx.Client, q: str) -> httpx.Response:
    return http.get("/api/v1/customers", params={"q": q, "page_size": 100})


def found(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    ids = {c["id"] for c in body["customers"]}
    assert body["total"] == len(ids)
    return ids


@given(q=queries)
@example(q="50%_")
@example(q=PCT)
@example(q="\\")
@example(q="_")
@example(q="%")
@example(q="a\x00b")
@example(q="x" * (MAX_Q + 1))
@example(q="😀" * MAX_Q)
@example(q="JOSÉ")
@example(q="  jose  ")
@example(q="ps-1")
@example(q="+1415")
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_q_is_answered_and_matches_by_substring(
    q: str, http: httpx.Client, seeded: dict[str, str], folder: Folder, tenant: str
) -> None:
    response = search(http, q)
    if len(q) > MAX_Q:
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["loc"] == ["query", "q"]
        return
    if "\x00" in q:  # PostgreSQL text cannot hold NUL: refused as invalid input
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        return
    docs = folder.documents(tenant)
    assert set(docs) == set(seeded.values())
    needle = folder.fold(q.strip())
    assert found(response) == {cid for cid, doc in docs.items() if needle in doc}, (needle, docs)


def test_percent_and_underscore_match_literally(http: httpx.Client, seeded: dict[str, str]) -> None:
    assert found(search(http, "50%_")) == {seeded["50%_off"]}
    assert found(search(http, "0%")) == {seeded["50%_off"]}
    assert found(search(http, "r_s")) == {seeded["under_score"]}
    assert found(search(http, "k\\s")) == {seeded["back\\slash"]}
    assert found(search(http, "%")) == {seeded["50%_off"]}
    assert found(search(http, "_")) == {seeded["50%_off"], seeded["under_score"]}


def test_fullwidth_wildcards_fold_to_literals_not_wildcards(
    http: httpx.Client, seeded: dict[str, str]
) -> None:
    """unaccent folds fullwidth % _ \\ to ASCII; they must still match literally."""
    assert found(search(http, f"50{PCT}{LOW}")) == {seeded["50%_off"]}
    assert found(search(http, PCT)) == {seeded["50%_off"]}
    assert found(search(http, LOW)) == {seeded["50%_off"], seeded["under_score"]}
    assert found(search(http, f"k{BSL}s")) == {seeded["back\\slash"]}
    assert found(search(http, f"5{PCT}0")) == set()


@pytest.mark.parametrize(
    "q", ["jose", "JOSÉ", "José", "JOSE", "josé", "nunez", "NÚÑEZ", "José Núñez"]
)
def test_accent_and_case_insensitive(q: str, http: httpx.Client, seeded: dict[str, str]) -> None:
    assert found(search(http, q)) == {seeded["José"]}


def test_other_fields_are_searched(http: httpx.Client, seeded: dict[str, str]) -> None:
    assert found(search(http, "JOSE@EXAMPLE")) == {seeded["José"]}
    assert found(search(http, "ps-100")) == {seeded["back\\slash"]}
    assert found(search(http, "4155550100")) == {seeded["under_score"]}
    assert found(search(http, "zoe")) == {seeded["Zoë 😀"]}
    assert found(search(http, "😀")) == {seeded["Zoë 😀"]}
    assert found(search(http, "aero")) == {seeded["Zoë 😀"]}
    assert found(search(http, "sofia")) == set()  # Greek is not transliterated
    assert found(search(http, "σοφια")) == {seeded["ΣΟΦΙΑ"]}


def test_over_long_and_nul_queries_are_422(http: httpx.Client) -> None:
    too_long = search(http, "x" * (MAX_Q + 1))
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"
    assert search(http, "x" * MAX_Q).status_code == 200
    nul = search(http, "a\x00b")
    assert nul.status_code == 422
    assert nul.json()["type"] == "/problems/validation-error"
