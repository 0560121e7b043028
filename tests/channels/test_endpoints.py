"""The channels API (admin only): create with write-only secrets stored encrypted, read,
list, delete; one channel per page across every tenant; 422s naming fields; isolation."""

from __future__ import annotations

import io
import uuid

import asyncpg
import httpx

from patron.auth.principal import Role
from patron.channels.service import ACCESS_TOKEN_CONTEXT, APP_SECRET_CONTEXT
from patron.context import AppContext
from tests.channels.conftest import URL, ChannelFactory, channel_body, meta_id
from tests.conftest import ApiKeyFactory, TokenFactory

READ_FIELDS = {
    "id",
    "platform",
    "app_id",
    "page_id",
    "name",
    "has_access_token",
    "has_app_secret",
    "status",
    "status_reason",
    "created_at",
    "updated_at",
}


async def channel_rows(db: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch("SELECT * FROM channels WHERE tenant_id = $1 ORDER BY created_at", tenant)
    )


async def test_create_read_list_delete(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    tenant: str,
    app_ctx: AppContext,
) -> None:
    body = channel_body(platform="messenger", app_secret="app-secret-0123456789", name="Shop page")
    # camelCase aliases are accepted (API.md "Conventions")
    camel = {
        "platform": body["platform"],
        "appId": body["app_id"],
        "pageId": body["page_id"],
        "accessToken": body["access_token"],
        "appSecret": body["app_secret"],
        "name": body["name"],
    }
    response = await client.post(URL, json=camel, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == READ_FIELDS
    assert response.headers["location"] == f"{URL}/{created['id']}"
    assert created["platform"] == "facebook"  # messenger is an alias
    assert created["app_id"] == body["app_id"]
    assert created["page_id"] == body["page_id"]
    assert created["name"] == "Shop page"
    assert created["has_access_token"] is True
    assert created["has_app_secret"] is True
    assert created["status"] == "active"
    assert created["status_reason"] is None

    shown = await client.get(f"{URL}/{created['id']}", headers=admin)
    assert shown.status_code == 200
    assert shown.json() == created
    listed = await client.get(URL, headers=admin)
    assert listed.status_code == 200
    page = listed.json()
    assert page["channels"] == [created]
    assert (page["total"], page["page"], page["page_size"], page["next_cursor"]) == (1, 1, 20, None)
    for answer in (response, shown, listed):
        assert body["access_token"] not in answer.text
        assert body["app_secret"] not in answer.text

    [row] = await channel_rows(db, tenant)
    assert row["id"] == uuid.UUID(created["id"])
    token_blob, secret_blob = (
        bytes(row["access_token_encrypted"]),
        bytes(row["app_secret_encrypted"]),
    )
    assert body["access_token"].encode() not in token_blob
    assert body["app_secret"].encode() not in secret_blob
    assert all(body["access_token"] not in str(v) for v in dict(row).values())
    assert app_ctx.keyring.decrypt(token_blob, ACCESS_TOKEN_CONTEXT) == body["access_token"]
    assert app_ctx.keyring.decrypt(secret_blob, APP_SECRET_CONTEXT) == body["app_secret"]

    deleted = await client.delete(f"{URL}/{created['id']}", headers=admin)
    assert deleted.status_code == 204
    assert await channel_rows(db, tenant) == []
    gone = await client.get(f"{URL}/{created['id']}", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["channel_id"] == created["id"]
    again = await client.delete(f"{URL}/{created['id']}", headers=admin)
    assert again.status_code == 404


async def test_instagram_without_app_secret_or_name(
    admin: dict[str, str], create_channel: ChannelFactory
) -> None:
    created = await create_channel(admin, platform="instagram")
    assert created["platform"] == "instagram"
    assert created["has_app_secret"] is False
    assert created["name"] is None


async def test_list_pages_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str], create_channel: ChannelFactory
) -> None:
    made = [await create_channel(admin) for _ in range(3)]
    first = (await client.get(URL, params={"page_size": 2}, headers=admin)).json()
    assert [c["id"] for c in first["channels"]] == [made[2]["id"], made[1]["id"]]
    assert (first["total"], first["total_pages"]) == (3, 2)
    rest = (
        await client.get(URL, params={"cursor": first["next_cursor"], "pageSize": 2}, headers=admin)
    ).json()
    assert [c["id"] for c in rest["channels"]] == [made[0]["id"]]
    assert rest["next_cursor"] is None


async def test_roles(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    token_headers: TokenFactory,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    db: asyncpg.Pool,
    tenant: str,
) -> None:
    mine = await create_channel(admin)
    for role in (Role.MANAGER, Role.AGENT, Role.SERVICE):
        headers = await api_key_headers(role, tenant)
        for method, url in (
            ("GET", URL),
            ("POST", URL),
            ("GET", f"{URL}/{mine['id']}"),
            ("DELETE", f"{URL}/{mine['id']}"),
        ):
            response = await client.request(method, url, headers=headers, json=channel_body())
            assert response.status_code == 403, (role, method, response.text)
    anonymous = await client.get(URL)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    jwt_admin = await client.get(URL, headers=token_headers("admin_business", tenant))
    assert jwt_admin.status_code == 200  # the alias of admin
    assert [r["id"] for r in await channel_rows(db, tenant)] == [uuid.UUID(mine["id"])]


async def test_same_page_twice_is_409_in_any_tenant_and_writes_nothing(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    db: asyncpg.Pool,
    tenant: str,
    other_tenant: str,
) -> None:
    mine = await create_channel(admin)
    again = await client.post(
        URL, json=channel_body(page_id=mine["page_id"], platform="messenger"), headers=admin
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["conflicting_channel_id"] == mine["id"]

    theirs = await api_key_headers(Role.ADMIN, other_tenant)
    stolen = await client.post(URL, json=channel_body(page_id=mine["page_id"]), headers=theirs)
    assert stolen.status_code == 409, stolen.text
    problem = stolen.json()
    assert problem["detail"] == "this facebook page is already connected to a channel"
    assert problem["conflicting_channel_id"] is None
    assert tenant not in stolen.text
    assert await channel_rows(db, other_tenant) == []
    assert len(await channel_rows(db, tenant)) == 1

    # the same id on the other platform is another account: allowed
    instagram = await client.post(
        URL, json=channel_body(page_id=mine["page_id"], platform="instagram"), headers=theirs
    )
    assert instagram.status_code == 201
    # a deleted channel frees its page
    assert (await client.delete(f"{URL}/{mine['id']}", headers=admin)).status_code == 204
    moved = await client.post(URL, json=channel_body(page_id=mine["page_id"]), headers=theirs)
    assert moved.status_code == 201


async def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, tenant: str
) -> None:
    cases = [
        (channel_body(platform="whatsapp"), ["body", "platform"], "'facebook' or 'instagram'"),
        (channel_body(page_id="my-page"), ["body", "page_id"], "pattern"),
        (channel_body(app_id=""), ["body", "app_id"], "at least 1 character"),
        (channel_body(access_token=""), ["body", "access_token"], "at least 1"),
        (channel_body(name="x" * 201), ["body", "name"], "at most 200 characters"),
        (channel_body(page_id="1" * 65), ["body", "page_id"], "at most 64 characters"),
        (channel_body(status="active"), ["body", "status"], "Extra inputs are not permitted"),
        (channel_body(has_access_token=True), ["body", "has_access_token"], "Extra inputs"),
    ]
    for body, loc, message in cases:
        response = await client.post(URL, json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        errors = response.json()["errors"]
        assert [e["loc"] for e in errors] == [loc], errors
        assert message in errors[0]["msg"], errors
        if body.get("access_token"):
            assert body["access_token"] not in response.text
    missing = await client.post(URL, json={"platform": "facebook"}, headers=admin)
    assert missing.status_code == 422
    assert sorted(e["loc"][-1] for e in missing.json()["errors"]) == [
        "access_token",
        "app_id",
        "page_id",
    ]
    assert await channel_rows(db, tenant) == []


async def test_another_tenants_channel_is_404_and_untouched(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    admin: dict[str, str],
    create_channel: ChannelFactory,
    db: asyncpg.Pool,
    other_tenant: str,
) -> None:
    theirs_headers = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_channel(theirs_headers)
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{URL}/{theirs['id']}", headers=admin)
        assert response.status_code == 404, response.text
    listed = await client.get(URL, headers=admin)
    assert listed.json()["channels"] == []
    assert len(await channel_rows(db, other_tenant)) == 1


async def test_secrets_are_never_logged(
    client: httpx.AsyncClient, admin: dict[str, str], captured_logs: io.StringIO
) -> None:
    body = channel_body(app_secret="app-secret-logged-never")
    created = await client.post(URL, json=body, headers=admin)
    assert created.status_code == 201
    refused = await client.post(URL, json={**body, "platform": "nope"}, headers=admin)
    assert refused.status_code == 422
    assert body["access_token"] not in refused.text
    duplicate = await client.post(URL, json=body, headers=admin)
    assert duplicate.status_code == 409
    logged = captured_logs.getvalue()
    assert "channel_created" in logged, "nothing of ours was logged: the check would prove nothing"
    assert body["access_token"] not in logged
    assert body["app_secret"] not in logged
    assert meta_id() not in logged
