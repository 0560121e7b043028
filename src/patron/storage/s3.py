"""S3-compatible backend (AWS S3, MinIO, Ceph, moto in the tests).

boto3 in worker threads rather than aiobotocore: boto3 is the AWS SDK itself, its
``upload_fileobj`` streams a file object through multipart uploads (s3transfer) without
holding it in memory, and it has no pin on botocore that fights other packages. A thread
per call is negligible at the rate documents and avatars are uploaded.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio.to_thread
import boto3
from botocore.exceptions import BotoCoreError, ClientError

from patron.storage.base import CHUNK_BYTES, StorageError, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Storage:
    """Objects ``{prefix}/{key}`` in ``bucket``. Credentials and region come from the
    usual AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``
    or ``AWS_DEFAULT_REGION``, profiles); ``endpoint_url`` points at a non-AWS service."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client: S3Client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def object_key(self, key: str) -> str:
        """The S3 object key of a storage key."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: BinaryIO | bytes, content_type: str) -> int:
        name = self.object_key(key)
        source: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
        counter = _CountingReader(source)
        try:
            await anyio.to_thread.run_sync(
                lambda: self.client.upload_fileobj(
                    counter,  # type: ignore[arg-type]
                    self.bucket,
                    name,
                    ExtraArgs={"ContentType": content_type},
                )
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 upload failed: {exc}") from exc
        return counter.size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        name = self.object_key(key)
        try:
            response = await anyio.to_thread.run_sync(
                lambda: self.client.get_object(Bucket=self.bucket, Key=name)
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 download failed: {exc}") from exc
        body: Any = response["Body"]
        chunks = body.iter_chunks(CHUNK_BYTES)
        try:
            while chunk := await anyio.to_thread.run_sync(next, chunks, b""):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        name = self.object_key(key)
        try:
            await anyio.to_thread.run_sync(
                lambda: self.client.delete_object(Bucket=self.bucket, Key=name)
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 delete failed: {exc}") from exc

    async def exists(self, key: str) -> bool:
        name = self.object_key(key)
        try:
            await anyio.to_thread.run_sync(
                lambda: self.client.head_object(Bucket=self.bucket, Key=name)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise StorageError(f"S3 request failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 request failed: {exc}") from exc
        return True

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.client.close)


class _CountingReader(io.RawIOBase):
    """A read-only view of ``source`` that counts the bytes read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.source.read(size)
        self.size += len(chunk)
        return chunk
