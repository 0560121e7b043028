"""The profile cache, in process and in Redis, against the fake Graph server: a second fetch
makes no call, failures are not kept, concurrent fetches make one call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from patron.config import Settings
from patron.meta.cache import (
    MemoryProfileStore,
    ProfileFetcher,
    ProfileStore,
    RedisProfileStore,
    build_profile_fetcher,
    profile_key,
)
from patron.meta.errors import GraphTokenInvalid, GraphUnavailable
from patron.meta.graph import GraphCredentials, MessengerProfile, Platform
from tests import services
from tests.meta.conftest import APP_SECRET, make_client
from tests.meta.fake_graph import FakeGraph, Reply

PSID = "6912345678901234"
IGSID = "5310000000000042"


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = services.redis_url()
    if url is None:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (PATRON_TEST_REDIS_URL)")
    return url


@pytest.fixture(params=["memory", "redis"])
async def fetcher(
    request: pytest.FixtureRequest, graph: FakeGraph
) -> AsyncIterator[ProfileFetcher]:
    """A fetcher of the fake server over each store (the credentials make the keys unique)."""
    store: ProfileStore
    if request.param == "redis":
        store = RedisProfileStore.from_url(request.getfixturevalue("redis_url"))
    else:
        store = MemoryProfileStore(ttl=60)
    f = ProfileFetcher(make_client(graph), store, ttl=60)
    yield f
    await f.aclose()


async def test_a_second_fetch_makes_no_call(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    first = await fetcher.messenger_profile(PSID, creds)
    second = await fetcher.messenger_profile(PSID, creds)
    ig = await fetcher.instagram_profile(IGSID, creds)
    ig_again = await fetcher.instagram_profile(IGSID, creds)

    assert first == second
    assert first.first_name == "Jane"
    assert ig == ig_again
    assert ig.username == "jane.doe"
    assert graph.count(PSID) == 1
    assert graph.count(IGSID) == 1


async def test_the_key_holds_app_page_and_user(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    await fetcher.messenger_profile(PSID, creds)
    other_page = GraphCredentials(app_id=creds.app_id, page_id="1", access_token="t")
    other_app = GraphCredentials(app_id=creds.app_id + "0", page_id=creds.page_id, access_token="t")
    await fetcher.messenger_profile(PSID, other_page)
    await fetcher.messenger_profile(PSID, other_app)
    await fetcher.messenger_profile("6912345678901235", creds)
    assert graph.count() == 4
    assert profile_key(Platform.MESSENGER, creds, PSID) == (
        f"patron:meta:profile:v1:messenger:{creds.app_id}:{creds.page_id}:{PSID}"
    )


async def test_a_failure_is_not_cached(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    graph.queue(Reply.error("190"))
    with pytest.raises(GraphTokenInvalid):
        await fetcher.messenger_profile(PSID, creds)
    profile = await fetcher.messenger_profile(PSID, creds)
    assert profile.last_name == "Doe"
    assert graph.count() == 2
    await fetcher.messenger_profile(PSID, creds)
    assert graph.count() == 2


async def test_twenty_concurrent_fetches_make_one_call(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    graph.queue(Reply(delay=0.3))  # long enough for every fetch to start before it answers
    profiles = await asyncio.gather(*(fetcher.messenger_profile(PSID, creds) for _ in range(20)))
    assert graph.count() == 1
    assert {p.first_name for p in profiles} == {"Jane"}


async def test_concurrent_fetches_share_a_failure_and_keep_nothing(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    graph.queue(Reply.error("190", delay=0.2))
    results = await asyncio.gather(
        *(fetcher.messenger_profile(PSID, creds) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, GraphTokenInvalid) for r in results)
    assert graph.count() == 1
    await fetcher.messenger_profile(PSID, creds)
    assert graph.count() == 2


async def test_a_cancelled_waiter_does_not_cancel_the_others(
    graph: FakeGraph, fetcher: ProfileFetcher, creds: GraphCredentials
) -> None:
    graph.queue(Reply(delay=0.3))
    first = asyncio.create_task(fetcher.messenger_profile(PSID, creds))
    second = asyncio.create_task(fetcher.messenger_profile(PSID, creds))
    await asyncio.sleep(0.1)
    first.cancel()
    assert (await second).first_name == "Jane"
    assert graph.count() == 1


async def test_redis_replicas_make_one_call(
    graph: FakeGraph, redis_url: str, creds: GraphCredentials
) -> None:
    """Two fetchers with their own clients and Redis connections, as two processes."""
    replicas = [
        ProfileFetcher(make_client(graph), RedisProfileStore.from_url(redis_url), ttl=60)
        for _ in range(2)
    ]
    graph.queue(Reply(delay=0.3))
    try:
        profiles = await asyncio.gather(
            *(r.messenger_profile(PSID, creds) for r in replicas for _ in range(10))
        )
    finally:
        for r in replicas:
            await r.aclose()
    assert graph.count() == 1
    assert len(profiles) == 20


async def test_redis_holds_the_profile_for_the_ttl(
    graph: FakeGraph, redis_url: str, creds: GraphCredentials
) -> None:
    fetcher = ProfileFetcher(make_client(graph), RedisProfileStore.from_url(redis_url), ttl=120)
    redis = Redis.from_url(redis_url)
    key = profile_key(Platform.MESSENGER, creds, PSID)
    try:
        profile = await fetcher.messenger_profile(PSID, creds)
        stored = await redis.get(key)
        ttl = await redis.ttl(key)
    finally:
        await redis.aclose()
        await fetcher.aclose()
    assert stored is not None
    assert MessengerProfile.model_validate_json(stored) == profile
    assert 110 <= ttl <= 120


async def test_the_memory_cache_expires(graph: FakeGraph, creds: GraphCredentials) -> None:
    fetcher = ProfileFetcher(make_client(graph), MemoryProfileStore(ttl=1), ttl=1)
    try:
        await fetcher.messenger_profile(PSID, creds)
        await fetcher.messenger_profile(PSID, creds)
        assert graph.count() == 1
        await asyncio.sleep(1.1)
        await fetcher.messenger_profile(PSID, creds)
    finally:
        await fetcher.aclose()
    assert graph.count() == 2


async def test_a_redis_outage_costs_calls_not_fetches(
    graph: FakeGraph, creds: GraphCredentials
) -> None:
    down = RedisProfileStore.from_url(f"redis://127.0.0.1:{services.free_port()}/0")
    fetcher = ProfileFetcher(make_client(graph), down, ttl=60)
    try:
        assert (await fetcher.messenger_profile(PSID, creds)).first_name == "Jane"
        assert (await fetcher.messenger_profile(PSID, creds)).first_name == "Jane"
    finally:
        await fetcher.aclose()
    assert graph.count() == 2


async def test_ttl_zero_turns_the_cache_off(graph: FakeGraph, creds: GraphCredentials) -> None:
    fetcher = ProfileFetcher(make_client(graph), MemoryProfileStore(ttl=0), ttl=0)
    try:
        await fetcher.messenger_profile(PSID, creds)
        await fetcher.messenger_profile(PSID, creds)
    finally:
        await fetcher.aclose()
    assert graph.count() == 2


async def test_built_from_settings(
    graph: FakeGraph, redis_url: str, creds: GraphCredentials
) -> None:
    base = Settings(
        _env_file=None,
        meta_graph_base_url=graph.url,
        meta_graph_api_version="v22.0",
        meta_app_secret=APP_SECRET,
        meta_graph_max_attempts=1,
    )
    assert base.profile_cache_ttl == 86400
    for settings in (base, base.model_copy(update={"redis_url": redis_url})):
        fetcher = build_profile_fetcher(settings)
        expected = RedisProfileStore if settings.redis_url else MemoryProfileStore
        assert isinstance(fetcher.store, expected)
        assert fetcher.ttl == 86400
        graph.queue(Reply(status=500, body="down"))
        try:
            with pytest.raises(GraphUnavailable):  # one attempt: META_GRAPH_MAX_ATTEMPTS=1
                await fetcher.messenger_profile(PSID, creds)
            await fetcher.messenger_profile(PSID, creds)
        finally:
            await fetcher.aclose()
    assert [r.path for r in graph.requests] == [f"/v22.0/{PSID}"] * 4
    assert graph.count() == 4
