"""Use cases of outgoing webhook endpoints (API.md "webhooks", docs/webhooks.md).

The signing secret is made here, returned once by :meth:`WebhookEndpointService.create`
(and by :meth:`~WebhookEndpointService.rotate_secret` for its replacement) and stored
only encrypted (``Keyring``, context :data:`SECRET_CONTEXT`). URLs pass the SSRF
guard (``webhooks/ssrf.py``) on create and on change; event types must be known
:class:`~patron.events.types.EventType` values or ``*``. Every operation owns its unit of
work (:mod:`patron.usecases`); :func:`disable_endpoint` is the one way an endpoint is
disabled, by an admin's PATCH or by the dispatcher (in its own system transaction).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from patron.config import Settings
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window, newest_first
from patron.models import WebhookDelivery, WebhookEndpoint
from patron.models.webhook_delivery import DELIVERY_FAILED, DELIVERY_PENDING
from patron.models.webhook_endpoint import ENDPOINT_DISABLED, ENDPOINT_ENABLED
from patron.tenancy import TenantId
from patron.usecases import Service, reads, writes
from patron.webhooks.errors import WebhookEndpointNotFound
from patron.webhooks.repository import WebhookDeliveryRepository, WebhookEndpointRepository
from patron.webhooks.schemas import (
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPage,
    WebhookEndpointRead,
    WebhookEndpointSecretRotated,
    WebhookEndpointUpdate,
    WebhookSecretRotate,
)
from patron.webhooks.signing import new_secret
from patron.webhooks.ssrf import UnsafeTargetError, check_url

SECRET_CONTEXT = b"webhook_endpoints.secret"
ALL_TYPES = "*"
# How long a replaced secret keeps signing after a rotation, by default and at most
# (Svix keeps the old secret 24 h; Stripe lets the old one live up to 7 days).
ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=7)


def known_event_types() -> frozenset[str]:
    """Event types an endpoint may subscribe to: every :class:`EventType` value."""
    return frozenset(str(t) for t in EventType)


def check_event_types(types: list[str], loc: tuple[str, ...]) -> list[str]:
    """The filter with duplicates removed (order kept). Raises :class:`InvalidInput` (422)
    naming each unknown type at ``loc + (index,)``."""
    known = known_event_types()
    errors = [
        {
            "loc": [*loc, i],
            "msg": f"unknown event type {value!r}",
            "type": "unknown_event_type",
        }
        for i, value in enumerate(types)
        if value != ALL_TYPES and value not in known
    ]
    if errors:
        raise InvalidInput(str(errors[0]["msg"]), errors=errors)
    return list(dict.fromkeys(types))


async def check_target(url: str, settings: Settings) -> str:
    """``url`` if the SSRF guard lets it through, else :class:`InvalidInput` (422) at
    ``body.url``."""
    try:
        await check_url(
            url,
            allow_private=settings.webhooks_allow_private_targets,
            dns_timeout=settings.webhooks_dns_timeout_seconds,
        )
    except UnsafeTargetError as exc:
        raise InvalidInput(str(exc), loc=["body", "url"], type="unsafe_url") from exc
    return url


def disabled_event_data(endpoint: WebhookEndpoint, reason: str) -> dict[str, Any]:
    """``data`` of ``webhook_endpoint.disabled`` (docs/webhooks.md). Without the URL: some
    receivers' URLs carry a token, and events travel further than the admin API."""
    return {
        "webhook_endpoint_id": str(endpoint.id),
        "reason": reason,
        "disabled_at": endpoint.disabled_at,
        "consecutive_failures": endpoint.consecutive_failures,
        "failing_since": endpoint.failing_since,
    }


async def require_endpoint(
    session: AsyncSession, tenant: TenantId, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    """The tenant's endpoint, on ``session``. Raises :class:`WebhookEndpointNotFound` (404)
    for an unknown or another tenant's."""
    endpoint = await WebhookEndpointRepository(session, tenant).get(
        endpoint_id, for_update=for_update
    )
    if endpoint is None:
        raise WebhookEndpointNotFound(endpoint_id)
    return endpoint


async def disable_endpoint(
    session: AsyncSession, tenant: TenantId, endpoint: WebhookEndpoint, reason: str
) -> None:
    """Disable a (locked) endpoint, fail its pending deliveries and record
    ``webhook_endpoint.disabled`` (subject = the endpoint id), in ``session``'s transaction:
    an admin's unit of work, or the dispatcher's system transaction (cross-tenant, so it
    holds its own session rather than a tenant's unit)."""
    endpoint.status = ENDPOINT_DISABLED
    endpoint.disabled_at = datetime.now(UTC)
    endpoint.disabled_reason = reason
    deliveries = WebhookDeliveryRepository(session, tenant)
    await session.execute(
        deliveries.scoped(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.status == DELIVERY_PENDING,
            )
            .values(status=DELIVERY_FAILED, last_error="endpoint disabled", lease_id=None)
        )
    )
    await outbox.record(
        session,
        tenant,
        EventType.WEBHOOK_ENDPOINT_DISABLED,
        str(endpoint.id),
        disabled_event_data(endpoint, reason),
    )


class WebhookEndpointService(Service):
    """Endpoint use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def endpoints(self) -> WebhookEndpointRepository:
        return WebhookEndpointRepository(self.session, self.tenant)

    @property
    def deliveries(self) -> WebhookDeliveryRepository:
        return WebhookDeliveryRepository(self.session, self.tenant)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @writes()
    async def create(self, body: WebhookEndpointCreate) -> WebhookEndpointCreated:
        """Register an endpoint; the answer carries its secret, which is never shown again.

        Raises :class:`InvalidInput` (422) for an unsafe URL or an unknown event type.
        """
        types = check_event_types(body.event_types, ("body", "event_types"))
        url = await check_target(body.url, self.settings)
        secret = new_secret()
        endpoint = self.endpoints.add(
            WebhookEndpoint(
                url=url,
                event_types=types,
                description=body.description,
                secret_encrypted=self.app.keyring.encrypt(secret, SECRET_CONTEXT),
            )
        )
        await self.session.flush()
        await self.session.refresh(endpoint)
        read = WebhookEndpointRead.model_validate(endpoint, from_attributes=True)
        return WebhookEndpointCreated(**read.model_dump(), secret=secret)

    @writes()
    async def rotate_secret(
        self, endpoint_id: uuid.UUID, body: WebhookSecretRotate
    ) -> WebhookEndpointSecretRotated:
        """Give the endpoint a new secret (returned this once) and keep the one it replaces
        signing beside it until ``body.previous_secret_expires_at`` (default: 24 h from now),
        so a receiver can switch without losing a delivery (Standard Webhooks
        "zero downtime secret rotation"). A time not in the future drops the old secret at
        once. At most two secrets are active: a secret replaced by an earlier rotation stops
        now. No event is recorded: the catalogue has none for endpoint changes.

        Raises :class:`WebhookEndpointNotFound` (404) and :class:`InvalidInput` (422) for
        an expiry more than 7 days ahead.
        """
        endpoint = await require_endpoint(self.session, self.tenant, endpoint_id, for_update=True)
        now = datetime.now(UTC)
        expires_at = body.previous_secret_expires_at or now + ROTATION_GRACE
        if expires_at > now + MAX_ROTATION_GRACE:
            raise InvalidInput(
                "previous_secret_expires_at may be at most 7 days ahead",
                loc=["body", "previous_secret_expires_at"],
            )
        secret = new_secret()
        if expires_at > now:
            endpoint.previous_secret_encrypted = endpoint.secret_encrypted
            endpoint.previous_secret_expires_at = expires_at
        else:
            endpoint.previous_secret_encrypted = None
            endpoint.previous_secret_expires_at = None
        endpoint.secret_encrypted = self.app.keyring.encrypt(secret, SECRET_CONTEXT)
        await self.session.flush()
        await self.session.refresh(endpoint)
        read = WebhookEndpointRead.model_validate(endpoint, from_attributes=True)
        return WebhookEndpointSecretRotated(**read.model_dump(), secret=secret)

    @reads()
    async def list_endpoints(self, window: Window) -> WebhookEndpointPage:
        """The tenant's endpoints, newest first."""
        found = await newest_first(
            self.session,
            self.endpoints.listing(),
            WebhookEndpoint.created_at,
            WebhookEndpoint.id,
            window,
        )
        return WebhookEndpointPage(
            webhook_endpoints=[
                WebhookEndpointRead.model_validate(e, from_attributes=True) for e in found.rows
            ],
            **found.envelope(),
        )

    @reads()
    async def get(self, endpoint_id: uuid.UUID) -> WebhookEndpointRead:
        """The endpoint without its secret; :class:`WebhookEndpointNotFound` (404) if
        unknown."""
        return WebhookEndpointRead.model_validate(
            await require_endpoint(self.session, self.tenant, endpoint_id), from_attributes=True
        )

    @writes()
    async def update(
        self, endpoint_id: uuid.UUID, body: WebhookEndpointUpdate
    ) -> WebhookEndpointRead:
        """Change URL, filter or description, or enable / disable the endpoint.

        ``enabled: true`` clears the failure streak; ``enabled: false`` fails its pending
        deliveries and records ``webhook_endpoint.disabled`` (reason ``disabled by API``).
        Raises :class:`WebhookEndpointNotFound` (404) and :class:`InvalidInput` (422).
        """
        endpoint = await require_endpoint(self.session, self.tenant, endpoint_id, for_update=True)
        fields = body.model_fields_set
        if "url" in fields:
            if body.url is None:
                raise InvalidInput("url may not be null", loc=["body", "url"])
            endpoint.url = await check_target(body.url, self.settings)
        if "event_types" in fields:
            endpoint.event_types = check_event_types(
                body.event_types or [], ("body", "event_types")
            )
        if "description" in fields:
            endpoint.description = body.description
        if body.enabled is True and endpoint.status != ENDPOINT_ENABLED:
            endpoint.status = ENDPOINT_ENABLED
            endpoint.disabled_at = None
            endpoint.disabled_reason = None
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
        elif body.enabled is False and endpoint.status != ENDPOINT_DISABLED:
            await disable_endpoint(self.session, self.tenant, endpoint, "disabled by API")
        await self.session.flush()
        await self.session.refresh(endpoint)
        return WebhookEndpointRead.model_validate(endpoint, from_attributes=True)

    @writes()
    async def delete(self, endpoint_id: uuid.UUID) -> None:
        """Delete an endpoint and its delivery history. 404 if unknown."""
        endpoint = await require_endpoint(self.session, self.tenant, endpoint_id, for_update=True)
        await self.endpoints.remove(endpoint)

    @reads()
    async def list_deliveries(self, endpoint_id: uuid.UUID, window: Window) -> WebhookDeliveryPage:
        """An endpoint's deliveries (attempt history), newest first. 404 if unknown."""
        await require_endpoint(self.session, self.tenant, endpoint_id)
        found = await newest_first(
            self.session,
            self.deliveries.of_endpoint(endpoint_id),
            WebhookDelivery.created_at,
            WebhookDelivery.id,
            window,
        )
        return WebhookDeliveryPage(
            deliveries=[
                WebhookDeliveryRead.model_validate(d, from_attributes=True) for d in found.rows
            ],
            **found.envelope(),
        )
