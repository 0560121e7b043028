"""Bearer JWT verification against a JWKS (RFC 7517, RFC 7519).

Keys are fetched from ``JWKS_URL`` and cached for ``JWKS_CACHE_SECONDS``; a token whose
``kid`` is unknown triggers one refresh (at most one per ``min_refresh_seconds``), so key
rotation at the issuer needs no restart. Algorithms are pinned to RS256 and ES256.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt

from patron.auth.principal import Principal, Role, parse_roles
from patron.errors import Unauthorized

ALGORITHMS = ["RS256", "ES256"]


class JwksVerifier:
    """Verifies tokens; one instance per process (it holds the key cache)."""

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str | None,
        audience: str | None,
        cache_seconds: int = 300,
        min_refresh_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.cache_seconds = cache_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if not force and age < self.cache_seconds and self._keys:
                return
            if force and age < self.min_refresh_seconds:
                return
            try:
                response = await self._client.get(self.jwks_url)
                response.raise_for_status()
                jwk_set = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                if not self._keys:
                    raise Unauthorized("signing keys are unavailable") from exc
                return  # keep serving with the keys we have
            self._keys = {k.key_id: k for k in jwk_set.keys if k.key_id}
            self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("token signed with an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        """Principal from a verified token. Raises :class:`Unauthorized` for any defect."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("malformed bearer token") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALGORITHMS:
            raise Unauthorized("token must carry a kid and use RS256 or ES256")
        key = await self._key_for(kid)
        options: jwt.types.Options = {
            "require": ["exp", "sub"],
            "verify_aud": self.audience is not None,
        }
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options=options,
                leeway=30,
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return principal_from_claims(claims)

    async def aclose(self) -> None:
        await self._client.aclose()


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Map verified claims ``sub``, ``tenant_id``, ``roles`` (or ``role``) to a principal.

    Roles Patron does not know are dropped: a valid token whose roles are all unknown is a
    principal with no role, refused by every route with 403 (its credentials are fine;
    the role is not allowed), not 401."""
    subject = str(claims["sub"])
    roles = parse_roles(claims.get("roles", claims.get("role")))
    tenant = claims.get("tenant_id")
    customer_id: uuid.UUID | None = None
    if Role.CUSTOMER in roles:
        if tenant is None:
            raise Unauthorized("customer token must name its tenant")
        try:
            customer_id = uuid.UUID(subject)
        except ValueError as exc:
            raise Unauthorized("customer token subject must be a customer id") from exc
    return Principal(
        id=f"jwt:{subject}",
        subject=subject,
        roles=roles,
        tenant_id=str(tenant) if tenant is not None else None,
        customer_id=customer_id,
    )
