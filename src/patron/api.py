"""Mounts every router. Tenant routes live under one parent router, so adding one cannot skip
authentication: each of them also takes a ``Scope`` dependency, which the route-table
tests verify for every route."""

from __future__ import annotations

from fastapi import APIRouter

from patron.customers.endpoints import router as customers_router
from patron.errors import PROBLEM_RESPONSES
from patron.ops.endpoints import router as ops_router

api_router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
api_router.include_router(customers_router)

public_router = APIRouter()
public_router.include_router(ops_router)
