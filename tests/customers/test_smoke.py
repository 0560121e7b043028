from __future__ import annotations

import httpx

from tests.conftest import create_customer, outbox_rows


async def test_create_and_read(client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db) -> None:
    body = await create_customer(client, admin, email="Ada@Example.COM", first_name="Ada", phone="+1 415 555 0100")
    assert body["email"] == "Ada@example.com"
    assert body["phone"] == "+14155550100"
    got = await client.get(f"/api/v1/customers/{body['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json()["id"] == body["id"]
    rows = await outbox_rows(db, tenant)
    assert [r["type"] for r in rows] == ["customer.created"]
