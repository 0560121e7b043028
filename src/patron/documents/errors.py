"""Errors of the document domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid

from patron.errors import Conflict, NotFound


class DocumentNotFound(NotFound):
    """404: no document with this id for this customer (also another tenant's)."""

    def __init__(self, document_id: uuid.UUID) -> None:
        super().__init__("document not found", document_id=str(document_id))


class DocumentHasNoFile(NotFound):
    """404: the document row names no stored file."""

    def __init__(self, document_id: uuid.UUID) -> None:
        super().__init__("this document has no file", document_id=str(document_id))


class DocumentFileUnavailable(NotFound):
    """404: the document's file is missing from storage (logged as ``document_file_missing``)."""

    def __init__(self) -> None:
        super().__init__("the file of this document is not available")


class DuplicateDocument(Conflict):
    """409: the same (type, issuing country, number) belongs to a customer of the tenant,
    named by ``conflicting_customer_id`` (null when the holder could not be read back)."""

    def __init__(self, holder: uuid.UUID | None) -> None:
        super().__init__(
            "a document with this type, issuing country and number already exists",
            conflicting_customer_id=str(holder) if holder else None,
        )


class DocumentAlreadyReviewed(Conflict):
    """409: a document is verified or rejected once; ``document_status`` names its state."""

    def __init__(self, status: str) -> None:
        super().__init__(f"document is already {status}", document_status=status)
