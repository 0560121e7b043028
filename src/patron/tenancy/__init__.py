"""Tenants. :class:`TenantId` values are made in exactly one place: :func:`resolve_tenant`.

A tenant id is 1..64 characters of ``[A-Za-z0-9._:-]`` (ARCHITECTURE.md §4). Repositories
accept only a ``TenantId``, so an unchecked string cannot reach a query by accident.
"""

from __future__ import annotations

import re
from typing import NewType, Protocol

from patron.errors import BadRequest, Forbidden, InvalidInput


class TenantBound(Protocol):
    """What :func:`resolve_tenant` reads of a caller (``auth.Principal`` is one): its own
    tenant, or None for a platform caller. A protocol, so tenancy sits below auth."""

    @property
    def tenant_id(self) -> str | None: ...


TenantId = NewType("TenantId", str)
TENANT_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _checked(value: str, where: str) -> TenantId:
    if not TENANT_ID_RE.match(value):
        raise InvalidInput(
            "tenant id must be 1-64 characters of letters, digits, '.', '_', ':' or '-'",
            loc=[where],
        )
    return TenantId(value)


def resolve_tenant(
    principal: TenantBound,
    header_tenant: str | None = None,
    claimed: list[tuple[str, str]] | None = None,
) -> TenantId:
    """The tenant a request acts for.

    - A tenant-bound principal acts for its own tenant; ``X-Tenant-Id`` may repeat it.
    - A platform principal names the tenant with ``X-Tenant-Id`` (``header_tenant``).
    - ``claimed`` are ``(where, value)`` pairs from the query or body (``tenant_id``,
      ``tenantId``); each must equal the resolved tenant.

    Raises :class:`BadRequest` (400) when no tenant can be found, :class:`Forbidden` (403)
    when a header or claim names another tenant than the principal's, and
    :class:`InvalidInput` (422) for a malformed id.
    """
    if principal.tenant_id is not None:
        tenant = _checked(principal.tenant_id, "principal")
        if header_tenant is not None and header_tenant != tenant:
            raise Forbidden("X-Tenant-Id names a tenant this credential does not belong to")
    elif header_tenant:
        tenant = _checked(header_tenant, "X-Tenant-Id")
    else:
        raise BadRequest("No tenant: send X-Tenant-Id with a platform credential", missing="tenant")
    for where, value in claimed or ():
        if value != tenant:
            raise Forbidden(f"{where} names a tenant this credential may not act for")
    return tenant


def trusted_tenant(value: str) -> TenantId:
    """A tenant id from a trusted operator context (CLI flag, job argument).

    Raises :class:`InvalidInput` for a malformed id. Never call it with request input.
    """
    return _checked(value, "tenant")
