"""``.env.example`` names every setting, and its values are accepted by ``Settings``."""

from __future__ import annotations

import re
from pathlib import Path

from patron.config import Settings, startup_warnings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def entries() -> dict[str, tuple[bool, str]]:
    """NAME -> (active, value) for ``NAME=value`` and commented ``# NAME=value`` lines."""
    found: dict[str, tuple[bool, str]] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = ASSIGNMENT.match(line.strip())
        if m:
            found[m.group(2)] = (m.group(1) is None, m.group(3))
    return found


def test_every_setting_is_listed() -> None:
    names = {name.upper() for name in Settings.model_fields}
    assert names - set(entries()) == set()


def test_active_values_are_valid_and_the_defaults() -> None:
    active = {k.lower(): v for k, (on, v) in entries().items() if on}
    assert set(active) <= set(Settings.model_fields)
    # Init arguments take precedence over the process environment, so this tests the file only.
    loaded = Settings(_env_file=None, **active)  # type: ignore[arg-type]
    for field in active:
        assert getattr(loaded, field) == Settings.model_fields[field].default, field


def test_commented_examples_are_valid_values() -> None:
    examples = {
        k.lower(): v
        for k, (on, v) in entries().items()
        if not on and k.lower() in Settings.model_fields and "<" not in v
    }
    assert {"database_url", "redis_url", "jwks_url", "storage_url"} <= set(examples)
    # with its DATABASE_URL the file's own PATRON_ENV=development allows the dev keys
    Settings(_env_file=None, patron_env="development", **examples)  # type: ignore[arg-type]


def test_a_copy_of_the_file_starts_without_warnings() -> None:
    """Settings that do nothing yet stay commented out, so ``cp .env.example .env`` gives
    a start without warnings."""
    settings = Settings(_env_file=ENV_EXAMPLE)  # type: ignore[call-arg]
    assert startup_warnings(settings, {}, ENV_EXAMPLE) == []


def test_secrets_are_never_given_a_usable_value() -> None:
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "META_APP_SECRET", "AWS_SECRET_ACCESS_KEY"):
        active, value = entries()[name]
        assert not active, f"{name} must stay commented out"
        assert "<" in value, f"{name} must be a placeholder"
