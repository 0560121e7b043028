"""Address use cases: list, read, add, change, remove (API.md "Profile data").

Writes lock the customer row first (``CustomerService.require(for_update=True)``), so two
requests changing the same customer's defaults serialise; the previous default is unset
before the new one is written, in the same transaction, and the event is recorded there too.
Every operation owns its unit of work (:mod:`patron.usecases`).
"""

from __future__ import annotations

import uuid
from typing import Any

from patron.addresses import validation
from patron.addresses.errors import AddressNotFound
from patron.addresses.repository import AddressRepository
from patron.addresses.schemas import (
    AddressCreate,
    AddressPage,
    AddressRead,
    AddressUpdate,
    AddressWarning,
)
from patron.customers.subresources import CustomerSubresourceService
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window
from patron.kit.validation import ContactPointError, normalize_phone
from patron.models import CustomerAddress
from patron.usecases import reads, writes

FIELDS = tuple(AddressCreate.model_fields)
# (the service's ``list`` use case shadows the builtin inside the class body)
Warnings = list[AddressWarning]


class AddressService(CustomerSubresourceService):
    """Address use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> AddressRepository:
        return AddressRepository(self.session, self.tenant)

    @reads()
    async def list(self, customer_id: uuid.UUID, window: Window) -> AddressPage:
        """A customer's addresses, newest first. Raises ``CustomerNotFound`` unless a live
        customer of the tenant."""
        found = await self.newest_of(
            customer_id, self.repo.of_customer(customer_id), CustomerAddress.created_at, window
        )
        return AddressPage(
            addresses=[AddressRead.model_validate(a, from_attributes=True) for a in found.rows],
            **found.envelope(),
        )

    @reads()
    async def get(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> AddressRead:
        """One address. Raises ``CustomerNotFound`` or :class:`AddressNotFound` (also for
        another tenant's)."""
        await self.customers.require(customer_id)
        return AddressRead.model_validate(
            await self._find(customer_id, address_id), from_attributes=True
        )

    @reads()
    async def exists(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> bool:
        """Whether ``address_id`` is an address of ``customer_id`` in this tenant (other
        domains check references through this, e.g. a payment method's billing address)."""
        return await self.repo.get(customer_id, address_id) is not None

    @writes()
    async def add(self, customer_id: uuid.UUID, body: AddressCreate) -> AddressRead:
        """Validate and store; a new default unsets the previous default of its type;
        emits ``customer.address_added``. Raises ``CustomerNotFound``, or 422 for a
        certainly wrong address (see :mod:`patron.addresses.validation`)."""
        values, warnings = self._validated(body.model_dump(mode="json"))
        await self.customers.require(customer_id, for_update=True)
        repo = self.repo
        if values["is_default"]:
            await repo.clear_default(customer_id, values["address_type"], None)
        address = repo.add(CustomerAddress(customer_id=customer_id, **values))
        await self.session.flush()
        await self.session.refresh(address)
        return await self._emit(EventType.CUSTOMER_ADDRESS_ADDED, address, warnings)

    @writes()
    async def update(
        self, customer_id: uuid.UUID, address_id: uuid.UUID, body: AddressUpdate
    ) -> AddressRead:
        """Apply the fields sent, validate the result as a whole, move the default; emits
        ``customer.address_updated``. Raises ``CustomerNotFound``, :class:`AddressNotFound`,
        422 (a required field sent as null, a certainly wrong address)."""
        await self.customers.require(customer_id, for_update=True)
        address = await self._find(customer_id, address_id)
        sent = body.model_dump(mode="json", exclude_unset=True)
        for required in ("address_type", "is_default", "address_line1", "country"):
            if required in sent and sent[required] is None:
                raise InvalidInput(f"{required} may not be null", loc=["body", required])
        current = {name: getattr(address, name) for name in FIELDS}
        values, warnings = self._validated({**current, **sent})
        if values["is_default"]:
            await self.repo.clear_default(customer_id, values["address_type"], address.id)
        for name, value in values.items():
            setattr(address, name, value)
        await self.session.flush()
        await self.session.refresh(address)
        return await self._emit(EventType.CUSTOMER_ADDRESS_UPDATED, address, warnings)

    @writes()
    async def remove(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> None:
        """Delete an address (a removed default is not replaced by another); emits
        ``customer.address_removed``. Raises ``CustomerNotFound``, :class:`AddressNotFound`."""
        await self.customers.require(customer_id, for_update=True)
        address = await self._find(customer_id, address_id)
        read = AddressRead.model_validate(address, from_attributes=True)
        await self.repo.remove(address)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_ADDRESS_REMOVED,
            str(customer_id),
            {"customer_id": str(customer_id), "address": read.model_dump(mode="json")},
        )

    async def _find(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> CustomerAddress:
        address = await self.repo.get(customer_id, address_id)
        if address is None:
            raise AddressNotFound(address_id)
        return address

    def _validated(self, fields: dict[str, Any]) -> tuple[dict[str, Any], Warnings]:
        values, warnings = validation.normalise(fields)
        if values.get("phone"):
            try:
                values["phone"] = normalize_phone(values["phone"], values["country"])
            except ContactPointError as exc:
                raise InvalidInput(f"invalid phone number: {exc}", loc=["body", "phone"]) from exc
        return {k: v for k, v in values.items() if k in FIELDS}, warnings

    async def _emit(
        self, type_: EventType, address: CustomerAddress, warnings: Warnings
    ) -> AddressRead:
        read = AddressRead.model_validate(address, from_attributes=True)
        await outbox.record(
            self.session,
            self.tenant,
            type_,
            str(address.customer_id),
            {"customer_id": str(address.customer_id), "address": read.model_dump(mode="json")},
        )
        return read.model_copy(update={"warnings": warnings})
