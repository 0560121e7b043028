"""The one dependency for routes under ``/customers/{customer_id}/...``:
:func:`known_customer` (404 for an unknown customer before the body is judged).

No ``from __future__ import annotations`` here: FastAPI must see the closure's real
``Annotated`` types, which string annotations would hide.
"""

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope


@functools.cache
def known_customer(scope: Scope) -> Callable[..., Awaitable[RequestContext]]:
    """A dependency giving ``scope``'s context once the path's ``customer_id`` is a live
    customer of the tenant; raises ``CustomerNotFound`` (404) otherwise.

    Dependencies run before the body is validated, so another tenant's (or an unknown)
    customer is a 404 even when the body (a JSON model, a multipart form) is invalid: a 422
    would reveal nothing, but the order keeps every route's answers alike. The check runs
    in its own read unit (``CustomerService.require``), so it serves :class:`Scope`
    routes, whose operation opens its unit afterwards, and legacy :class:`Scope` routes,
    whose request unit it joins.

    One dependency per scope (cached): routes that share a scope share the callable, so
    FastAPI runs the check once per request however often it is declared.
    """

    async def dependency(
        customer_id: uuid.UUID,
        ctx: Annotated[RequestContext, Depends(scope, scope="function")],
    ) -> RequestContext:
        await CustomerService(ctx).require(customer_id)
        return ctx

    return dependency
