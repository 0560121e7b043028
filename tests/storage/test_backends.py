"""Both storage backends through the same interface: round trip, streaming, delete, keys."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from patron.config import Settings
from patron.storage import (
    InvalidKey,
    LocalStorage,
    Storage,
    StorageError,
    new_key,
    storage_from_settings,
)
from patron.storage.s3 import S3Storage
from tests.storage.fixtures import read_all, stored_keys


async def test_round_trip_streams_and_deletes(storage: Storage) -> None:
    key = new_key("t-1", "documents")
    payload = bytes(range(256)) * 1024  # 256 KiB: several chunks
    size = await storage.put(key, io.BytesIO(payload), "application/pdf")
    assert size == len(payload)
    assert await storage.exists(key)
    chunks = [chunk async for chunk in storage.open(key)]
    assert len(chunks) > 1
    assert b"".join(chunks) == payload
    assert await stored_keys(storage) == [key]
    await storage.delete(key)
    assert not await storage.exists(key)
    assert await stored_keys(storage) == []
    await storage.delete(key)  # deleting twice is fine


async def test_bytes_and_replace(storage: Storage) -> None:
    key = new_key("t-1", "avatars")
    assert await storage.put(key, b"first", "image/png") == 5
    assert await storage.put(key, b"second", "image/png") == 6
    assert await read_all(storage, key) == b"second"


async def test_missing_object_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError):
        await read_all(storage, new_key("t-1", "documents"))


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "t/../../x", "/abs/path", "t//x", "t/./x", "t/x y", ""]
)
async def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        await storage.put(key, b"x", "text/plain")


def test_new_key_never_traverses() -> None:
    for tenant in ("..", ".", "acme", "a.b:c-d_e"):
        key = new_key(tenant, "documents")
        segment, kind, name = key.split("/")
        assert segment not in {".", ".."}
        assert kind == "documents"
        assert len(name) == 36
    assert new_key("..", "documents").startswith("%2E%2E/")


def test_local_paths_stay_under_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert storage.path("t-1/documents/x").is_relative_to(tmp_path.resolve())


def test_storage_url_selects_the_backend(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"_env_file": None, "patron_home": tmp_path}
    default = storage_from_settings(Settings(**base))  # type: ignore[arg-type]
    assert isinstance(default, LocalStorage)
    assert default.root == (tmp_path / "files").resolve()
    explicit = storage_from_settings(
        Settings(**base, storage_url=f"file://{tmp_path}/elsewhere")  # type: ignore[arg-type]
    )
    assert isinstance(explicit, LocalStorage)
    assert explicit.root == (tmp_path / "elsewhere").resolve()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = storage_from_settings(
        Settings(**base, storage_url="s3://bucket/some/prefix", s3_endpoint_url=s3_endpoint)  # type: ignore[arg-type]
    )
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.object_key("t/documents/x") == "some/prefix/t/documents/x"
    assert s3.client.meta.endpoint_url == s3_endpoint
    with pytest.raises(ValueError, match="STORAGE_URL"):
        storage_from_settings(Settings(**base, storage_url="ftp://x/y"))  # type: ignore[arg-type]
