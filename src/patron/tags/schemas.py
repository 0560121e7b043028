"""Request and response shapes of tags (API.md "Profile data")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from patron.kit.cards import CardNumberGuard
from patron.kit.pagination import Page

TagLabel = Annotated[str, Field(min_length=1, max_length=64)]


class TagsAdd(CardNumberGuard):
    """Body of ``POST /customers/{id}/tags``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    labels: list[TagLabel] = Field(min_length=1, max_length=100)


class CustomerTagRead(BaseModel):
    """A tag on a customer; ``created_at`` is when the customer got it."""

    id: uuid.UUID
    label: str
    created_at: datetime


class CustomerTagList(Page):
    tags: list[CustomerTagRead]


class TagsAdded(BaseModel):
    """Answer of ``POST /customers/{id}/tags``: every tag of the customer afterwards, and
    the labels this call added (labels the customer already had are not repeated)."""

    tags: list[CustomerTagRead]
    added: list[str]


class CatalogTagRead(BaseModel):
    """A tag of the tenant's catalog; ``customer_count`` counts live customers carrying it."""

    id: uuid.UUID
    label: str
    customer_count: int
    created_at: datetime


class TagCatalogPage(Page):
    tags: list[CatalogTagRead]
