"""Contexts for calling use cases without HTTP, as a job or the CLI would."""

from __future__ import annotations

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.tenancy import trusted_tenant
from patron.usecases import ServiceContext


def staff_context(app_ctx: AppContext, tenant: str) -> ServiceContext:
    """A tenant admin's :class:`ServiceContext`."""
    principal = Principal("key:test", "test", frozenset({Role.ADMIN}), tenant)
    return ServiceContext(app_ctx, principal, trusted_tenant(tenant))
