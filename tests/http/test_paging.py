"""The paging dependency (``patron.http.paging``) through real list routes: a customer's
notes (``Paging``: page, page_size alias pageSize, cursor) and communications
(``LimitPaging``: ``limit``), against the real database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import create_customer


async def _customer_with_notes(client: httpx.AsyncClient, admin: dict[str, str], count: int) -> str:
    customer = await create_customer(client, admin, first_name="Paged")
    for n in range(count):
        response = await client.post(
            f"/api/v1/customers/{customer['id']}/notes", json={"note": f"n{n}"}, headers=admin
        )
        assert response.status_code == 201, response.text
    customer_id: str = customer["id"]
    return customer_id


async def _notes(
    client: httpx.AsyncClient, admin: dict[str, str], customer_id: str, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/v1/customers/{customer_id}/notes", params=params, headers=admin)


def _texts(page: dict[str, Any]) -> list[str]:
    return [n["note"] for n in page["notes"]]


async def test_page_size_and_its_camel_case_alias_size_the_page(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id = await _customer_with_notes(client, admin, 5)
    default = (await _notes(client, admin, customer_id)).json()
    assert (default["page_size"], default["total"], default["page"]) == (20, 5, 1)
    for params in ({"page_size": 2}, {"pageSize": 2}, {"page_size": 2, "pageSize": 2}):
        page = (await _notes(client, admin, customer_id, page=2, **params)).json()
        assert _texts(page) == ["n2", "n1"], params  # newest first: n4 n3 | n2 n1 | n0
        assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (
            5,
            2,
            2,
            3,
        )


async def test_page_size_and_page_size_alias_that_disagree_are_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id = await _customer_with_notes(client, admin, 1)
    response = await _notes(client, admin, customer_id, page_size=2, pageSize=3)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"] == "page_size and pageSize disagree"
    assert problem["errors"] == [
        {
            "loc": ["query", "page_size"],
            "msg": "page_size and pageSize disagree",
            "type": "value_error",
        }
    ]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page": 0}, ["query", "page"]),
        ({"page": 100_001}, ["query", "page"]),
        ({"page_size": 0}, ["query", "page_size"]),
        ({"page_size": 101}, ["query", "page_size"]),
        ({"pageSize": 101}, ["query", "page_size"]),
        ({"cursor": "x" * 1001}, ["query", "cursor"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ],
)
async def test_out_of_bounds_values_are_422_naming_the_parameter(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, Any], loc: list[str]
) -> None:
    customer_id = await _customer_with_notes(client, admin, 1)
    response = await _notes(client, admin, customer_id, **params)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [loc]


async def test_the_largest_values_allowed_are_served(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id = await _customer_with_notes(client, admin, 1)
    page = (await _notes(client, admin, customer_id, page=100_000, page_size=100)).json()
    assert (page["notes"], page["total"], page["page"], page["page_size"]) == ([], 1, 100_000, 100)


async def test_a_cursor_wins_over_page_and_its_pages_are_not_counted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer_id = await _customer_with_notes(client, admin, 5)
    first = (await _notes(client, admin, customer_id, page_size=2)).json()
    assert _texts(first) == ["n4", "n3"]
    assert first["total"] == 5
    second = (
        await _notes(client, admin, customer_id, page_size=2, page=3, cursor=first["next_cursor"])
    ).json()
    assert _texts(second) == ["n2", "n1"]  # after the cursor, not page 3 (["n0"])
    # the first page's total and the page number come with the cursor
    assert (second["total"], second["page"], second["total_pages"]) == (5, 2, 3)
    assert second["page_size"] == 2
    # a note added meanwhile is not counted: the cursor's total is answered again
    added = await client.post(
        f"/api/v1/customers/{customer_id}/notes", json={"note": "n5"}, headers=admin
    )
    assert added.status_code == 201
    last = (
        await _notes(client, admin, customer_id, pageSize=2, cursor=second["next_cursor"])
    ).json()
    assert _texts(last) == ["n0"]
    assert (last["total"], last["page"], last["next_cursor"]) == (5, 3, None)
    assert (await _notes(client, admin, customer_id)).json()["total"] == 6


async def test_limit_sizes_a_communications_page_within_its_bounds(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, first_name="Talk")
    url = f"/api/v1/customers/{customer['id']}/communications"
    for n in range(3):
        body = {"channel": "EMAIL", "direction": "INBOUND", "subject": f"s{n}"}
        assert (await client.post(url, json=body, headers=admin)).status_code == 201
    default = (await client.get(url, headers=admin)).json()
    assert (default["page_size"], default["total"]) == (50, 3)
    page = (await client.get(url, params={"limit": 2, "page": 2}, headers=admin)).json()
    assert (len(page["communications"]), page["total"], page["page"], page["page_size"]) == (
        1,
        3,
        2,
        2,
    )
    for limit in (0, 201):
        refused = await client.get(url, params={"limit": limit}, headers=admin)
        assert refused.status_code == 422
        assert [e["loc"] for e in refused.json()["errors"]] == [["query", "limit"]]
