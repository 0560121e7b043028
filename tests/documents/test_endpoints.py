"""Customer documents over HTTP against the real database, with files in a temporary
directory and in a moto S3 bucket (API.md "Profile data")."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from patron.auth.principal import Role
from patron.context import AppContext
from patron.kit.crypto import Keyring, blind_index
from patron.storage import Storage
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows
from tests.storage.fixtures import read_all, stored_keys

BASE = "/api/v1/customers"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


def form(**overrides: Any) -> dict[str, str]:
    fields = {
        "type": "PASSPORT",
        "number": "x1 234-567",
        "issuing_country": "de",
        "expires_on": "2031-05-01",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    customer_id: str,
    content: bytes = PDF,
    filename: str = "passport.pdf",
    content_type: str = "application/pdf",
    **fields: Any,
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{customer_id}/documents",
        data=form(**fields),
        files={"file": (filename, io.BytesIO(content), content_type)},
        headers=headers,
    )


async def document_rows(db: asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT * FROM customer_documents WHERE tenant_id = $1", tenant))


async def assert_nothing_written(db: asyncpg.Pool, tenant: str, storage: Storage) -> None:
    assert await document_rows(db, tenant) == []
    assert await outbox_rows(db, tenant, "customer.document_added") == []
    assert await stored_keys(storage) == []


# -- add -----------------------------------------------------------------------------------


async def test_add_stores_file_encrypts_number_and_emits_event(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
    app_ctx: AppContext,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"])
    assert response.status_code == 201, response.text
    body = response.json()
    path = f"{BASE}/{customer['id']}/documents/{body['id']}"
    assert response.headers["location"] == path
    assert body["type"] == "PASSPORT"
    assert body["number"] == "****4567"
    assert body["number_last4"] == "4567"
    assert body["issuing_country"] == "DE"
    assert body["expires_on"] == "2031-05-01"
    assert body["status"] == "PENDING"
    assert body["content_type"] == "application/pdf"
    assert body["size_bytes"] == len(PDF)
    assert body["file_url"] == f"{path}/file"
    assert body["reviewed_by"] is None

    [row] = await document_rows(db, tenant)
    assert "X1234567" not in str(dict(row))  # never in clear
    keyring: Keyring = app_ctx.keyring
    assert keyring.decrypt(row["number_encrypted"], b"customer_documents.number") == "X1234567"
    assert row["number_index"] == blind_index(
        app_ctx.settings.secret_key.get_secret_value(), "document_number", "PASSPORT:DE:X1234567"
    )
    assert row["storage_key"].startswith(f"{tenant}/documents/")
    assert await stored_keys(storage) == [row["storage_key"]]
    assert await read_all(storage, row["storage_key"]) == PDF

    [event] = await outbox_rows(db, tenant, "customer.document_added")
    assert event["subject"] == customer["id"]
    assert event["data"]["document"]["number"] == "****4567"
    assert "X1234567" not in str(event["data"])

    # read back, list
    got = await client.get(path, headers=admin)
    assert got.status_code == 200
    assert got.json() == body
    listed = (await client.get(f"{BASE}/{customer['id']}/documents", headers=admin)).json()
    assert listed["documents"] == [body]
    assert (listed["total"], listed["page"], listed["total_pages"], listed["next_cursor"]) == (
        1,
        1,
        1,
        None,
    )


async def test_download_streams_exact_bytes_with_headers(
    client: httpx.AsyncClient, admin: dict[str, str], storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    big = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4096  # ~1 MiB, many chunks
    doc = (await upload(client, admin, customer["id"], big, "scan.png", "image/png")).json()
    assert doc["content_type"] == "image/png"
    response = await client.get(doc["file_url"], headers=admin)
    assert response.status_code == 200
    assert response.content == big
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(big))
    assert response.headers["content-disposition"] == (
        f'attachment; filename="passport-{doc["id"]}.png"'
    )
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("content", "filename", "declared"),
    [
        (b"just some text, not an image", "photo.png", "image/png"),
        (b"GIF89a" + b"\x00" * 40, "scan.pdf", "application/pdf"),
        (b"PK\x03\x04" + b"\x00" * 40, "id.jpg", "image/jpeg"),
        (b"", "empty.pdf", "application/pdf"),
    ],
    ids=["text-named-png", "gif-named-pdf", "zip-named-jpg", "empty"],
)
async def test_content_is_judged_by_its_bytes(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
    content: bytes,
    filename: str,
    declared: str,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"], content, filename, declared)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "file"]
    await assert_nothing_written(db, tenant, storage)


async def test_jpeg_is_accepted_whatever_its_name(
    client: httpx.AsyncClient, admin: dict[str, str], storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"], JPEG, "file.txt", "text/plain")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/jpeg"


async def test_over_ten_mib_is_413_and_nothing_is_kept(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    exactly = PDF + b"\x00" * (10 * 1024 * 1024 - len(PDF))
    ok = await upload(client, admin, customer["id"], exactly)
    assert ok.status_code == 201, ok.text
    assert ok.json()["size_bytes"] == 10 * 1024 * 1024
    before = await stored_keys(storage)
    response = await upload(client, admin, customer["id"], exactly + b"!", number="Y7654321")
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert len(await document_rows(db, tenant)) == 1
    assert len(await outbox_rows(db, tenant, "customer.document_added")) == 1
    assert await stored_keys(storage) == before


async def test_body_far_over_the_upload_limit_is_413(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"], PDF + b"\x00" * (12 * 1024 * 1024))
    assert response.status_code == 413
    assert await document_rows(db, tenant) == []


async def test_json_bodies_keep_the_one_mib_limit(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        BASE,
        content=b'{"first_name": "' + b"a" * (2 * 1024 * 1024) + b'"}',
        headers={
            **admin,
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"type": "VISA"}, ["body", "type"]),
        ({"issuing_country": "XX"}, ["body", "issuing_country"]),
        ({"issuing_country": "DEU"}, ["body", "issuing_country"]),
        ({"number": "12"}, ["body", "number"]),
        ({"number": "AB#1234"}, ["body", "number"]),
        ({"number": None}, ["body", "number"]),
        ({"expires_on": "soon"}, ["body", "expires_on"]),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
    fields: dict[str, Any],
    loc: list[str],
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"], **fields)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    await assert_nothing_written(db, tenant, storage)


async def test_missing_file_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await client.post(f"{BASE}/{customer['id']}/documents", data=form(), headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "file"]
    assert await document_rows(db, tenant) == []


# -- uniqueness ------------------------------------------------------------------------------


async def test_same_number_for_another_customer_is_409_with_holder(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    first = await create_customer(client, admin, first_name="A")
    second = await create_customer(client, admin, first_name="B")
    assert (await upload(client, admin, first["id"], number="X1234567")).status_code == 201
    kept = await stored_keys(storage)
    # same number, written differently (case, spaces, dashes): still the same document
    response = await upload(client, admin, second["id"], number="x12-345 67", issuing_country="DE")
    assert response.status_code == 409, response.text
    assert response.json()["conflicting_customer_id"] == first["id"]
    rows = await document_rows(db, tenant)
    assert [r["customer_id"] for r in rows] == [uuid.UUID(first["id"])]
    assert len(await outbox_rows(db, tenant, "customer.document_added")) == 1
    assert await stored_keys(storage) == kept  # no file left behind
    # another type or country is another document
    assert (
        await upload(client, admin, second["id"], number="X1234567", type="NATIONAL_ID")
    ).status_code == 201
    assert (
        await upload(client, admin, second["id"], number="X1234567", issuing_country="FR")
    ).status_code == 201


async def test_same_number_in_another_tenant_is_allowed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    other_tenant: str,
    storage: Storage,
) -> None:
    mine = await create_customer(client, admin, first_name="A")
    other_admin = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_customer(client, other_admin, first_name="B")
    assert (await upload(client, admin, mine["id"])).status_code == 201
    assert (await upload(client, other_admin, theirs["id"])).status_code == 201


# -- review ---------------------------------------------------------------------------------


async def test_verify_and_reject_record_who_and_when(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    manager = await api_key_headers(Role.MANAGER, tenant)
    customer = await create_customer(client, manager, first_name="A")
    doc = (await upload(client, manager, customer["id"])).json()
    other = (await upload(client, manager, customer["id"], number="Z9999999")).json()
    url = f"{BASE}/{customer['id']}/documents"

    verified = await client.post(f"{url}/{doc['id']}/verify", headers=manager)
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["status"] == "VERIFIED"
    assert body["reviewed_by"].startswith("key:")
    assert body["reviewed_at"] is not None
    rejected = await client.post(
        f"{url}/{other['id']}/reject", json={"reason": "blurred"}, headers=manager
    )
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["review_reason"]) == ("REJECTED", "blurred")

    # a decision is final: a second review is 409 and changes nothing
    again = await client.post(f"{url}/{doc['id']}/reject", headers=manager)
    assert again.status_code == 409
    assert again.json()["document_status"] == "VERIFIED"
    assert (await client.get(f"{url}/{doc['id']}", headers=manager)).json()["status"] == "VERIFIED"
    assert len(await outbox_rows(db, tenant, "customer.document_verified")) == 1
    [event] = await outbox_rows(db, tenant, "customer.document_rejected")
    assert event["data"]["document"]["review_reason"] == "blurred"


async def test_reject_body_is_checked(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    doc = (await upload(client, admin, customer["id"])).json()
    url = f"{BASE}/{customer['id']}/documents/{doc['id']}/reject"
    assert (await client.post(url, json={"why": "x"}, headers=admin)).status_code == 422
    assert (await client.post(url, json={"reason": "x" * 1001}, headers=admin)).status_code == 422
    assert await outbox_rows(db, tenant, "customer.document_rejected") == []


# -- delete ---------------------------------------------------------------------------------


async def test_delete_removes_row_and_file_and_emits_event(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    doc = (await upload(client, admin, customer["id"])).json()
    keep = (await upload(client, admin, customer["id"], number="K1111111")).json()
    assert len(await stored_keys(storage)) == 2
    url = f"{BASE}/{customer['id']}/documents/{doc['id']}"
    response = await client.delete(url, headers=admin)
    assert response.status_code == 204
    assert [r["id"] for r in await document_rows(db, tenant)] == [uuid.UUID(keep["id"])]
    [kept_row] = await document_rows(db, tenant)
    assert await stored_keys(storage) == [kept_row["storage_key"]]
    [event] = await outbox_rows(db, tenant, "customer.document_removed")
    assert event["data"]["document"]["id"] == doc["id"]
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.get(f"{url}/file", headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404
    # the number is free again
    assert (await upload(client, admin, customer["id"])).status_code == 201


# -- roles and tenants ----------------------------------------------------------------------


async def test_customer_can_upload_and_read_own_documents_but_not_review(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    token_headers: TokenFactory,
    storage: Storage,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    other = await create_customer(client, admin, first_name="Other")
    mine = token_headers("customer", tenant, sub=me["id"])
    doc = await upload(client, mine, me["id"])
    assert doc.status_code == 201, doc.text
    url = f"{BASE}/{me['id']}/documents/{doc.json()['id']}"
    assert (await client.get(url, headers=mine)).status_code == 200
    assert (await client.get(f"{url}/file", headers=mine)).content == PDF
    assert (await client.get(f"{BASE}/{me['id']}/documents", headers=mine)).json()["total"] == 1
    assert (await client.post(f"{url}/verify", headers=mine)).status_code == 403
    assert (await client.post(f"{url}/reject", headers=mine)).status_code == 403
    # someone else's documents do not exist for this customer
    assert (await upload(client, mine, other["id"], number="Q1234567")).status_code == 404
    assert (await client.get(f"{BASE}/{other['id']}/documents", headers=mine)).status_code == 404
    assert len(await document_rows(db, tenant)) == 1


async def test_agent_has_no_access(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    agent = await api_key_headers(Role.AGENT, tenant)
    assert (await upload(client, agent, customer["id"])).status_code == 403
    assert (
        await client.get(f"{BASE}/{customer['id']}/documents", headers=agent)
    ).status_code == 403
    await assert_nothing_written(db, tenant, storage)


async def test_service_can_add_but_not_verify(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    svc = await api_key_headers(Role.SERVICE, tenant)
    doc = await upload(client, svc, customer["id"])
    assert doc.status_code == 201
    url = f"{BASE}/{customer['id']}/documents/{doc.json()['id']}"
    assert (await client.post(f"{url}/verify", headers=svc)).status_code == 403


async def test_other_tenant_documents_are_404(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    other_tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    doc = (await upload(client, admin, customer["id"])).json()
    intruder = await api_key_headers(Role.ADMIN, other_tenant)
    url = f"{BASE}/{customer['id']}/documents/{doc['id']}"
    for method, path in [
        ("GET", url),
        ("GET", f"{url}/file"),
        ("DELETE", url),
        ("POST", f"{url}/verify"),
        ("POST", f"{url}/reject"),
        ("GET", f"{BASE}/{customer['id']}/documents"),
    ]:
        response = await client.request(method, path, headers=intruder)
        assert response.status_code == 404, (method, path)
    assert (await upload(client, intruder, customer["id"], number="W1234567")).status_code == 404
    assert len(await stored_keys(storage)) == 1
    assert (await client.get(url, headers=admin)).json()["status"] == "PENDING"
    # a document id of another customer of the same tenant is 404 too
    sibling = await create_customer(client, admin, first_name="B")
    assert (
        await client.get(f"{BASE}/{sibling['id']}/documents/{doc['id']}", headers=admin)
    ).status_code == 404


async def test_list_pages_and_cursor(
    client: httpx.AsyncClient, admin: dict[str, str], storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    ids = [
        (await upload(client, admin, customer["id"], number=f"N{i:07d}")).json()["id"]
        for i in range(3)
    ]
    url = f"{BASE}/{customer['id']}/documents"
    first = (await client.get(url, params={"page_size": 2}, headers=admin)).json()
    assert [d["id"] for d in first["documents"]] == ids[::-1][:2]
    assert (first["total"], first["total_pages"]) == (3, 2)
    rest = (
        await client.get(
            url, params={"page_size": 2, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    assert [d["id"] for d in rest["documents"]] == [ids[0]]
    assert rest["next_cursor"] is None
    page2 = (await client.get(url, params={"page_size": 2, "page": 2}, headers=admin)).json()
    assert [d["id"] for d in page2["documents"]] == [ids[0]]


async def test_idempotency_key_on_an_upload(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="A")
    headers = {**admin, "Idempotency-Key": "doc-1"}
    first = await upload(client, headers, customer["id"])
    assert first.status_code == 201, first.text
    again = await upload(client, headers, customer["id"])
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await document_rows(db, tenant)) == 1
    assert len(await stored_keys(storage)) == 1
    other_file = await upload(client, headers, customer["id"], PNG, "x.png", "image/png")
    assert other_file.status_code == 422  # same key, another body
    assert len(await stored_keys(storage)) == 1


async def test_concurrent_duplicates_leave_one_row_and_one_file(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customers = [await create_customer(client, admin, first_name=f"C{i}") for i in range(4)]
    responses = await asyncio.gather(
        *(upload(client, admin, c["id"], number="R1234567") for c in customers)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409], [r.text for r in responses]
    [row] = await document_rows(db, tenant)
    winner = next(r for r in responses if r.status_code == 201).json()
    for r in responses:
        if r.status_code == 409:
            assert r.json()["conflicting_customer_id"] == winner["customer_id"]
    assert await stored_keys(storage) == [row["storage_key"]]
    assert len(await outbox_rows(db, tenant, "customer.document_added")) == 1
