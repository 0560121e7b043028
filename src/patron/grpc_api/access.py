"""Who may call each method of ``patron.v1.CustomerService``: the same roles as the HTTP
route of the same use case (``customers/endpoints.py``, ``orders/endpoints.py``).

The call interceptor reads this table for every call, so a method without an entry is
refused (PERMISSION_DENIED), never open by omission. Beside it, :data:`RATE_LIMITS` names
the methods rate limited as their HTTP route is (decision 0019).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from patron.auth.principal import Role
from patron.config import Settings

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


@dataclass(frozen=True)
class RateLimit:
    """A method limited as its HTTP route: ``limit`` reads the ``limits`` notation string
    (e.g. ``"5/minute"``) from the settings; ``scope`` names the counter, the same as the
    HTTP route's so both transports share one budget. Counted per tenant, principal and
    the request's ``customer_id`` (empty when the request names none)."""

    limit: Callable[[Settings], str]
    scope: str


# The rate-limited HTTP routes (API.md) and their gRPC methods: PATCH
# /api/v1/customers/{id} (CUSTOMER_PATCH_RATE) is the only one, and no gRPC method
# corresponds to it (there is no UpdateCustomer), so no method is limited today.
RATE_LIMITS: dict[str, RateLimit] = {}
