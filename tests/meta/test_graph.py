"""The Graph client against a local server speaking Meta's format (tests/meta/spec/)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Iterator

import pytest

from patron.errors import InvalidInput
from patron.logging import configure_logging, json_formatter
from patron.meta.errors import (
    GraphError,
    GraphRequestRejected,
    GraphThrottled,
    GraphTimeout,
    GraphTokenInvalid,
    GraphUnavailable,
)
from patron.meta.graph import (
    INSTAGRAM_FIELDS,
    MESSENGER_FIELDS,
    GraphClient,
    GraphCredentials,
    InstagramProfile,
    MessengerProfile,
    read_usage,
)
from tests.meta.conftest import APP_SECRET, TOKEN, make_client
from tests.meta.fake_graph import FakeGraph, Reply
from tests.services import free_port

PSID = "6912345678901234"
IGSID = "5310000000000042"


def _proof(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


async def test_messenger_profile(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    profile = await client.messenger_profile(PSID, creds)

    assert profile == MessengerProfile(
        id=PSID,
        first_name="Jane",
        last_name="Doe",
        profile_pic="https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=6912345678901234",
        locale="en_US",
        timezone=-5.0,
        gender="female",
    )
    (request,) = graph.requests
    assert request.path == f"/v21.0/{PSID}"
    assert request.query["fields"] == ",".join(MESSENGER_FIELDS)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in request.query  # never in a URL


async def test_instagram_profile(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    profile = await client.instagram_profile(IGSID, creds)

    assert profile == InstagramProfile(
        id=IGSID,
        name="Jane Doe",
        username="jane.doe",
        profile_pic="https://scontent.cdninstagram.com/v/example.jpg",
        follower_count=1234,
        is_user_follow_business=True,
        is_business_follow_user=False,
        is_verified_user=False,
    )
    (request,) = graph.requests
    assert request.path == f"/v21.0/{IGSID}"
    assert request.query["fields"] == ",".join(INSTAGRAM_FIELDS)


async def test_null_name_and_picture_are_accepted(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(Reply(body={"id": IGSID, "name": None, "profile_pic": None, "username": "x"}))
    profile = await client.instagram_profile(IGSID, creds)
    assert (profile.name, profile.profile_pic, profile.username) == (None, None, "x")


async def test_appsecret_proof_is_the_hmac_of_the_token(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    await client.messenger_profile(PSID, creds)
    # the fake server refuses a wrong proof with error 100, as Meta does; check the value too
    assert graph.requests[0].query["appsecret_proof"] == _proof(TOKEN, APP_SECRET)
    assert len(graph.requests[0].query["appsecret_proof"]) == 64


async def test_the_channel_secret_wins_over_the_default(graph: FakeGraph) -> None:
    client = make_client(graph, app_secret="some-other-default")
    try:
        own = GraphCredentials(app_id="1", access_token=TOKEN, app_secret=APP_SECRET)
        await client.messenger_profile(PSID, own)
        assert graph.requests[-1].query["appsecret_proof"] == _proof(TOKEN, APP_SECRET)

        with pytest.raises(GraphRequestRejected) as caught:  # the default is wrong here
            await client.messenger_profile(PSID, GraphCredentials(app_id="1", access_token=TOKEN))
        assert "appsecret_proof" in caught.value.detail
        assert graph.count() == 2  # not retried
    finally:
        await client.aclose()


async def test_no_proof_without_a_secret(graph: FakeGraph, creds: GraphCredentials) -> None:
    graph.app_secret = None
    client = make_client(graph, app_secret=None)
    try:
        await client.messenger_profile(PSID, creds)
    finally:
        graph.app_secret = APP_SECRET
        await client.aclose()
    assert "appsecret_proof" not in graph.requests[0].query


async def test_190_is_a_distinct_error_and_not_retried(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(Reply.error("190"))
    with pytest.raises(GraphTokenInvalid) as caught:
        await client.messenger_profile(PSID, creds)

    error = caught.value
    assert graph.count() == 1
    assert (error.status, error.meta_code, error.meta_subcode, error.fbtrace_id) == (
        502,
        190,
        463,
        "AbCdEfGhIjK",
    )
    problem = error.to_problem()
    assert problem["type"] == "/problems/meta-token-invalid"
    assert problem["meta_code"] == 190
    assert problem["fbtrace_id"] == "AbCdEfGhIjK"
    assert TOKEN not in json.dumps(problem)


async def test_100_is_not_retried(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(Reply.error("100"))
    with pytest.raises(GraphRequestRejected) as caught:
        await client.instagram_profile(IGSID, creds)
    assert graph.count() == 1
    assert (caught.value.status, caught.value.meta_code) == (502, 100)
    assert caught.value.to_problem()["fbtrace_id"] == "AbCdEfGhIjK"


async def test_other_graph_errors_are_not_retried(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    body = {"error": {"message": "(#10) Permission denied", "code": 10, "fbtrace_id": "T"}}
    graph.queue(Reply(status=403, body=body))
    with pytest.raises(GraphError) as caught:
        await client.messenger_profile(PSID, creds)
    assert type(caught.value) is GraphError
    assert (caught.value.meta_code, graph.count()) == (10, 1)


@pytest.mark.parametrize("code", ["4", "17", "32", "613", "80006"])
async def test_throttling_is_retried_then_succeeds(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials, code: str
) -> None:
    graph.queue(Reply.error(code), Reply.error(code))
    profile = await client.messenger_profile(PSID, creds)
    assert profile.first_name == "Jane"
    assert graph.count() == 3


async def test_throttling_on_every_attempt_gives_up(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(*(Reply.error("613") for _ in range(4)))
    with pytest.raises(GraphThrottled) as caught:
        await client.messenger_profile(PSID, creds)
    assert graph.count() == 4  # max_attempts
    assert caught.value.status == 502
    assert caught.value.meta_code == 613
    assert caught.value.headers == {"Retry-After": "60"}


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500, body={"error": {"message": "unknown", "code": 1, "fbtrace_id": "x"}}),
        Reply(status=503, body="<html>Service Unavailable</html>"),
        Reply(status=502, body={}),
    ],
    ids=["500-graph-code-1", "503-html", "502-empty"],
)
async def test_5xx_is_retried_then_succeeds(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials, reply: Reply
) -> None:
    graph.queue(reply)
    assert (await client.messenger_profile(PSID, creds)).last_name == "Doe"
    assert graph.count() == 2


async def test_5xx_on_every_attempt_is_a_502(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(*(Reply(status=500, body="oops") for _ in range(4)))
    with pytest.raises(GraphUnavailable) as caught:
        await client.messenger_profile(PSID, creds)
    assert (caught.value.status, graph.count()) == (502, 4)


async def test_a_slow_answer_is_a_504(graph: FakeGraph, creds: GraphCredentials) -> None:
    client = make_client(graph, read_timeout=0.2, max_attempts=2)
    graph.queue(Reply(delay=1.0), Reply(delay=1.0))
    started = time.monotonic()
    try:
        with pytest.raises(GraphTimeout) as caught:
            await client.messenger_profile(PSID, creds)
    finally:
        await client.aclose()
    assert time.monotonic() - started < 1.5  # each attempt gave up after 0.2 s
    assert graph.count() == 2
    assert caught.value.status == 504
    assert caught.value.to_problem()["type"] == "/problems/meta-timeout"


async def test_a_slow_answer_then_success(graph: FakeGraph, creds: GraphCredentials) -> None:
    client = make_client(graph, read_timeout=0.2)
    graph.queue(Reply(delay=1.0))
    try:
        assert (await client.messenger_profile(PSID, creds)).first_name == "Jane"
    finally:
        await client.aclose()
    assert graph.count() == 2


async def test_an_unreachable_graph_is_a_502(creds: GraphCredentials) -> None:
    client = GraphClient(
        base_url=f"http://127.0.0.1:{free_port()}", max_attempts=2, backoff_initial=0.01
    )
    try:
        with pytest.raises(GraphUnavailable) as caught:
            await client.messenger_profile(PSID, creds)
    finally:
        await client.aclose()
    assert caught.value.status == 502
    assert "ConnectError" in caught.value.detail


async def test_a_success_that_is_not_a_profile_is_a_502(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    graph.queue(Reply(body={"id": PSID, "follower_count": "many"}))
    with pytest.raises(GraphError):
        await client.instagram_profile(PSID, creds)
    assert graph.count() == 1


@pytest.mark.parametrize("user_id", ["me", "123/../456", "12?fields=x", ""])
async def test_a_user_id_that_is_not_decimal_is_refused_before_any_call(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials, user_id: str
) -> None:
    with pytest.raises(InvalidInput):
        await client.messenger_profile(user_id, creds)
    assert graph.count() == 0


# -- usage headers ----------------------------------------------------------------------------


def test_usage_headers_are_read() -> None:
    usage = read_usage(
        {
            "x-app-usage": '{"call_count": 28, "total_time": 25, "total_cputime": 25}',
            "x-business-use-case-usage": json.dumps(
                {
                    "1234": [
                        {
                            "type": "pages",
                            "call_count": 91,
                            "total_cputime": 10,
                            "total_time": 12,
                            "estimated_time_to_regain_access": 2,
                        }
                    ]
                }
            ),
        }
    )
    assert (usage.percent, usage.regain_seconds) == (91.0, 120.0)
    assert read_usage({"x-app-usage": "not json"}).percent == 0.0
    assert read_usage({}).percent == 0.0


async def _two_calls(client: GraphClient, creds: GraphCredentials) -> float:
    """Seconds the second of two calls took."""
    await client.messenger_profile(PSID, creds)
    started = time.monotonic()
    await client.messenger_profile(PSID, creds)
    return time.monotonic() - started


@pytest.mark.parametrize(
    "header",
    [
        {"X-App-Usage": '{"call_count": 95, "total_time": 10, "total_cputime": 10}'},
        {
            "X-Business-Use-Case-Usage": (
                '{"99": [{"type": "pages", "call_count": 5, "total_time": 96, '
                '"total_cputime": 5, "estimated_time_to_regain_access": 0}]}'
            )
        },
    ],
    ids=["app-usage", "business-use-case-usage"],
)
async def test_high_usage_slows_the_next_call(
    graph: FakeGraph, creds: GraphCredentials, header: dict[str, str]
) -> None:
    client = make_client(graph, usage_threshold=90, usage_pause=0.4)
    try:
        graph.queue(Reply(headers=header))
        slowed = await _two_calls(client, creds)
        graph.queue(Reply(headers={"X-App-Usage": '{"call_count": 89}'}))
        fast = await _two_calls(client, creds)
        # another app is not slowed by this app's usage
        graph.queue(Reply(headers=header))
        await client.messenger_profile(PSID, creds)
        started = time.monotonic()
        other = GraphCredentials(app_id=creds.app_id + "-other", access_token=TOKEN)
        await client.messenger_profile(PSID, other)
        other_app = time.monotonic() - started
    finally:
        await client.aclose()
    assert slowed >= 0.4
    assert fast < 0.3
    assert other_app < 0.3


async def test_a_blocked_app_fails_fast_without_calling(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials
) -> None:
    blocked = (
        '{"99": [{"type": "pages", "call_count": 100, "total_time": 20, '
        '"total_cputime": 20, "estimated_time_to_regain_access": 15}]}'
    )
    graph.queue(Reply(headers={"X-Business-Use-Case-Usage": blocked}))
    await client.messenger_profile(PSID, creds)
    with pytest.raises(GraphThrottled) as caught:
        await client.messenger_profile(PSID, creds)
    assert graph.count() == 1  # the second call never left
    assert 14 * 60 < caught.value.extra["retry_after"] <= 15 * 60


# -- secrets never logged ---------------------------------------------------------------------


@pytest.fixture
def all_logs() -> Iterator[io.StringIO]:
    """Every log line of every logger, httpx and httpcore included, at DEBUG."""
    configure_logging("DEBUG")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_token_and_proof_never_reach_a_log(
    graph: FakeGraph, client: GraphClient, creds: GraphCredentials, all_logs: io.StringIO
) -> None:
    graph.queue(
        Reply.error("613"),
        Reply(headers={"X-App-Usage": '{"call_count": 99}'}),
        Reply.error("190"),
    )
    await client.messenger_profile(PSID, creds)  # a retry, then a usage warning
    with pytest.raises(GraphTokenInvalid):
        await client.messenger_profile(PSID, creds)

    text = all_logs.getvalue()
    # the logs are not empty: httpx's request lines and Patron's retry line are there
    assert f"/v21.0/{PSID}" in text
    assert "appsecret_proof=[redacted]" in text
    assert "meta graph call failed, retrying" in text
    assert TOKEN not in text
    assert _proof(TOKEN, APP_SECRET) not in text
    assert APP_SECRET not in text
    assert TOKEN not in repr(creds)
