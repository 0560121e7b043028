"""Idempotent POSTs over HTTP (the draft IETF ``Idempotency-Key`` header,
draft-ietf-httpapi-idempotency-key-header).

:func:`begin_idempotent_request` claims the request's key (or replays, 409s or 422s, see
:mod:`patron.idempotency.service`) from the request scope; the
:class:`~patron.http.middleware.IdempotencyMiddleware` stores the first response with
:func:`finish_idempotent_request`. A replay is the stored response byte for byte, with
``Idempotent-Replayed: true``. Responses of 5xx are not stored (the key is released), so a
retry runs again.
"""

from __future__ import annotations

import hashlib
from typing import cast

from fastapi import Request
from fastapi.responses import Response

from patron.auth.principal import Principal
from patron.db.session import Database
from patron.idempotency.service import (
    IdempotentReplay,
    PendingKey,
    StoredResponse,
    begin,
    complete,
    release,
)
from patron.tenancy import TenantId

KEY_LOC = ("header", "Idempotency-Key")
# Response headers worth replaying (not hop-by-hop or per-response ones).
_KEEP_HEADERS = {"content-type", "location", "etag"}
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


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


async def request_fingerprint(request: Request) -> str:
    """SHA-256 (64 hex digits) of the method, path, query and body; a form body (multipart
    or urlencoded) counts by its parsed fields and file contents. Each part is prefixed by
    its length, so no two different requests share the input."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(_FORM_TYPES):
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
    """Claim the ``Idempotency-Key`` of ``request`` (which must carry one) or replay its
    stored response; the claim is kept on ``request.state.idempotency`` for the middleware.

    Raises :class:`IdempotentReplay` (a stored response), :class:`InvalidInput` (a key
    that is not 1-255 characters, or same key and another request) and :class:`Conflict`
    (the first request is still in progress).
    """
    settings = request.app.state.ctx.settings
    request.state.idempotency = await begin(
        db,
        tenant,
        principal.id,
        request.headers["idempotency-key"],
        await request_fingerprint(request),
        method=request.method,
        path=request.url.path,
        ttl_seconds=int(settings.idempotency_ttl_seconds),
        key_loc=KEY_LOC,
    )


async def finish_idempotent_request(
    db: Database, pending: PendingKey, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Store the first response (status < 500; its ASGI ``headers`` reduced to
    Content-Type, Location and ETag) or release the key (5xx)."""
    if status >= 500:
        await release(db, pending)
        return
    kept = {
        name.decode().lower(): value.decode()
        for name, value in headers
        if name.decode().lower() in _KEEP_HEADERS
    }
    await complete(db, pending, StoredResponse(status, kept, body))


async def replay_response(_: Request, exc: Exception) -> Response:
    """The exception handler for :class:`IdempotentReplay`: the stored response again."""
    stored = cast(IdempotentReplay, exc).response
    return Response(
        content=stored.body,
        status_code=stored.status,
        headers={**stored.headers, "Idempotent-Replayed": "true"},
    )
