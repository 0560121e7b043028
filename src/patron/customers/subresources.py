"""The base of the services of a customer's sub-resources (notes, addresses, payment
methods, communications, consents): each lives under ``/customers/{customer_id}/`` and
checks its customer through the customer service first (STYLE.md: a service calls another
domain's service, never its repository).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select

from patron.customers.service import CustomerService
from patron.kit.keyset import Slice, Window, newest_first
from patron.usecases import Service


class CustomerSubresourceService(Service):
    """A :class:`Service` whose rows belong to one customer of the tenant."""

    @property
    def customers(self) -> CustomerService:
        """The customer service of the same caller (its operations join this unit)."""
        return CustomerService(self.ctx)

    async def newest_of(
        self, customer_id: uuid.UUID, stmt: Select[Any], time_col: Any, window: Window
    ) -> Slice:
        """One page of ``stmt`` (the customer's rows, a tenant-scoped ``select(Model)``)
        newest first by ``(time_col, Model.id)`` (:func:`patron.kit.keyset.newest_first`;
        ``time_col`` is a column of that model), once the customer is known. Raises
        ``CustomerNotFound``; 422 for a bad cursor. Call it inside an operation (it runs in
        the open unit)."""
        await self.customers.require(customer_id)
        return await newest_first(self.session, stmt, time_col, time_col.class_.id, window)
