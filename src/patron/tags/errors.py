"""Errors of the tags domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from patron.errors import InvalidInput, NotFound

MAX_KEY_LENGTH = 64  # characters of tags.label_key


class TagNotOnCustomer(NotFound):
    """404: the customer does not carry this tag (or it is unknown, or another tenant's)."""

    def __init__(self, tag_id: uuid.UUID) -> None:
        super().__init__("tag not found on this customer", tag_id=str(tag_id))


class TagLabelInvalid(InvalidInput):
    """422: a label is empty once stripped, or its casefolded form (``label_key``) is
    longer than the catalog allows (casefolding may lengthen it: "ß" -> "ss")."""

    def __init__(self, loc: Sequence[str | int]) -> None:
        super().__init__(f"tag label must be 1 to {MAX_KEY_LENGTH} characters", loc=loc)
