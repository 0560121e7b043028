"""Every route, from the route table: anonymous 401, wrong role 403, other tenant 404.

Generated from the app's routes so that a new route cannot escape: a route under /api/v1
without a ``Scope`` dependency fails ``test_every_api_route_is_scoped``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from patron.app import create_app
from patron.auth.principal import Role
from patron.http.scope import Scope
from patron.messaging.endpoints import PATHS as MESSAGING_PATHS
from tests.conftest import ApiKeyFactory, create_customer, make_settings, tenant_writes

PUBLIC_PATHS = {
    "/health",
    "/healthcheck",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/docs/oauth2-redirect",
    # Meta's webhooks: checked by META_VERIFY_TOKEN and X-Hub-Signature-256, not a credential
    *MESSAGING_PATHS,
}


def _scope_of(route: APIRoute) -> Scope | None:
    def walk(dependant: Any) -> Scope | None:
        for dep in dependant.dependencies:
            if isinstance(dep.call, Scope):
                return dep.call
            found = walk(dep)
            if found:
                return found
        return None

    return walk(route.dependant)


def _route_table() -> list[tuple[str, APIRoute]]:
    """(full path, route) of every API route, through FastAPI's included routers."""
    app = create_app(make_settings())
    return [
        (rc.path, rc.original_route)
        for rc in iter_route_contexts(app.routes)
        if isinstance(rc.original_route, APIRoute) and rc.path
    ]


def _api_routes() -> list[tuple[str, str, Scope]]:
    out = []
    for path, route in _route_table():
        if path.startswith("/api/"):
            scope = _scope_of(route)
            assert scope is not None, f"{path} has no Scope"
            for method in sorted(route.methods):
                out.append((method, path, scope))
    return out


ROUTES = _api_routes()
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


def test_every_api_route_is_scoped() -> None:
    for path, route in _route_table():
        assert path.startswith("/api/v1/") or path in PUBLIC_PATHS, path
        if path.startswith("/api/"):
            assert _scope_of(route) is not None, path
    assert len(ROUTES) >= 12


def _url(path: str, customer_id: str) -> str:
    """A concrete URL: the customer id given, a random UUID for any other ``{..._id}``."""
    url = path.replace("{customer_id}", customer_id).replace("{psid}", "some-psid")
    return re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), url)


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=ROUTE_IDS)
async def test_anonymous_is_401(
    client: httpx.AsyncClient, method: str, path: str, scope: Scope
) -> None:
    response = await client.request(
        method, _url(path, str(uuid.uuid4())), headers={"X-Tenant-Id": "t"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    bad_key = await client.request(
        method, _url(path, str(uuid.uuid4())), headers={"X-API-Key": "ptk_nope_nope"}
    )
    assert bad_key.status_code == 401


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=ROUTE_IDS)
async def test_roles_outside_the_matrix_are_403(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    db: asyncpg.Pool,
    method: str,
    path: str,
    scope: Scope,
) -> None:
    refused = [
        r for r in (Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE) if r not in scope.roles
    ]
    for role in refused:
        headers = await api_key_headers(role, tenant)
        response = await client.request(
            method, _url(path, str(uuid.uuid4())), headers=headers, json={}
        )
        assert response.status_code == 403, (role, response.text)
    assert await tenant_writes(db, tenant) == ([], [])


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [r for r in ROUTES if "{customer_id}" in r[1]],
    ids=[i for i, r in zip(ROUTE_IDS, ROUTES, strict=True) if "{customer_id}" in r[1]],
)
async def test_other_tenants_customer_is_404_for_every_allowed_role(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    method: str,
    path: str,
    scope: Scope,
) -> None:
    owner = await api_key_headers(Role.ADMIN, other_tenant)
    theirs = await create_customer(client, owner, first_name="Theirs")
    for role in scope.roles:
        headers = await api_key_headers(role, tenant)
        body: dict[str, Any] = {"source_id": str(uuid.uuid4())} if path.endswith("/merge") else {}
        response = await client.request(
            method, _url(path, theirs["id"]), headers=headers, json=body
        )
        assert response.status_code == 404, (role, response.text)
    # and nothing of theirs changed
    after = await client.get(f"/api/v1/customers/{theirs['id']}", headers=owner)
    assert after.json()["version"] == 1


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [r for r in ROUTES if "{customer_id}" in r[1] and not r[2].customer_self],
    ids=[
        i
        for i, r in zip(ROUTE_IDS, ROUTES, strict=True)
        if "{customer_id}" in r[1] and not r[2].customer_self
    ],
)
async def test_customer_role_is_refused_where_not_allowed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    token_headers: Any,
    tenant: str,
    db: asyncpg.Pool,
    method: str,
    path: str,
    scope: Scope,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    before = await tenant_writes(db, tenant)
    response = await client.request(
        method,
        _url(path, me["id"]),
        headers=token_headers("customer", tenant, sub=me["id"]),
        json={},
    )
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "this role may not call this operation"
    assert await tenant_writes(db, tenant) == before


async def test_platform_key_needs_tenant_header(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    platform = await api_key_headers(Role.ADMIN, tenant, platform=True)
    ok = await client.get("/api/v1/customers", headers=platform)
    assert ok.status_code == 200
    no_tenant = await client.get("/api/v1/customers", headers={"X-API-Key": platform["X-API-Key"]})
    assert no_tenant.status_code == 400
    assert no_tenant.headers["content-type"] == "application/problem+json"
    malformed = await client.get(
        "/api/v1/customers", headers={**platform, "X-Tenant-Id": "bad tenant!"}
    )
    assert malformed.status_code == 422


async def test_tenant_key_cannot_pick_another_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: str
) -> None:
    response = await client.get("/api/v1/customers", headers={**admin, "X-Tenant-Id": other_tenant})
    assert response.status_code == 403
    response = await client.get(
        "/api/v1/customers", params={"tenant_id": other_tenant}, headers=admin
    )
    assert response.status_code == 403
