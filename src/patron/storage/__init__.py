"""File storage for documents and avatars: one async interface, two backends.

``STORAGE_URL`` picks the backend (API.md "Operations"): unset → a local directory
``$PATRON_HOME/files``; ``file:///path`` → that directory; ``s3://bucket/prefix`` → an
S3-compatible bucket (the usual ``AWS_*`` variables, ``S3_ENDPOINT_URL`` for MinIO, moto...),
which needs the ``s3`` extra (boto3): import ``patron.storage.s3`` for it.
Keys are made here (:func:`new_key`), never taken from a client.
"""

from __future__ import annotations

from patron.storage.base import (
    InvalidKey,
    PendingFile,
    Storage,
    StorageError,
    StorageUnavailable,
    delete_quietly,
    new_key,
    pending_file,
    store,
)
from patron.storage.factory import storage_from_settings
from patron.storage.local import LocalStorage

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "PendingFile",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "delete_quietly",
    "new_key",
    "pending_file",
    "storage_from_settings",
    "store",
]
