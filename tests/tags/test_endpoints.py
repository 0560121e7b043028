"""Tags over HTTP against the real database (API.md "Profile data", issue 3 "Tags")."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows


def _url(customer_id: str, tag_id: str | None = None) -> str:
    base = f"/api/v1/customers/{customer_id}/tags"
    return f"{base}/{tag_id}" if tag_id else base


async def _links(db: asyncpg.Pool, customer_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT t.label FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id"
        " WHERE ct.customer_id = $1 ORDER BY t.label_key",
        uuid.UUID(customer_id),
    )
    return [r["label"] for r in rows]


async def _column(db: asyncpg.Pool, customer_id: str) -> tuple[list[str], int]:
    row = await db.fetchrow(
        "SELECT tags, version FROM customers WHERE id = $1", uuid.UUID(customer_id)
    )
    assert row is not None
    return list(row["tags"]), row["version"]


async def _events(db: asyncpg.Pool, tenant: str) -> list[tuple[str, list[str]]]:
    rows = await outbox_rows(db, tenant)
    return [
        (r["type"], r["data"]["labels"])
        for r in rows
        if r["type"] in {"customer.tagged", "customer.untagged"}
    ]


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, *labels: str
) -> dict[str, Any]:
    response = await client.post(_url(customer_id), json={"labels": list(labels)}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_add_creates_catalog_entries_links_and_column(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    body = await _add(client, admin, customer["id"], "VIP", " Wholesale ", "vip")
    assert body["added"] == ["VIP", "Wholesale"]
    assert [t["label"] for t in body["tags"]] == ["VIP", "Wholesale"]
    assert await _links(db, customer["id"]) == ["VIP", "Wholesale"]
    assert await _column(db, customer["id"]) == (["VIP", "Wholesale"], 2)
    assert await _events(db, tenant) == [("customer.tagged", ["VIP", "Wholesale"])]
    read = await client.get(f"/api/v1/customers/{customer['id']}", headers=admin)
    assert read.json()["tags"] == ["VIP", "Wholesale"]
    assert read.headers["etag"] == '"2"'
    listed = await client.get("/api/v1/customers", params={"tag": "vip"}, headers=admin)
    assert [c["id"] for c in listed.json()["customers"]] == [customer["id"]]


async def test_label_already_carried_in_other_case_is_a_no_op(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    await _add(client, admin, customer["id"], "VIP")
    again = await _add(client, admin, customer["id"], "vip", "ViP")
    assert again["added"] == []
    assert [t["label"] for t in again["tags"]] == ["VIP"]
    assert await _links(db, customer["id"]) == ["VIP"]
    assert await _column(db, customer["id"]) == (["VIP"], 2)  # version unchanged
    assert await db.fetchval("SELECT count(*) FROM tags WHERE tenant_id = $1", tenant) == 1
    assert await _events(db, tenant) == [("customer.tagged", ["VIP"])]


async def test_catalog_spelling_wins_and_counts_usage(
    client: httpx.AsyncClient, admin: dict[str, str], api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    ada = await create_customer(client, admin, first_name="Ada")
    bob = await create_customer(client, admin, first_name="Bob")
    gone = await create_customer(client, admin, first_name="Gone")
    await _add(client, admin, ada["id"], "VIP", "Beta")
    body = await _add(client, admin, bob["id"], "vip")
    assert [t["label"] for t in body["tags"]] == ["VIP"]
    await _add(client, admin, gone["id"], "VIP", "Zeta")
    assert (
        await client.delete(f"/api/v1/customers/{gone['id']}", headers=admin)
    ).status_code == 204
    agent = await api_key_headers(Role.AGENT, tenant)
    page = await client.get("/api/v1/tags", headers=agent)
    assert page.status_code == 200
    body = page.json()
    assert [(t["label"], t["customer_count"]) for t in body["tags"]] == [
        ("Beta", 1),
        ("VIP", 2),
        ("Zeta", 0),
    ]
    assert (body["total"], body["total_pages"], body["next_cursor"]) == (3, 1, None)
    first = (await client.get("/api/v1/tags", params={"page_size": 2}, headers=agent)).json()
    assert [t["label"] for t in first["tags"]] == ["Beta", "VIP"]
    rest = (
        await client.get(
            "/api/v1/tags", params={"page_size": 2, "cursor": first["next_cursor"]}, headers=agent
        )
    ).json()
    assert [t["label"] for t in rest["tags"]] == ["Zeta"]
    assert rest["next_cursor"] is None


async def test_remove_unlinks_updates_column_and_emits_event(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    body = await _add(client, admin, customer["id"], "VIP", "Beta")
    vip = next(t for t in body["tags"] if t["label"] == "VIP")
    response = await client.delete(_url(customer["id"], vip["id"]), headers=admin)
    assert response.status_code == 204
    assert await _links(db, customer["id"]) == ["Beta"]
    assert await _column(db, customer["id"]) == (["Beta"], 3)
    assert (await _events(db, tenant))[-1] == ("customer.untagged", ["VIP"])
    # not carried any more: 404, nothing written
    again = await client.delete(_url(customer["id"], vip["id"]), headers=admin)
    assert again.status_code == 404
    assert await _column(db, customer["id"]) == (["Beta"], 3)
    assert len(await _events(db, tenant)) == 2
    listed = (await client.get(_url(customer["id"]), headers=admin)).json()
    assert [t["label"] for t in listed["tags"]] == ["Beta"]
    assert (listed["total"], listed["next_cursor"]) == (1, None)


async def test_customer_create_and_update_replace_the_set(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    other = await create_customer(client, admin, first_name="Other", tags=["Gold"])
    customer = await create_customer(client, admin, first_name="Ada", tags=["vip", "gold"])
    assert customer["tags"] == ["vip", "Gold"]  # "gold" takes the catalog's spelling
    assert await _links(db, customer["id"]) == ["Gold", "vip"]
    response = await client.put(
        f"/api/v1/customers/{customer['id']}", json={"tags": ["GOLD", "New"]}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["Gold", "New"]
    assert await _links(db, customer["id"]) == ["Gold", "New"]
    assert await _links(db, other["id"]) == ["Gold"]
    assert await _events(db, tenant) == [
        ("customer.tagged", ["Gold"]),
        ("customer.tagged", ["vip", "Gold"]),
        ("customer.tagged", ["New"]),
        ("customer.untagged", ["vip"]),
    ]
    cleared = await client.put(
        f"/api/v1/customers/{customer['id']}", json={"tags": None}, headers=admin
    )
    assert cleared.json()["tags"] == []
    assert await _links(db, customer["id"]) == []


async def test_merge_moves_links_to_the_survivor(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool
) -> None:
    survivor = await create_customer(client, admin, first_name="Ada", tags=["VIP"])
    source = await create_customer(client, admin, first_name="Ada", tags=["vip", "Beta"])
    assert source["tags"] == ["VIP", "Beta"]
    response = await client.post(
        f"/api/v1/customers/{survivor['id']}/merge", json={"source_id": source["id"]}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["customer"]["tags"] == ["VIP", "Beta"]
    assert await _links(db, survivor["id"]) == ["Beta", "VIP"]
    assert await _links(db, source["id"]) == []


async def test_bad_labels_are_422_and_nothing_written(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    for body in ({"labels": []}, {"labels": [""]}, {"labels": ["x" * 65]}, {"label": "x"}):
        response = await client.post(_url(customer["id"]), json=body, headers=admin)
        assert response.status_code == 422, body
        locs = [e["loc"][:2] for e in response.json()["errors"]]
        assert ["body", next(iter(body))] in locs
    # casefold() lengthens "ß" to "ss": too long for the catalog key
    response = await client.post(_url(customer["id"]), json={"labels": ["ß" * 40]}, headers=admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "labels"]
    assert await db.fetchval("SELECT count(*) FROM tags WHERE tenant_id = $1", tenant) == 0
    assert await _links(db, customer["id"]) == []
    assert await _events(db, tenant) == []


async def test_customer_token_and_other_tenant_are_refused(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    token_headers: TokenFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Me", tags=["VIP"])
    mine = token_headers("customer", tenant, sub=me["id"])
    assert (await client.get(_url(me["id"]), headers=mine)).status_code == 403
    assert (
        await client.post(_url(me["id"]), json={"labels": ["x"]}, headers=mine)
    ).status_code == 403
    assert (await client.get("/api/v1/tags", headers=mine)).status_code == 403
    theirs_headers = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_customer(client, theirs_headers, first_name="Theirs", tags=["Secret"])
    tag_id = (await client.get(_url(theirs["id"]), headers=theirs_headers)).json()["tags"][0]["id"]
    assert (
        await client.post(_url(theirs["id"]), json={"labels": ["x"]}, headers=admin)
    ).status_code == 404
    assert (await client.delete(_url(theirs["id"], tag_id), headers=admin)).status_code == 404
    # their tag id on my customer: 404, and their catalog is not mine
    assert (await client.delete(_url(me["id"], tag_id), headers=admin)).status_code == 404
    catalog = (await client.get("/api/v1/tags", headers=admin)).json()
    assert [t["label"] for t in catalog["tags"]] == ["VIP"]
    assert await _links(db, theirs["id"]) == ["Secret"]


async def test_customer_tags_page_by_keyset_in_the_order_added(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """Paged in SQL by (linked_at, label_key): labels added together share linked_at and
    follow by label; a cursor continues after its row even when an earlier row is removed
    meanwhile (an offset would skip one), and its page is not counted again."""
    customer = await create_customer(client, admin, first_name="Ada")
    zeta = (await _add(client, admin, customer["id"], "Zeta"))["tags"][0]
    await _add(client, admin, customer["id"], "beta", "Alpha")
    first = await client.get(_url(customer["id"]), params={"page_size": 2}, headers=admin)
    assert first.status_code == 200
    body = first.json()
    assert [t["label"] for t in body["tags"]] == ["Zeta", "Alpha"]
    assert (body["total"], body["page"], body["total_pages"]) == (3, 1, 2)
    assert body["next_cursor"] is not None
    removed = await client.delete(_url(customer["id"], zeta["id"]), headers=admin)
    assert removed.status_code == 204
    await _add(client, admin, customer["id"], "Omega")
    rest = await client.get(
        _url(customer["id"]),
        params={"pageSize": 2, "page": 5, "cursor": body["next_cursor"]},
        headers=admin,
    )
    assert rest.status_code == 200
    more = rest.json()
    assert [t["label"] for t in more["tags"]] == ["beta", "Omega"]
    # not counted again: the first page's total (3, though 3 remain after a removal and an
    # addition) and the page number come with the cursor
    assert (more["total"], more["page"], more["total_pages"], more["next_cursor"]) == (
        3,
        2,
        2,
        None,
    )
    assert await _links(db, customer["id"]) == ["Alpha", "beta", "Omega"]
    bad = await client.get(_url(customer["id"]), params={"cursor": "e30"}, headers=admin)
    assert bad.status_code == 422  # "{}": a cursor that is not one of this list's
    assert [e["loc"] for e in bad.json()["errors"]] == [["query", "cursor"]]


async def test_tag_errors_render_their_problem_bodies(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    """TagNotOnCustomer and TagLabelInvalid answer the problem bodies the routes always
    gave, and nothing is written."""
    customer = await create_customer(client, admin, first_name="Ada")
    unknown = str(uuid.uuid4())
    missing = await client.delete(_url(customer["id"], unknown), headers=admin)
    assert missing.status_code == 404
    assert {k: v for k, v in missing.json().items() if k != "trace_id"} == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "tag not found on this customer",
        "tag_id": unknown,
    }
    too_long = await client.post(
        _url(customer["id"]), json={"labels": ["ok", "ß" * 40]}, headers=admin
    )  # 40 characters, but "ss" * 40 once casefolded: longer than label_key allows
    assert too_long.status_code == 422
    detail = "tag label must be 1 to 64 characters"
    assert {k: v for k, v in too_long.json().items() if k != "trace_id"} == {
        "type": "/problems/validation-error",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": detail,
        "errors": [{"loc": ["body", "labels"], "msg": detail, "type": "value_error"}],
    }
    assert await _links(db, customer["id"]) == []
    assert await db.fetchval("SELECT count(*) FROM tags WHERE tenant_id = $1", tenant) == 0
    assert await _events(db, tenant) == []
