"""List, search, filters, sorting and paging (API.md "Customers" list parameters)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from patron.app import create_app
from patron.context import AppContext
from patron.customers import listing
from patron.customers.listing import SortOrder
from patron.customers.repository import CustomerRepository
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


async def test_search_total_is_capped_and_last_page_needs_no_count(
    app_ctx: Any, settings: Any, admin: dict[str, str]
) -> None:
    # gathering at most 2 matches makes the 5 "capped" customers a common term: counted
    capped = settings.model_copy(update={"search_count_cap": 3, "search_collect": 2})
    app = create_app(capped, context=AppContext(**{**app_ctx.__dict__, "settings": capped}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for i in range(5):
            await create_customer(c, admin, first_name=f"Capped{i}")
        first = (await c.get(BASE, params={"q": "capped", "page_size": 2}, headers=admin)).json()
        assert (first["total"], first["total_capped"], len(first["customers"])) == (3, True, 2)
        exact = (await c.get(BASE, params={"q": "capped4", "page_size": 2}, headers=admin)).json()
        assert (exact["total"], exact["total_capped"], len(exact["customers"])) == (1, False, 1)
        whole = (await c.get(BASE, params={"q": "capped", "page_size": 10}, headers=admin)).json()
        assert (whole["total"], whole["total_capped"], len(whole["customers"])) == (5, False, 5)
        unfiltered = (await c.get(BASE, params={"page_size": 2}, headers=admin)).json()
        assert (unfiltered["total"], unfiltered["total_capped"]) == (5, False)


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
