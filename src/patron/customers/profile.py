"""Fetching a customer's Meta profile (issue 11): ``POST /customers/{id}/fetch-profile``
and the ``customers.fetch_profile`` background job, one use case for both.

Steps of :meth:`ProfileService.fetch` (docs/meta-graph.md, "Filling a customer"):

1. A read unit: the customer, its Meta user id (:func:`meta_target`), its own
   ``access_token`` (decrypted) and the token to use (``ChannelService.profile_credentials``:
   the customer's own wins, else the tenant's active channel of the platform and app).
2. No transaction: the Graph call, through the process's cached, single-flight
   :class:`~patron.meta.cache.ProfileFetcher` (``AppContext.profiles``). A slow Meta never
   holds a row lock or a pooled connection.
3. A write unit: the customer locked again and filled (:func:`profile_changes`: only EMPTY
   names, locale, timezone and gender; the picture URL and ``attributes.instagram`` are
   Meta's and always refreshed), ``profile_fetched_at`` set, and ``customer.updated``
   recorded with ``fields_changed``. The row always changes (``profile_fetched_at``, hence
   ``version`` and the ETag), so the event is always recorded: every version of a customer
   has its event, and a consumer that only cares about names reads ``fields_changed``.

Graph code 190 (token dead) on a *channel's* token marks that channel ``needs_attention``
(its own unit, committed) before the error goes up: the channel then gives no token until
it is replaced, instead of failing every fetch against Meta.

The job (:data:`FETCH_PROFILE`) is deferred by ``CustomerService.upsert`` when it creates a
customer with a PSID / IGSID and no name (:func:`needs_profile`), in the same unit: the
job exists if and only if the customer does. Throttling, unavailability and timeouts are
retried with backoff (:data:`FETCH_RETRY`); 190, 100, any other Graph error and a
customer that cannot be fetched at all (deleted, no Meta id, no token) fail the job at
once (:class:`~patron.jobs.DoNotRetry`), since running it again would fail the same way.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretStr

from patron.channels.schemas import ProfileCredentials
from patron.channels.service import ChannelService
from patron.customers.errors import CustomerNotFound, NoMetaToken, NoMetaUser
from patron.customers.fields import ACCESS_TOKEN_CONTEXT, changed_fields
from patron.customers.repository import CustomerRepository
from patron.customers.schemas import CustomerRead
from patron.customers.views import customer_read
from patron.events import outbox
from patron.events.types import EventType
from patron.jobs import KINDS, DoNotRetry, JobKind, RetryPolicy
from patron.meta import GraphCredentials, InstagramProfile, MessengerProfile, Platform
from patron.meta.errors import (
    GraphError,
    GraphThrottled,
    GraphTimeout,
    GraphTokenInvalid,
    GraphUnavailable,
)
from patron.usecases import Service, ServiceContext, reads, writes

log = structlog.get_logger("patron.customers")

FETCH_PROFILE_KIND = "customers.fetch_profile"
# Column limits of the customer fields (customers.schemas: Name, Url, gender).
MAX_NAME = 200
MAX_URL = 2048
MAX_GENDER = 32
# Meta locales are ``ll_CC`` (``en_US``); the same pattern as CustomerFields.locale.
_LOCALE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*")
_URL = re.compile(r"https?://[^\s\x00\x85]+")
# The Instagram profile fields kept under ``attributes.instagram`` (all but id and picture).
INSTAGRAM_ATTRIBUTES = (
    "name",
    "username",
    "follower_count",
    "is_user_follow_business",
    "is_business_follow_user",
    "is_verified_user",
)


# Customer platforms whose users Meta's profile API serves (None: unknown, try).
META_PLATFORMS = frozenset({None, "facebook", "instagram"})


@dataclass(frozen=True, slots=True)
class MetaTarget:
    """Whom to ask Meta about: the Graph ``platform``, the PSID / IGSID ``user_id``, and
    the customer ``platform`` a channel is looked up by (``facebook`` or ``instagram``)."""

    platform: Platform
    user_id: str
    channel_platform: str


def meta_target(customer_id: uuid.UUID, row: Mapping[Any, Any]) -> MetaTarget:
    """The Meta user behind a customer row (its ``platform``, ``psid``, ``igsid``).

    - ``instagram``: the IGSID, else the PSID (the messaging source service S0 kept the
      Instagram-scoped id in ``psid``; API.md's own upsert example does too);
    - ``facebook``: the PSID;
    - no platform: the IGSID as Instagram, else the PSID as Messenger;
    - ``web``, ``whatsapp``, ``other``: none (Meta's profile API serves Messenger and
      Instagram messaging only).

    Raises :class:`NoMetaUser` (409) when there is none.
    """
    platform, psid, igsid = row["platform"], row["psid"], row["igsid"]
    if platform in (None, "instagram") and igsid:
        return MetaTarget(Platform.INSTAGRAM, igsid, "instagram")
    if platform == "instagram" and psid:
        return MetaTarget(Platform.INSTAGRAM, psid, "instagram")
    if platform in (None, "facebook") and psid:
        return MetaTarget(Platform.MESSENGER, psid, "facebook")
    if platform in META_PLATFORMS:
        raise NoMetaUser(customer_id, "the customer has no PSID or IGSID")
    raise NoMetaUser(customer_id, f"platform {platform} has no Meta profile")


def needs_profile(customer: CustomerRead) -> bool:
    """Whether a new customer should have its Meta profile fetched in the background: it
    has a PSID or IGSID, a Meta platform (or none) and neither a first nor a last name."""
    platform = customer.platform.value if customer.platform is not None else None
    return (
        bool(customer.psid or customer.igsid)
        and platform in META_PLATFORMS
        and not (_filled(customer.first_name) or _filled(customer.last_name))
    )


def _filled(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _text(value: str | None, limit: int) -> str | None:
    """A non-empty, stripped string within ``limit`` characters, else None (Meta's answer
    is outside input: a value the column cannot hold is dropped, not cut into a lie)."""
    if value is None:
        return None
    value = value.strip()
    return value if 0 < len(value) <= limit else None


def timezone_name(offset_hours: float | None) -> str | None:
    """The IANA zone of a Messenger ``timezone`` (hours east of UTC): ``Etc/GMT+5`` for
    ``-5``. The ``Etc`` zones invert the sign (POSIX) and exist for whole hours from -14
    to +12 only; any other offset gives None (no zone names an offset alone)."""
    if offset_hours is None or not math.isfinite(offset_hours):
        return None
    if offset_hours != int(offset_hours) or not -12 <= offset_hours <= 14:
        return None
    hours = int(offset_hours)
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"


def profile_changes(
    current: Mapping[Any, Any], profile: MessengerProfile | InstagramProfile
) -> dict[str, Any]:
    """The column values a Graph profile gives a customer (``current``: its response row).

    - ``first_name``, ``last_name``, ``locale``, ``timezone``, ``gender``: only when empty
      (what a person or another system wrote is kept).
    - Instagram's ``name`` is a free display name ("Jane Doe", "Jane's cakes 🍰"), not a
      first and a last name: it becomes ``first_name``, whole, when both names are empty,
      rather than a split that guesses wrong for "Mary Ann Smith" or "Jean van Damme".
    - ``profile_pic_url``: Meta's picture URL, always replaced (it expires after some days).
    - ``attributes.instagram``: the Instagram fields (:data:`INSTAGRAM_ATTRIBUTES` that Meta
      sent), replaced as a whole; other attributes are kept.

    Values a column cannot hold (too long, not an http(s) URL, a locale of another shape)
    are left out.
    """
    changes: dict[str, Any] = {}

    def fill(column: str, value: str | None) -> None:
        if value is not None and not _filled(current[column]):
            changes[column] = value

    picture = _text(profile.profile_pic, MAX_URL)
    if picture is not None and _URL.fullmatch(picture):
        changes["profile_pic_url"] = picture
    if isinstance(profile, MessengerProfile):
        fill("first_name", _text(profile.first_name, MAX_NAME))
        fill("last_name", _text(profile.last_name, MAX_NAME))
        locale = _text(profile.locale, 35)
        fill("locale", locale if locale and _LOCALE.fullmatch(locale) else None)
        fill("timezone", timezone_name(profile.timezone))
        fill("gender", _text(profile.gender, MAX_GENDER))
        return changes
    name = _text(profile.name, MAX_NAME)
    if name is not None and not (_filled(current["first_name"]) or _filled(current["last_name"])):
        changes["first_name"] = name
    instagram = {
        key: value for key in INSTAGRAM_ATTRIBUTES if (value := getattr(profile, key)) is not None
    }
    if instagram:
        changes["attributes"] = {**(current["attributes"] or {}), "instagram": instagram}
    return changes


@dataclass(frozen=True, slots=True)
class _Plan:
    target: MetaTarget
    credentials: ProfileCredentials
    graph: GraphCredentials


class ProfileService(Service):
    """The Meta profile use case for one caller (:class:`patron.usecases.ServiceContext`)."""

    async def fetch(self, customer_id: uuid.UUID) -> CustomerRead:
        """Fetch the customer's Meta profile and fill the customer with it (module steps);
        returns the customer after.

        Raises :class:`CustomerNotFound` (404), :class:`NoMetaUser` (409: no PSID / IGSID),
        :class:`NoMetaToken` (409: no token anywhere), and the Graph client's errors:
        :class:`~patron.meta.errors.GraphTokenInvalid` (502; a channel's token is then
        marked ``needs_attention``), ``GraphRequestRejected``, ``GraphThrottled``,
        ``GraphUnavailable``, ``GraphError`` (502) and ``GraphTimeout`` (504). Nothing is
        written to the customer when the fetch fails.
        """
        plan = await self._plan(customer_id)
        try:
            profile: MessengerProfile | InstagramProfile
            if plan.target.platform is Platform.INSTAGRAM:
                profile = await self.app.profiles.instagram_profile(plan.target.user_id, plan.graph)
            else:
                profile = await self.app.profiles.messenger_profile(plan.target.user_id, plan.graph)
        except GraphTokenInvalid as exc:
            channel_id = plan.credentials.channel_id
            if plan.credentials.source == "channel" and channel_id is not None:
                await ChannelService(self.ctx).mark_needs_attention(
                    channel_id, f"Graph error 190: {exc.detail}"
                )
            raise
        return await self._fill(customer_id, profile)

    @reads()
    async def _plan(self, customer_id: uuid.UUID) -> _Plan:
        repo = CustomerRepository(self.session, self.tenant)
        row = await repo.get(customer_id)
        if row is None:
            raise CustomerNotFound(customer_id)
        current = row._mapping
        target = meta_target(customer_id, current)
        blob = await repo.access_token_ciphertext(customer_id)
        own = SecretStr(self.app.keyring.decrypt(blob, ACCESS_TOKEN_CONTEXT)) if blob else None
        channels = ChannelService(self.ctx)
        app_id: str | None = current["app_id"]
        credentials = await channels.profile_credentials(target.channel_platform, app_id, own)
        if credentials is None:
            missing = (
                f"the customer has no access_token and the tenant has no active "
                f"{target.channel_platform} channel" + (f" for app {app_id}" if app_id else "")
            )
            raise NoMetaToken(customer_id, target.channel_platform, app_id, missing)
        page_id: str | None = None
        if credentials.channel_id is not None:
            channel = await channels.get(credentials.channel_id)
            app_id, page_id = app_id or channel.app_id, channel.page_id
        secret = credentials.app_secret
        graph = GraphCredentials(
            # the app id keys the cache and Meta's usage pause; "-" when no one knows it
            app_id=app_id or "-",
            access_token=credentials.access_token.get_secret_value(),
            page_id=page_id,
            app_secret=secret.get_secret_value() if secret is not None else None,
        )
        return _Plan(target, credentials, graph)

    @writes()
    async def _fill(
        self, customer_id: uuid.UUID, profile: MessengerProfile | InstagramProfile
    ) -> CustomerRead:
        repo = CustomerRepository(self.session, self.tenant)
        row = await repo.get(customer_id, for_update=True)
        if row is None:  # deleted while Meta answered
            raise CustomerNotFound(customer_id)
        current = row._mapping
        changes = {**profile_changes(current, profile), "profile_fetched_at": datetime.now(UTC)}
        changed = changed_fields(current, changes)
        columns = await repo.update(customer_id, changed)
        updated = customer_read({**current, **columns})
        await outbox.record(
            self.executor,
            self.tenant,
            EventType.CUSTOMER_UPDATED,
            str(customer_id),
            {"customer": updated.model_dump(mode="json"), "fields_changed": sorted(changed)},
        )
        log.info(
            "customer_profile_fetched",
            customer_id=str(customer_id),
            fields_changed=sorted(changed),
        )
        return updated


# -- the background job ---------------------------------------------------------------------

# Meta's rate windows are rolling hours: 1 min, 2, 4, ... capped at 1 h, 8 runs (about 2 h
# in all) on top of the client's own retries within each run.
FETCH_RETRY = RetryPolicy(attempts=8, backoff_initial=60.0, backoff_max=3600.0)


async def _run_fetch_profile(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Handler of :data:`FETCH_PROFILE`: payload ``{"customer_id": "<uuid>"}``."""
    customer_id = uuid.UUID(str(payload["customer_id"]))
    try:
        await ProfileService(ctx).fetch(customer_id)
    except (GraphThrottled, GraphUnavailable, GraphTimeout):
        raise  # retried with backoff by the runner
    except GraphError as exc:
        # 190 (the channel is already marked), 100, or another error Meta will repeat
        raise DoNotRetry(f"{type(exc).__name__}: {exc.detail}") from exc
    except (CustomerNotFound, NoMetaUser, NoMetaToken) as exc:
        raise DoNotRetry(f"{type(exc).__name__}: {exc.detail}") from exc


FETCH_PROFILE: JobKind = KINDS.register(
    JobKind(FETCH_PROFILE_KIND, _run_fetch_profile, FETCH_RETRY)
)
