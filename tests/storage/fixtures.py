"""Storage fixtures shared by the storage, documents and avatar tests: a real local S3
(moto's server on 127.0.0.1) and the app's storage swapped per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from patron.context import AppContext
from patron.storage import LocalStorage, Storage
from patron.storage.s3 import S3Storage
from tests.services import free_port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server for the session (moto's own HTTP server, not a mock in-process)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    """An S3 backend on a fresh bucket, under a prefix."""
    client = s3_client(s3_endpoint)
    bucket = f"patron-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Storage(bucket, "files/test", client=client)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


@pytest.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> Storage:
    """The app's storage for this test: a temporary directory, or a moto S3 bucket."""
    chosen: Storage = request.getfixturevalue(f"{request.param}_storage")
    monkeypatch.setattr(app_ctx, "storage", chosen)
    return chosen


async def stored_keys(storage: Storage) -> list[str]:
    """Every key the backend holds (to prove nothing was left behind)."""
    if isinstance(storage, LocalStorage):
        if not storage.root.exists():
            return []
        return sorted(
            str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()
        )
    assert isinstance(storage, S3Storage)
    listed = storage.client.list_objects_v2(Bucket=storage.bucket)
    prefix = f"{storage.prefix}/"
    return sorted(o["Key"].removeprefix(prefix) for o in listed.get("Contents", []))


async def read_all(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


@pytest.fixture
def broken_storage(
    tmp_path: Path, app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> LocalStorage:
    """The app's storage for this test: a local backend whose root is a regular file, so
    every ``put`` fails with :class:`~patron.storage.StorageError`."""
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"")
    broken = LocalStorage(root)
    monkeypatch.setattr(app_ctx, "storage", broken)
    return broken
