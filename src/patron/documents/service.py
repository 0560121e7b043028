"""Document use cases: add (with its file), list, read, download, remove, verify, reject.

Every operation owns its unit of work (:mod:`patron.usecases`). Files go to the storage
backend before the row is written; if the row and its event do not commit, the file is
deleted again. The file of a removed document is deleted only after the removal commits
(:meth:`DocumentService.remove`), so no file is ever deleted under a row that survives.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pycountry
import structlog
from sqlalchemy.exc import IntegrityError

from patron.customers.service import CustomerService
from patron.documents.errors import (
    DocumentAlreadyReviewed,
    DocumentFileUnavailable,
    DocumentHasNoFile,
    DocumentNotFound,
    DuplicateDocument,
)
from patron.documents.repository import DocumentRepository
from patron.documents.schemas import DocumentPage, DocumentRead, DocumentStatus, DocumentType
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.crypto import blind_index
from patron.kit.keyset import Window
from patron.models.customer_document import CustomerDocument
from patron.storage import Storage, StorageError, delete_quietly, new_key, pending_file
from patron.storage.uploads import Upload, check_upload
from patron.usecases import Service, current_unit, reads, unit_of_work, writes

log = structlog.get_logger("patron.documents")

NUMBER_CONTEXT = b"customer_documents.number"
MAX_FILE_BYTES = 10 * 1024 * 1024
ALLOWED_TYPES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

# Number rule: NFKC, separators (whitespace, "-", ".", "/") removed, upper-cased; what is
# left must be letters and digits, of these lengths per type. Identity documents are
# short (ICAO 9303 passport numbers are at most 9 characters in the MRZ; national ids and
# licences vary); references on bills, statements and certificates can be long (an IBAN
# is up to 34).
_SEPARATORS = re.compile(r"[\s\-./]+")
_ALNUM = re.compile(r"^[A-Z0-9]+$")
_LENGTHS: dict[DocumentType, tuple[int, int]] = {
    DocumentType.PASSPORT: (5, 20),
    DocumentType.NATIONAL_ID: (4, 32),
    DocumentType.DRIVERS_LICENSE: (4, 32),
    DocumentType.TAX_CERTIFICATE: (2, 64),
    DocumentType.BUSINESS_LICENSE: (2, 64),
    DocumentType.UTILITY_BILL: (2, 64),
    DocumentType.BANK_STATEMENT: (2, 64),
}


def normalize_number(type_: DocumentType, raw: str) -> str:
    """The stored form of a document number (rule above). 422 on ``number`` otherwise."""
    number = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    low, high = _LENGTHS[type_]
    if not _ALNUM.match(number) or not low <= len(number) <= high:
        raise InvalidInput(
            f"number of a {type_.value} must be {low}-{high} letters and digits "
            "(spaces, '-', '.', '/' are ignored)",
            loc=["body", "number"],
        )
    return number


def normalize_country(raw: str) -> str:
    """An ISO 3166-1 alpha-2 code (upper-cased), 422 on ``issuing_country`` otherwise."""
    code = raw.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput(
            "issuing_country must be an ISO 3166-1 alpha-2 code", loc=["body", "issuing_country"]
        )
    return code


def mask(last4: str) -> str:
    return f"****{last4}"


@dataclass(frozen=True)
class NewDocument:
    """The form fields of an upload (validated by the endpoint's types)."""

    type: DocumentType
    number: str
    issuing_country: str
    expires_on: date | None


class DocumentService(Service):
    """Document use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> DocumentRepository:
        return DocumentRepository(self.session, self.tenant)

    @property
    def customers(self) -> CustomerService:
        return CustomerService(self.ctx)

    @property
    def storage(self) -> Storage:
        return self.app.storage

    def read(self, row: CustomerDocument) -> DocumentRead:
        """The API view of a document row (number masked, ``file_url`` the download route)."""
        return DocumentRead(
            id=row.id,
            customer_id=row.customer_id,
            type=DocumentType(row.type),
            number=mask(row.number_last4),
            number_last4=row.number_last4,
            issuing_country=row.issuing_country,
            expires_on=row.expires_on,
            status=DocumentStatus(row.status),
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            file_url=f"/api/v1/customers/{row.customer_id}/documents/{row.id}/file",
            reviewed_by=row.reviewed_by,
            reviewed_at=row.reviewed_at,
            review_reason=row.review_reason,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _event_data(self, row: CustomerDocument) -> dict[str, Any]:
        """Event payload: the document as clients see it (masked number, no file bytes)."""
        return {
            "customer_id": str(row.customer_id),
            "document": self.read(row).model_dump(mode="json"),
        }

    @reads()
    async def list(self, customer_id: uuid.UUID, window: Window) -> DocumentPage:
        """The customer's documents, newest first. Raises ``CustomerNotFound`` (404) unless
        a live customer."""
        await self.customers.require(customer_id)
        found = await self.repo.page(customer_id, window)
        return DocumentPage(
            documents=[self.read(row) for row in found.rows],
            **found.envelope(),
        )

    @reads()
    async def get(self, customer_id: uuid.UUID, document_id: uuid.UUID) -> DocumentRead:
        """One document. Raises ``CustomerNotFound`` or :class:`DocumentNotFound` (404)."""
        return self.read(await self._require(customer_id, document_id))

    async def _require(
        self, customer_id: uuid.UUID, document_id: uuid.UUID, *, for_update: bool = False
    ) -> CustomerDocument:
        await self.customers.require(customer_id)
        row = await self.repo.get(customer_id, document_id, for_update=for_update)
        if row is None:
            raise DocumentNotFound(document_id)
        return row

    async def add(
        self, customer_id: uuid.UUID, fields: NewDocument, upload: Upload
    ) -> DocumentRead:
        """Add a document with its file, in one unit of work (its own, or the caller's).

        422: a number or country that fails its rule, a file that is not PDF, JPEG or PNG
        by its bytes. 413: a file over 10 MiB. 409 :class:`DuplicateDocument`: the same
        (type, issuing_country, number) belongs to a customer of the tenant. 503
        ``StorageUnavailable``: the backend refused the file. Nothing is stored, written
        or emitted in any of these cases; a stored file whose row does not commit (in this
        operation's own unit) is deleted again.
        """
        number = normalize_number(fields.type, fields.number)
        country = normalize_country(fields.issuing_country)
        async with (
            pending_file(self.storage, new_key(self.tenant, "documents")) as file,
            unit_of_work(self.ctx),
        ):
            await self.customers.require(customer_id)
            index = blind_index(
                self.app.settings.secret_key.get_secret_value(),
                "document_number",
                f"{fields.type.value}:{country}:{number}",
            )
            await self._ensure_free(fields.type.value, country, index)
            checked = await check_upload(upload, max_bytes=MAX_FILE_BYTES, allowed=ALLOWED_TYPES)
            await file.store(upload.file, checked.content_type)
            row = CustomerDocument(
                customer_id=customer_id,
                type=fields.type.value,
                issuing_country=country,
                number_encrypted=self.app.keyring.encrypt(number, NUMBER_CONTEXT),
                number_last4=number[-4:],
                number_index=index,
                expires_on=fields.expires_on,
                status=DocumentStatus.PENDING.value,
                storage_key=file.key,
                content_type=checked.content_type,
                size_bytes=checked.size,
                sha256=checked.sha256,
            )
            try:
                async with self.session.begin_nested():
                    self.repo.add(row)
                    await self.session.flush()
            except IntegrityError as exc:
                # Lost a race with a concurrent upload of the same number.
                holder = await self.repo.holder(fields.type.value, country, index)
                raise DuplicateDocument(holder) from exc
            await self.session.refresh(row)
            await outbox.record(
                self.session,
                self.tenant,
                EventType.CUSTOMER_DOCUMENT_ADDED,
                str(customer_id),
                self._event_data(row),
            )
            return self.read(row)

    async def _ensure_free(self, type_: str, country: str, index: str) -> None:
        holder = await self.repo.holder(type_, country, index)
        if holder is not None:
            raise DuplicateDocument(holder)

    @reads()
    async def open_file(
        self, customer_id: uuid.UUID, document_id: uuid.UUID
    ) -> tuple[DocumentRead, AsyncIterator[bytes]]:
        """The document and its file's chunks; the first chunk is read here, so a missing
        file is a 404 (:class:`DocumentHasNoFile`, :class:`DocumentFileUnavailable`)
        before any byte is sent."""
        row = await self._require(customer_id, document_id)
        if not row.storage_key:
            raise DocumentHasNoFile(document_id)
        chunks = self.storage.open(row.storage_key)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except StorageError as exc:
            log.error("document_file_missing", document_id=str(document_id), error=str(exc))
            raise DocumentFileUnavailable from exc

        async def stream() -> AsyncIterator[bytes]:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk

        return self.read(row), stream()

    async def remove(self, customer_id: uuid.UUID, document_id: uuid.UUID) -> None:
        """Delete the document row, emit ``customer.document_removed``, commit, then delete
        its file (a failure there leaves an orphan file, logged, never a row without its
        file). Runs in its own unit of work: ``RuntimeError`` inside an open one, whose
        later rollback would keep a row whose file is gone."""
        if current_unit() is not None:
            raise RuntimeError("DocumentService.remove must own its unit of work")
        key = await self._remove_row(customer_id, document_id)
        if key:
            await delete_quietly(self.storage, key)

    @writes()
    async def _remove_row(self, customer_id: uuid.UUID, document_id: uuid.UUID) -> str | None:
        row = await self._require(customer_id, document_id, for_update=True)
        data = self._event_data(row)
        await self.repo.remove(row.id)
        await outbox.record(
            self.session, self.tenant, EventType.CUSTOMER_DOCUMENT_REMOVED, str(customer_id), data
        )
        return row.storage_key

    @writes()
    async def review(
        self,
        customer_id: uuid.UUID,
        document_id: uuid.UUID,
        status: DocumentStatus,
        reason: str | None = None,
    ) -> DocumentRead:
        """PENDING → VERIFIED or REJECTED, recording who (principal id) and when.

        A document already reviewed is 409 :class:`DocumentAlreadyReviewed`: a decision is
        changed by removing the document and uploading it again, never silently.
        """
        row = await self._require(customer_id, document_id, for_update=True)
        if row.status != DocumentStatus.PENDING.value:
            raise DocumentAlreadyReviewed(row.status)
        row.status = status.value
        row.reviewed_by = self.actor.id
        row.reviewed_at = datetime.now(UTC)
        row.review_reason = reason
        await self.session.flush()
        await self.session.refresh(row)
        event = (
            EventType.CUSTOMER_DOCUMENT_VERIFIED
            if status is DocumentStatus.VERIFIED
            else EventType.CUSTOMER_DOCUMENT_REJECTED
        )
        await outbox.record(
            self.session, self.tenant, event, str(customer_id), self._event_data(row)
        )
        return self.read(row)
