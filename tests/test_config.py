"""Settings: names from API.md, development defaults refused in production."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from patron.config import Settings


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, patron_env="production")  # type: ignore[call-arg]
    key = "k1:" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(ValidationError, match="ENCRYPTION_KEYS"):
        Settings(_env_file=None, patron_env="production", secret_key="x" * 40)  # type: ignore[call-arg]
    ok = Settings(_env_file=None, patron_env="production", secret_key="x" * 40, encryption_keys=key)  # type: ignore[call-arg]
    assert ok.encryption_keys == key


def test_environment_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("CUSTOMER_PATCH_RATE", "7/minute")
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "gb")
    monkeypatch.setenv("META_GRAPH_API_VERSION", "v22.0")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == "postgresql://u@h/db"
    assert s.customer_patch_rate == "7/minute"
    assert s.default_phone_region == "GB"
    assert s.meta_graph_api_version == "v22.0"
    assert s.cors_origin_list == ["https://a.example", "https://b.example"]
    assert Settings(_env_file=None).port == 8007  # type: ignore[call-arg]


def test_fastapi_opentelemetry_follows_otel_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.app import _telemetry

    assert _telemetry(Settings(_env_file=None)) == {  # type: ignore[call-arg]
        "tracing": False,
        "metrics": False,
        "logs": False,
    }
    monkeypatch.setenv("OTEL_ENABLED", "true")
    assert set(_telemetry(Settings(_env_file=None)).values()) == {True}  # type: ignore[call-arg]


def test_every_setting_belongs_to_exactly_one_concern() -> None:
    """Settings are split per concern: each knob is declared by one concern class, and the
    union declares none of its own."""
    concerns = [base for base in Settings.__mro__[1:] if base.__name__.endswith("Settings")]
    concerns = [c for c in concerns if c.__module__ == "patron.config"]
    owners: dict[str, list[str]] = {}
    for concern in concerns:
        for name in concern.__annotations__:
            if name in concern.model_fields:
                owners.setdefault(name, []).append(concern.__name__)
    assert set(owners) == set(Settings.model_fields)
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}
    assert len(concerns) >= 8
