"""Staff notes over HTTP against the real database (API.md "Profile data")."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from patron.auth.principal import Role
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows


def _url(customer_id: str, note_id: str | None = None) -> str:
    base = f"/api/v1/customers/{customer_id}/notes"
    return f"{base}/{note_id}" if note_id else base


async def _notes(db: asyncpg.Pool, customer_id: str) -> list[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT note, author_id FROM customer_notes WHERE customer_id = $1 ORDER BY created_at",
        uuid.UUID(customer_id),
    )
    return [(r["note"], r["author_id"]) for r in rows]


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], customer_id: str, text: str
) -> dict[str, Any]:
    response = await client.post(_url(customer_id), json={"note": text}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_add_records_author_and_event(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token_headers: TokenFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    agent = token_headers("agent", tenant, sub="agent-7")
    body = await _add(client, agent, customer["id"], "  Prefers email.  ")
    assert (body["note"], body["author_id"], body["customer_id"]) == (
        "Prefers email.",
        "jwt:agent-7",
        customer["id"],
    )
    assert await _notes(db, customer["id"]) == [("Prefers email.", "jwt:agent-7")]
    events = await outbox_rows(db, tenant, "customer.note_added")
    assert [(e["subject"], e["data"]["note"]["id"]) for e in events] == [
        (customer["id"], body["id"])
    ]


async def test_list_newest_first_paged(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    made = [(await _add(client, admin, customer["id"], f"note {n}"))["id"] for n in range(3)]
    first = (await client.get(_url(customer["id"]), params={"page_size": 2}, headers=admin)).json()
    assert [n["id"] for n in first["notes"]] == [made[2], made[1]]
    assert (first["total"], first["page"], first["total_pages"]) == (3, 1, 2)
    rest = (
        await client.get(
            _url(customer["id"]),
            params={"page_size": 2, "cursor": first["next_cursor"]},
            headers=admin,
        )
    ).json()
    assert [n["id"] for n in rest["notes"]] == [made[0]]
    assert rest["next_cursor"] is None
    page2 = (
        await client.get(_url(customer["id"]), params={"page_size": 2, "page": 2}, headers=admin)
    ).json()
    assert [n["id"] for n in page2["notes"]] == [made[0]]


async def test_bad_note_is_422_and_nothing_written(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    for body in ({"note": ""}, {"note": "   "}, {"note": "x" * 10_001}, {}, {"note": "x", "y": 1}):
        response = await client.post(_url(customer["id"]), json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["loc"][0] == "body"
    ok = await client.post(_url(customer["id"]), json={"note": "x" * 10_000}, headers=admin)
    assert ok.status_code == 201
    assert len(await _notes(db, customer["id"])) == 1
    assert len(await outbox_rows(db, tenant, "customer.note_added")) == 1


async def test_notes_are_never_visible_to_the_customer(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token_headers: TokenFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    note = await _add(client, admin, me["id"], "Difficult customer")
    mine = token_headers("customer", tenant, sub=me["id"])
    listed = await client.get(_url(me["id"]), headers=mine)
    assert listed.status_code == 403
    assert "Difficult" not in listed.text
    posted = await client.post(_url(me["id"]), json={"note": "I am nice"}, headers=mine)
    assert posted.status_code == 403
    deleted = await client.delete(_url(me["id"], note["id"]), headers=mine)
    assert deleted.status_code == 403
    assert await _notes(db, me["id"]) == [("Difficult customer", note["author_id"])]
    assert len(await outbox_rows(db, tenant, "customer.note_added")) == 1
    assert await outbox_rows(db, tenant, "customer.note_removed") == []
    # and the customer object itself does not carry them
    me_read = await client.get(f"/api/v1/customers/{me['id']}", headers=mine)
    assert "Difficult" not in me_read.text


async def test_delete_by_author_admin_and_manager_but_not_another_agent(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    token_headers: TokenFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    author = token_headers("agent", tenant, sub="agent-1")
    other_agent = token_headers("agent", tenant, sub="agent-2")
    manager = await api_key_headers(Role.MANAGER, tenant)
    first = await _add(client, author, customer["id"], "one")
    second = await _add(client, author, customer["id"], "two")
    third = await _add(client, author, customer["id"], "three")

    refused = await client.delete(_url(customer["id"], first["id"]), headers=other_agent)
    assert refused.status_code == 403
    assert len(await _notes(db, customer["id"])) == 3
    assert await outbox_rows(db, tenant, "customer.note_removed") == []

    for headers, note in ((author, first), (manager, second), (admin, third)):
        response = await client.delete(_url(customer["id"], note["id"]), headers=headers)
        assert response.status_code == 204
    assert await _notes(db, customer["id"]) == []
    removed = await outbox_rows(db, tenant, "customer.note_removed")
    assert [e["data"]["note_id"] for e in removed] == [first["id"], second["id"], third["id"]]
    gone = await client.delete(_url(customer["id"], first["id"]), headers=admin)
    assert gone.status_code == 404


async def test_other_tenant_notes_are_404_and_untouched(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    owner = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_customer(client, owner, first_name="Theirs")
    note = await _add(client, owner, theirs["id"], "secret")
    mine = await create_customer(client, admin, first_name="Mine")
    assert (await client.get(_url(theirs["id"]), headers=admin)).status_code == 404
    assert (
        await client.post(_url(theirs["id"]), json={"note": "x"}, headers=admin)
    ).status_code == 404
    assert (await client.delete(_url(theirs["id"], note["id"]), headers=admin)).status_code == 404
    assert (await client.delete(_url(mine["id"], note["id"]), headers=admin)).status_code == 404
    assert await _notes(db, theirs["id"]) == [("secret", note["author_id"])]


async def test_note_errors_render_their_problem_bodies(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token_headers: TokenFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    """NoteNotFound and NoteNotYours answer the problem bodies the routes always gave, and
    nothing is removed."""
    customer = await create_customer(client, admin, first_name="Ada")
    note = await _add(client, token_headers("agent", tenant, sub="agent-1"), customer["id"], "x")
    unknown = str(uuid.uuid4())
    missing = await client.delete(_url(customer["id"], unknown), headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert {k: v for k, v in missing.json().items() if k != "trace_id"} == {
        "type": "/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "note not found",
        "note_id": unknown,
    }
    other_agent = token_headers("agent", tenant, sub="agent-2")
    refused = await client.delete(_url(customer["id"], note["id"]), headers=other_agent)
    assert refused.status_code == 403
    assert {k: v for k, v in refused.json().items() if k != "trace_id"} == {
        "type": "/problems/forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "only an admin, a manager or the note's author may delete it",
    }
    assert await _notes(db, customer["id"]) == [("x", "jwt:agent-1")]
    assert await outbox_rows(db, tenant, "customer.note_removed") == []
