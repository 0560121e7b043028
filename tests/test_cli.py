"""The ``patron`` command line against the test database."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from patron.cli import app as cli
from tests.problems import usage_error


@pytest.mark.usefixtures("cli_env")
def test_db_upgrade_is_idempotent() -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "upgraded to head" in result.output


@pytest.mark.usefixtures("cli_env")
async def test_apikey_create_prints_a_working_key(client: httpx.AsyncClient, tenant: str) -> None:
    import asyncio

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["apikey", "create", "--tenant", tenant, "--role", "manager"]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ptk_")
    listed = await client.get("/api/v1/customers", headers={"X-API-Key": key})
    assert listed.status_code == 200
    refused = await client.post(
        "/api/v1/customers/upsert", json={"email": "a@example.com"}, headers={"X-API-Key": key}
    )
    assert refused.status_code == 403


@pytest.mark.usefixtures("cli_env")
def test_apikey_create_rejects_bad_role() -> None:
    result = CliRunner().invoke(cli, ["apikey", "create", "--role", "overlord"])
    assert "Invalid value for '--role': Value error, 'overlord' is not one of" in usage_error(
        result
    )
