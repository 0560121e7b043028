"""Build the configured backend from settings (once per process, in ``build_context``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from patron.config import Settings
from patron.kit.extras import require_extra
from patron.storage.base import Storage
from patron.storage.local import LocalStorage


def storage_from_settings(settings: Settings) -> Storage:
    """``STORAGE_URL`` → backend. Unset: ``$PATRON_HOME/files``. ``file:///path``: that
    directory. ``s3://bucket/prefix``: S3 with ``S3_ENDPOINT_URL``. Anything else is a
    :class:`ValueError` at start-up; s3:// without the ``s3`` extra (boto3) is
    :class:`~patron.kit.extras.MissingExtra`."""
    url = settings.storage_url
    if not url:
        return LocalStorage(Path(settings.patron_home) / "files")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            raise ValueError("STORAGE_URL file:// must name a local path (file:///path)")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError("STORAGE_URL s3:// must name a bucket (s3://bucket/prefix)")
        require_extra("s3", "boto3", "STORAGE_URL is s3://")
        # imported here: boto3 is the optional `s3` extra, loaded only when configured
        from patron.storage.s3 import S3Storage

        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=settings.s3_endpoint_url)
    raise ValueError("STORAGE_URL must be file:///path or s3://bucket/prefix")
