"""Idempotent POSTs.

The first request with a key claims it (a *pending* record, committed at once); when its
response is ready the middleware stores it (:func:`finish_idempotent_request`). A retry
with the same key and the same request gets that response again, byte for byte, with
``Idempotent-Replayed: true``; with another body it is 422; while the first is still
running it is 409. Responses of 5xx are not stored (the key is released), so a retry runs
again. Records expire after ``IDEMPOTENCY_TTL_SECONDS`` (24 h).

The key is scoped to (tenant, principal): two callers cannot collide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from patron.auth.principal import Principal
from patron.db.session import Database
from patron.errors import Conflict, InvalidInput, PatronError
from patron.models import IdempotencyKey
from patron.tenancy import TenantId

LOCK_SECONDS = 60
MAX_KEY_LENGTH = 255


class IdempotentReplay(PatronError):
    """Raised to short-circuit a request whose stored response is replayed."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__("replay", status=status)
        self.replay_headers = headers
        self.body = body


@dataclass
class PendingKey:
    tenant: TenantId
    principal_id: str
    key: str


async def _form_digest(request: Request) -> bytes:
    """Digest of a form body that FastAPI has already parsed (its stream is consumed):
    every field name and value, file contents included; files are rewound afterwards."""
    digest = hashlib.sha256()
    for name, value in (await request.form()).multi_items():
        digest.update(name.encode() + b"\0")
        if isinstance(value, str):
            digest.update(value.encode() + b"\0")
            continue
        await value.seek(0)
        while chunk := await value.read(64 * 1024):
            digest.update(chunk)
        await value.seek(0)
        digest.update(b"\0")
    return digest.digest()


async def _request_hash(request: Request) -> str:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        body = await _form_digest(request)
    else:
        body = await request.body()
    digest = hashlib.sha256()
    for part in (
        request.method.encode(),
        request.url.path.encode(),
        request.url.query.encode(),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def begin_idempotent_request(
    db: Database, request: Request, principal: Principal, tenant: TenantId
) -> None:
    """Claim the request's key or replay its stored response.

    Raises :class:`IdempotentReplay` (a stored response), :class:`InvalidInput` (same key,
    other request), :class:`Conflict` (first request still in progress).
    """
    key = request.headers["idempotency-key"].strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            "Idempotency-Key must be 1-255 characters", loc=["header", "Idempotency-Key"]
        )
    request_hash = await _request_hash(request)
    now = datetime.now(UTC)
    ttl = timedelta(seconds=db_settings_ttl(request))
    async with db.unit_of_work(tenant) as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant,
                IdempotencyKey.principal_id == principal.id,
                IdempotencyKey.key == key,
                IdempotencyKey.expires_at < now,
            )
        )
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(
                tenant_id=tenant,
                principal_id=principal.id,
                key=key,
                method=request.method,
                path=request.url.path,
                request_hash=request_hash,
                locked_until=now + timedelta(seconds=LOCK_SECONDS),
                expires_at=now + ttl,
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is None:
            row = (
                await session.execute(
                    select(IdempotencyKey)
                    .where(
                        IdempotencyKey.tenant_id == tenant,
                        IdempotencyKey.principal_id == principal.id,
                        IdempotencyKey.key == key,
                    )
                    .with_for_update()
                )
            ).scalar_one()
            if row.request_hash != request_hash:
                raise InvalidInput(
                    "Idempotency-Key was already used with a different request",
                    loc=["header", "Idempotency-Key"],
                    type="idempotency_key_reused",
                )
            if row.response_status is not None:
                raise IdempotentReplay(
                    row.response_status, dict(row.response_headers or {}), row.response_body or b""
                )
            if row.locked_until is not None and row.locked_until > now:
                raise Conflict("a request with this Idempotency-Key is still in progress")
            # The first attempt died without an answer: this one takes the key over.
            await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.tenant_id == tenant,
                    IdempotencyKey.principal_id == principal.id,
                    IdempotencyKey.key == key,
                )
                .values(locked_until=now + timedelta(seconds=LOCK_SECONDS))
            )
    request.state.idempotency = PendingKey(tenant=tenant, principal_id=principal.id, key=key)


def db_settings_ttl(request: Request) -> int:
    return int(request.app.state.ctx.settings.idempotency_ttl_seconds)


# Response headers worth replaying (not hop-by-hop or per-response ones).
_KEEP_HEADERS = {"content-type", "location", "etag"}


async def finish_idempotent_request(
    db: Database, pending: PendingKey, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Store the first response (status < 500) or release the key (5xx)."""
    where = (
        IdempotencyKey.tenant_id == pending.tenant,
        IdempotencyKey.principal_id == pending.principal_id,
        IdempotencyKey.key == pending.key,
    )
    async with db.unit_of_work(pending.tenant) as session:
        if status >= 500:
            await session.execute(delete(IdempotencyKey).where(*where))
            return
        kept = {
            k.decode().lower(): v.decode()
            for k, v in headers
            if k.decode().lower() in _KEEP_HEADERS
        }
        await session.execute(
            update(IdempotencyKey)
            .where(*where)
            .values(
                response_status=status, response_headers=kept, response_body=body, locked_until=None
            )
        )
