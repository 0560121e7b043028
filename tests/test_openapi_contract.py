"""Schemathesis against the app's own OpenAPI document, over a real socket.

Every operation gets generated requests (valid and invalid) with a tenant admin API key
for a fresh tenant. Checks: no 5xx, every status code and content type is documented, and
every response body conforms to its documented schema (errors are problem+json).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patron.app import create_app
from patron.auth.principal import Role
from patron.config import Settings
from tests.conftest import ApiKeyFactory, make_settings
from tests.live_server import LiveServer

# The document the app serves at /openapi.json; building it needs no database.
schema = schemathesis.openapi.from_dict(create_app(make_settings()).openapi())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    with LiveServer(settings, database_url) as live:
        yield live


@pytest.fixture
async def credentials(api_key_headers: ApiKeyFactory, tenant: str) -> dict[str, str]:
    """Admin key of a fresh tenant, the tenant repeated in ``X-Tenant-Id``."""
    headers = await api_key_headers(Role.ADMIN, tenant)
    return {**headers, "X-Tenant-Id": tenant}


@pytest.fixture
def customer_ids(server: LiveServer, credentials: dict[str, str]) -> list[str]:
    """A few real customers, so generated ids sometimes hit existing rows (not only 404)."""
    ids = []
    with httpx.Client(base_url=server.url, headers=credentials) as http:
        for n in range(3):
            response = http.post(
                "/api/v1/customers",
                json={"first_name": f"Seed{n}", "email": f"seed{n}@example.com", "psid": f"psid-{n}"},
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@schema.parametrize()
@schema.given(pick=st.integers(min_value=-1, max_value=2))
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # fixtures are per operation on purpose
    ],
)
def test_api_conforms_to_its_openapi(
    case: Any, pick: int, server: LiveServer, credentials: dict[str, str], customer_ids: list[str]
) -> None:
    if pick >= 0 and "customer_id" in (case.path_parameters or {}):
        case.path_parameters["customer_id"] = customer_ids[pick]
    case.call_and_validate(base_url=server.url, headers=credentials, checks=CHECKS, timeout=30)


def test_the_served_document_is_the_one_tested(server: LiveServer) -> None:
    served = httpx.get(f"{server.url}/openapi.json").json()
    assert served == create_app(make_settings()).openapi()
    assert {op for ops in served["paths"].values() for op in ops}, "no operations to test"
