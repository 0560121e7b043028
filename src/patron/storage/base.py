"""The storage interface and the key rules shared by every backend."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO, Protocol

import structlog

from patron.errors import PatronError

log = structlog.get_logger("patron.storage")

CHUNK_BYTES = 64 * 1024

# Segments of letters, digits and ``._:%-``, none of them "." or "..", joined by "/".
_SEGMENT = re.compile(r"^[A-Za-z0-9._:%-]{1,128}$")


class StorageError(RuntimeError):
    """The backend failed (I/O error, S3 error, missing object)."""


class StorageUnavailable(PatronError):
    """503: the storage backend could not take a file (:class:`StorageError` as a client
    sees it); nothing was written, so the client may try again."""

    status, title, slug = 503, "Service Unavailable", "storage-unavailable"


class InvalidKey(ValueError):
    """A key that could name something outside the storage root."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative key (see :func:`new_key`), else :class:`InvalidKey`."""
    parts = key.split("/")
    if len(key) > 512 or not all(
        _SEGMENT.match(part) and part not in {".", ".."} for part in parts
    ):
        raise InvalidKey(f"unsafe storage key: {key!r}")
    return key


def new_key(tenant: str, kind: str) -> str:
    """A fresh key ``{tenant}/{kind}/{uuid4}``.

    Tenant ids are ``[A-Za-z0-9._:-]{1,64}`` (tenancy), so the only values that could
    traverse a path are ``.`` and ``..``; their dots are written ``%2E`` instead.
    """
    segment = tenant.replace(".", "%2E") if set(tenant) == {"."} else tenant
    return check_key(f"{segment}/{kind}/{uuid.uuid4()}")


class Storage(Protocol):
    """Where uploaded files live. Every method raises :class:`StorageError` on failure."""

    async def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> int:
        """Store ``data`` (a readable binary file, read in chunks from its current
        position, or bytes) under ``key``, replacing any previous object; returns its size."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes as chunks, for streaming to a client."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    async def aclose(self) -> None:
        """Release clients and connections."""
        ...


async def store(
    storage: Storage, key: str, data: BinaryIO | bytes, content_type: str, *, what: str = "the file"
) -> int:
    """:meth:`Storage.put`, its failure logged and raised as :class:`StorageUnavailable`
    (503, "<what> could not be stored; try again"). Returns the size stored."""
    try:
        return await storage.put(key, data, content_type)
    except StorageError as exc:
        log.error("file_store_failed", storage_key=key, error=str(exc))
        raise StorageUnavailable(f"{what} could not be stored; try again") from exc


class PendingFile:
    """A file about to be stored under a fresh key for a row not yet committed (see
    :func:`pending_file`)."""

    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key
        self.stored = False

    async def store(
        self, data: BinaryIO | bytes, content_type: str, *, what: str = "the file"
    ) -> int:
        """:func:`store` under :attr:`key`; from then on the file is deleted again if the
        :func:`pending_file` block fails."""
        size = await store(self.storage, self.key, data, content_type, what=what)
        self.stored = True
        return size


@asynccontextmanager
async def pending_file(storage: Storage, key: str) -> AsyncIterator[PendingFile]:
    """A :class:`PendingFile` for ``key`` whose stored bytes are deleted again when the
    block raises: open it outside the unit of work that writes the row pointing at the
    file (``async with pending_file(...) as file, unit_of_work(ctx):``), so a failed commit
    removes the file too and no file outlives a row that was never written."""
    pending = PendingFile(storage, key)
    try:
        yield pending
    except BaseException:
        if pending.stored:
            await delete_quietly(storage, key)
        raise


async def delete_quietly(storage: Storage, key: str) -> None:
    """Delete ``key``, logging (not raising) a failure: the file is then an orphan that
    no row points to. Used after a commit and to undo a store whose row was not written."""
    try:
        await storage.delete(key)
    except (StorageError, InvalidKey) as exc:
        log.warning("orphan_file", storage_key=key, error=str(exc))
