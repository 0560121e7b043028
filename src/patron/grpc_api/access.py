"""Who may call each method of ``patron.v1.CustomerService``: the same roles as the HTTP
route of the same use case (``customers/endpoints.py``, ``orders/endpoints.py``).

The call interceptor reads this table for every call, so a method without an entry is
refused (PERMISSION_DENIED), never open by omission.
"""

from __future__ import annotations

from dataclasses import dataclass

from patron.auth.principal import Role

SERVICE_NAME = "patron.v1.CustomerService"


@dataclass(frozen=True)
class Access:
    """``roles`` may call the method; with ``customer_self`` the customer role may too,
    for its own ``customer_id`` only (another id is NOT_FOUND, as over HTTP)."""

    roles: frozenset[Role]
    customer_self: bool = False


def _access(*roles: Role, customer_self: bool = False) -> Access:
    return Access(frozenset(roles), customer_self)


READERS = _access(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE)

METHODS: dict[str, Access] = {
    "GetCustomer": _access(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE, customer_self=True),
    "GetCustomerByPsid": READERS,
    "UpsertCustomer": _access(Role.ADMIN, Role.SERVICE),
    "ListCustomers": READERS,
    "BlockCustomer": _access(Role.ADMIN, Role.MANAGER, Role.AGENT),
    "UnblockCustomer": _access(Role.ADMIN, Role.MANAGER, Role.AGENT),
    "UpdateLastInteraction": READERS,
    "RecordOrder": _access(Role.SERVICE),
}
