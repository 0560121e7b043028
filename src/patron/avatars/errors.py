"""Errors of the avatar domain, rendered by the one problem+json handler."""

from __future__ import annotations

from patron.errors import NotFound


class NoAvatar(NotFound):
    """404: the customer has no uploaded avatar."""

    def __init__(self) -> None:
        super().__init__("this customer has no uploaded avatar")


class AvatarFileUnavailable(NotFound):
    """404: the customer points at an avatar file that storage no longer holds."""

    def __init__(self) -> None:
        super().__init__("the avatar file is not available")
