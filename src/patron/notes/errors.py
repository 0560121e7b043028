"""Errors of the notes domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid

from patron.errors import Forbidden, NotFound


class NoteNotFound(NotFound):
    """404: no note with this id on this customer of the tenant (also for another tenant's
    or another customer's note, so its existence is not revealed)."""

    def __init__(self, note_id: uuid.UUID) -> None:
        super().__init__("note not found", note_id=str(note_id))


class NoteNotYours(Forbidden):
    """403: an agent may delete only the notes they wrote (API.md "Profile data": admin,
    manager, the note's author)."""

    def __init__(self) -> None:
        super().__init__("only an admin, a manager or the note's author may delete it")
