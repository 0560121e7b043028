"""Address use cases: list, read, add, change, remove (API.md "Profile data").

Writes lock the customer row first (``CustomerService.require(for_update=True)``), so two
requests changing the same customer's defaults serialise; the previous default is unset
before the new one is written, in the same transaction, and the event is recorded there too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from patron.addresses import validation
from patron.addresses.repository import AddressRepository
from patron.addresses.schemas import (
    AddressCreate,
    AddressPage,
    AddressRead,
    AddressUpdate,
    AddressWarning,
)
from patron.customers.service import CustomerService
from patron.errors import InvalidInput, NotFound
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window, newest_first
from patron.kit.validation import ContactPointError, normalize_phone
from patron.models import CustomerAddress
from patron.tenancy import TenantId

FIELDS = tuple(AddressCreate.model_fields)


@dataclass
class AddressService:
    session: AsyncSession
    tenant: TenantId
    customers: CustomerService

    def __post_init__(self) -> None:
        self.repo = AddressRepository(self.session, self.tenant)

    async def list_addresses(
        self, customer_id: uuid.UUID, *, page: int, page_size: int, cursor: str | None
    ) -> AddressPage:
        """A customer's addresses, newest first. 404 unless a live customer of the tenant."""
        await self.customers.require(customer_id)
        found = await newest_first(
            self.session,
            self.repo.of_customer(customer_id),
            CustomerAddress.created_at,
            CustomerAddress.id,
            Window(page=page, page_size=page_size, cursor=cursor),
        )
        return AddressPage(
            addresses=[AddressRead.model_validate(a, from_attributes=True) for a in found.rows],
            **found.envelope(),
        )

    async def get(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> AddressRead:
        """One address. 404 for an unknown customer or address (or another tenant's)."""
        await self.customers.require(customer_id)
        return AddressRead.model_validate(
            await self._find(customer_id, address_id), from_attributes=True
        )

    async def add(self, customer_id: uuid.UUID, body: AddressCreate) -> AddressRead:
        """Validate and store; a new default unsets the previous default of its type.
        422 for a certainly wrong address (see :mod:`patron.addresses.validation`)."""
        values, warnings = self._validated(body.model_dump(mode="json"))
        await self.customers.require(customer_id, for_update=True)
        if values["is_default"]:
            await self.repo.clear_default(customer_id, values["address_type"], None)
        address = self.repo.add(CustomerAddress(customer_id=customer_id, **values))
        await self.session.flush()
        await self.session.refresh(address)
        return await self._emit(EventType.CUSTOMER_ADDRESS_ADDED, address, warnings)

    async def update(
        self, customer_id: uuid.UUID, address_id: uuid.UUID, body: AddressUpdate
    ) -> AddressRead:
        """Apply the fields sent, validate the result as a whole, move the default."""
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

    async def remove(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> None:
        """Delete an address (a removed default is not replaced by another)."""
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
            raise NotFound("address not found", address_id=str(address_id))
        return address

    def _validated(self, fields: dict[str, Any]) -> tuple[dict[str, Any], list[AddressWarning]]:
        values, warnings = validation.normalise(fields)
        if values.get("phone"):
            try:
                values["phone"] = normalize_phone(values["phone"], values["country"])
            except ContactPointError as exc:
                raise InvalidInput(f"invalid phone number: {exc}", loc=["body", "phone"]) from exc
        return {k: v for k, v in values.items() if k in FIELDS}, warnings

    async def _emit(
        self, type_: EventType, address: CustomerAddress, warnings: list[AddressWarning]
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
