"""Settings: names from API.md; development keys only where they are safe; refusals and
warnings that name the variable, never its value."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from patron.config import (
    DEV_ENCRYPTION_KEYS,
    DEV_SECRET_KEY,
    Settings,
    describe_errors,
    startup_warnings,
)

KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()
SECRET = "s" * 40
URL = "postgresql://u@h/db"


def refusal(**values: object) -> list[str]:
    """The lines :func:`describe_errors` gives for settings built from ``values`` alone."""
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return describe_errors(caught.value)


def test_production_refuses_development_secrets_and_the_embedded_database() -> None:
    assert refusal(patron_env="production") == [
        "DATABASE_URL must be set when PATRON_ENV=production "
        "(the embedded PostgreSQL is for development only)",
        "SECRET_KEY must be set: the development key is public (PATRON_ENV=production)",
        "ENCRYPTION_KEYS must be set: the development key is public (PATRON_ENV=production)",
    ]
    assert refusal(patron_env="production", database_url=URL, secret_key=SECRET) == [
        "ENCRYPTION_KEYS must be set: the development key is public (PATRON_ENV=production)"
    ]
    ok = Settings(  # type: ignore[call-arg]
        _env_file=None,
        patron_env="production",
        database_url=URL,
        secret_key=SECRET,
        encryption_keys=KEY,
    )
    assert ok.encryption_keys.get_secret_value() == KEY
    assert not ok.uses_development_keys


def test_a_database_url_refuses_development_keys_unless_patron_env_says_so() -> None:
    why = "DATABASE_URL is set; set PATRON_ENV=development to use development keys"
    assert refusal(database_url=URL) == [
        f"SECRET_KEY must be set: the development key is public ({why})",
        f"ENCRYPTION_KEYS must be set: the development key is public ({why})",
    ]
    # the same default value, said explicitly, is allowed (test too: the suite's own)
    for env in ("development", "test"):
        explicit = Settings(_env_file=None, database_url=URL, patron_env=env)  # type: ignore[call-arg]
        assert explicit.uses_development_keys
    # the embedded database stays zero-configuration
    embedded = Settings(_env_file=None)  # type: ignore[call-arg]
    assert embedded.uses_development_keys
    assert embedded.secret_key.get_secret_value() == DEV_SECRET_KEY
    assert embedded.encryption_keys.get_secret_value() == DEV_ENCRYPTION_KEYS


def test_patron_env_from_the_environment_counts_as_explicit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.delenv("PATRON_ENV", raising=False)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("PATRON_ENV", "development")
    assert Settings(_env_file=None).database_url == URL  # type: ignore[call-arg]


def test_refusals_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    short = "short-secret-value"
    lines = refusal(secret_key=short)
    assert lines == ["SECRET_KEY must be at least 32 characters"]
    monkeypatch.setenv("PORT", "hunter2-not-a-port")
    monkeypatch.setenv("ENCRYPTION_KEYS", KEY)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    lines = describe_errors(caught.value)
    assert lines == ["PORT: Input should be a valid integer, unable to parse string as an integer"]
    assert "hunter2" not in str(caught.value)  # hide_input_in_errors
    monkeypatch.delenv("PORT")
    # secrets are SecretStr: not in repr, str or a dump
    settings = Settings(_env_file=None, secret_key=SECRET, meta_app_secret="meta-s3cret")  # type: ignore[call-arg]
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in (SECRET, "meta-s3cret", KEY.split(":")[1]):
        assert secret not in shown


def test_unknown_and_not_yet_used_settings_are_warned_about(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PATRON_FROM_FILE=1\nLOG_LEVEL=INFO\n")
    settings = Settings(_env_file=None, smtp_url="smtp://u:p@h", grpc_port=50052)  # type: ignore[call-arg]
    environ = {
        "PATRON_HOMEDIR": "/x",
        "PATRON_HOME": "/y",
        "PATRON_ENV": "test",
        "PATRON_REQUIRE_SERVICES": "1",
        "PATRON_TEST_DATABASE_URL": "postgresql://x",
        "HOME": "/root",
    }
    assert startup_warnings(settings, environ, env_file) == [
        "PATRON_FROM_FILE is not a Patron setting and is ignored (check its spelling)",
        "PATRON_HOMEDIR is not a Patron setting and is ignored (check its spelling)",
        "SMTP_URL is set but does nothing yet in this version",
    ]
    assert startup_warnings(Settings(_env_file=None), {}, None) == []  # type: ignore[call-arg]


def test_environment_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PATRON_ENV", "development")
    monkeypatch.setenv("CUSTOMER_PATCH_RATE", "7/minute")
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "gb")
    monkeypatch.setenv("META_GRAPH_API_VERSION", "v22.0")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_url == URL
    assert s.customer_patch_rate == "7/minute"
    assert s.default_phone_region == "GB"
    assert s.meta_graph_api_version == "v22.0"
    assert s.cors_origin_list == ["https://a.example", "https://b.example"]
    monkeypatch.delenv("DATABASE_URL")
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
