"""Request and response shapes of Meta channels (API.md "Channels").

Bodies are snake_case and also accept camelCase aliases (``appId``, ``pageId``,
``accessToken``); unknown fields are 422. ``access_token`` and ``app_secret`` are
write-only: no response carries them, only ``has_access_token`` / ``has_app_secret``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from patron.customers.schemas import is_messenger
from patron.kit.cards import IDENTIFIER_FIELDS, CardNumberGuard
from patron.kit.pagination import Page
from patron.tenancy import TenantId


class ChannelPlatform(StrEnum):
    """The Meta product a channel serves. ``messenger`` (as messaging webhooks name it) is
    accepted on input and stored as ``facebook``, as customers' ``platform`` is (API.md
    "Customers")."""

    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"

    @classmethod
    def _missing_(cls, value: object) -> ChannelPlatform | None:
        return cls.FACEBOOK if is_messenger(value) else None


class ChannelStatus(StrEnum):
    """``needs_attention``: Meta refused the token (expired or revoked, Graph error 190);
    replace the channel (delete it and create it again with a new token)."""

    ACTIVE = "active"
    NEEDS_ATTENTION = "needs_attention"


# Graph API object ids (app, page, Instagram account) are numeric strings
# (https://developers.facebook.com/docs/graph-api/overview, "Nodes": every node has an `id`).
MetaId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[0-9]+$", examples=["104857600000001"]),
]
# Tokens are opaque to Patron; long-lived page tokens run to a few hundred characters.
Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]


class ChannelCreate(CardNumberGuard):
    """Body of ``POST /channels``.

    ``page_id``: the Facebook page id, or the Instagram business account id for
    ``platform: instagram`` (the ``entry[].id`` of Meta's webhooks). ``access_token``: the
    page access token (write-only). ``app_secret``: the Meta app's secret (write-only;
    without it ``META_APP_SECRET`` is used)."""

    # ids and credentials: a page id is digits that may pass Luhn by chance
    card_number_exempt: ClassVar[frozenset[str]] = IDENTIFIER_FIELDS | {
        "page_id",
        "app_secret",
    }
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        str_strip_whitespace=True,
    )

    platform: ChannelPlatform
    app_id: MetaId
    page_id: MetaId
    access_token: Secret
    app_secret: Secret | None = None
    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class ChannelRead(BaseModel):
    """A channel as every read shows it: never with its token or app secret.

    ``status_reason``: why the channel needs attention (null while active)."""

    id: uuid.UUID
    platform: ChannelPlatform
    app_id: str
    page_id: str
    name: str | None
    has_access_token: bool
    has_app_secret: bool
    status: ChannelStatus
    status_reason: str | None
    created_at: datetime
    updated_at: datetime


class ChannelPage(Page):
    channels: list[ChannelRead]


# Meta webhooks name the product in ``object``: ``page`` (Messenger) or ``instagram``
# (https://developers.facebook.com/docs/messenger-platform/webhooks,
# https://developers.facebook.com/docs/instagram-platform/webhooks).
WEBHOOK_OBJECTS = {"page": ChannelPlatform.FACEBOOK, "instagram": ChannelPlatform.INSTAGRAM}


def platform_of(value: str) -> ChannelPlatform | None:
    """The channel platform named by a platform (``facebook``, ``instagram``, the alias
    ``messenger``) or by a webhook's ``object`` (``page``, ``instagram``), any case; None
    for anything else."""
    lowered = value.lower()
    if lowered in WEBHOOK_OBJECTS:
        return WEBHOOK_OBJECTS[lowered]
    try:
        return ChannelPlatform(lowered)
    except ValueError:
        return None


class ChannelCredentials(BaseModel):
    """A channel found by its page across tenants (``ChannelDirectory.find``): its tenant,
    its ids, and its secrets decrypted. ``app_secret`` is the channel's own, else
    ``META_APP_SECRET``, else None. Secrets are ``SecretStr``: printing or logging the
    object shows ``**********``."""

    model_config = ConfigDict(frozen=True)

    channel_id: uuid.UUID
    tenant: TenantId
    platform: ChannelPlatform
    app_id: str
    page_id: str
    status: ChannelStatus
    access_token: SecretStr
    app_secret: SecretStr | None


class ProfileCredentials(BaseModel):
    """What a Graph profile fetch of one customer authenticates with.

    ``source`` says whose token it is: ``customer`` (the customer's own ``access_token``,
    which wins, API.md "Channels") or ``channel``; ``channel_id`` is the channel that gave
    the token or the app secret (None when neither came from a channel). A fetch that finds
    the token dead marks ``channel_id`` as needing attention only when ``source`` is
    ``channel``. ``app_secret``: the channel's, else ``META_APP_SECRET``, else None (then
    no ``appsecret_proof`` is sent)."""

    model_config = ConfigDict(frozen=True)

    source: Literal["customer", "channel"]
    channel_id: uuid.UUID | None
    access_token: SecretStr
    app_secret: SecretStr | None
