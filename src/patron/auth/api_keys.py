"""API keys (``X-API-Key``): creation, look-up, listing and revocation.

A key is ``ptk_<prefix>_<secret>`` with 256 random bits of secret; only its SHA-256 digest
is stored (a slow KDF adds nothing for a key with that much entropy). Looked-up keys are
cached in process for up to ``CACHE_SECONDS`` so a hot path does not hit the database per
request. A revocation takes effect at once all the same: it sends a PostgreSQL
notification (``NOTIFY`` on :data:`REVOCATIONS`, sent to listeners just after its commit,
within milliseconds) that every process's :class:`ApiKeyAuthenticator` listens to and
answers by emptying its cache; while a process is not listening (not yet connected,
connection lost) it caches nothing. A listener connection that dies without the socket
noticing (a silent network partition) leaves the cache to its TTL.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from cachetools import TTLCache
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal, Role
from patron.db.session import Database
from patron.errors import InvalidInput, Unauthorized
from patron.models import ApiKey
from patron.tenancy import TENANT_ID_RE

CACHE_SECONDS = 30
# Seconds between attempts to (re)open the revocation listener while it is down.
LISTEN_RETRY_SECONDS = 5.0
# NOTIFY channel of revocations (payload: the key's id).
REVOCATIONS = "patron_api_key_revoked"
_KEY_PREFIX = "ptk_"
# Transaction-scoped advisory lock that serialises first-start key creation between
# replicas starting together (same hashing as the identity locks).
_BOOTSTRAP_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('patron.bootstrap-key', 0))")

log = structlog.get_logger("patron.auth.api_keys")


@dataclass(frozen=True)
class CreatedKey:
    """A new key. ``secret`` is shown once and never stored."""

    id: str
    secret: str
    tenant_id: str | None
    role: Role


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    session: AsyncSession, *, tenant_id: str | None, role: Role, name: str = "default"
) -> CreatedKey:
    """Create a key bound to ``tenant_id`` (None: platform key). Raises 422 on a bad tenant."""
    if tenant_id is not None and not TENANT_ID_RE.match(tenant_id):
        raise InvalidInput("tenant id is malformed", loc=["tenant"])
    prefix = secrets.token_hex(4)
    secret = f"{_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        tenant_id=tenant_id, name=name, prefix=prefix, key_hash=hash_key(secret), role=role
    )
    session.add(row)
    await session.flush()
    return CreatedKey(id=str(row.id), secret=secret, tenant_id=tenant_id, role=role)


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown of a key: never its secret or its digest."""

    id: str
    name: str
    role: str
    tenant_id: str | None
    created_at: datetime
    revoked_at: datetime | None


async def list_api_keys(session: AsyncSession) -> list[ApiKeyInfo]:
    """Every key, oldest first, live and revoked."""
    rows = await session.execute(
        select(
            ApiKey.id,
            ApiKey.name,
            ApiKey.role,
            ApiKey.tenant_id,
            ApiKey.created_at,
            ApiKey.revoked_at,
        ).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [
        ApiKeyInfo(str(r.id), r.name, r.role, r.tenant_id, r.created_at, r.revoked_at) for r in rows
    ]


async def revoke_api_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke a key by id (a UUID string); True if a live key was revoked. Every process's
    cache forgets its keys when this transaction commits (``NOTIFY`` :data:`REVOCATIONS`)."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == uuid.UUID(key_id), ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    revoked = bool(result.rowcount)  # type: ignore[attr-defined]
    if revoked:
        await session.execute(select(func.pg_notify(REVOCATIONS, key_id)))
    return revoked


async def bootstrap_admin_key(session: AsyncSession) -> CreatedKey | None:
    """A platform admin key named ``bootstrap`` when no live key exists (first start),
    else None. Replicas starting together take turns (advisory lock), so only one key is
    made."""
    await session.execute(_BOOTSTRAP_LOCK)
    if await count_api_keys(session):
        return None
    return await create_api_key(session, tenant_id=None, role=Role.ADMIN, name="bootstrap")


async def count_api_keys(session: AsyncSession) -> int:
    """Number of live keys (used to decide whether to bootstrap a first admin key)."""
    result = await session.execute(
        select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    )
    return int(result.scalar_one())


class ApiKeyAuthenticator:
    """Resolves ``X-API-Key`` values to principals, with a short in-process cache that a
    revocation empties at once (module docstring). ``listen_dsn``: a libpq DSN the
    revocation listener connects with; None caches nothing."""

    def __init__(self, listen_dsn: str | None = None) -> None:
        self._cache: TTLCache[str, Principal] = TTLCache(maxsize=10_000, ttl=CACHE_SECONDS)
        self._dsn = listen_dsn
        self._listener: Any = None  # asyncpg.Connection while listening
        self._retry_at = 0.0
        # bumped on every revocation or lost listener: a look-up that raced one is not cached
        self._generation = 0

    def _revoked(self, *_: object) -> None:
        self._cache.clear()
        self._generation += 1

    def _lost(self, *_: object) -> None:
        self._listener = None
        self._revoked()

    async def _listening(self) -> bool:
        """True while revocations reach this process; (re)connects at most every
        :data:`LISTEN_RETRY_SECONDS` while they do not."""
        if self._listener is not None and not self._listener.is_closed():
            return True
        if self._dsn is None or time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + LISTEN_RETRY_SECONDS
        try:
            conn = await asyncpg.connect(self._dsn, timeout=LISTEN_RETRY_SECONDS)
            await conn.add_listener(REVOCATIONS, self._revoked)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("api_key_revocation_listener_unavailable", error=type(exc).__name__)
            return False
        conn.add_termination_listener(self._lost)
        self._revoked()  # whatever was cached may have missed a revocation
        self._listener = conn
        return True

    async def aclose(self) -> None:
        """Close the revocation listener (at shutdown)."""
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()

    async def authenticate(self, db: Database, secret: str) -> Principal:
        """Principal for a key. Raises :class:`Unauthorized` if unknown or revoked.

        A cached key costs no database round trip; a miss reads ``api_keys`` in its own
        short unit of work.
        """
        if not secret.startswith(_KEY_PREFIX) or len(secret) > 200:
            raise Unauthorized("invalid API key")
        digest = hash_key(secret)
        listening = await self._listening()
        cached = self._cache.get(digest) if listening else None
        if cached is not None:
            return cached
        generation = self._generation
        async with db.unit_of_work(None) as session:
            row = (
                await session.execute(
                    select(ApiKey.id, ApiKey.tenant_id, ApiKey.role).where(
                        ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            raise Unauthorized("invalid API key")
        principal = Principal(
            id=f"key:{row.id}",
            subject=str(row.id),
            roles=frozenset({Role(row.role)}),
            tenant_id=row.tenant_id,
        )
        if listening and generation == self._generation:
            self._cache[digest] = principal
        return principal

    def forget(self) -> None:
        self._cache.clear()
