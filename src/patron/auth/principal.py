"""Who is calling, and the roles of ARCHITECTURE.md §6."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    SERVICE = "service"
    CUSTOMER = "customer"


# Aliases used by one source design (ARCHITECTURE.md §6).
ROLE_ALIASES: dict[str, Role] = {
    "admin_business": Role.ADMIN,
    "admin_manager": Role.MANAGER,
}

STAFF = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT})


def parse_roles(raw: object) -> frozenset[Role]:
    """Known roles from a claim (a list or a space/comma separated string); others ignored."""
    items: list[str]
    if isinstance(raw, str):
        items = raw.replace(",", " ").split()
    elif isinstance(raw, list | tuple):
        items = [str(r) for r in raw]
    else:
        items = []
    roles: set[Role] = set()
    for item in items:
        name = item.strip().lower()
        if name in ROLE_ALIASES:
            roles.add(ROLE_ALIASES[name])
        elif name in Role._value2member_map_:
            roles.add(Role(name))
    return frozenset(roles)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``id`` is stable per caller (``jwt:<sub>`` or ``key:<api key id>``) and keys rate limits,
    idempotency records and audit entries. ``tenant_id`` is None for platform principals.
    ``customer_id`` is set for the customer role: the customer the caller is.
    """

    id: str
    subject: str
    roles: frozenset[Role]
    tenant_id: str | None
    customer_id: uuid.UUID | None = None

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)

    @property
    def is_customer_only(self) -> bool:
        return self.roles == {Role.CUSTOMER}
