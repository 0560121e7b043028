"""The webhook dispatcher: fans outbox events out into deliveries and sends them, signed.

It runs as ``patron_system`` (``db.engine.create_system_engine``), across tenants, in two
steps per round (docs/decisions/0008-webhook-deliveries.md):

1. **Fan-out.** Lock the cursor row (``webhook_cursors``, ``FOR UPDATE SKIP LOCKED``), read
   the outbox feed after it (``events.feed.feed_query``: commit order, never skips a late
   commit; positions, tenants and types only, the documents of matched events after),
   insert one ``webhook_deliveries`` row per matching enabled endpoint of the event's
   tenant (``ON CONFLICT (endpoint_id, event_id) DO NOTHING``) and move the cursor,
   all in one transaction: each event is fanned out exactly once, whatever the number of
   dispatcher replicas.
2. **Delivery.** Claim due deliveries with ``FOR UPDATE SKIP LOCKED`` in a short
   transaction that puts a lease on them (``lease_id``; ``next_attempt_at`` moves to the
   lease's end), send them concurrently outside any transaction, then record each outcome
   in its own short transaction, only if the lease is still ours. No transaction stays open
   during HTTP calls (a long one would hold back the outbox feed's horizon for every
   reader). A dispatcher that dies mid-attempt leaves the lease to expire; the attempt is
   then made again (at least once).

Each attempt re-checks the URL with the SSRF guard and connects to the address it checked.
The POST carries the CloudEvent (``events.outbox.to_cloudevent``), the Standard Webhooks
headers (``webhook-id`` = the event id, ``webhook-timestamp``, ``webhook-signature``) and
the legacy ``Patron-Signature`` (``webhooks/signing.py``), signed with the endpoint's
secret and, during a rotation's grace period, its previous one too. A 2xx answer is
success; anything else (redirects included: they are not followed) is a failure retried
with exponential backoff and jitter until ``WEBHOOKS_RETRY_WINDOW_SECONDS`` after the
delivery was made, then the delivery is ``failed``. An endpoint whose last
``WEBHOOKS_DISABLE_AFTER_FAILURES`` attempts all failed and that has had no success for
``WEBHOOKS_DISABLE_AFTER_SECONDS`` is disabled, with a ``webhook_endpoint.disabled`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import BigInteger, Text, case, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patron.config import Settings
from patron.context import AppContext
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.events.feed import HORIZON, FeedPosition, feed_query
from patron.events.outbox import to_cloudevent
from patron.kit.backoff import capped_exponential
from patron.kit.crypto import Keyring, KeyringError
from patron.kit.ids import new_id
from patron.kit.jsonutil import dumps
from patron.models import OutboxEvent, WebhookCursor, WebhookDelivery, WebhookEndpoint
from patron.models.outbox_event import Xid8
from patron.models.webhook_cursor import FANOUT_CURSOR
from patron.models.webhook_delivery import DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SUCCEEDED
from patron.models.webhook_endpoint import ENDPOINT_ENABLED
from patron.runtime.supervisor import BackgroundService, wait_or_stop
from patron.tenancy import trusted_tenant
from patron.webhooks.service import ALL_TYPES, SECRET_CONTEXT, disable_endpoint, require_endpoint
from patron.webhooks.signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, signed_headers
from patron.webhooks.ssrf import ResolvedTarget, UnsafeTargetError, check_url

log = structlog.get_logger("patron.webhooks")

D = WebhookDelivery
E = WebhookEndpoint
USER_AGENT = "Patron-Webhooks/1"
MAX_ERROR_LENGTH = 500


class _LeaseLostError(Exception):
    """The delivery's lease expired and was taken over: this outcome is not recorded."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this dispatcher holds the lease of, with what sending it needs."""

    id: uuid.UUID
    tenant_id: str
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    url: str
    secret_encrypted: bytes
    # the secret a rotation replaced, while its grace period lasts (else None)
    previous_secret_encrypted: bytes | None
    lease_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: ``status_code`` when an answer came, ``error`` when it failed."""

    ok: bool
    status_code: int | None = None
    error: str | None = None


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Delay before the next attempt after ``attempts`` failed ones (1-based): ``base *
    2^(attempts-1)`` capped at ``WEBHOOKS_RETRY_MAX_SECONDS``, times a random factor in
    [0.5, 1] ("equal jitter", so replicas and endpoints do not retry in lockstep)."""
    return capped_exponential(
        attempts - 1,
        initial=settings.webhooks_retry_base_seconds,
        maximum=settings.webhooks_retry_max_seconds,
        jitter=(0.5, 1.0),
    )


# What fan-out reads of each event to route it (the document only for matches).
ROUTING_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.tenant_id,
    OutboxEvent.type,
    OutboxEvent.created_at,
    OutboxEvent.xid,
    OutboxEvent.seq,
)


def endpoint_wants(endpoint: WebhookEndpoint, event: Any) -> bool:
    """Whether ``event`` (an ``OutboxEvent`` or a row with its ``type`` and
    ``created_at``) goes to ``endpoint``: its filter matches (empty or ``*``: all) and the
    event was written after the endpoint existed (no history is replayed to it)."""
    types = endpoint.event_types
    if types and ALL_TYPES not in types and event.type not in types:
        return False
    written_at: datetime = event.created_at
    return endpoint.created_at <= written_at


def pinned_request(
    client: httpx.AsyncClient,
    target: ResolvedTarget,
    headers: dict[str, str],
    body: bytes,
    index: int = 0,
) -> httpx.Request:
    """A POST to ``target`` that connects to its checked address number ``index``, with the
    original ``Host`` header and TLS server name (certificates are verified for the name),
    so DNS is not consulted again after the check."""
    original = httpx.URL(target.url)
    address = target.addresses[index]
    request = client.build_request(
        "POST",
        original.copy_with(host=str(address)),
        content=body,
        headers={**headers, "Host": original.netloc.decode("ascii")},
    )
    if target.scheme == "https" and str(address) != target.host:
        request.extensions["sni_hostname"] = target.host
    return request


class WebhookDispatcher:
    """The background service (``name``, ``run(stop)``); :meth:`run_once` does one round."""

    name = "webhooks"

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        keyring: Keyring,
        *,
        tls_verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``tls_verify``: how receivers' certificates are checked (default: the system's
        CA bundle as httpx uses it; an ``SSLContext`` to trust another CA)."""
        self.settings = settings
        self.engine = engine
        self.keyring = keyring
        self.tls_verify = tls_verify
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_context(cls, ctx: AppContext) -> WebhookDispatcher:
        """A dispatcher with its own ``patron_system`` engine for ``ctx``'s database."""
        return cls(ctx.settings, create_system_engine(ctx.settings, ctx.database_url), ctx.keyring)

    @property
    def lease_seconds(self) -> float:
        """How long a claim is held: longer than any attempt can take."""
        s = self.settings
        return s.webhooks_request_timeout_seconds + s.webhooks_dns_timeout_seconds + 30.0

    def client(self) -> httpx.AsyncClient:
        """The HTTP client: no redirects, no proxies from the environment (they would bypass
        the SSRF guard), no kept-alive connections (each attempt connects to the address its
        own check approved, with its own TLS server name)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                verify=self.tls_verify,
                timeout=httpx.Timeout(self.settings.webhooks_request_timeout_seconds),
                limits=httpx.Limits(max_keepalive_connections=0),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client and the engine's connections (both reopen on next use)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.engine.dispose()

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set, sleeping ``WEBHOOKS_POLL_INTERVAL_SECONDS`` after a
        round that did not fill a batch (so under a steady stream of events a round takes
        a poll interval's worth of them at once, rather than a few at a time)."""
        try:
            while not stop.is_set():
                fanned_out, attempted = await self._round()
                if max(fanned_out, attempted) < self.settings.webhooks_batch_size:
                    await wait_or_stop(stop, self.settings.webhooks_poll_interval_seconds)
        finally:
            await self.aclose()

    async def run_once(self) -> int:
        """One round: fan out one batch of events, then send one batch of due deliveries.
        Returns the number of events fanned out plus attempts made."""
        return sum(await self._round())

    async def _round(self) -> tuple[int, int]:
        return await self.fan_out(), await self.deliver_due()

    # -- fan-out ---------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Fan out up to ``WEBHOOKS_BATCH_SIZE`` events after the cursor; returns how many
        events were read (0 when another replica holds the cursor or nothing is new)."""
        async with self.sessions() as session, session.begin():
            cursor = (
                await session.execute(
                    select(WebhookCursor)
                    .where(WebhookCursor.name == FANOUT_CURSOR)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if cursor is None:
                return 0
            if not await self._any_enabled_endpoint(session):
                # No endpoint can want any event: move the cursor to the feed's end in one
                # step, as batch after batch of unmatched events would.
                await self._skip_to_feed_end(session)
                return 0
            after = (
                FeedPosition(xid=int(cursor.xid), seq=int(cursor.seq))
                if cursor.xid is not None and cursor.seq is not None
                else None
            )
            # Positions, tenants and types only: most events match no endpoint, and the
            # documents of those that do are loaded by _deliveries_for.
            events = (
                await session.execute(
                    feed_query(
                        after=after, limit=self.settings.webhooks_batch_size
                    ).with_only_columns(*ROUTING_COLUMNS)
                )
            ).all()
            if not events:
                return 0
            rows = await self._deliveries_for(session, events)
            if rows:
                await session.execute(
                    insert(WebhookDelivery)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
                )
            await self._move_cursor(
                session, FeedPosition(xid=int(events[-1].xid), seq=events[-1].seq)
            )
        if rows:
            log.debug("webhook deliveries created", events=len(events), deliveries=len(rows))
        return len(events)

    async def _move_cursor(self, session: AsyncSession, position: FeedPosition) -> None:
        await session.execute(
            update(WebhookCursor)
            .where(WebhookCursor.name == FANOUT_CURSOR)
            .values(
                xid=cast(cast(literal(position.xid, BigInteger), Text), Xid8()),
                seq=position.seq,
                updated_at=func.now(),
            )
        )

    async def _any_enabled_endpoint(self, session: AsyncSession) -> bool:
        found = await session.execute(
            select(WebhookEndpoint.id).where(WebhookEndpoint.status == ENDPOINT_ENABLED).limit(1)
        )
        return found.first() is not None

    async def _skip_to_feed_end(self, session: AsyncSession) -> None:
        """Move the cursor to the last event below the feed's horizon (if any)."""
        last = (
            await session.execute(
                select(OutboxEvent.xid, OutboxEvent.seq)
                .where(OutboxEvent.xid < HORIZON)
                .order_by(OutboxEvent.xid.desc(), OutboxEvent.seq.desc())
                .limit(1)
            )
        ).first()
        if last is not None:
            await self._move_cursor(session, FeedPosition(xid=int(last.xid), seq=last.seq))

    async def _deliveries_for(
        self, session: AsyncSession, events: Sequence[Any]
    ) -> list[dict[str, Any]]:
        """Rows of ``webhook_deliveries`` for ``events`` (rows of :data:`ROUTING_COLUMNS`):
        one per matching enabled endpoint of each event's own tenant."""
        tenants = {event.tenant_id for event in events}
        # Cross-tenant by design (system role): the endpoints of the batch's tenants,
        # grouped by tenant below so each event only meets its own tenant's endpoints.
        enabled = (
            await session.execute(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.status == ENDPOINT_ENABLED,
                    WebhookEndpoint.tenant_id.in_(tenants),
                )
            )
        ).scalars()
        by_tenant: dict[str, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in enabled:
            by_tenant[endpoint.tenant_id].append(endpoint)
        matches = [
            (event, endpoint)
            for event in events
            for endpoint in by_tenant.get(event.tenant_id, ())
            if endpoint_wants(endpoint, event)
        ]
        if not matches:
            return []
        ids = {event.id for event, _ in matches}
        full = {
            e.id: e
            for e in (
                await session.execute(select(OutboxEvent).where(OutboxEvent.id.in_(ids)))
            ).scalars()
        }
        return [
            {
                "id": new_id(),
                "tenant_id": event.tenant_id,
                "endpoint_id": endpoint.id,
                "event_id": event.id,
                "event_type": event.type,
                "payload": to_cloudevent(full[event.id]),
            }
            for event, endpoint in matches
        ]

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim up to ``WEBHOOKS_BATCH_SIZE`` due deliveries, send them concurrently and
        record the outcomes; returns the number of attempts made."""
        claims = await self.claim()
        if claims:
            await asyncio.gather(*(self._attempt_and_record(c) for c in claims))
        return len(claims)

    async def claim(self) -> list[Claim]:
        """Lease due deliveries of enabled endpoints (``FOR UPDATE SKIP LOCKED``: replicas
        never claim the same row); counts the attempt and moves ``next_attempt_at`` to the
        lease's end so an abandoned attempt is retried."""
        lease = uuid.uuid4()
        due = (
            select(D.id)
            .join(E, E.id == D.endpoint_id)
            .where(
                D.status == DELIVERY_PENDING,
                D.next_attempt_at <= func.now(),
                E.status == ENDPOINT_ENABLED,
            )
            .order_by(D.next_attempt_at)
            .limit(self.settings.webhooks_batch_size)
            .with_for_update(of=D, skip_locked=True)
        )
        stmt = (
            update(D)
            .where(D.id.in_(due), E.id == D.endpoint_id)
            .values(
                lease_id=lease,
                attempts=D.attempts + 1,
                last_attempt_at=func.now(),
                next_attempt_at=func.now() + timedelta(seconds=self.lease_seconds),
                updated_at=func.now(),
            )
            .returning(
                D.id,
                D.tenant_id,
                D.endpoint_id,
                D.event_id,
                D.event_type,
                D.payload,
                D.attempts,
                D.created_at,
                E.url,
                E.secret_encrypted,
                case(
                    (E.previous_secret_expires_at > func.now(), E.previous_secret_encrypted),
                    else_=None,
                ).label("previous_secret_encrypted"),
            )
        )
        async with self.sessions() as session, session.begin():
            result = await session.execute(stmt)
            return [Claim(**row._mapping, lease_id=lease) for row in result.all()]

    async def _attempt_and_record(self, claim: Claim) -> None:
        outcome = await self.attempt(claim)
        if not outcome.ok:  # never the URL or headers: they may carry credentials
            log.info(
                "webhook attempt failed",
                delivery_id=str(claim.id),
                webhook_endpoint_id=str(claim.endpoint_id),
                tenant_id=claim.tenant_id,
                attempt=claim.attempts,
                status_code=outcome.status_code,
                error=outcome.error,
            )
        try:
            await self.record(claim, outcome)
        except Exception:
            # the lease expires and the delivery is attempted again
            log.exception("recording a webhook attempt failed", delivery_id=str(claim.id))

    async def attempt(self, claim: Claim) -> Outcome:
        """Check the target again (SSRF guard), sign and POST the event. Never raises for
        network or receiver trouble: that is an unsuccessful :class:`Outcome`."""
        s = self.settings
        try:
            target = await check_url(
                claim.url,
                allow_private=s.webhooks_allow_private_targets,
                dns_timeout=s.webhooks_dns_timeout_seconds,
            )
        except UnsafeTargetError as exc:
            return Outcome(ok=False, error=f"refused by SSRF guard: {exc}")
        encrypted = [claim.secret_encrypted]  # newest first
        if claim.previous_secret_encrypted is not None:
            encrypted.append(claim.previous_secret_encrypted)
        try:
            signing_secrets = [self.keyring.decrypt(e, SECRET_CONTEXT) for e in encrypted]
        except KeyringError as exc:
            return Outcome(ok=False, error=f"cannot decrypt the endpoint secret: {exc}")
        body = dumps(claim.payload)
        headers = {
            "Content-Type": "application/json",
            # webhook-id is the event id: stable across retries, one idempotency key
            # with Patron-Event-Id and the CloudEvent's id
            **signed_headers(signing_secrets, str(claim.event_id), int(time.time()), body),
            EVENT_ID_HEADER: str(claim.event_id),
            EVENT_TYPE_HEADER: claim.event_type,
        }
        try:
            # one deadline for the whole attempt (httpx's timeouts are per phase and read)
            async with asyncio.timeout(s.webhooks_request_timeout_seconds):
                code = await self._post(target, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(
                ok=False, error=f"timed out after {s.webhooks_request_timeout_seconds:g} s"
            )
        except httpx.HTTPError as exc:
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        if 200 <= code < 300:
            return Outcome(ok=True, status_code=code)
        return Outcome(ok=False, status_code=code, error=f"HTTP {code}")

    async def _post(self, target: ResolvedTarget, headers: dict[str, str], body: bytes) -> int:
        """POST to the checked addresses in the resolver's order until one connects; the
        answer's status code. The receiver's body is not read."""
        client = self.client()
        for index in range(len(target.addresses)):
            request = pinned_request(client, target, headers, body, index)
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError:
                if index == len(target.addresses) - 1:
                    raise
                continue
            await response.aclose()
            return response.status_code
        raise AssertionError("a resolved target has at least one address")  # pragma: no cover

    async def record(self, claim: Claim, outcome: Outcome) -> None:
        """Store an attempt's outcome and the endpoint's failure streak, in one transaction,
        if this dispatcher still holds the lease (else nothing changes). Locks the endpoint
        before the delivery, like :func:`~patron.webhooks.service.disable_endpoint` does."""
        with contextlib.suppress(_LeaseLostError):
            await self._record(claim, outcome)

    async def _record(self, claim: Claim, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            if outcome.ok:
                endpoint_values: dict[str, Any] = {
                    "consecutive_failures": 0,
                    "failing_since": None,
                    "last_success_at": func.now(),
                }
            else:
                endpoint_values = {
                    "consecutive_failures": E.consecutive_failures + 1,
                    "failing_since": func.coalesce(E.failing_since, func.now()),
                }
            streak = (
                await session.execute(
                    update(E)
                    .where(E.id == claim.endpoint_id, E.status == ENDPOINT_ENABLED)
                    .values(**endpoint_values)
                    .returning(E.consecutive_failures, E.failing_since)
                )
            ).first()
            values: dict[str, Any] = {
                "lease_id": None,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
                "updated_at": func.now(),
            }
            if outcome.ok:
                values.update(status=DELIVERY_SUCCEEDED, delivered_at=func.now())
            else:
                deadline = claim.created_at + timedelta(
                    seconds=self.settings.webhooks_retry_window_seconds
                )
                if now >= deadline:
                    values["status"] = DELIVERY_FAILED
                else:
                    delay = timedelta(seconds=backoff_seconds(claim.attempts, self.settings))
                    values["next_attempt_at"] = min(now + delay, deadline)
            kept = await session.execute(
                update(D).where(D.id == claim.id, D.lease_id == claim.lease_id).values(**values)
            )
            if kept.rowcount == 0:  # type: ignore[attr-defined]
                raise _LeaseLostError  # roll back: the lease's new holder reports instead
            if streak is not None and not outcome.ok and self._should_disable(*streak):
                reason = (
                    f"{streak[0]} consecutive failed attempts since "
                    f"{(streak[1] or now).isoformat()}; last: {outcome.error}"
                )[:MAX_ERROR_LENGTH]
                tenant = trusted_tenant(claim.tenant_id)
                endpoint = await require_endpoint(
                    session, tenant, claim.endpoint_id, for_update=True
                )
                await disable_endpoint(session, tenant, endpoint, reason)
                log.warning(
                    "webhook endpoint disabled after sustained failure",
                    webhook_endpoint_id=str(claim.endpoint_id),
                    tenant_id=claim.tenant_id,
                    consecutive_failures=streak[0],
                )

    def _should_disable(self, failures: int, failing_since: datetime | None) -> bool:
        s = self.settings
        if failures < s.webhooks_disable_after_failures or failing_since is None:
            return False
        failing_for = (datetime.now(UTC) - failing_since).total_seconds()
        return failing_for >= s.webhooks_disable_after_seconds


def build_webhook_services(ctx: AppContext) -> list[BackgroundService]:
    """The webhook dispatcher (always: webhooks need no broker)."""
    return [WebhookDispatcher.from_context(ctx)]
