"""Checking an uploaded file before it is stored: its size while it is read, its type by
its bytes (magic numbers, via ``puremagic``), never by the file name or declared type."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import puremagic

from patron.errors import InvalidInput, PayloadTooLarge
from patron.storage.base import CHUNK_BYTES

# What the magic-number check looks at: the signatures of PDF, JPEG and PNG are at offset 0.
HEAD_BYTES = 8 * 1024


class Upload(Protocol):
    """An uploaded file as a service reads it (FastAPI's ``UploadFile`` is one), so services
    take uploads from any transport without importing a web framework."""

    @property
    def file(self) -> BinaryIO:
        """The file's bytes as a binary file object."""
        ...

    async def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all when -1)."""
        ...

    async def seek(self, offset: int) -> None:
        """Move to byte ``offset``."""
        ...


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed: its real type, size and SHA-256 (hex)."""

    content_type: str
    size: int
    sha256: str


def sniff(head: bytes, allowed: Mapping[str, str]) -> str | None:
    """The MIME type of ``head`` (a file's first bytes) when it is one of ``allowed``
    (MIME type → description), judged by a signature at offset 0; None otherwise."""
    if not head:
        return None
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    for match in matches:
        if match.offset == 0 and match.mime_type in allowed:
            return str(match.mime_type)
    return None


async def check_upload(
    upload: Upload, *, max_bytes: int, allowed: Mapping[str, str], loc: str = "file"
) -> CheckedUpload:
    """Read ``upload`` through once and rewind it.

    Raises :class:`PayloadTooLarge` (413) as soon as more than ``max_bytes`` were read, and
    :class:`InvalidInput` (422, ``loc`` ``["body", loc]``) for an empty file or one whose
    bytes are not of an ``allowed`` type.
    """
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := await upload.read(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"{loc} is larger than {max_bytes} bytes", max_bytes=max_bytes)
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        digest.update(chunk)
    await upload.seek(0)
    kinds = ", ".join(allowed.values())
    if size == 0:
        raise InvalidInput(f"{loc} is empty; expected {kinds}", loc=["body", loc])
    content_type = sniff(head, allowed)
    if content_type is None:
        raise InvalidInput(
            f"{loc} content is not {kinds} (judged by its bytes, not its name)",
            loc=["body", loc],
            type="file_type",
        )
    return CheckedUpload(content_type=content_type, size=size, sha256=digest.hexdigest())
