"""Mounts every router. Tenant routes live under one parent router, so adding one cannot skip
authentication: each of them also takes a ``Scope`` dependency, which the route-table
tests verify for every route."""

from __future__ import annotations

from fastapi import APIRouter

from patron.addresses.endpoints import router as addresses_router
from patron.avatars.endpoints import router as avatars_router
from patron.communications.endpoints import router as communications_router
from patron.consents.endpoints import router as consents_router
from patron.customers.endpoints import router as customers_router
from patron.documents.endpoints import router as documents_router
from patron.errors import PROBLEM_RESPONSES
from patron.notes.endpoints import router as notes_router
from patron.ops.endpoints import router as ops_router
from patron.payment_methods.endpoints import router as payment_methods_router
from patron.tags.endpoints import catalog_router as tag_catalog_router
from patron.tags.endpoints import router as tags_router

api_router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
api_router.include_router(customers_router)
api_router.include_router(documents_router)
api_router.include_router(avatars_router)
api_router.include_router(payment_methods_router)
api_router.include_router(communications_router)
api_router.include_router(consents_router)
api_router.include_router(addresses_router)
api_router.include_router(tags_router)
api_router.include_router(tag_catalog_router)
api_router.include_router(notes_router)

public_router = APIRouter()
public_router.include_router(ops_router)
