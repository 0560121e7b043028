"""The OpenAPI document and the docs pages (issue 10, "API description and docs").

Built from a real app without a database: the document and the docs assets need none.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from patron.app import create_app
from patron.messaging.endpoints import PATHS as MESSAGING_PATHS
from tests.conftest import make_settings

APP = create_app(make_settings())
DOC: dict[str, Any] = APP.openapi()
OPERATIONS = [
    (method, path, operation)
    for path, operations in DOC["paths"].items()
    for method, operation in operations.items()
]
TENANT_OPERATIONS = [op for op in OPERATIONS if op[1].startswith("/api/v1/")]


def by_id(operation_id: str) -> dict[str, Any]:
    (found,) = [op for _, _, op in OPERATIONS if op["operationId"] == operation_id]
    return found


def header_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


def test_operation_ids_are_camel_case_unique_and_readable() -> None:
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids)), ids
    for operation_id in ids:
        assert re.fullmatch(r"^[a-z][A-Za-z0-9]+$", operation_id), operation_id
    assert {
        "getCustomerByPsid",
        "upsertCustomer",
        "listCustomers",
        "createCustomer",
        "getCustomer",
        "updateCustomer",
        "patchCustomer",
        "deleteCustomer",
        "blockCustomer",
        "updateLastInteraction",
        "getCustomerStats",
        "listWebhookEndpoints",
        "getHealth",
        "getHealthcheck",
        "getReadiness",
    } <= set(ids)
    assert DOC["paths"]["/api/v1/customers/psid/{psid}"]["get"]["operationId"] == (
        "getCustomerByPsid"
    )


def test_both_credentials_are_declared_and_required_on_tenant_routes_only() -> None:
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"] == {
        **schemes["apiKeyAuth"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert "security" not in DOC  # no global requirement: ops routes are open
    for method, path, operation in OPERATIONS:
        if path.startswith("/api/v1/"):
            assert operation["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}], path
        elif path in MESSAGING_PATHS:
            # Meta's webhooks: no credential scheme, but refused by verify token (403)
            # or signature (401), each documented
            assert "security" not in operation, path
            assert {"get": "403", "post": "401"}[method] in operation["responses"], path
        else:
            assert "security" not in operation, path
            assert not {"401", "403"} & set(operation["responses"]), (method, path)


def test_tenant_idempotency_and_if_match_headers_where_honoured() -> None:
    for method, path, operation in TENANT_OPERATIONS:
        headers = header_names(operation)
        assert "X-Tenant-Id" in headers, (method, path)
        # the idempotency middleware and Scope honour the key on POST only
        assert ("Idempotency-Key" in headers) == (method == "post"), (method, path)
    with_if_match = {
        (method, path) for method, path, op in TENANT_OPERATIONS if "If-Match" in header_names(op)
    }
    assert with_if_match == {
        ("put", "/api/v1/customers/{customer_id}"),
        ("patch", "/api/v1/customers/{customer_id}"),
        ("delete", "/api/v1/customers/{customer_id}"),
    }
    tenant = next(p for p in by_id("getCustomer")["parameters"] if p["name"] == "X-Tenant-Id")
    assert tenant["required"] is False
    assert tenant["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,64}$"


def test_error_statuses_follow_what_each_route_takes() -> None:
    for method, path, operation in TENANT_OPERATIONS:
        codes = set(operation["responses"])
        assert {"400", "401", "403", "422", "503"} <= codes, (method, path)
        assert ("404" in codes) == ("{" in path), (method, path)
        assert ("412" in codes) == ("If-Match" in header_names(operation)), (method, path)
        body = (operation.get("requestBody") or {}).get("content", {})
        assert ("413" in codes) == bool(body), (method, path)
        assert ("415" in codes) == ("application/json" in body), (method, path)
        if method == "post":
            assert "409" in codes, (method, path)  # Idempotency-Key still in use
        for code in ("429", "503"):
            if code in codes:
                headers = operation["responses"][code]["headers"]
                assert headers["Retry-After"]["required"] is True, (method, path, code)
        assert "500" not in codes
    rate_limited = [op["operationId"] for _, _, op in OPERATIONS if "429" in op["responses"]]
    assert rate_limited == ["patchCustomer"]
    assert "409" not in by_id("getCustomer")["responses"]
    assert "409" in by_id("getCustomerByPsid")["responses"]  # a PSID under several apps
    assert "409" in by_id("updateCustomer")["responses"]  # an identity taken
    assert set(DOC["paths"]["/ready"]["get"]["responses"]) == {"200", "503"}


def test_etag_location_and_trace_id_headers_are_described() -> None:
    for operation_id, status in [
        ("getCustomer", "200"),
        ("updateCustomer", "200"),
        ("createCustomer", "201"),
        ("upsertCustomer", "200"),
        ("upsertCustomer", "201"),
    ]:
        etag = by_id(operation_id)["responses"][status]["headers"]["ETag"]
        assert etag["required"] is True
        assert etag["schema"]["pattern"] == '^"[0-9]+"$'
    for operation_id in (
        "createCustomer",
        "upsertCustomer",
        "addDocument",
        "createWebhookEndpoint",
    ):
        assert by_id(operation_id)["responses"]["201"]["headers"]["Location"]["required"] is True
    assert "ETag" not in by_id("listCustomers")["responses"]["200"]["headers"]
    for _, _, operation in OPERATIONS:
        for response in operation["responses"].values():
            assert response["headers"]["X-Trace-Id"]["required"] is True


def _property(schema_name: str, field: str) -> dict[str, Any]:
    prop: dict[str, Any] = DOC["components"]["schemas"][schema_name]["properties"][field]
    branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    return branches[0]


def test_input_rules_are_stated_in_the_schema() -> None:
    phone = _property("CustomerCreate", "phone")
    assert phone["examples"] == ["+14155550100"]
    assert re.fullmatch(phone["pattern"], "+14155550100")
    assert "DEFAULT_PHONE_REGION" in phone["description"]
    assert _property("CustomerCreate", "email")["format"] == "email"
    timezone = _property("CustomerUpdate", "timezone")
    assert re.fullmatch(timezone["pattern"], "America/Argentina/Buenos_Aires")
    assert re.fullmatch(timezone["pattern"], "Etc/GMT+5")
    country = _property("AddressCreate", "country")
    assert re.fullmatch(country["pattern"], "de")
    assert not re.fullmatch(country["pattern"], "DEU")
    assert "ISO 3166-1 alpha-2" in country["description"]
    # strings the database cannot hold (U+0000) are refused in the schema
    nul_free = _property("NoteCreate", "note")["pattern"]
    assert nul_free == "^[^\\u0000]*$"
    assert re.fullmatch(nul_free, "a note")
    assert not re.fullmatch(nul_free, "a\x00note")
    assert re.fullmatch(_property("CustomerCreate", "psid")["pattern"], "a\x00b") is None
    # the pair of expiry fields, JSON Schema 2020-12
    payment = by_id("addPaymentMethod")["requestBody"]["content"]["application/json"]["schema"]
    assert payment["dependentRequired"] == {"exp_month": ["exp_year"], "exp_year": ["exp_month"]}
    assert payment["properties"]["exp_month"]["type"] == "integer"  # not nullable
    cursor = next(p for p in by_id("listCustomers")["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["anyOf"][0]["pattern"] == "^[A-Za-z0-9_-]+$"
    # fields that may be left out but not sent as null
    assert _property("CustomerUpdate", "status") == {"$ref": "#/components/schemas/CustomerStatus"}
    assert "anyOf" not in DOC["components"]["schemas"]["CustomerUpdate"]["properties"]["status"]
    url = _property("WebhookEndpointCreate", "url")["pattern"]
    assert re.fullmatch(url, "https://hooks.example.com/patron")
    assert not re.fullmatch(url, "http://hooks.example.com/patron")


def test_upsert_query_parameters_carry_their_field_rules() -> None:
    params = {p["name"]: p for p in by_id("upsertCustomer")["parameters"] if p["in"] == "query"}
    assert params["email"]["schema"]["format"] == "email"
    assert params["status"]["schema"]["enum"] == ["ACTIVE", "INACTIVE", "BLOCKED"]
    assert params["marketing_opt_in"]["schema"]["type"] == "boolean"
    assert params["birth_date"]["schema"]["format"] == "date"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as client:
        yield client


_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize(("page", "count"), [("/docs", 3), ("/redoc", 2)])
async def test_docs_pages_load_every_asset_from_the_service(
    http: httpx.AsyncClient, page: str, count: int
) -> None:
    """Offline docs: no CDN, no credentials needed; every referenced asset answers here."""
    response = await http.get(page)
    assert response.status_code == 200
    html = response.text
    assert "https://" not in html
    assert "http://" not in html
    assets = [url for url in _ASSET.findall(html) if not url.startswith("#")]
    assert len(assets) >= count, assets
    for url in assets:
        assert url.startswith("/docs/static/"), url
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    assert "/openapi.json" in html


async def test_swagger_ui_keeps_the_credentials_entered(http: httpx.AsyncClient) -> None:
    html = (await http.get("/docs")).text
    assert '"persistAuthorization": true' in html
    redirect = await http.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
