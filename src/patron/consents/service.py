"""Consent use cases over the append-only ledger (GDPR Art. 7(1): the controller must be
able to show that consent was given; so entries are only ever added).

The current state per purpose is derived from the ledger: the entry with the latest
``captured_at`` (ties broken by the larger id, i.e. the later recorded, ids being UUIDv7).
``marketing_opt_in`` on the customer follows the current ``email_marketing`` entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from patron.consents.repository import ConsentRepository
from patron.consents.schemas import (
    ConsentCreate,
    ConsentRead,
    ConsentState,
    ConsentStatus,
    Purpose,
)
from patron.customers.service import CustomerService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Slice, Window, newest_first
from patron.models import CustomerConsent
from patron.tenancy import TenantId


def consent_read(row: CustomerConsent) -> ConsentRead:
    return ConsentRead.model_validate(row, from_attributes=True)


@dataclass
class ConsentService:
    """The consent ledger of one tenant inside one unit of work."""

    session: AsyncSession
    tenant: TenantId
    customers: CustomerService

    def __post_init__(self) -> None:
        self.repo = ConsentRepository(self.session, self.tenant)

    async def ledger(
        self, customer_id: uuid.UUID, window: Window
    ) -> tuple[ConsentState, Slice, list[ConsentRead]]:
        """Current state per purpose and a page of history (``captured_at`` newest first)."""
        await self.customers.require(customer_id)
        current = ConsentState(
            **{row.purpose: consent_read(row) for row in await self.repo.current(customer_id)}
        )
        found = await newest_first(
            self.session,
            self.repo.of_customer(customer_id),
            CustomerConsent.captured_at,
            CustomerConsent.id,
            window,
        )
        return current, found, [consent_read(row) for row in found.rows]

    async def record(
        self,
        customer_id: uuid.UUID,
        body: ConsentCreate,
        *,
        actor: str,
    ) -> tuple[bool, ConsentRead]:
        """Append one entry; returns ``(is_current, entry)``.

        Any status may be recorded at any time (withdrawing needs no prior grant). An entry
        that becomes the current one for ``email_marketing`` sets the customer's
        ``marketing_opt_in`` (granted: true; denied or withdrawn: false) in this
        transaction; a back-dated entry is history only. Emits
        ``customer.consent_changed`` with the entry and whether it is now current.
        """
        await self.customers.require(customer_id, for_update=True)
        row = await self.repo.insert(
            {
                "customer_id": customer_id,
                "purpose": body.purpose.value,
                "status": body.status.value,
                "source": body.source,
                "legal_basis": body.legal_basis.value if body.legal_basis else None,
                "captured_at": body.captured_at or datetime.now(UTC),
                "actor": actor,
                "ip_address": body.ip_address,
                "user_agent": body.user_agent,
            }
        )
        entry = consent_read(row)
        latest = await self.repo.current(customer_id, body.purpose.value)
        is_current = bool(latest) and latest[0].id == row.id
        if is_current and body.purpose is Purpose.EMAIL_MARKETING:
            await self.customers.set_marketing_opt_in(
                customer_id, body.status is ConsentStatus.GRANTED
            )
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_CONSENT_CHANGED,
            str(customer_id),
            {
                "customer_id": str(customer_id),
                "consent": entry.model_dump(mode="json"),
                "is_current": is_current,
            },
        )
        return is_current, entry
