"""GET, POST /webhooks/meta with the signed fixtures of specs/meta/examples: the handshake,
the signature over the raw body, and the customers, communications and events written."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from patron.messaging.service import WITHHELD
from tests.conftest import outbox_rows, tenant_writes
from tests.messaging.conftest import (
    APP_ID,
    IG_ACCOUNT_ID,
    PAGE_ID,
    URL,
    VECTORS,
    VERIFY_TOKEN,
    ChannelFactory,
    fixture,
    signed,
)

VALID, UNICODE, WRONG = VECTORS["vectors"]
CUSTOMER_PSID = "6912345678901234"
CUSTOMER_IGSID = "5310000000000042"


def vector(v: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The vector's exact bytes and its signature header."""
    return v["raw_body_utf8"].encode(), {
        "X-Hub-Signature-256": v["x_hub_signature_256"],
        "Content-Type": "application/json",
    }


async def post(client: httpx.AsyncClient, raw: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return await client.post(URL, content=raw, headers=headers)


async def customers(db: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch("SELECT * FROM customers WHERE tenant_id = $1 ORDER BY created_at", tenant)
    )


async def communications(db: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT * FROM customer_communications WHERE tenant_id = $1 ORDER BY occurred_at",
            tenant,
        )
    )


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


# -- the handshake --------------------------------------------------------------------------


async def test_handshake_echoes_the_challenge(client: httpx.AsyncClient) -> None:
    example = fixture("webhook-verification-get.json")
    query = {**example["request"]["query"], "hub.verify_token": VERIFY_TOKEN}
    response = await client.get(URL, params=query)
    expected = example["expected_when_token_is_my-verify-token"]
    assert response.status_code == expected["status"]
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == expected["body"]


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "other", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
    ids=["wrong-token", "wrong-mode", "no-token", "nothing"],
)
async def test_handshake_refused(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    response = await client.get(URL, params=query)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert VERIFY_TOKEN not in response.text


# -- messages -------------------------------------------------------------------------------


async def test_valid_message_upserts_records_and_emits(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)  # no own secret: META_APP_SECRET checks it
    raw, headers = vector(VALID)
    response = await client.post(URL, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1

    [customer] = await customers(db, tenant)
    assert (customer["psid"], customer["app_id"], customer["platform"]) == (
        CUSTOMER_PSID,
        APP_ID,
        "facebook",
    )
    assert customer["last_interaction_at"] == ms(1735689600000)
    [comm] = await communications(db, tenant)
    body = json.loads(raw)
    message = body["entry"][0]["messaging"][0]["message"]
    assert comm["customer_id"] == customer["id"]
    assert (comm["channel"], comm["direction"]) == ("FACEBOOK", "INBOUND")
    assert comm["external_id"] == message["mid"]
    assert comm["summary"] == message["text"]
    assert comm["occurred_at"] == ms(1735689600000)
    assert comm["recorded_by"] == "webhook:meta"
    types = [e["type"] for e in await outbox_rows(db, tenant)]
    assert types == [
        "customer.created",
        "customer.updated",  # last_interaction_at
        "customer.communication_recorded",
    ]


async def test_replayed_payload_changes_nothing(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    raw, headers = vector(VALID)
    assert (await client.post(URL, content=raw, headers=headers)).status_code == 200
    before = await tenant_writes(db, tenant)
    comms_before = await communications(db, tenant)

    again = await client.post(URL, content=raw, headers=headers)
    assert again.status_code == 200
    assert again.json()["recorded"] == 0
    assert await tenant_writes(db, tenant) == before
    assert await communications(db, tenant) == comms_before


async def test_wrong_or_missing_signature_is_401_and_writes_nothing(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    before = await tenant_writes(db, tenant)
    raw, headers = vector(WRONG)
    assert VECTORS["vectors"][2]["expect_valid"] is False
    for signature in (headers["X-Hub-Signature-256"], None, "sha256=zz", "sha1=abc"):
        response = await post(client, raw, signature)
        assert response.status_code == 401, signature
        assert response.headers["content-type"] == "application/problem+json"
    assert await tenant_writes(db, tenant) == before
    assert await communications(db, tenant) == []


async def test_escaped_unicode_is_verified_over_the_raw_bytes(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    # the channel's own secret (the fixtures' app secret) checks it
    await connect("instagram", IG_ACCOUNT_ID, app_secret=VECTORS["app_secret"])
    raw, headers = vector(UNICODE)
    assert b"\\u00e9" in raw
    # the same JSON re-serialised (UTF-8, not escaped) no longer matches the signature
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    refused = await client.post(URL, content=reserialised, headers=headers)
    assert refused.status_code == 401
    assert await communications(db, tenant) == []

    response = await client.post(URL, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    [customer] = await customers(db, tenant)
    assert (customer["igsid"], customer["platform"], customer["psid"]) == (
        CUSTOMER_IGSID,
        "instagram",
        None,
    )
    [comm] = await communications(db, tenant)
    assert (comm["channel"], comm["summary"]) == ("INSTAGRAM", "caf\u00e9 \u2764")


async def test_the_channels_own_secret_wins_over_meta_app_secret(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID, app_secret="another-apps-secret")
    raw, headers = vector(VALID)  # signed with META_APP_SECRET
    response = await client.post(URL, content=raw, headers=headers)
    assert response.status_code == 401
    assert await customers(db, tenant) == []
    ok = await post(client, *signed(raw, "another-apps-secret"))
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("name", "platform", "page", "id_column"),
    [
        ("messenger-webhook-message-echo.json", "facebook", PAGE_ID, "psid"),
        ("instagram-webhook-message-echo.json", "instagram", IG_ACCOUNT_ID, "igsid"),
    ],
)
async def test_echo_records_an_outbound_message_to_the_recipient(
    client: httpx.AsyncClient,
    connect: ChannelFactory,
    db: asyncpg.Pool,
    tenant: str,
    name: str,
    platform: str,
    page: str,
    id_column: str,
) -> None:
    await connect(platform, page)
    payload = fixture(name)
    event = payload["entry"][0]["messaging"][0]
    response = await post(client, *signed(payload))
    assert response.status_code == 200, response.text
    [customer] = await customers(db, tenant)  # the recipient; the page is no customer
    assert customer[id_column] == event["recipient"]["id"]
    [comm] = await communications(db, tenant)
    assert (comm["direction"], comm["external_id"]) == ("OUTBOUND", event["message"]["mid"])
    assert comm["summary"] == event["message"]["text"]


async def test_unknown_page_is_acknowledged_and_writes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Pool, captured_logs: Any
) -> None:
    count = "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM outbox_events)"
    before = tuple(await db.fetchrow(count))
    raw, headers = vector(VALID)  # no channel for its page in any tenant
    response = await client.post(URL, content=raw, headers=headers)
    assert response.status_code == 200
    assert response.json()["unknown_pages"] == 1
    assert tuple(await db.fetchrow(count)) == before
    assert PAGE_ID in captured_logs.getvalue()


async def test_unknown_page_with_a_wrong_signature_is_still_401(client: httpx.AsyncClient) -> None:
    raw, headers = vector(WRONG)
    assert (await client.post(URL, content=raw, headers=headers)).status_code == 401


async def test_card_number_in_text_is_not_stored(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    payload = fixture("messenger-webhook-message-text.json")
    payload["entry"][0]["messaging"][0]["message"]["text"] = "pay with 4111 1111 1111 1111 pls"
    response = await post(client, *signed(payload))
    assert response.status_code == 200, response.text
    [comm] = await communications(db, tenant)
    assert comm["summary"] == WITHHELD
    stored = json.dumps([dict(r) for r in await outbox_rows(db, tenant)], default=str)
    assert "4111" not in stored
    assert "4111" not in json.dumps(
        [dict(r) for r in await communications(db, tenant)], default=str
    )


async def test_batch_records_each_entry_and_time_only_moves_forward(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    batch = fixture("messenger-webhook-batched-two-entries.json")
    response = await post(client, *signed(batch))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 2
    [customer] = await customers(db, tenant)
    assert customer["last_interaction_at"] == ms(1735689900300)
    assert [c["summary"] for c in await communications(db, tenant)] == ["first", "second"]

    # an older message (sent before the batch) is recorded but does not move time back
    older = await post(client, *signed(fixture("messenger-webhook-message-text.json")))
    assert older.json()["recorded"] == 1
    [customer] = await customers(db, tenant)
    assert customer["last_interaction_at"] == ms(1735689900300)
    assert len(await communications(db, tenant)) == 3


async def test_attachment_postback_reaction_read_delivery(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    payload = fixture("messenger-webhook-message-attachment.json")
    base = payload["entry"][0]["messaging"][0]
    sender, recipient = base["sender"], base["recipient"]

    def event(ts: int, **kind: Any) -> dict[str, Any]:
        return {"sender": sender, "recipient": recipient, "timestamp": ts, **kind}

    payload["entry"][0]["messaging"] += [
        event(1735689710000, postback={"mid": "m_pb1", "title": "Track order", "payload": "T"}),
        event(1735689720000, reaction={"mid": "m_x", "action": "react", "emoji": "\u2764"}),
        event(1735689730000, delivery={"mids": ["m_x"], "watermark": 1735689729000}),
        event(1735689740000, read={"watermark": 1735689739000}),
        event(1735689750000, optin={"ref": "x"}),
        {"recipient": recipient},  # no sender: not a messaging event
    ]
    response = await post(client, *signed(payload))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "recorded": 2,
        "interactions": 2,
        "acknowledged": 3,
        "unknown_pages": 0,
    }
    comms = await communications(db, tenant)
    assert [(c["external_id"], c["summary"]) for c in comms] == [
        ("m_AttachmentExample0001", "[image]"),
        ("m_pb1", "Track order"),
    ]
    [customer] = await customers(db, tenant)
    assert customer["last_interaction_at"] == ms(1735689740000)  # the read


async def test_signed_body_that_is_not_a_notification_is_400(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    response = await post(client, *signed(b"{not json"))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    unsigned = await post(client, *signed(b"{not json", "other-secret"))
    assert unsigned.status_code == 401


async def test_batch_with_another_apps_page_is_refused_whole(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)  # checked by META_APP_SECRET
    other = copy.deepcopy(fixture("messenger-webhook-message-text.json")["entry"][0])
    other["id"] = "104857600000002"
    await connect("facebook", "104857600000002", app_secret="another-apps-secret")
    payload = fixture("messenger-webhook-message-text.json")
    payload["entry"].append(other)
    response = await post(client, *signed(payload))
    assert response.status_code == 401
    assert await communications(db, tenant) == []


async def test_concurrent_deliveries_for_a_new_sender_make_one_customer(
    client: httpx.AsyncClient, connect: ChannelFactory, db: asyncpg.Pool, tenant: str
) -> None:
    await connect("facebook", PAGE_ID)
    payloads = []
    for n in range(6):
        payload = fixture("messenger-webhook-message-text.json")
        event = payload["entry"][0]["messaging"][0]
        event["sender"]["id"] = "6912345678900001"
        event["message"]["mid"] = f"m_concurrent_{n}"
        event["timestamp"] += n
        payloads.append(signed(payload))
    responses = await asyncio.gather(*(post(client, *p) for p in payloads))
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    [customer] = await customers(db, tenant)
    assert customer["last_interaction_at"] == ms(1735689600005)
    assert len(await communications(db, tenant)) == 6
    assert len(await outbox_rows(db, tenant, "customer.created")) == 1
