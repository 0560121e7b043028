"""API keys (``X-API-Key``): creation, look-up and revocation.

A key is ``ptk_<prefix>_<secret>`` with 256 random bits of secret; only its SHA-256 digest
is stored (a slow KDF adds nothing for a key with that much entropy). Looked-up keys are
cached in process for a short time so a hot path does not hit the database per request;
a revocation takes effect within that time (``CACHE_SECONDS``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal, Role
from patron.db.session import Database
from patron.errors import InvalidInput, Unauthorized
from patron.models import ApiKey
from patron.tenancy import TENANT_ID_RE

CACHE_SECONDS = 30
_KEY_PREFIX = "ptk_"


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


async def revoke_api_key(session: AsyncSession, key_id: str) -> bool:
    """Revoke a key by id; True if a live key was revoked."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_api_keys(session: AsyncSession) -> int:
    """Number of live keys (used to decide whether to bootstrap a first admin key)."""
    result = await session.execute(
        select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    )
    return int(result.scalar_one())


class ApiKeyAuthenticator:
    """Resolves ``X-API-Key`` values to principals, with a short in-process cache."""

    def __init__(self) -> None:
        self._cache: TTLCache[str, Principal] = TTLCache(maxsize=10_000, ttl=CACHE_SECONDS)

    async def authenticate(self, db: Database, secret: str) -> Principal:
        """Principal for a key. Raises :class:`Unauthorized` if unknown or revoked.

        A cached key costs no database round trip; a miss reads ``api_keys`` in its own
        short unit of work.
        """
        if not secret.startswith(_KEY_PREFIX) or len(secret) > 200:
            raise Unauthorized("invalid API key")
        digest = hash_key(secret)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
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
        self._cache[digest] = principal
        return principal

    def forget(self) -> None:
        self._cache.clear()
