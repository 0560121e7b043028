"""The per-process application context: settings, database, keys, verifiers, limiters.

Built once at start-up (:func:`build_context`) and kept on ``app.state.ctx``; jobs and the
CLI build their own. Nothing here is per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patron.auth.api_keys import ApiKeyAuthenticator
from patron.auth.jwks import JwksVerifier
from patron.config import Settings
from patron.db.engine import create_app_engine
from patron.db.session import Database
from patron.db.urls import libpq_dsn
from patron.kit.crypto import Keyring
from patron.kit.ratelimit import RateLimiter
from patron.meta.cache import ProfileFetcher, build_profile_fetcher
from patron.storage import Storage, storage_from_settings


@dataclass
class AppContext:
    settings: Settings
    database_url: str
    db: Database
    keyring: Keyring
    api_keys: ApiKeyAuthenticator
    rate_limiter: RateLimiter
    storage: Storage
    # Meta Graph profiles, cached (patron.meta.cache)
    profiles: ProfileFetcher
    jwks: JwksVerifier | None = None
    extras: dict[str, object] = field(default_factory=dict)

    async def close(self) -> None:
        await self.api_keys.aclose()
        await self.db.dispose()
        await self.storage.aclose()
        await self.profiles.aclose()
        if self.jwks is not None:
            await self.jwks.aclose()
        # parts other layers keep here (a webhook receiver's channel directory)
        for extra in self.extras.values():
            aclose = getattr(extra, "aclose", None)
            if aclose is not None:
                await aclose()


def build_context(settings: Settings, database_url: str) -> AppContext:
    """Everything a process needs, from settings and a resolved database URL."""
    jwks = None
    if settings.jwks_url:
        jwks = JwksVerifier(
            settings.jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            cache_seconds=settings.jwks_cache_seconds,
        )
    return AppContext(
        settings=settings,
        database_url=database_url,
        db=Database(create_app_engine(settings, database_url)),
        keyring=Keyring.parse(settings.encryption_keys.get_secret_value()),
        # revocations reach this process's key cache through LISTEN on the same database
        api_keys=ApiKeyAuthenticator(libpq_dsn(database_url) if database_url else None),
        rate_limiter=RateLimiter(settings.redis_url),
        storage=storage_from_settings(settings),
        profiles=build_profile_fetcher(settings),
        jwks=jwks,
    )
