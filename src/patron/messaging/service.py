"""The Meta webhook receiver: the subscribe handshake, the signature check, and each
messaging event of a batch turned into a customer and a communication of the page's tenant.

Order of a POST (:meth:`MetaWebhookReceiver.receive`), nothing acted on before the check:

1. ``X-Hub-Signature-256`` must be shaped ``sha256=<64 hex>`` (else 401).
2. The body is parsed only to find the pages it names (``entry[].id``) and their channels
   (:class:`patron.channels.directory.ChannelDirectory`, across tenants; decision 0018).
3. The signature must be the HMAC-SHA256 of the raw body under the app secret of *every*
   known channel named (the channel's own, else ``META_APP_SECRET``): a batch one app
   signed cannot act on a page of another app's tenant. With no known page it is checked
   under ``META_APP_SECRET``; a wrong signature is 401 and nothing is processed.
4. Per known channel, one unit of work (:meth:`MessagingService.ingest`) holds all of
   that page's events of the batch: the customer upserts, the communications, the
   ``last_interaction_at`` moves and their outbox events commit together or not at all.
   A page no channel knows is acknowledged and logged (200: Meta would retry it forever).

A replay of a payload changes nothing: the customer upsert finds the customer unchanged
(no event), a message is recorded once per ``mid`` (the communication's ``external_id``),
and ``last_interaction_at`` only moves forward. So when one page's unit fails after
another's committed, the 500 makes Meta deliver the whole batch again, harmlessly.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretStr, ValidationError

from patron.auth.principal import Principal, Role
from patron.channels.directory import ChannelDirectory
from patron.channels.schemas import ChannelCredentials, ChannelPlatform
from patron.communications.schemas import Channel as CommunicationChannel
from patron.communications.schemas import Direction
from patron.communications.service import CommunicationService
from patron.context import AppContext
from patron.customers.schemas import CustomerUpsert
from patron.customers.service import CustomerService
from patron.kit.cards import contains_card_number
from patron.messaging.errors import MalformedNotification, SignatureRefused, VerificationRefused
from patron.messaging.schemas import (
    EventKind,
    MessagingEvent,
    Notification,
    from_epoch_ms,
)
from patron.messaging.signature import parse_header, verify
from patron.usecases import Service, ServiceContext, writes

log = structlog.get_logger("patron.messaging")

# The directory of this process, kept in AppContext.extras (closed with the context).
DIRECTORY_KEY = "messaging.channel_directory"

# What is stored instead of a message text that holds a card number (kit.cards): the
# hardening issue's guard applies before anything is stored, and a stored text cannot be
# partly trusted, so the whole text is withheld, not masked.
WITHHELD = "[message text withheld: it contained a payment card number]"

# communications.external_id holds up to 200 characters; a longer mid is kept as a hash.
MAX_EXTERNAL_ID = 200
SUMMARY_LIMIT = 10_000

COMMUNICATION_CHANNELS = {
    ChannelPlatform.FACEBOOK: CommunicationChannel.FACEBOOK,
    ChannelPlatform.INSTAGRAM: CommunicationChannel.INSTAGRAM,
}
PRODUCT_NAMES = {ChannelPlatform.FACEBOOK: "Messenger", ChannelPlatform.INSTAGRAM: "Instagram"}


def channel_directory(app: AppContext) -> ChannelDirectory:
    """The process's :class:`ChannelDirectory`, built on first use and kept in
    ``app.extras`` (``AppContext.close`` closes it)."""
    found = app.extras.get(DIRECTORY_KEY)
    if isinstance(found, ChannelDirectory):
        return found
    directory = ChannelDirectory.from_context(app)
    app.extras[DIRECTORY_KEY] = directory
    return directory


def check_verification(
    verify_token: SecretStr | None, mode: str | None, token: str | None, challenge: str | None
) -> str:
    """The subscribe handshake (Meta, "Webhooks" > "Verification requests"): the
    ``hub.challenge`` to echo when ``hub.mode`` is ``subscribe`` and ``hub.verify_token``
    equals ``META_VERIFY_TOKEN`` (compared in constant time). Raises
    :class:`VerificationRefused` (403) otherwise, and always when no token is configured."""
    if verify_token is None or mode != "subscribe" or token is None or challenge is None:
        raise VerificationRefused()
    if not hmac.compare_digest(token.encode(), verify_token.get_secret_value().encode()):
        raise VerificationRefused()
    return challenge


def webhook_principal(channel: ChannelCredentials) -> Principal:
    """Who a webhook's changes are recorded as: role ``service`` of the channel's tenant,
    id ``webhook:meta`` (a communication's ``recorded_by``), subject the channel."""
    return Principal(
        id="webhook:meta",
        subject=f"channel:{channel.channel_id}",
        roles=frozenset({Role.SERVICE}),
        tenant_id=channel.tenant,
    )


@dataclass
class IngestOutcome:
    """Counts of one page's events: ``recorded`` new communications, ``interactions``
    (reads and reactions that only move ``last_interaction_at``), ``acknowledged`` (kinds
    only logged, repeats and events without a customer id)."""

    recorded: int = 0
    interactions: int = 0
    acknowledged: int = 0

    def add(self, other: IngestOutcome) -> None:
        self.recorded += other.recorded
        self.interactions += other.interactions
        self.acknowledged += other.acknowledged


@dataclass
class ReceiveOutcome:
    """What a POST did: the counts over its known pages, and the page ids no channel knows
    (acknowledged and logged)."""

    counts: IngestOutcome = field(default_factory=IngestOutcome)
    unknown_pages: list[str] = field(default_factory=list)


def _external_id(mid: str) -> str:
    if len(mid) <= MAX_EXTERNAL_ID:
        return mid
    return "sha256:" + hashlib.sha256(mid.encode()).hexdigest()


def _summary(event: MessagingEvent) -> str | None:
    """The text of a message or postback as stored (attachments by type only: their URLs
    are short-lived CDN links), cut to the column's limit."""
    text: str | None = None
    if event.message is not None:
        message = event.message
        if message.is_deleted:
            text = "[deleted]"
        elif message.text:
            text = message.text
        elif message.attachments:
            text = " ".join(f"[{a.type or 'attachment'}]" for a in message.attachments)
        elif message.is_unsupported:
            text = "[unsupported message]"
    elif event.postback is not None:
        text = event.postback.title or event.postback.payload
    return text[:SUMMARY_LIMIT] if text else None


class MessagingService(Service):
    """The webhook use cases of one channel's tenant (:class:`ServiceContext` with the
    :func:`webhook_principal`)."""

    @writes()
    async def ingest(
        self, channel: ChannelCredentials, events: Iterable[MessagingEvent]
    ) -> IngestOutcome:
        """Apply ``events`` of ``channel``'s page in one unit of work.

        Messages, echoes and postbacks: the customer (PSID for Messenger, IGSID for
        Instagram, under the channel's ``app_id``) is upserted and a communication recorded
        (INBOUND; OUTBOUND for echoes), idempotent on the ``mid``, which moves
        ``last_interaction_at`` forward and emits ``customer.communication_recorded``.
        Reactions and reads: the customer is upserted and ``last_interaction_at`` moves
        forward to the event's time. Deliveries and other kinds: acknowledged only.

        Concurrent deliveries naming one new sender make one customer: the upsert locks
        the identity first (decision 0002). Events are applied ordered by customer id,
        then time, so two batches naming the same customers lock them in the same order
        (no deadlock); the outcome does not depend on the order (time only moves forward).
        """
        outcome = IngestOutcome()
        for event in sorted(events, key=lambda e: (e.customer_id or "", e.timestamp or 0)):
            kind = event.kind
            psid = event.customer_id
            if kind in (EventKind.DELIVERY, EventKind.OTHER) or psid in (None, channel.page_id):
                log.info("meta webhook event acknowledged", kind=kind.value, page=channel.page_id)
                outcome.acknowledged += 1
                continue
            upsert = self._upsert_body(channel, psid) if psid is not None else None
            if upsert is None:
                outcome.acknowledged += 1
                continue
            customer = (await CustomerService(self.ctx).upsert(upsert)).customer
            now = datetime.now(UTC)
            occurred = min(from_epoch_ms(event.timestamp) or now, now)
            if kind in (EventKind.REACTION, EventKind.READ):
                await CustomerService(self.ctx).record_interaction(
                    customer.id, occurred, channel.platform.value
                )
                outcome.interactions += 1
                continue
            if await self._record(channel, event, customer.id, occurred):
                outcome.recorded += 1
            else:
                outcome.acknowledged += 1
        return outcome

    def _upsert_body(self, channel: ChannelCredentials, psid: str) -> CustomerUpsert | None:
        key = "igsid" if channel.platform is ChannelPlatform.INSTAGRAM else "psid"
        try:
            return CustomerUpsert.model_validate(
                {"platform": channel.platform.value, "app_id": channel.app_id, key: psid}
            )
        except ValidationError:
            log.warning("meta webhook sender id refused", page=channel.page_id)
            return None

    async def _record(
        self, channel: ChannelCredentials, event: MessagingEvent, customer_id: Any, when: datetime
    ) -> bool:
        """Record the communication of a message, echo or postback; False when it was
        recorded before (a replay) or carries no id to be idempotent on."""
        kind = event.kind
        mid = event.message.mid if event.message is not None else None
        if mid is None and event.postback is not None:
            mid = event.postback.mid or (
                f"postback:{event.timestamp}" if event.timestamp is not None else None
            )
        if mid is None:
            log.info("meta webhook event without an id acknowledged", kind=kind.value)
            return False
        summary = _summary(event)
        if summary is not None and contains_card_number(summary):
            log.warning("meta webhook message text withheld: card number", mid=mid)
            summary = WITHHELD
        product = PRODUCT_NAMES[channel.platform]
        created, _ = await CommunicationService(self.ctx).record(
            customer_id,
            {
                "channel": COMMUNICATION_CHANNELS[channel.platform].value,
                "direction": (Direction.OUTBOUND if kind is EventKind.ECHO else Direction.INBOUND),
                "subject": f"{product} {'message' if kind is EventKind.ECHO else kind.value}",
                "summary": summary,
                "external_id": _external_id(mid),
                "occurred_at": when.isoformat(),
            },
        )
        return created


class MetaWebhookReceiver:
    """Receives one POST of Meta's webhooks for a process (:meth:`receive`)."""

    def __init__(self, app: AppContext, directory: ChannelDirectory | None = None) -> None:
        self.app = app
        self.directory = directory or channel_directory(app)

    async def receive(self, body: bytes, signature: str | None) -> ReceiveOutcome:
        """Check ``signature`` (the ``X-Hub-Signature-256`` value) over the raw ``body``,
        then apply the events of every known page (module doc for the order).

        Raises :class:`SignatureRefused` (401) for a missing, malformed or wrong signature,
        or a known page whose channel has no app secret to check it with;
        :class:`MalformedNotification` (400) for a correctly signed body that is not a
        notification. A page no channel knows is logged and counted in ``unknown_pages``.
        """
        digest = parse_header(signature)
        if digest is None:
            raise SignatureRefused("X-Hub-Signature-256 is missing or not sha256=<64 hex digits>")
        fallback = self.app.settings.meta_app_secret
        try:
            notification = Notification.model_validate_json(body)
        except ValidationError as exc:
            if fallback is not None and verify(body, digest, fallback):
                raise MalformedNotification("the body is not a Meta webhook notification") from exc
            raise SignatureRefused("X-Hub-Signature-256 does not match the body") from exc
        channels: dict[str, ChannelCredentials | None] = {}
        for entry in notification.entry:
            if entry.id not in channels:
                channels[entry.id] = await self.directory.find(notification.object, entry.id)
        known = {page: channel for page, channel in channels.items() if channel is not None}
        self._check(body, digest, known.values(), fallback)
        outcome = ReceiveOutcome(unknown_pages=[p for p, c in channels.items() if c is None])
        if outcome.unknown_pages:
            log.warning(
                "meta webhook for pages no channel knows acknowledged",
                object=notification.object,
                pages=outcome.unknown_pages,
            )
        events: dict[str, list[MessagingEvent]] = {page: [] for page in known}
        for entry in notification.entry:
            if entry.id not in known:
                continue
            if entry.changes:
                log.info("meta webhook changes acknowledged", page=entry.id, n=len(entry.changes))
            for raw in (*entry.messaging, *entry.standby):
                try:
                    events[entry.id].append(MessagingEvent.model_validate(raw))
                except ValidationError:
                    log.warning("meta webhook event of unknown shape acknowledged", page=entry.id)
                    outcome.counts.acknowledged += 1
        for page, channel in known.items():
            outcome.counts.add(await self._ingest(channel, events[page]))
        return outcome

    @staticmethod
    def _check(
        body: bytes,
        digest: str,
        known: Iterable[ChannelCredentials],
        fallback: SecretStr | None,
    ) -> None:
        secrets: list[SecretStr | None] = [channel.app_secret for channel in known]
        if not secrets:
            if fallback is None:
                # Nothing to check with and nothing to act on: acknowledged (and logged
                # by the caller as unknown pages).
                return
            secrets = [fallback]
        if any(secret is None for secret in secrets):
            log.warning("meta webhook for a channel without an app secret refused")
            raise SignatureRefused("no app secret is configured for this page")
        if not all(secret is not None and verify(body, digest, secret) for secret in secrets):
            raise SignatureRefused("X-Hub-Signature-256 does not match the body")

    async def _ingest(
        self, channel: ChannelCredentials, events: list[MessagingEvent]
    ) -> IngestOutcome:
        ctx = ServiceContext(self.app, webhook_principal(channel), channel.tenant)
        return await MessagingService(ctx).ingest(channel, events)
