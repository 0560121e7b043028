"""Meta profile fetch (issue 11): ``POST /customers/{id}/fetch-profile`` and the
``customers.fetch_profile`` job, against the real database and a real local fake of the
Graph API (``tests/meta/fake_graph.py``), through an app whose profile fetcher points at it.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from patron.app import create_app
from patron.context import AppContext
from patron.customers.profile import FETCH_PROFILE, FETCH_PROFILE_KIND, timezone_name
from patron.jobs.kinds import JobRegistry
from patron.jobs.worker import JobWorker
from patron.meta.cache import MemoryProfileStore, ProfileFetcher
from patron.meta.graph import GraphClient
from tests.conftest import create_customer, make_settings, outbox_rows
from tests.meta.fake_graph import APP_SECRET, MESSENGER_EXAMPLE, FakeGraph, Reply

CUSTOMERS = "/api/v1/customers"


def meta_id() -> str:
    """A numeric Meta id no other test uses (pages are unique across every tenant)."""
    return "9" + "".join(secrets.choice("0123456789") for _ in range(15))


@pytest.fixture(scope="module")
async def fetch_ctx(app_ctx: AppContext, graph_server: FakeGraph) -> AsyncIterator[AppContext]:
    """The test process's context (same database and pools) with a profile fetcher of the
    fake Graph server (fast retries, in-process cache) and fast job settings."""
    client = GraphClient(
        base_url=graph_server.url,
        app_secret=APP_SECRET,
        read_timeout=5.0,
        max_attempts=2,
        backoff_initial=0.01,
        backoff_max=0.02,
        usage_pause=0.01,
    )
    fetcher = ProfileFetcher(client, MemoryProfileStore(60), 60)
    settings = make_settings(
        jwks_url=app_ctx.settings.jwks_url,
        jobs_poll_interval_seconds=0.02,
        jobs_lease_seconds=30.0,
    )
    yield dataclasses.replace(app_ctx, settings=settings, profiles=fetcher)
    await fetcher.aclose()


@pytest.fixture
async def api(fetch_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fetch_ctx.settings, context=fetch_ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as c:
        yield c


async def make_channel(
    api: httpx.AsyncClient, headers: dict[str, str], platform: str = "facebook"
) -> dict[str, Any]:
    """A channel created through the API; ``access_token`` added to the body returned."""
    body = {
        "platform": platform,
        "app_id": meta_id(),
        "page_id": meta_id(),
        "access_token": f"EAAG-page-token-{secrets.token_hex(8)}",
    }
    response = await api.post("/api/v1/channels", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "access_token": body["access_token"]}


async def fetch(
    api: httpx.AsyncClient, headers: dict[str, str], customer_id: str
) -> httpx.Response:
    return await api.post(f"{CUSTOMERS}/{customer_id}/fetch-profile", headers=headers)


def bearer(graph: FakeGraph) -> list[str]:
    return [r.headers.get("authorization", "") for r in graph.requests]


async def test_messenger_fetch_fills_the_profile_with_the_channel_token(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    channel = await make_channel(api, admin)
    psid = meta_id()
    made = await create_customer(
        api, admin, platform="facebook", app_id=channel["app_id"], psid=psid
    )

    response = await fetch(api, admin, made["id"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert body["version"] == made["version"] + 1
    assert (body["first_name"], body["last_name"], body["full_name"]) == ("Jane", "Doe", "Jane Doe")
    assert body["profile_pic_url"] == MESSENGER_EXAMPLE["profile_pic"]
    assert (body["locale"], body["timezone"], body["gender"]) == ("en_US", "Etc/GMT+5", "female")
    assert body["profile_fetched_at"] is not None
    assert body["attributes"] == {}
    # one Graph call, for the PSID, with the channel's token and the app's proof
    assert [r.path for r in graph.requests] == [f"/v21.0/{psid}"]
    assert bearer(graph) == [f"Bearer {channel['access_token']}"]
    assert graph.requests[0].query["appsecret_proof"]
    # what GET answers is what was committed
    again = await api.get(f"{CUSTOMERS}/{made['id']}", headers=admin)
    assert again.json() == body
    updated = await outbox_rows(db, tenant, "customer.updated")
    assert len(updated) == 1
    assert updated[0]["data"]["fields_changed"] == [
        "first_name",
        "gender",
        "last_name",
        "locale",
        "profile_fetched_at",
        "profile_pic_url",
        "timezone",
    ]


async def test_instagram_fetch_keeps_the_name_whole_and_the_fields_under_attributes(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str]
) -> None:
    channel = await make_channel(api, admin, platform="instagram")
    igsid = meta_id()
    made = await create_customer(
        api,
        admin,
        platform="instagram",
        app_id=channel["app_id"],
        igsid=igsid,
        attributes={"favourite_colour": "green"},
    )

    response = await fetch(api, admin, made["id"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first_name"], body["last_name"]) == ("Jane Doe", None)
    assert body["profile_pic_url"] == "https://scontent.cdninstagram.com/v/example.jpg"
    assert body["attributes"] == {
        "favourite_colour": "green",
        "instagram": {
            "name": "Jane Doe",
            "username": "jane.doe",
            "follower_count": 1234,
            "is_user_follow_business": True,
            "is_business_follow_user": False,
            "is_verified_user": False,
        },
    }
    assert (body["locale"], body["timezone"], body["gender"]) == (None, None, None)
    assert [r.path for r in graph.requests] == [f"/v21.0/{igsid}"]
    assert "username" in graph.requests[0].query["fields"].split(",")


async def test_only_empty_fields_are_filled(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str]
) -> None:
    channel = await make_channel(api, admin)
    made = await create_customer(
        api,
        admin,
        platform="facebook",
        app_id=channel["app_id"],
        psid=meta_id(),
        first_name="Ada",
        locale="fr_FR",
        timezone="Europe/Paris",
        profile_pic_url="https://example.com/old.jpg",
    )

    body = (await fetch(api, admin, made["id"])).json()

    assert (body["first_name"], body["last_name"]) == ("Ada", "Doe")
    assert (body["locale"], body["timezone"], body["gender"]) == ("fr_FR", "Europe/Paris", "female")
    # Meta's picture URL expires: it is always refreshed
    assert body["profile_pic_url"] == MESSENGER_EXAMPLE["profile_pic"]


async def test_the_customers_own_token_wins_over_the_channels(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str]
) -> None:
    channel = await make_channel(api, admin)
    own = f"EAAG-customer-token-{secrets.token_hex(8)}"
    made = await create_customer(
        api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id(), access_token=own
    )

    response = await fetch(api, admin, made["id"])

    assert response.status_code == 200, response.text
    assert bearer(graph) == [f"Bearer {own}"]
    assert own not in response.text


async def test_a_dead_channel_token_marks_the_channel_and_changes_no_customer(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    channel = await make_channel(api, admin)
    made = await create_customer(
        api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id()
    )
    graph.queue(Reply.error("190"))

    response = await fetch(api, admin, made["id"])

    assert response.status_code == 502, response.text
    problem = response.json()
    assert problem["type"].endswith("meta-token-invalid")
    assert problem["meta_code"] == 190
    assert graph.count() == 1  # 190 is not retried
    marked = (await api.get(f"/api/v1/channels/{channel['id']}", headers=admin)).json()
    assert marked["status"] == "needs_attention"
    assert "190" in marked["status_reason"]
    after = (await api.get(f"{CUSTOMERS}/{made['id']}", headers=admin)).json()
    assert (after["version"], after["profile_fetched_at"]) == (made["version"], None)
    assert await outbox_rows(db, tenant, "customer.updated") == []
    # the channel gives no token now: the next fetch names what is missing, without a call
    refused = await fetch(api, admin, made["id"])
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("no-meta-token")
    assert graph.count() == 1


async def test_a_dead_customer_token_leaves_the_channel_active(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str]
) -> None:
    channel = await make_channel(api, admin)
    made = await create_customer(
        api,
        admin,
        platform="facebook",
        app_id=channel["app_id"],
        psid=meta_id(),
        access_token="EAAG-revoked",
    )
    graph.queue(Reply.error("190"))

    assert (await fetch(api, admin, made["id"])).status_code == 502
    still = (await api.get(f"/api/v1/channels/{channel['id']}", headers=admin)).json()
    assert still["status"] == "active"


async def test_a_timeout_is_504(
    api: httpx.AsyncClient, graph: FakeGraph, fetch_ctx: AppContext, admin: dict[str, str]
) -> None:
    channel = await make_channel(api, admin)
    made = await create_customer(
        api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id()
    )
    impatient = GraphClient(
        base_url=graph.url, app_secret=APP_SECRET, read_timeout=0.1, max_attempts=1
    )
    fetcher = ProfileFetcher(impatient, MemoryProfileStore(60), 60)
    app = create_app(fetch_ctx.settings, context=dataclasses.replace(fetch_ctx, profiles=fetcher))
    graph.queue(Reply(delay=0.5))
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as slow:
            response = await fetch(slow, admin, made["id"])
    finally:
        await fetcher.aclose()
    assert response.status_code == 504, response.text
    assert response.json()["type"].endswith("meta-timeout")


async def test_without_a_meta_id_or_a_token_the_fetch_is_409_and_calls_nobody(
    api: httpx.AsyncClient, graph: FakeGraph, admin: dict[str, str]
) -> None:
    web = await create_customer(api, admin, email=f"{uuid.uuid4().hex}@example.com")
    no_id = await fetch(api, admin, web["id"])
    assert no_id.status_code == 409
    assert no_id.json()["type"].endswith("no-meta-user")

    app_id = meta_id()
    lonely = await create_customer(api, admin, platform="facebook", app_id=app_id, psid=meta_id())
    no_token = await fetch(api, admin, lonely["id"])
    assert no_token.status_code == 409
    problem = no_token.json()
    assert problem["type"].endswith("no-meta-token")
    assert problem["missing"] == (
        f"the customer has no access_token and the tenant has no active facebook channel "
        f"for app {app_id}"
    )
    assert graph.count() == 0
    missing = await fetch(api, admin, str(uuid.uuid4()))
    assert missing.status_code == 404


# -- the job deferred by an upsert ---------------------------------------------------------


async def jobs_of(db: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM jobs WHERE tenant_id = $1 AND kind = $2 ORDER BY created_at",
            tenant,
            FETCH_PROFILE_KIND,
        )
    )


@pytest.fixture
async def worker(fetch_ctx: AppContext) -> AsyncIterator[JobWorker]:
    registry = JobRegistry()
    registry.register(FETCH_PROFILE)
    made = JobWorker(fetch_ctx, registry)
    # jobs other tests' upserts left in this database run (and fail: no token) first
    while await made.run_once():
        pass
    yield made
    await made.aclose()


async def run_until_done(worker: JobWorker, db: asyncpg.Pool, job_id: uuid.UUID) -> str:
    for _ in range(50):
        await worker.run_once()
        status: str = await db.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
        if status != "running" and status != "queued":
            return status
    raise AssertionError("the job did not finish")


async def upsert(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await api.post(f"{CUSTOMERS}/upsert", json=body, headers=headers)


async def test_an_upsert_creating_a_nameless_psid_customer_defers_one_job_that_fills_it(
    api: httpx.AsyncClient,
    graph: FakeGraph,
    worker: JobWorker,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    channel = await make_channel(api, admin)
    psid = meta_id()
    created = await upsert(api, admin, platform="messenger", app_id=channel["app_id"], psid=psid)
    assert created.status_code == 201, created.text
    customer = created.json()["customer"]
    assert customer["first_name"] is None  # the request did not wait for Meta
    assert graph.count() == 0

    jobs = await jobs_of(db, tenant)
    assert [(j["status"], j["payload"]) for j in jobs] == [
        ("queued", {"customer_id": customer["id"]})
    ]
    # the same upsert again (a webhook's retry) creates nothing and defers nothing
    again = await upsert(api, admin, platform="messenger", app_id=channel["app_id"], psid=psid)
    assert again.status_code == 200
    assert len(await jobs_of(db, tenant)) == 1

    assert await run_until_done(worker, db, jobs[0]["id"]) == "completed"
    filled = (await api.get(f"{CUSTOMERS}/{customer['id']}", headers=admin)).json()
    assert (filled["first_name"], filled["last_name"]) == ("Jane", "Doe")
    assert filled["profile_fetched_at"] is not None
    assert bearer(graph) == [f"Bearer {channel['access_token']}"]


async def test_an_upsert_of_a_named_customer_defers_no_job(
    api: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    named = await upsert(api, admin, platform="facebook", psid=meta_id(), first_name="Grace")
    assert named.status_code == 201, named.text
    web = await upsert(api, admin, email=f"{uuid.uuid4().hex}@example.com")
    assert web.status_code == 201, web.text
    whatsapp = await upsert(api, admin, platform="whatsapp", psid=meta_id())
    assert whatsapp.status_code == 201, whatsapp.text
    assert await jobs_of(db, tenant) == []


async def test_a_job_whose_channel_token_is_dead_marks_the_channel_and_is_not_retried(
    api: httpx.AsyncClient,
    graph: FakeGraph,
    worker: JobWorker,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    channel = await make_channel(api, admin)
    await upsert(api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id())
    (job,) = await jobs_of(db, tenant)
    graph.queue(Reply.error("190"))

    assert await run_until_done(worker, db, job["id"]) == "failed"
    failed = await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job["id"])
    assert failed["attempts"] == 1
    assert failed["last_error"].startswith("DoNotRetry: GraphTokenInvalid")
    marked = (await api.get(f"/api/v1/channels/{channel['id']}", headers=admin)).json()
    assert marked["status"] == "needs_attention"


async def test_a_job_meta_refuses_with_code_100_is_not_retried(
    api: httpx.AsyncClient,
    graph: FakeGraph,
    worker: JobWorker,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    channel = await make_channel(api, admin)
    await upsert(api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id())
    (job,) = await jobs_of(db, tenant)
    graph.queue(Reply.error("100"))

    assert await run_until_done(worker, db, job["id"]) == "failed"
    assert graph.count() == 1
    still = (await api.get(f"/api/v1/channels/{channel['id']}", headers=admin)).json()
    assert still["status"] == "active"


async def test_a_throttled_job_is_queued_again_with_backoff(
    api: httpx.AsyncClient,
    graph: FakeGraph,
    worker: JobWorker,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    channel = await make_channel(api, admin)
    await upsert(api, admin, platform="facebook", app_id=channel["app_id"], psid=meta_id())
    (job,) = await jobs_of(db, tenant)
    graph.queue(Reply.error("4"), Reply.error("4"))  # both of the client's attempts

    assert await worker.run_once() is True
    row = await db.fetchrow(
        "SELECT *, scheduled_at - now() AS wait FROM jobs WHERE id = $1", job["id"]
    )
    assert (row["status"], row["attempts"]) == ("queued", 1)
    assert row["last_error"].startswith("GraphThrottled")
    # FETCH_RETRY: 60 s after the first failure, times a jitter factor in [0.5, 1]
    assert 25 <= row["wait"].total_seconds() <= 60


def test_messenger_timezone_offsets_become_etc_zones() -> None:
    assert [timezone_name(h) for h in (-5, 0, 14, -12, 5.5, 13.0, None)] == [
        "Etc/GMT+5",
        "Etc/GMT",
        "Etc/GMT-14",
        "Etc/GMT+12",
        None,
        "Etc/GMT-13",
        None,
    ]
