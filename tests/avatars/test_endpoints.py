"""Avatar upload and download (API.md "Customers": ``POST /customers/{id}/avatar``)."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from patron.auth.principal import Role
from patron.storage import Storage
from tests.conftest import ApiKeyFactory, TokenFactory, create_customer, outbox_rows
from tests.storage.fixtures import read_all, stored_keys

BASE = "/api/v1/customers"
GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying EXIF with a GPS position, a camera model and a comment."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[0x010E] = "secret description"  # ImageDescription
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=b"hello")
    return out.getvalue()


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Author", "Jane Doe, 1 Main St")
    out = io.BytesIO()
    Image.new("RGBA", (32, 32), (0, 128, 255, 128)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


async def post_avatar(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    customer_id: str,
    content: bytes,
    filename: str = "me.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{customer_id}/avatar",
        files={"file": (filename, io.BytesIO(content), content_type)},
        headers=headers,
    )


async def customer_row(db: asyncpg.Pool, customer_id: str) -> Any:
    return await db.fetchrow(
        "SELECT avatar_url, avatar_storage_key, version FROM customers WHERE id = $1::uuid",
        customer_id,
    )


async def test_upload_strips_exif_and_sets_avatar_url(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as check:  # the fixture really carries GPS
        assert check.getexif().get_ifd(GPS_IFD)
    response = await post_avatar(client, admin, customer["id"], original)
    assert response.status_code == 200, response.text
    url = f"{BASE}/{customer['id']}/avatar"
    assert response.json() == {"avatar_url": url}

    row = await customer_row(db, customer["id"])
    assert row["avatar_url"] == url
    assert row["avatar_storage_key"].startswith(f"{tenant}/avatars/")
    stored = await read_all(storage, row["avatar_storage_key"])
    assert await stored_keys(storage) == [row["avatar_storage_key"]]
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert image.size == (64, 48)
        assert not image.getexif()
        assert "exif" not in image.info
        assert "comment" not in image.info
    assert b"SpyCam" not in stored
    assert b"Exif" not in stored

    read = await client.get(f"{BASE}/{customer['id']}", headers=admin)
    assert read.json()["avatar_url"] == url
    served = await client.get(url, headers=admin)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == stored

    [changed] = await outbox_rows(db, tenant, "customer.avatar_changed")
    assert changed["data"] == {"customer_id": customer["id"], "avatar_url": url}
    updated = await outbox_rows(db, tenant, "customer.updated")
    assert len(updated) == 1


async def test_png_text_chunks_are_stripped(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await post_avatar(
        client, admin, customer["id"], png_with_text(), "a.png", "image/png"
    )
    assert response.status_code == 200, response.text
    row = await customer_row(db, customer["id"])
    stored = await read_all(storage, row["avatar_storage_key"])
    assert b"Jane Doe" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert "Author" not in image.info
    served = await client.get(f"{BASE}/{customer['id']}/avatar", headers=admin)
    assert served.headers["content-type"] == "image/png"


async def test_exif_orientation_is_applied_before_it_is_dropped(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 0, 255)).save(out, format="JPEG", exif=exif.tobytes())
    response = await post_avatar(client, admin, customer["id"], out.getvalue())
    assert response.status_code == 200, response.text
    row = await customer_row(db, customer["id"])
    with Image.open(io.BytesIO(await read_all(storage, row["avatar_storage_key"]))) as stored:
        assert stored.size == (48, 64)
        assert not stored.getexif()


async def test_palette_png_keeps_its_transparency(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    out = io.BytesIO()
    image.save(out, format="PNG", transparency=1)
    response = await post_avatar(
        client, admin, customer["id"], out.getvalue(), "p.png", "image/png"
    )
    assert response.status_code == 200, response.text
    row = await customer_row(db, customer["id"])
    with Image.open(io.BytesIO(await read_all(storage, row["avatar_storage_key"]))) as stored:
        assert stored.mode == "P"
        assert stored.info["transparency"] == 1
        assert stored.getpixel((0, 0)) == 1


async def test_replacing_deletes_the_previous_file(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    assert (await post_avatar(client, admin, customer["id"], jpeg_with_gps())).status_code == 200
    first = (await customer_row(db, customer["id"]))["avatar_storage_key"]
    assert (
        await post_avatar(client, admin, customer["id"], jpeg_with_gps((10, 10)))
    ).status_code == 200
    second = (await customer_row(db, customer["id"]))["avatar_storage_key"]
    assert second != first
    assert await stored_keys(storage) == [second]


@pytest.mark.parametrize(
    ("content", "filename", "declared"),
    [
        (b"this is plain text", "evil.png", "image/png"),
        (b"%PDF-1.4\n%%EOF\n", "doc.jpg", "image/jpeg"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "broken.jpg", "image/jpeg"),  # JPEG magic, no image
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "broken.png", "image/png"),
    ],
    ids=["text-named-png", "pdf", "truncated-jpeg", "truncated-png"],
)
async def test_not_a_decodable_image_is_422_and_nothing_written(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
    content: bytes,
    filename: str,
    declared: str,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await post_avatar(client, admin, customer["id"], content, filename, declared)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "file"]
    row = await customer_row(db, customer["id"])
    assert (row["avatar_url"], row["avatar_storage_key"], row["version"]) == (None, None, 1)
    assert await outbox_rows(db, tenant, "customer.avatar_changed") == []
    assert await outbox_rows(db, tenant, "customer.updated") == []
    assert await stored_keys(storage) == []


async def test_over_one_mib_is_413(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    big = jpeg_with_gps() + b"\x00" * (1024 * 1024)
    response = await post_avatar(client, admin, customer["id"], big)
    assert response.status_code == 413
    assert (await customer_row(db, customer["id"]))["avatar_storage_key"] is None
    assert await outbox_rows(db, tenant, "customer.avatar_changed") == []
    assert await stored_keys(storage) == []


async def test_decompression_bomb_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Pool, storage: Storage
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    out = io.BytesIO()
    Image.new("L", (8000, 8000)).save(out, format="PNG", optimize=True)  # 64 Mpx, tiny file
    assert len(out.getvalue()) < 1024 * 1024
    response = await post_avatar(
        client, admin, customer["id"], out.getvalue(), "b.png", "image/png"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "image_too_large"
    assert await stored_keys(storage) == []


async def test_customer_can_upload_own_avatar_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    token_headers: TokenFactory,
    storage: Storage,
) -> None:
    me = await create_customer(client, admin, first_name="Me")
    other = await create_customer(client, admin, first_name="Other")
    mine = token_headers("customer", tenant, sub=me["id"])
    assert (await post_avatar(client, mine, me["id"], jpeg_with_gps())).status_code == 200
    assert (await client.get(f"{BASE}/{me['id']}/avatar", headers=mine)).status_code == 200
    assert (await post_avatar(client, mine, other["id"], jpeg_with_gps())).status_code == 404
    assert (await client.get(f"{BASE}/{other['id']}/avatar", headers=mine)).status_code == 404
    assert (await customer_row(db, other["id"]))["avatar_storage_key"] is None
    assert len(await stored_keys(storage)) == 1


async def test_roles_and_tenants(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
    storage: Storage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    agent = await api_key_headers(Role.AGENT, tenant)
    svc = await api_key_headers(Role.SERVICE, tenant)
    assert (await post_avatar(client, agent, customer["id"], jpeg_with_gps())).status_code == 403
    assert (await post_avatar(client, svc, customer["id"], jpeg_with_gps())).status_code == 403
    url = f"{BASE}/{customer['id']}/avatar"
    assert (await client.get(url, headers=agent)).status_code == 404  # none uploaded yet
    assert (await post_avatar(client, admin, customer["id"], jpeg_with_gps())).status_code == 200
    assert (await client.get(url, headers=agent)).status_code == 200
    assert (await client.get(url, headers=svc)).status_code == 200
    intruder = await api_key_headers(Role.ADMIN, other_tenant)
    assert (await client.get(url, headers=intruder)).status_code == 404
    assert (await post_avatar(client, intruder, customer["id"], jpeg_with_gps())).status_code == 404
    assert len(await stored_keys(storage)) == 1
