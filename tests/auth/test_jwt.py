"""Bearer JWTs verified against a real local JWKS endpoint."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import create_customer
from tests.jwks_server import Issuer

BASE = "/api/v1/customers"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_with_role_alias(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str
) -> None:
    token = issuer.token(roles=["admin_business"], tenant_id=tenant)
    response = await client.post(BASE, json={"first_name": "A"}, headers=bearer(token))
    assert response.status_code == 201
    assert response.json()["tenant_id"] == tenant
    manager = issuer.token(roles="admin_manager", tenant_id=tenant)
    assert (await client.get(BASE, headers=bearer(manager))).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"expires_in": -120}, "expired"),
        ({"audience": "someone-else"}, "audience"),
        ({"issuer": "https://evil.test/"}, "issuer"),
    ],
)
async def test_invalid_tokens_are_401(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str, kwargs: dict, reason: str
) -> None:
    params = {"roles": ["admin"], "tenant_id": tenant, **kwargs}
    response = await client.get(BASE, headers=bearer(issuer.token(**params)))
    assert response.status_code == 401, reason
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_token_with_no_known_role_is_403_and_writes_nothing(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str, db: asyncpg.Pool
) -> None:
    token = issuer.token(roles=["superhero"], tenant_id=tenant)
    listed = await client.get(BASE, headers=bearer(token))
    assert listed.status_code == 403, listed.text
    assert listed.json()["detail"] == "this role may not call this operation"
    assert "www-authenticate" not in listed.headers
    created = await client.post(BASE, json={"first_name": "A"}, headers=bearer(token))
    assert created.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


async def test_tampered_and_garbage_tokens_are_401(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str
) -> None:
    token = issuer.token(roles=["admin"], tenant_id=tenant)
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload[:-2]}AA.{sig}"
    for bad in (tampered, "not.a.jwt", "x", ""):
        assert (await client.get(BASE, headers=bearer(bad))).status_code == 401


async def test_unsigned_alg_none_is_refused(client: httpx.AsyncClient, tenant: str) -> None:
    import jwt as pyjwt

    token = pyjwt.encode(
        {"sub": "x", "roles": ["admin"], "tenant_id": tenant, "exp": 9999999999},
        key="",
        algorithm="none",
    )
    assert (await client.get(BASE, headers=bearer(token))).status_code == 401


async def test_rotated_key_is_fetched_on_unknown_kid(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str
) -> None:
    first = issuer.token(roles=["admin"], tenant_id=tenant)
    assert (await client.get(BASE, headers=bearer(first))).status_code == 200
    before = issuer.requests
    issuer.rotate(alg="ES256")
    rotated = issuer.token(roles=["admin"], tenant_id=tenant)
    assert (await client.get(BASE, headers=bearer(rotated))).status_code == 200
    assert issuer.requests == before + 1
    # known kid: served from cache, no new fetch
    assert (await client.get(BASE, headers=bearer(rotated))).status_code == 200
    assert issuer.requests == before + 1


async def test_customer_token_requires_tenant_and_uuid_subject(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str, admin: dict[str, str]
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    no_tenant = issuer.token(sub=me["id"], roles=["customer"])
    assert (await client.get(f"{BASE}/{me['id']}", headers=bearer(no_tenant))).status_code == 401
    not_uuid = issuer.token(sub="alice", roles=["customer"], tenant_id=tenant)
    assert (await client.get(f"{BASE}/{me['id']}", headers=bearer(not_uuid))).status_code == 401


async def test_platform_token_chooses_tenant_by_header(
    client: httpx.AsyncClient, issuer: Issuer, tenant: str
) -> None:
    token = issuer.token(roles=["service"])
    response = await client.post(
        BASE, json={"first_name": "S"}, headers={**bearer(token), "X-Tenant-Id": tenant}
    )
    assert response.status_code == 201
    assert response.json()["tenant_id"] == tenant
