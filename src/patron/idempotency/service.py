"""Idempotent requests, for any transport.

The first request with a key claims it (:func:`begin`: a *pending* record, committed at
once); when its response is ready the transport stores it (:func:`complete`) or, when the
request failed in a way a retry should run again, releases the key (:func:`release`). A
retry with the same key and the same request fingerprint gets that response again
(:class:`IdempotentReplay`); with another fingerprint it is 422; while the first is still
running it is 409, and after ``LOCK_SECONDS`` without an answer (the first attempt died)
the retry takes the key over. Records expire after the caller's TTL
(``IDEMPOTENCY_TTL_SECONDS``, 24 h); an expired record is replaced by the next claim.

The key is scoped to (tenant, principal): two callers cannot collide. The stored response
is opaque here (status, headers, body); the HTTP glue is :mod:`patron.http.idempotency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from patron.db.session import Database
from patron.errors import Conflict, InvalidInput
from patron.idempotency.repository import IdempotencyKeyRepository
from patron.tenancy import TenantId

# How long a claim blocks retries before a retry may take it over (its request died).
LOCK_SECONDS = 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for replay, as the transport gave it: ``status`` (an HTTP status
    code), ``headers`` (name → value, names lower case) and the ``body`` bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


class IdempotentReplay(Exception):
    """Raised by :func:`begin` when the key already has a stored response: send ``response``
    instead of running the request again."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("replay")
        self.response = response


@dataclass(frozen=True)
class PendingKey:
    """A key claimed by :func:`begin`, to be completed or released by the same request."""

    tenant: TenantId
    principal_id: str
    key: str


async def begin(
    db: Database,
    tenant: TenantId,
    principal_id: str,
    key: str,
    fingerprint: str,
    *,
    method: str,
    path: str,
    ttl_seconds: int,
    key_loc: Sequence[str | int] = ("idempotency_key",),
) -> PendingKey:
    """Claim ``key`` for a request whose content hashes to ``fingerprint`` (at most 64
    characters, e.g. a hex SHA-256), in its own committed transaction.

    ``method`` (at most 8 characters) and ``path`` name the operation the key was first
    used for; ``ttl_seconds`` is how long the record is kept; ``key_loc`` is where the
    transport read the key, for the ``loc`` of a 422.

    Raises :class:`InvalidInput` (a key that is not 1-255 characters, or a key used before
    with another fingerprint), :class:`IdempotentReplay` (a stored response) and
    :class:`Conflict` (the first request with the key is still running).
    """
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters", loc=key_loc)
    now = datetime.now(UTC)
    locked_until = now + timedelta(seconds=LOCK_SECONDS)
    async with db.unit_of_work(tenant) as session:
        keys = IdempotencyKeyRepository(session, tenant)
        await keys.delete_expired(principal_id, key, now)
        claimed = await keys.insert_new(
            principal_id,
            key,
            method=method,
            path=path,
            request_hash=fingerprint,
            locked_until=locked_until,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        if not claimed:
            row = await keys.get_for_update(principal_id, key)
            if row.request_hash != fingerprint:
                raise InvalidInput(
                    "Idempotency-Key was already used with a different request",
                    loc=key_loc,
                    type="idempotency_key_reused",
                )
            if row.response_status is not None:
                raise IdempotentReplay(
                    StoredResponse(
                        row.response_status,
                        dict(row.response_headers or {}),
                        row.response_body or b"",
                    )
                )
            if row.locked_until is not None and row.locked_until > now:
                raise Conflict("a request with this Idempotency-Key is still in progress")
            # The first attempt died without an answer: this one takes the key over.
            await keys.set(principal_id, key, locked_until=locked_until)
    return PendingKey(tenant=tenant, principal_id=principal_id, key=key)


async def complete(db: Database, pending: PendingKey, response: StoredResponse) -> None:
    """Store ``response`` as the answer to every retry of ``pending``'s key."""
    async with db.unit_of_work(pending.tenant) as session:
        await IdempotencyKeyRepository(session, pending.tenant).set(
            pending.principal_id,
            pending.key,
            response_status=response.status,
            response_headers=response.headers,
            response_body=response.body,
            locked_until=None,
        )


async def release(db: Database, pending: PendingKey) -> None:
    """Forget ``pending``'s key, so that a retry runs the request again."""
    async with db.unit_of_work(pending.tenant) as session:
        await IdempotencyKeyRepository(session, pending.tenant).remove(
            pending.principal_id, pending.key
        )
