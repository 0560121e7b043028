"""Dependencies for routes under ``/customers/{customer_id}/...``.

No ``from __future__ import annotations`` here: FastAPI must see the closure's real
``Annotated`` types, which string annotations would hide.
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope


def known_customer(scope: Scope) -> Callable[..., Awaitable[RequestContext]]:
    """A dependency giving ``scope``'s context once the path's customer is known to exist.

    Dependencies run before the body is validated, so another tenant's (or an unknown)
    customer is a 404 even when the body is invalid: a 422 would reveal nothing, but the
    order keeps every route's answers alike.
    """

    async def dependency(
        customer_id: uuid.UUID,
        ctx: Annotated[RequestContext, Depends(scope, scope="function")],
    ) -> RequestContext:
        await CustomerService(ctx).require(customer_id)
        return ctx

    return dependency
