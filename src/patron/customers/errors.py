"""Errors of the customer domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid
from typing import Any

from patron.errors import Conflict, NotFound


class CustomerNotFound(NotFound):
    """404: no live customer with this id in the tenant (also for another tenant's id, so
    its existence is not revealed; API.md "Conventions")."""

    def __init__(self, customer_id: uuid.UUID | str | None = None, **extra: Any) -> None:
        if customer_id is not None:
            extra["customer_id"] = str(customer_id)
        super().__init__("customer not found", **extra)


class PsidNotFound(NotFound):
    """404: no live customer holds this PSID (or IGSID)."""

    def __init__(self, psid: str) -> None:
        super().__init__("no customer with this PSID", psid=psid)


class AmbiguousPsid(Conflict):
    """409: the PSID exists under several apps; the caller must pass ``app_id``."""

    def __init__(self, customer_ids: list[str]) -> None:
        super().__init__(
            "this PSID exists under several apps; pass app_id", customer_ids=customer_ids
        )


class IdentitiesSplit(Conflict):
    """409: an upsert names identities held by different customers (merge them first)."""

    def __init__(self, customer_ids: list[str]) -> None:
        super().__init__(
            "the identities given belong to different customers; merge them first",
            conflicting_customer_id=customer_ids[0],
            conflicting_customer_ids=customer_ids,
        )


class MergeSourceNotFound(NotFound):
    """404: the customer to merge in (``source_id``) is not a live customer of the tenant."""

    def __init__(self, source_id: uuid.UUID) -> None:
        super().__init__("source customer not found", source_id=str(source_id))


class NoMetaUser(Conflict):
    """409: the customer has no PSID / IGSID (or a platform Meta does not serve), so there
    is no Meta profile to fetch. 409, not 422: the request is well formed; the customer's
    state refuses it (STYLE.md "Errors": 422 is for invalid input only)."""

    title, slug = "Customer has no Meta user id", "no-meta-user"

    def __init__(self, customer_id: uuid.UUID, reason: str) -> None:
        super().__init__(reason, customer_id=str(customer_id))


class NoMetaToken(Conflict):
    """409: no access token to fetch the customer's Meta profile with: the customer has no
    ``access_token`` of their own and the tenant has no active channel for the customer's
    platform and app. ``missing`` names what would mend it."""

    title, slug = "No Meta access token", "no-meta-token"

    def __init__(
        self, customer_id: uuid.UUID, platform: str, app_id: str | None, missing: str
    ) -> None:
        super().__init__(
            f"no access token for this customer: {missing}",
            customer_id=str(customer_id),
            platform=platform,
            app_id=app_id,
            missing=missing,
        )
