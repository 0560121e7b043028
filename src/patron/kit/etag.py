"""Entity tags and conditional requests (RFC 9110 §8.8.3, §13.1.1)."""

from __future__ import annotations

from patron.errors import PreconditionFailed


def etag_for(version: int) -> str:
    """Strong ETag of a resource version: ``"<version>"``."""
    return f'"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """Raise 412 unless ``If-Match`` is absent, ``*`` or lists the current ETag.

    Weak tags (``W/"3"``) are compared by their opaque part, as clients commonly echo them.
    """
    if if_match is None:
        return
    current = etag_for(version)
    for raw in if_match.split(","):
        tag = raw.strip()
        if tag == "*" or tag.removeprefix("W/") == current:
            return
    raise PreconditionFailed(
        f"If-Match {if_match.strip()} does not match the current version {current}",
        current_etag=current,
    )
