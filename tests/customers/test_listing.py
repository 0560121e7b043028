"""List, search, filters, sorting and paging (API.md "Customers" list parameters)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from patron.app import create_app
from patron.context import AppContext
from patron.customers import listing
from patron.customers.listing import SortBy, SortOrder
from patron.customers.repository import CustomerRepository
from patron.customers.schemas import CustomerPage
from patron.kit.pagination import decode_cursor, encode_cursor
from patron.tenancy import trusted_tenant
from tests.conftest import create_customer

BASE = "/api/v1/customers"


async def _names(client: httpx.AsyncClient, headers: dict[str, str], **params: object) -> list[str]:
    response = await client.get(BASE, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [c["first_name"] for c in response.json()["customers"]]


async def test_search_matches_substring_case_and_accent_insensitively(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_customer(
        client, admin, first_name="José", last_name="Müller", email="jm@example.com"
    )
    await create_customer(
        client,
        admin,
        first_name="Ana",
        last_name="Smith",
        phone="+14155550142",
        app_id="a",
        psid="PSID-777",
    )
    await create_customer(client, admin, first_name="Zoë", email="zoe@shop.example")
    assert await _names(client, admin, q="jose") == ["José"]
    assert await _names(client, admin, q="MULLER") == ["José"]
    assert await _names(client, admin, search="zoe") == ["Zoë"]
    assert await _names(client, admin, query="shop.exa") == ["Zoë"]
    assert await _names(client, admin, q="5550142") == ["Ana"]
    assert await _names(client, admin, q="psid-77") == ["Ana"]
    assert await _names(client, admin, q="nobody") == []


async def test_search_treats_like_wildcards_literally(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_customer(client, admin, first_name="50%_off")
    await create_customer(client, admin, first_name="5000off")
    assert await _names(client, admin, q="50%_") == ["50%_off"]
    assert await _names(client, admin, q="%") == ["50%_off"]
    assert await _names(client, admin, q="_") == ["50%_off"]
    assert await _names(client, admin, q="\\") == []


async def test_filters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_customer(
        client,
        admin,
        first_name="A",
        email="a@example.com",
        customer_type="VIP",
        platform="instagram",
        tags=["Gold"],
    )
    await create_customer(
        client,
        admin,
        first_name="B",
        phone="+14155550100",
        status="INACTIVE",
        platform="facebook",
        app_id="x",
        psid="p1",
    )
    await create_customer(client, admin, first_name="C", tags=["silver", "gold"])
    assert await _names(client, admin, email="A@EXAMPLE.com") == ["A"]
    assert await _names(client, admin, phone="(415) 555-0100") == ["B"]
    assert await _names(client, admin, psid="p1") == ["B"]
    assert await _names(client, admin, app_id="x") == ["B"]
    assert await _names(client, admin, status="INACTIVE") == ["B"]
    assert await _names(client, admin, customer_type="VIP") == ["A"]
    assert await _names(client, admin, platform="instagram") == ["A"]
    assert sorted(await _names(client, admin, tag="GOLD")) == ["A", "C"]
    assert await _names(client, admin, tag=["gold", "silver"]) == ["C"]
    assert sorted(await _names(client, admin, blocked="false")) == ["A", "B", "C"]
    bad = await client.get(BASE, params={"status": "NOPE"}, headers=admin)
    assert bad.status_code == 422
    bad = await client.get(BASE, params={"email": "nope"}, headers=admin)
    assert bad.status_code == 422


async def test_created_range(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = await create_customer(client, admin, first_name="first")
    await create_customer(client, admin, first_name="second")
    assert await _names(client, admin, created_before=first["created_at"]) == []
    assert await _names(client, admin, created_after=first["created_at"], sort_order="asc") == [
        "first",
        "second",
    ]


@pytest.mark.parametrize(
    ("sort_by", "order", "expected"),
    [
        ("created_at", "desc", ["c", "b", "a"]),
        ("created_at", "asc", ["a", "b", "c"]),
        ("last_name", "asc", ["b", "c", "a"]),
        ("last_name", "desc", ["c", "b", "a"]),
        ("email", "desc", ["a", "c", "b"]),
    ],
)
async def test_sorting(
    client: httpx.AsyncClient, admin: dict[str, str], sort_by: str, order: str, expected: list[str]
) -> None:
    await create_customer(client, admin, first_name="a", last_name=None, email="z@example.com")
    await create_customer(client, admin, first_name="b", last_name="Adams", email="a@example.com")
    await create_customer(client, admin, first_name="c", last_name="Brown", email="m@example.com")
    assert await _names(client, admin, sort_by=sort_by, sort_order=order) == expected


async def test_page_envelope(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(5):
        await create_customer(client, admin, first_name=f"n{i}")
    response = await client.get(
        BASE, params={"page": 2, "page_size": 2, "sort_order": "asc"}, headers=admin
    )
    body = response.json()
    assert [c["first_name"] for c in body["customers"]] == ["n2", "n3"]
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (5, 2, 2, 3)
    assert body["next_cursor"] is not None
    last = (
        await client.get(
            BASE, params={"page": 3, "page_size": 2, "sort_order": "asc"}, headers=admin
        )
    ).json()
    assert [c["first_name"] for c in last["customers"]] == ["n4"]
    assert last["next_cursor"] is None
    assert (await client.get(BASE, params={"page_size": 101}, headers=admin)).status_code == 422
    assert (await client.get(BASE, params={"page": 0}, headers=admin)).status_code == 422
    default = (await client.get(BASE, headers=admin)).json()
    assert default["page_size"] == 20


@pytest.mark.parametrize(
    "sort_by",
    [
        "created_at",
        "updated_at",
        "last_name",
        "email",
        "last_interaction_at",
        "total_spent",
        "last_order_date",
    ],
)
async def test_cursor_walks_every_customer_once(
    client: httpx.AsyncClient, admin: dict[str, str], sort_by: str
) -> None:
    created = set()
    for i in range(7):
        body = await create_customer(
            client, admin, first_name=f"n{i}", last_name=["x", "y", None][i % 3]
        )
        created.add(body["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"page_size": 3, "sort_by": sort_by, "page": 99}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(BASE, params=params, headers=admin)).json()
        if not cursor:
            # page 99 is past the end; start the walk from the first page
            assert body["customers"] == []
            params.pop("page")
            body = (await client.get(BASE, params=params, headers=admin)).json()
        seen += [c["id"] for c in body["customers"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == created
    assert pages == 3


async def test_bad_cursor_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await client.get(BASE, params={"cursor": "!!!"}, headers=admin)).status_code == 422
    for _ in range(3):
        await create_customer(client, admin, first_name="x")
    body = (await client.get(BASE, params={"page_size": 1}, headers=admin)).json()
    other_order = await client.get(
        BASE, params={"cursor": body["next_cursor"], "sort_by": "email"}, headers=admin
    )
    assert other_order.status_code == 422


@pytest.fixture
async def capped(app_ctx: Any, settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that counts at most 3 matches of a search and gathers at most
    2 (so 3 or more matching customers make a common term, paged and counted)."""
    small = settings.model_copy(update={"search_count_cap": 3, "search_collect": 2})
    app = create_app(small, context=AppContext(**{**app_ctx.__dict__, "settings": small}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def _total(body: dict[str, Any]) -> tuple[int, bool, int, int]:
    return body["total"], body["total_is_estimate"], body["total_pages"], len(body["customers"])


async def test_search_total_past_the_cap_is_a_flagged_lower_bound(
    capped: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for i in range(5):
        await create_customer(capped, admin, first_name=f"Capped{i}")

    async def search(**params: object) -> dict[str, Any]:
        response = await capped.get(BASE, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return dict(response.json())

    # 5 match, the count stops at 3: at least 3, flagged
    assert _total(await search(q="capped", page_size=2)) == (3, True, 2, 2)
    # page 2 has seen 4 rows and knows of a 5th: the lower bound grows with them
    assert _total(await search(q="capped", page_size=2, page=2)) == (5, True, 3, 2)
    # small results stay exact: every match gathered, or the last page
    assert _total(await search(q="capped4", page_size=2)) == (1, False, 1, 1)
    assert _total(await search(q="capped", page_size=10)) == (5, False, 1, 5)
    assert _total(await search(q="nobody")) == (0, False, 0, 0)
    # lists without q are counted exactly, past the cap too
    assert _total(await search(page_size=2)) == (5, False, 3, 2)


async def test_cursor_pages_carry_the_first_pages_total(
    capped: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for i in range(5):
        await create_customer(capped, admin, first_name=f"Walk{i}")

    async def get(**params: object) -> dict[str, Any]:
        response = await capped.get(BASE, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return dict(response.json())

    searched = await get(q="walk", page_size=2)
    listed = await get(page_size=2)
    assert _total(searched) == (3, True, 2, 2)
    assert _total(listed) == (5, False, 3, 2)
    # Two more customers now: a count would see them; the cursor pages are not counted
    # again, so they answer the first page's figures (the new ones are newer than the
    # cursor, so the walk itself does not meet them).
    await create_customer(capped, admin, first_name="Walk5")
    await create_customer(capped, admin, first_name="Walk6")
    walked = await get(q="walk", page_size=2, cursor=searched["next_cursor"])
    assert _total(walked) == (3, True, 2, 2)
    assert [c["first_name"] for c in walked["customers"]] == ["Walk2", "Walk1"]
    walked = await get(page_size=2, cursor=listed["next_cursor"])
    assert _total(walked) == (5, False, 3, 2)
    last = await get(page_size=2, cursor=walked["next_cursor"])
    assert (_total(last), last["next_cursor"], last["page"]) == ((5, False, 3, 1), None, 3)
    # a fresh first page counts again
    assert _total(await get(page_size=2)) == (7, False, 4, 2)


async def test_a_cursor_with_a_bad_total_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for _ in range(2):
        await create_customer(client, admin, first_name="x")
    body = (await client.get(BASE, params={"page_size": 1}, headers=admin)).json()
    payload = decode_cursor(body["next_cursor"])
    for bad in ({"t": -1}, {"t": "5"}, {"t": 5, "e": "yes"}, {"t": True}):
        cursor = encode_cursor({**payload, **bad})
        response = await client.get(BASE, params={"page_size": 1, "cursor": cursor}, headers=admin)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
    # a cursor made before totals were carried still works: the page is counted
    old = encode_cursor({k: v for k, v in payload.items() if k not in {"t", "e"}})
    response = await client.get(BASE, params={"page_size": 1, "cursor": old}, headers=admin)
    assert _total(response.json()) == (2, False, 2, 1)


async def test_list_items_are_the_customer_objects_of_get_by_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # rendered straight to JSON, the list must still show what GET by id shows
    await create_customer(
        client,
        admin,
        first_name="Zoë",
        last_name="Ærø",
        email="zoe@example.com",
        phone="+14155550199",
        tags=["Gold"],
        attributes={"size": 42.5, "nested": {"a": [1, None, "é"]}},
        birth_date="1990-05-17",
    )
    await create_customer(client, admin, first_name="Plain")
    response = await client.get(BASE, headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    CustomerPage.model_validate(body)
    assert set(body) == {
        "customers",
        "total",
        "total_is_estimate",
        "page",
        "page_size",
        "total_pages",
        "next_cursor",
    }
    for item in body["customers"]:
        one = await client.get(f"{BASE}/{item['id']}", headers=admin)
        assert item == one.json()


async def _search_all(
    app_ctx: AppContext, tenant: str, q: str, collect: int, page_size: int, **extra: Any
) -> list[list[str]]:
    """Every page of a search, following next_cursor, gathering up to ``collect`` matches
    before paging through the date index."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        async with app_ctx.db.read_only(trusted_tenant(tenant)) as session:
            query = listing.CustomerQuery(q=q, page_size=page_size, cursor=cursor, **extra)
            page = await listing.list_customers(
                CustomerRepository(session, trusted_tenant(tenant)),
                query,
                "US",
                search_collect=collect,
            )
        pages.append([c.first_name or "" for c in page.customers])
        cursor = page.next_cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize("sort_order", ["desc", "asc"])
async def test_search_pages_do_not_depend_on_how_many_matches_are_gathered(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app_ctx: AppContext,
    tenant: str,
    sort_order: str,
) -> None:
    # 12 customers, oldest first; "rare" only on the two oldest, "common" on all,
    # "half" on every other one: gathering limits from 1 to all take both paths
    for n in range(12):
        tags = ["common"] + (["rare"] if n < 2 else []) + (["half"] if n % 2 else [])
        await create_customer(client, admin, first_name=f"{n:02d}-{'-'.join(tags)}")
    for q in ("common", "rare", "half", "nothing"):
        order = SortOrder(sort_order)
        expected = await _search_all(app_ctx, tenant, q, 1_000, 3, sort_order=order)
        for collect in (1, 2, 3, 5, 8):
            got = await _search_all(app_ctx, tenant, q, collect, 3, sort_order=order)
            assert got == expected, (q, collect)
    newest_first = [n for page in await _search_all(app_ctx, tenant, "rare", 1, 1) for n in page]
    assert newest_first == ["01-common-rare-half", "00-common-rare"]


@pytest.mark.parametrize("sort_by", [SortBy.CREATED_AT, SortBy.UPDATED_AT])
@pytest.mark.parametrize("sort_order", [SortOrder.DESC, SortOrder.ASC])
async def test_plain_search_statements_answer_as_the_general_path(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app_ctx: AppContext,
    tenant: str,
    sort_by: SortBy,
    sort_order: SortOrder,
) -> None:
    # q alone runs the compiled statements; a filter that keeps everyone (created after
    # 2000) sends the same search down the general path: the pages must be the same
    for n in range(7):
        await create_customer(client, admin, first_name=f"Same{n}")
    since = datetime(2000, 1, 1, tzinfo=UTC)
    for collect in (2, 100):  # a common term (paged by date), then every match gathered
        for page in (1, 2, 4, 5):
            pages = []
            for extra in ({}, {"created_after": since}):
                async with app_ctx.db.read_only(trusted_tenant(tenant)) as session:
                    query = listing.CustomerQuery(
                        q=" same ", page=page, page_size=2, sort_by=sort_by, sort_order=sort_order
                    )
                    query = dataclasses.replace(query, **extra)
                    pages.append(
                        await listing.list_customers(
                            CustomerRepository(session, trusted_tenant(tenant)),
                            query,
                            "US",
                            count_cap=3,
                            search_collect=collect,
                        )
                    )
            plain, general = pages
            assert plain.model_dump() == general.model_dump(), (collect, page)
            if page == 1:
                assert len(plain.customers) == 2


async def test_a_page_past_the_gathered_matches_keeps_the_exact_total(
    capped: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """A plain search's page past every match it gathered (fewer than SEARCH_COLLECT):
    empty, and its total still the exact number gathered, not a count or the offset."""
    await create_customer(capped, admin, first_name="Lonely")
    response = await capped.get(
        BASE, params={"q": "lonely", "page_size": 1, "page": 3}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert _total(response.json()) == (1, False, 1, 0)


async def test_a_plain_search_runs_on_a_driver_connection(
    capped: httpx.AsyncClient, admin: dict[str, str], app_ctx: AppContext, tenant: str
) -> None:
    """Every shape of a plain search (gathered, common and counted, a page past the
    gathered matches) needs prepared statements only: a repository on a bare driver
    connection refuses ORM work, so any session use fails here."""
    for i in range(5):
        await create_customer(capped, admin, first_name=f"Driven{i}")
    shapes = [
        ({"q": "driven4"}, (1, False)),  # every match gathered
        ({"q": "driven", "page_size": 2}, (3, True)),  # common: paged by date, counted
        ({"q": "driven", "page_size": 2, "page": 2}, (5, True)),
        ({"q": "driven4", "page_size": 1, "page": 3}, (1, False)),  # past the gathered
    ]
    async with app_ctx.db.driver_reads(trusted_tenant(tenant)) as connection:
        repo = CustomerRepository(connection, trusted_tenant(tenant))
        for params, expected in shapes:
            query = listing.CustomerQuery(**params)  # type: ignore[arg-type]
            assert listing.is_plain_search(query)
            page = await listing.list_customers(repo, query, "US", count_cap=3, search_collect=2)
            assert (page.total, page.total_is_estimate) == expected, params
