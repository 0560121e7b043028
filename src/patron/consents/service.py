"""Consent use cases over the append-only ledger (GDPR Art. 7(1): the controller must be
able to show that consent was given; so entries are only ever added).

The current state per purpose is derived from the ledger: the entry with the latest
``captured_at`` (ties broken by the larger id, i.e. the later recorded, ids being UUIDv7).
``marketing_opt_in`` on the customer follows the current ``email_marketing`` entry.
Every operation owns its unit of work (:mod:`patron.usecases`).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from patron.consents.repository import ConsentRepository
from patron.consents.schemas import (
    ConsentCreate,
    ConsentLedger,
    ConsentRead,
    ConsentState,
    ConsentStatus,
    Purpose,
)
from patron.customers.subresources import CustomerSubresourceService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit import rawbody
from patron.kit.keyset import Window
from patron.models import CustomerConsent
from patron.usecases import reads, writes

USER_AGENT_MAX = 1000  # characters of a User-Agent kept as evidence


def consent_read(row: CustomerConsent) -> ConsentRead:
    return ConsentRead.model_validate(row, from_attributes=True)


def _ip_or_none(host: str | None) -> str | None:
    """``host`` as a normalised IP address, or None (a test client's name, a socket path)."""
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


class ConsentService(CustomerSubresourceService):
    """Consent ledger use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> ConsentRepository:
        return ConsentRepository(self.session, self.tenant)

    @reads()
    async def ledger(self, customer_id: uuid.UUID, window: Window) -> ConsentLedger:
        """Current state per purpose and a page of history (``captured_at`` newest first).
        Raises ``CustomerNotFound``."""
        repo = self.repo
        found = await self.newest_of(
            customer_id, repo.of_customer(customer_id), CustomerConsent.captured_at, window
        )
        current = ConsentState(
            **{row.purpose: consent_read(row) for row in await repo.current(customer_id)}
        )
        return ConsentLedger(
            current=current,
            consents=[consent_read(row) for row in found.rows],
            **found.envelope(),
        )

    @writes()
    async def record(
        self,
        customer_id: uuid.UUID,
        payload: Mapping[str, Any],
        *,
        client_host: str | None = None,
        user_agent: str | None = None,
    ) -> ConsentRead:
        """Append one entry from ``payload`` (the JSON object as sent; the customer is
        checked before the body is judged, so an unknown customer is ``CustomerNotFound``
        rather than a 422). The actor is the caller.

        ``client_host`` and ``user_agent`` are what the transport saw of the caller: when
        the customer records for themselves and sends no ``ip_address`` / ``user_agent``,
        they are kept as evidence (the host only when it is an IP address, the agent cut to
        :data:`USER_AGENT_MAX` characters); for staff and service callers they are not (the
        request shows the relaying system, not the customer).

        Any status may be recorded at any time (withdrawing needs no prior grant). An entry
        that becomes the current one for ``email_marketing`` sets the customer's
        ``marketing_opt_in`` (granted: true; denied or withdrawn: false) in this
        transaction; a back-dated entry is history only. Emits
        ``customer.consent_changed`` with the entry and whether it is now current. Raises
        422 for invalid fields (:class:`ConsentCreate`).
        """
        customers = self.customers
        await customers.require(customer_id, for_update=True)
        body = rawbody.parse(ConsentCreate, dict(payload))
        if self.actor.customer_id == customer_id and self.actor.is_customer_only:
            evidence: dict[str, str | None] = {}
            if body.ip_address is None:
                evidence["ip_address"] = _ip_or_none(client_host)
            if body.user_agent is None and user_agent:
                evidence["user_agent"] = user_agent[:USER_AGENT_MAX]
            body = body.model_copy(update=evidence)
        repo = self.repo
        row = await repo.insert(
            {
                "customer_id": customer_id,
                "purpose": body.purpose.value,
                "status": body.status.value,
                "source": body.source,
                "legal_basis": body.legal_basis.value if body.legal_basis else None,
                "captured_at": body.captured_at or datetime.now(UTC),
                "actor": self.actor.id,
                "ip_address": body.ip_address,
                "user_agent": body.user_agent,
            }
        )
        entry = consent_read(row)
        latest = await repo.current(customer_id, body.purpose.value)
        is_current = bool(latest) and latest[0].id == row.id
        if is_current and body.purpose is Purpose.EMAIL_MARKETING:
            await customers.set_marketing_opt_in(customer_id, body.status is ConsentStatus.GRANTED)
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
        return entry
