"""Inputs that schemathesis found answered with 500, pinned as plain regression tests."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import create_customer


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_null_collections_are_emptied(
    client: httpx.AsyncClient, admin: dict[str, str], method: str
) -> None:
    body = await create_customer(
        client, admin, first_name="Ada", tags=["VIP"], attributes={"a": 1}, preferences={"p": True}
    )
    cleared = {"tags": None, "attributes": None, "preferences": None, "external_ids": None}
    response = await client.request(
        method, f"/api/v1/customers/{body['id']}", json=cleared, headers=admin
    )
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["tags"], got["attributes"], got["preferences"], got["external_ids"]) == (
        [],
        {},
        {},
        {},
    )


@pytest.mark.parametrize("field", ["status", "customer_type", "marketing_opt_in"])
async def test_null_for_a_required_scalar_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], field: str
) -> None:
    body = await create_customer(client, admin, first_name="Ada")
    response = await client.patch(
        f"/api/v1/customers/{body['id']}", json={field: None}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", field]
    created = await client.post("/api/v1/customers", json={field: None}, headers=admin)
    assert created.status_code == 422, created.text


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ('{"n": 18446744073709551616}', "64-bit"),
        ('{"n": -9223372036854775809}', "64-bit"),
        ('{"n": 1.0816016947214639e+267}', "64-bit"),  # JSONB prints it as 268 digits
        ('{"n": [-1e19]}', "64-bit"),
        ('{"n": NaN}', "finite"),
        ('{"n": [Infinity]}', "finite"),
        ('{"a":' * 40 + "1" + "}" * 40, "nested"),
    ],
)
async def test_unstorable_json_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], attributes: str, message: str
) -> None:
    response = await client.post(
        "/api/v1/customers",
        content=f'{{"first_name": "Ada", "attributes": {attributes}}}',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]


async def test_largest_storable_json_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    nested: dict[str, object] = {
        "n": 9223372036854775807,
        "m": -9223372036854775808,
        "f": 1.5e-300,
        "g": -9.2e18,
    }
    for _ in range(30):
        nested = {"a": nested}
    body = await create_customer(client, admin, first_name="Ada", attributes=nested)
    assert body["attributes"] == nested
