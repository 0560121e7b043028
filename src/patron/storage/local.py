"""Local directory backend (development and single-host deployments)."""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from patron.storage.base import CHUNK_BYTES, StorageError, check_key


class LocalStorage:
    """Files under ``root``, one per key. Writes go to a temporary file in the same
    directory and are renamed into place, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        """The file of ``key``; :class:`~patron.storage.base.InvalidKey` if outside root."""
        target = (self.root / check_key(key)).resolve()
        if not target.is_relative_to(self.root):
            raise StorageError("storage key escapes the storage root")
        return target

    async def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> int:
        target = self.path(key)
        source: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        return await anyio.to_thread.run_sync(_write, target, source)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        target = self.path(key)
        try:
            handle = await anyio.open_file(target, "rb")
        except OSError as exc:
            raise StorageError(f"cannot open stored file: {exc.strerror}") from exc
        async with handle:
            while chunk := await handle.read(CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        target = self.path(key)
        try:
            await anyio.Path(target).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete stored file: {exc.strerror}") from exc

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self.path(key)).is_file()

    async def aclose(self) -> None:
        return None


def _write(target: Path, source: BinaryIO) -> int:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with partial.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_BYTES)
                size = out.tell()
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write stored file: {exc.strerror}") from exc
    return size
