"""Mounts every router (:func:`mount_routes`). Adding a tenant router cannot skip
authentication: each of its routes takes a ``Scope`` dependency, which the route-table
tests verify for every route under ``/api/``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from patron.addresses.endpoints import router as addresses_router
from patron.avatars.endpoints import router as avatars_router
from patron.channels.endpoints import router as channels_router
from patron.communications.endpoints import router as communications_router
from patron.consents.endpoints import router as consents_router
from patron.customers.endpoints import router as customers_router
from patron.documents.endpoints import router as documents_router
from patron.events.endpoints import router as events_router
from patron.messaging.endpoints import router as meta_webhooks_router
from patron.notes.endpoints import router as notes_router
from patron.ops.endpoints import router as ops_router
from patron.orders.endpoints import router as orders_router
from patron.payment_methods.endpoints import router as payment_methods_router
from patron.tags.endpoints import catalog_router as tag_catalog_router
from patron.tags.endpoints import router as tags_router
from patron.webhooks.endpoints import router as webhooks_router

API_PREFIX = "/api/v1"

# Every tenant router, mounted under API_PREFIX. Each route also takes a ``Scope``
# dependency, which the route-table tests verify for every route under /api/.
TENANT_ROUTERS: tuple[APIRouter, ...] = (
    customers_router,
    events_router,
    documents_router,
    avatars_router,
    payment_methods_router,
    communications_router,
    consents_router,
    addresses_router,
    tags_router,
    tag_catalog_router,
    notes_router,
    orders_router,
    webhooks_router,
    channels_router,
)


def mount_routes(app: FastAPI) -> None:
    """Include every router in ``app``: the tenant routers under ``/api/v1`` (hottest
    first), then the unauthenticated operational ones and Meta's webhook receiver
    (``/webhooks/meta``: checked by its verify token and signature, not a credential).

    The tenant routers are included straight into the app, not through a parent router:
    FastAPI matches included routers level by level, and a level of nesting cost about a
    fifth of the Python calls of a GET by id (bench/README.md).
    """
    for router in TENANT_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(ops_router)
    app.include_router(meta_webhooks_router)
