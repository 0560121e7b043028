"""Request and response shapes of staff notes (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from patron.kit.cards import CardNumberGuard
from patron.kit.pagination import Page


class NoteCreate(CardNumberGuard):
    """Body of ``POST /customers/{id}/notes``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Annotated[str, Field(min_length=1, max_length=10_000)]


class NoteRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    note: str
    author_id: str
    created_at: datetime


class NotePage(Page):
    notes: list[NoteRead]
