"""Avatar use cases: replace a customer's avatar, read it back.

The upload is decoded with Pillow (``verify()`` then a full ``load()``, with Pillow's
decompression-bomb guard), then re-encoded in the same format from the pixels alone, so
EXIF (GPS included), XMP, ICC profiles and text chunks do not survive. A replaced avatar's
file is deleted only after the change commits (:meth:`AvatarService.replace`).
"""

from __future__ import annotations

import io
import uuid
import warnings
from collections.abc import AsyncIterator

from PIL import Image, ImageOps, UnidentifiedImageError

from patron.avatars.errors import AvatarFileUnavailable, NoAvatar
from patron.customers.service import CustomerService
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.storage import Storage, StorageError, delete_quietly, new_key, pending_file
from patron.storage.uploads import Upload, check_upload
from patron.usecases import Service, current_unit, reads, unit_of_work

MAX_AVATAR_BYTES = 1024 * 1024
ALLOWED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
# Pillow's own bomb limit is ~89 Mpx (warning) / 179 Mpx (error); an avatar needs far less.
MAX_PIXELS = 40_000_000


def avatar_path(customer_id: uuid.UUID) -> str:
    """The authenticated route that serves a customer's avatar (the ``avatar_url``)."""
    return f"/api/v1/customers/{customer_id}/avatar"


def reencode(data: bytes, fmt: str) -> bytes:
    """``data`` decoded and encoded again as ``fmt`` (``JPEG`` or ``PNG``) without metadata.

    422 (``loc`` ``["body", "file"]``) when it does not decode as ``fmt``, is truncated,
    or has more than :data:`MAX_PIXELS` pixels (a decompression bomb).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                image.load()
                clean = _pixels_only(image)
                # Which palette entry or colour is see-through: pixels, not metadata.
                transparency = image.info.get("transparency") if fmt == "PNG" else None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(
            "file has too many pixels for an avatar", loc=["body", "file"], type="image_too_large"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(
            f"file is not a valid {fmt} image", loc=["body", "file"], type="image_invalid"
        ) from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, format="JPEG", quality=90, optimize=True)
    elif transparency is not None:
        clean.save(out, format="PNG", optimize=True, transparency=transparency)
    else:
        clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image holding only ``image``'s pixels (and palette): no ``info``, EXIF, XMP or
    ICC profile. The EXIF orientation is applied first, so the picture stays upright."""
    upright = ImageOps.exif_transpose(image) or image
    mode = upright.mode
    if image.format == "JPEG" and mode not in {"L", "RGB", "CMYK"}:
        upright, mode = upright.convert("RGB"), "RGB"
    clean = Image.frombytes(mode, upright.size, upright.tobytes())
    if mode in {"P", "PA"}:
        clean.putpalette(upright.getpalette() or [])
    return clean


class AvatarService(Service):
    """Avatar use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def customers(self) -> CustomerService:
        return CustomerService(self.ctx)

    @property
    def storage(self) -> Storage:
        return self.app.storage

    async def replace(self, customer_id: uuid.UUID, upload: Upload) -> str:
        """Store a new avatar, point the customer at it, commit, then delete the previous
        file; returns the ``avatar_url``.

        Raises ``CustomerNotFound`` (404), ``PayloadTooLarge`` (413) over 1 MiB,
        ``InvalidInput`` (422) unless a decodable JPEG or PNG by its bytes,
        ``StorageUnavailable`` (503). Emits ``customer.updated`` (through ``set_avatar``)
        and ``customer.avatar_changed``. A new file whose change does not commit is deleted
        again. Runs in its own unit of work (``RuntimeError`` inside an open one, whose
        later rollback would point the customer at a deleted file).
        """
        if current_unit() is not None:
            raise RuntimeError("AvatarService.replace must own its unit of work")
        async with (
            pending_file(self.storage, new_key(self.tenant, "avatars")) as file,
            unit_of_work(self.ctx),
        ):
            await self.customers.require(customer_id)
            checked = await check_upload(upload, max_bytes=MAX_AVATAR_BYTES, allowed=ALLOWED_TYPES)
            data = reencode(await upload.read(), ALLOWED_TYPES[checked.content_type])
            await file.store(data, checked.content_type, what="the avatar")
            url = avatar_path(customer_id)
            previous = await self.customers.set_avatar(customer_id, url, file.key)
            await outbox.record(
                self.session,
                self.tenant,
                EventType.CUSTOMER_AVATAR_CHANGED,
                str(customer_id),
                {"customer_id": str(customer_id), "avatar_url": url},
            )
        if previous:
            await delete_quietly(self.storage, previous)
        return url

    @reads()
    async def open(self, customer_id: uuid.UUID) -> tuple[str, AsyncIterator[bytes]]:
        """``(content type, chunks)`` of the customer's uploaded avatar. Raises
        ``CustomerNotFound``, :class:`NoAvatar` or :class:`AvatarFileUnavailable` (404)."""
        key = await self.customers.avatar_storage_key(customer_id)
        if not key:
            raise NoAvatar
        chunks = self.storage.open(key)
        try:
            first = await anext(chunks)
        except (StorageError, StopAsyncIteration) as exc:
            raise AvatarFileUnavailable from exc
        content_type = "image/png" if first.startswith(b"\x89PNG") else "image/jpeg"

        async def stream() -> AsyncIterator[bytes]:
            yield first
            async for chunk in chunks:
                yield chunk

        return content_type, stream()
