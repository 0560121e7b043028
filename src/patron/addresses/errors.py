"""Errors of the addresses domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid

from patron.errors import NotFound


class AddressNotFound(NotFound):
    """404: no address with this id on this customer of the tenant (also for another
    tenant's or another customer's address, so its existence is not revealed)."""

    def __init__(self, address_id: uuid.UUID) -> None:
        super().__init__("address not found", address_id=str(address_id))
