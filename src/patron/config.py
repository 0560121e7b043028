"""Runtime configuration, read from the environment (names pinned in API.md) and `.env`.

Settings are split per concern (one class each: server, database, security, customers,
cache, events, webhooks, orders, messaging, storage), united in :class:`Settings` and
cached: call :func:`get_settings` rather than building :class:`Settings` by hand, except
in tests that need a variant.

Safety rules (issue 10): secrets are :class:`~pydantic.SecretStr` and validation errors
never echo their input (``hide_input_in_errors``), so a refused setting cannot leak into
a terminal or a log. The public development ``SECRET_KEY`` / ``ENCRYPTION_KEYS`` are
accepted only on the embedded database, or with ``DATABASE_URL`` when ``PATRON_ENV`` is
explicitly ``development`` or ``test``; ``PATRON_ENV=production`` refuses them and the
embedded database. :func:`describe_errors` turns a refusal into one line per setting and
:func:`startup_warnings` names settings that are unknown or do nothing yet.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development-only defaults, public in this repository: `Settings` accepts them on the
# embedded database, or with DATABASE_URL when PATRON_ENV says development or test.
DEV_SECRET_KEY = "dev-secret-key-change-me-dev-secret-key"  # noqa: S105 - refused in production
DEV_ENCRYPTION_KEYS = "dev1:" + base64.b64encode(b"patron-dev-only-encryption-key!!").decode()
# One TENANT_CURRENCIES entry: a tenant id (ARCHITECTURE.md §4) and an ISO 4217 code.
_TENANT_CURRENCY = re.compile(r"[A-Za-z0-9._:-]{1,64}:[A-Za-z]{3}")


class _Concern(BaseSettings):
    """Base of the per-concern settings: environment variable names are the field names
    upper-cased, read from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )


class ServerSettings(_Concern):
    """The process: environment, data directory, ports, HTTP limits, logs and tracing."""

    patron_env: Literal["development", "test", "production"] = "development"
    patron_home: Path = Path(".patron")
    port: int = 8007
    grpc_port: int = 50052
    host: str = "127.0.0.1"
    # `patron relay` / `patron worker`: serve /health, /ready and /metrics on this port
    # (bound on HOST); unset: no probe port.
    probe_port: int | None = Field(default=None, ge=1, le=65535)
    cors_origins: str = ""
    # Largest request body accepted (bytes); larger ones are 413. Routes may set their own.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Largest multipart/form-data body (file uploads: documents up to 10 MiB + form fields).
    max_upload_bytes: int = Field(default=11 * 1024 * 1024, ge=1024)
    # How long an Idempotency-Key's first response is replayed (API.md: 24 h).
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    log_level: str = "INFO"
    log_service_url: str | None = None
    # FastAPI's native OpenTelemetry spans, metrics and logs. Off by default: Patron's
    # own observability is Prometheus (/metrics) and JSON logs with trace ids, and when on
    # FastAPI looks up the global OpenTelemetry providers on every request.
    otel_enabled: bool = False

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class DatabaseSettings(_Concern):
    """PostgreSQL: without a URL an embedded server is started under PATRON_HOME."""

    database_url: str | None = None
    # Connections kept open; size it to the requests in flight per process, since
    # connections beyond it (overflow) are opened and closed per use.
    database_pool_size: int = 20
    database_max_overflow: int = 10
    database_app_role: str = "patron_app"
    database_system_role: str = "patron_system"
    # Seconds to open a connection (TCP, TLS, authentication): a server that does not
    # answer is a 503 after this long, not a request hanging on asyncpg's 60 s default.
    database_connect_timeout: float = Field(default=5.0, gt=0, le=300)


class SecuritySettings(_Concern):
    """Credentials checked and secrets kept: JWKS for Bearer JWTs, the keyed-hash secret and
    the AES-256-GCM keys (``id:base64,...``; the first encrypts, all decrypt)."""

    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwks_cache_seconds: int = 300
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEYS)


class CustomerSettings(_Concern):
    """The customer API: PATCH rate, phone numbers in national format, search limits."""

    customer_patch_rate: str = "5/minute"
    default_phone_region: str = "US"
    # Searches with `q` count at most this many matches (`total_capped` says when).
    search_count_cap: int = Field(default=10_000, ge=1)
    # A search with `q` gathers up to this many matches first; a term matching more is
    # paged through the date index instead (CustomerRepository.page_matches_first).
    search_collect: int = Field(default=2_000, ge=1)

    @field_validator("default_phone_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()


class CacheSettings(_Concern):
    """Redis for caches and shared rate-limit counters (in-process without it)."""

    redis_url: str | None = None
    # Seconds a fetched Meta profile is reused (issue 11: a day); 0 turns the cache off.
    profile_cache_ttl: int = Field(default=86400, ge=0)


class EventSettings(_Concern):
    """The outbox relay and its brokers (docs/decisions/0007-outbox-order.md)."""

    rabbitmq_url: str | None = None
    rabbitmq_exchange: str = "patron.customers.events"
    kafka_bootstrap_servers: str | None = None
    # Kafka topic per event type: "type=topic" pairs, comma-separated; "*" is the fallback
    # (types matching nothing, with no "*", are not sent to Kafka). docs/decisions/0007.
    kafka_topics: str = (
        "customer.created=customer.created,customer.deleted=customer.deleted,"
        "customer.erased=customer.deleted,webhook_endpoint.disabled=patron.webhooks,"
        "*=customer.updated"
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval: float = Field(default=0.05, gt=0)
    relay_partitions: int = Field(default=16, ge=1, le=4096)
    relay_max_attempts: int = Field(default=10, ge=1)
    relay_backoff_initial: float = Field(default=1.0, gt=0)
    relay_backoff_max: float = Field(default=60.0, gt=0)
    relay_confirm_timeout: float = Field(default=30.0, gt=0)


class WebhookSettings(_Concern):
    """Outgoing webhooks (docs/webhooks.md). ``webhooks_allow_private_targets`` allows
    http:// and loopback / private targets: development and tests only (SSRF guard)."""

    webhooks_allow_private_targets: bool = False
    webhooks_request_timeout_seconds: float = Field(default=10.0, gt=0)
    webhooks_dns_timeout_seconds: float = Field(default=5.0, gt=0)
    webhooks_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhooks_batch_size: int = Field(default=100, ge=1, le=10_000)
    webhooks_retry_base_seconds: float = Field(default=30.0, ge=0)
    webhooks_retry_max_seconds: float = Field(default=3600.0, ge=0)
    webhooks_retry_window_seconds: float = Field(default=24 * 3600.0, ge=0)
    webhooks_disable_after_failures: int = Field(default=20, ge=1)
    webhooks_disable_after_seconds: float = Field(default=72 * 3600.0, ge=0)


class JobSettings(_Concern):
    """The background job runner (docs/decisions/0017-background-jobs.md). Each job kind
    sets its own attempts and backoff; these are the worker's."""

    jobs_poll_interval_seconds: float = Field(default=1.0, gt=0)
    jobs_lease_seconds: float = Field(default=300.0, gt=0)
    jobs_stop_grace_seconds: float = Field(default=30.0, ge=0)


class OrderSettings(_Concern):
    """Orders, appointments and stats (docs/decisions/0009-orders-stats-consumer.md). No
    tenant-settings table exists: a tenant's currency is its TENANT_CURRENCIES entry, else
    DEFAULT_CURRENCY. The event consumer (docs/events-in.md) runs when RABBITMQ_URL is set."""

    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    tenant_currencies: str = ""  # "tenant:EUR,other-tenant:JPY"
    orders_consumer_exchange: str = "patron.commerce.events"
    orders_consumer_queue: str = "patron.orders-in"
    orders_consumer_routing_keys: str = "v1.order.*,v1.appointment.*"
    orders_consumer_prefetch: int = Field(default=32, ge=1, le=10_000)
    orders_consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    orders_consumer_retry_delay_ms: int = Field(default=10_000, ge=1)

    @field_validator("tenant_currencies")
    @classmethod
    def _tenant_currencies(cls, value: str) -> str:
        for item in (i.strip() for i in value.split(",")):
            if item and not _TENANT_CURRENCY.fullmatch(item):
                raise ValueError(f"TENANT_CURRENCIES entry {item!r} is not tenant:CUR")
        return value


class MessagingSettings(_Concern):
    """Meta Graph (profile fetch, webhooks) and the OTP senders (SMTP, an SMS webhook)."""

    meta_graph_api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    meta_graph_base_url: str = Field(default="https://graph.facebook.com", pattern=r"^https?://")
    meta_app_secret: SecretStr | None = None
    # Graph client (patron.meta.graph): seconds to connect and to wait for an answer per
    # attempt; attempts per call (transport errors, 5xx and throttling are retried).
    meta_graph_connect_timeout: float = Field(default=5.0, gt=0, le=60)
    meta_graph_read_timeout: float = Field(default=10.0, gt=0, le=120)
    meta_graph_max_attempts: int = Field(default=4, ge=1, le=10)
    # Usage percentage (X-App-Usage / X-Business-Use-Case-Usage) at which the next call of
    # the app waits META_GRAPH_USAGE_PAUSE seconds, so Meta's limit is not reached.
    meta_graph_usage_threshold: float = Field(default=90.0, gt=0, le=100)
    meta_graph_usage_pause: float = Field(default=5.0, ge=0, le=300)
    meta_verify_token: SecretStr | None = None
    smtp_url: str | None = None
    sms_webhook_url: str | None = None


class StorageSettings(_Concern):
    """Where files go: ``file://...`` (default under PATRON_HOME) or ``s3://bucket/prefix``."""

    storage_url: str | None = None
    s3_endpoint_url: str | None = None


class Settings(
    ServerSettings,
    DatabaseSettings,
    SecuritySettings,
    CustomerSettings,
    CacheSettings,
    EventSettings,
    WebhookSettings,
    JobSettings,
    OrderSettings,
    MessagingSettings,
    StorageSettings,
):
    """Every knob of Patron: the union of the per-concern classes above, read once.

    Each concern is its own class with its own rules, so a component can ask for just
    the part it uses (``def build(settings: EventSettings)``) and a reader finds every knob
    of a concern in one place; the process builds the union once (:func:`get_settings`).
    Environment variable names stay flat (API.md "Operations" pins them).
    """

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        """Refuse what would run a real deployment on public keys (issue 10). Every problem
        found is one line of the error, naming the variable and the rule."""
        problems: list[str] = []
        secret = self.secret_key.get_secret_value()
        if len(secret) < 32:
            problems.append("SECRET_KEY must be at least 32 characters")
        production = self.patron_env == "production"
        if production and not self.database_url:
            problems.append(
                "DATABASE_URL must be set when PATRON_ENV=production "
                "(the embedded PostgreSQL is for development only)"
            )
        explicit = "patron_env" in self.model_fields_set and not production
        if production or (self.database_url and not explicit):
            why = (
                "PATRON_ENV=production"
                if production
                else "DATABASE_URL is set; set PATRON_ENV=development to use development keys"
            )
            if secret == DEV_SECRET_KEY:
                problems.append(f"SECRET_KEY must be set: the development key is public ({why})")
            if self.encryption_keys.get_secret_value() == DEV_ENCRYPTION_KEYS:
                problems.append(
                    f"ENCRYPTION_KEYS must be set: the development key is public ({why})"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def uses_development_keys(self) -> bool:
        """True when either secret is the public development value (said at start)."""
        return (
            self.secret_key.get_secret_value() == DEV_SECRET_KEY
            or self.encryption_keys.get_secret_value() == DEV_ENCRYPTION_KEYS
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Raises :class:`pydantic.ValidationError`
    (render it with :func:`describe_errors`)."""
    return Settings()


def env_name(field: str) -> str:
    """The environment variable of a settings field (its name upper-cased)."""
    return field.upper()


def describe_errors(error: ValidationError) -> list[str]:
    """One line per refused setting, ``NAME: rule``, without the value that was given
    (input is hidden: ``hide_input_in_errors``; a cross-field rule already names its
    variables)."""
    lines: list[str] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["loc"]:
            lines.append(f"{env_name(str(item['loc'][0]))}: {message}")
        else:
            lines.extend(line for line in message.splitlines() if line)
    return lines


# Settings in API.md's list (and Settings) that nothing reads yet: set, they are warned
# about at start so nobody believes they took effect.
NOT_YET_USED = frozenset(
    {
        "log_service_url",
        "smtp_url",
        "sms_webhook_url",
    }
)
# PATRON_* variables read outside Settings: the test suite's (tests/services.py).
OTHER_PATRON_VARIABLES = frozenset({"PATRON_REQUIRE_SERVICES"})
OTHER_PATRON_PREFIXES = ("PATRON_TEST_",)


def startup_warnings(
    settings: Settings, environ: Mapping[str, str], env_file: Path | None = Path(".env")
) -> list[str]:
    """One line per ``PATRON_*`` variable Patron does not know (in ``environ`` or the
    ``.env`` file) and per setting that is set but does nothing yet (:data:`NOT_YET_USED`).
    Names only, never values."""
    known = {env_name(name) for name in Settings.model_fields} | OTHER_PATRON_VARIABLES
    names = set(environ)
    if env_file is not None and env_file.is_file():
        names |= set(dotenv_values(env_file))
    lines = [
        f"{name} is not a Patron setting and is ignored (check its spelling)"
        for name in sorted(names)
        if name.upper().startswith("PATRON_")
        and name.upper() not in known
        and not name.upper().startswith(OTHER_PATRON_PREFIXES)
    ]
    lines += [
        f"{env_name(name)} is set but does nothing yet in this version"
        for name in sorted(NOT_YET_USED & settings.model_fields_set)
    ]
    return lines
