"""The Meta Graph API client: messaging user profiles by PSID (Messenger) and IGSID
(Instagram).

Requests are ``GET {META_GRAPH_BASE_URL}/{META_GRAPH_API_VERSION}/{id}?fields=...``
(the project's contract ``tests/meta/spec/meta-graph-user-profile.openapi.yaml``, written
from Meta's "User Profile API" pages for Messenger and Instagram messaging). The Page
access token travels as ``Authorization: Bearer`` (the spec's ``pageAccessTokenBearer``),
never in the URL, so it cannot reach an access log; ``appsecret_proof`` (Meta,
"Securing Requests": the hex HMAC-SHA256 of the access token keyed by the app secret) is
a query parameter, as Meta requires, and :class:`_RedactGraphSecrets` removes it from
httpx's own request log line.

Failure rules (Meta, "Handling Errors" and "Rate Limits"):

- Timeouts: connect ``META_GRAPH_CONNECT_TIMEOUT`` (5 s), read ``META_GRAPH_READ_TIMEOUT``
  (10 s) per attempt; a call gives up after ``total_timeout`` (30 s) in all.
- Retried, up to ``META_GRAPH_MAX_ATTEMPTS`` attempts with capped exponential backoff
  (0.5 s doubling, at most 8 s, times a jitter factor in [0.5, 1.5]): transport errors and
  timeouts (a profile GET is idempotent), HTTP 5xx, the throttling codes 4, 17, 32, 613 and
  the Business-Use-Case codes 80001 to 80006, the transient codes 1 and 2 and any error
  marked ``is_transient``.
- Not retried: 190 (:class:`GraphTokenInvalid`), 100 (:class:`GraphRequestRejected`) and
  every other Graph error (:class:`GraphError`).
- Slowing down before Meta blocks: every response's ``X-App-Usage`` and
  ``X-Business-Use-Case-Usage`` headers are read (JSON percentages ``call_count``,
  ``total_time``, ``total_cputime``). When any of them is at least
  ``META_GRAPH_USAGE_THRESHOLD`` (90 %), the next call of the same app waits
  ``META_GRAPH_USAGE_PAUSE`` seconds (5 s) before it is sent; when a Business-Use-Case entry
  names ``estimated_time_to_regain_access`` (minutes), calls of that app wait that long,
  or, if that is past the call's ``total_timeout``, fail at once with
  :class:`GraphThrottled` and ``retry_after`` instead of spending a request Meta would
  refuse. The pause is kept per app id in this process (each replica slows itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from patron.config import MessagingSettings
from patron.errors import InvalidInput
from patron.kit.backoff import capped_exponential
from patron.meta.errors import (
    GraphError,
    GraphRequestRejected,
    GraphThrottled,
    GraphTimeout,
    GraphTokenInvalid,
    GraphUnavailable,
)
from patron.meta.metrics import GRAPH_REQUESTS, GRAPH_USAGE_PAUSES

log = structlog.get_logger("patron.meta")

# Meta, "Handling Errors": 4 app, 17 user, 32 Page, 613 custom rate limit; "Rate Limits":
# 80001 Pages, 80002 Instagram, 80006 Messenger Business-Use-Case limits (and their kin).
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002, 80003, 80004, 80005, 80006})
# "API Unknown" and "API Service": temporary on Meta's side, retry after a wait.
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_INVALID_CODE = 190
BAD_REQUEST_CODE = 100
# Query parameters whose values never appear in a log line.
SECRET_PARAMS = ("access_token", "appsecret_proof")
# PSIDs and IGSIDs are decimal (the spec's pattern); anything else would change the path.
_NODE_ID = re.compile(r"[0-9]{1,64}")
# When throttled with no regain time in the headers: Meta's windows are rolling hours.
DEFAULT_THROTTLE_RETRY_AFTER = 60


class Platform(StrEnum):
    """The messaging platform a user id belongs to."""

    MESSENGER = "messenger"
    INSTAGRAM = "instagram"


MESSENGER_FIELDS = ("first_name", "last_name", "profile_pic", "locale", "timezone", "gender")
INSTAGRAM_FIELDS = (
    "name",
    "username",
    "profile_pic",
    "follower_count",
    "is_user_follow_business",
    "is_business_follow_user",
    "is_verified_user",
)


class MessengerProfile(BaseModel):
    """A Messenger user's profile by PSID. Every field but ``id`` may be absent: Meta
    returns only what the token may read (``locale``, ``timezone``, ``gender`` need extra
    app review). ``timezone`` is the offset from UTC in hours; ``profile_pic`` a URL that
    expires after some days."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    first_name: str | None = None
    last_name: str | None = None
    profile_pic: str | None = None
    locale: str | None = None
    timezone: float | None = None
    gender: str | None = None


class InstagramProfile(BaseModel):
    """An Instagram user's profile by IGSID (``name`` and ``profile_pic`` may be null; the
    picture URL expires after some days)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str | None = None
    username: str | None = None
    profile_pic: str | None = None
    follower_count: int | None = None
    is_user_follow_business: bool | None = None
    is_business_follow_user: bool | None = None
    is_verified_user: bool | None = None


Profile = MessengerProfile | InstagramProfile
P = TypeVar("P", MessengerProfile, InstagramProfile)


@dataclass(frozen=True)
class GraphCredentials:
    """Who asks: the Meta app (``app_id``), the Page or Instagram account (``page_id``,
    ``None`` when unknown, e.g. a customer's own token), the access token and the app's
    secret (``None``: the client's default, ``META_APP_SECRET``). Secrets are left out of
    ``repr`` so a traceback or a log of this object cannot show them."""

    app_id: str
    access_token: str = field(repr=False)
    page_id: str | None = None
    app_secret: str | None = field(default=None, repr=False)


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Hex HMAC-SHA256 of ``access_token`` keyed by ``app_secret`` (Meta, Graph API
    "Securing Requests": the ``appsecret_proof`` parameter)."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Usage:
    """What Meta's usage headers say: the highest percentage of any budget (0..100+) and
    the seconds until access is regained (0 when not blocked)."""

    percent: float = 0.0
    regain_seconds: float = 0.0


def _numbers(entry: Mapping[str, Any]) -> list[float]:
    return [
        float(entry[k])
        for k in ("call_count", "total_time", "total_cputime")
        if isinstance(entry.get(k), int | float)
    ]


def read_usage(headers: Mapping[str, str]) -> Usage:
    """Parse ``X-App-Usage`` (``{"call_count": 28, "total_time": 25, "total_cputime": 25}``)
    and ``X-Business-Use-Case-Usage`` (``{"<id>": [{"type": "pages", "call_count": 95, ...,
    "estimated_time_to_regain_access": 19}]}``, minutes) as Meta's "Rate Limits" page
    describes them. Missing or malformed headers count as no usage."""
    percents: list[float] = []
    regain_minutes = 0.0
    app = _json_header(headers.get("x-app-usage"))
    if isinstance(app, dict):
        percents += _numbers(app)
    buc = _json_header(headers.get("x-business-use-case-usage"))
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                percents += _numbers(entry)
                regain = entry.get("estimated_time_to_regain_access")
                if isinstance(regain, int | float):
                    regain_minutes = max(regain_minutes, float(regain))
    return Usage(max(percents, default=0.0), regain_minutes * 60.0)


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """``url`` with the values of ``access_token`` and ``appsecret_proof`` replaced."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, "[redacted]" if k in SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[],")))


class _RedactGraphSecrets(logging.Filter):
    """Rewrites httpx's ``HTTP Request: GET <url> ...`` lines (logged at INFO) so that no
    secret query parameter reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a))
                if isinstance(a, httpx.URL | str) and any(p in str(a) for p in SECRET_PARAMS)
                else a
                for a in record.args
            )
        return True


def install_log_redaction() -> None:
    """Attach :class:`_RedactGraphSecrets` to the ``httpx`` logger (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactGraphSecrets) for f in logger.filters):
        logger.addFilter(_RedactGraphSecrets())


install_log_redaction()


@dataclass
class _Failure:
    outcome: str
    error: GraphError
    retryable: bool


class GraphClient:
    """An httpx client for the two profile look-ups, with the retry, timeout and usage
    rules of the module docstring. One per process; :meth:`aclose` at shutdown.

    ``transport`` is for tests that need a custom httpx transport; everything else comes
    from settings (:meth:`from_settings`) or the keyword arguments.
    """

    def __init__(
        self,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        app_secret: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        total_timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        usage_threshold: float = 90.0,
        usage_pause: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_version = api_version
        self._app_secret = app_secret
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._max_attempts = max(1, max_attempts)
        self._backoff = (backoff_initial, backoff_max)
        self._usage_threshold = usage_threshold
        self._usage_pause = usage_pause
        # app id -> monotonic time before which no call of that app is sent
        self._not_before: dict[str, float] = {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "patron"},
            follow_redirects=False,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: MessagingSettings) -> GraphClient:
        """A client configured by the ``META_*`` settings (docs/configuration.md)."""
        secret = settings.meta_app_secret
        return cls(
            base_url=settings.meta_graph_base_url,
            api_version=settings.meta_graph_api_version,
            app_secret=secret.get_secret_value() if secret is not None else None,
            connect_timeout=settings.meta_graph_connect_timeout,
            read_timeout=settings.meta_graph_read_timeout,
            max_attempts=settings.meta_graph_max_attempts,
            usage_threshold=settings.meta_graph_usage_threshold,
            usage_pause=settings.meta_graph_usage_pause,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def messenger_profile(self, psid: str, credentials: GraphCredentials) -> MessengerProfile:
        """The Messenger profile of ``psid`` (fields :data:`MESSENGER_FIELDS`). Raises
        :class:`~patron.meta.errors.GraphError` and its kinds, ``InvalidInput`` for a PSID
        that is not decimal."""
        return await self.profile(Platform.MESSENGER, psid, credentials, MessengerProfile)

    async def instagram_profile(
        self, igsid: str, credentials: GraphCredentials
    ) -> InstagramProfile:
        """The Instagram profile of ``igsid`` (fields :data:`INSTAGRAM_FIELDS`); errors as
        :meth:`messenger_profile`."""
        return await self.profile(Platform.INSTAGRAM, igsid, credentials, InstagramProfile)

    async def profile(
        self, platform: Platform, user_id: str, credentials: GraphCredentials, model: type[P]
    ) -> P:
        """One profile of ``platform`` parsed into ``model``."""
        fields = MESSENGER_FIELDS if platform is Platform.MESSENGER else INSTAGRAM_FIELDS
        body = await self.get_node(platform, user_id, fields, credentials)
        body.setdefault("id", user_id)
        try:
            return model.model_validate(body)
        except ValidationError:
            GRAPH_REQUESTS.labels(platform.value, "error").inc()
            raise GraphError(
                f"The Meta Graph API answered with a {platform.value} profile Patron cannot read."
            ) from None

    async def get_node(
        self,
        platform: Platform,
        node_id: str,
        fields: Sequence[str],
        credentials: GraphCredentials,
    ) -> dict[str, Any]:
        """``GET /{version}/{node_id}?fields=...`` with retries; the JSON object Meta sent."""
        if not _NODE_ID.fullmatch(node_id):
            raise InvalidInput(
                "A Meta user id (PSID / IGSID) is a decimal number.", loc=("user_id",)
            )
        params = {"fields": ",".join(fields)}
        secret = credentials.app_secret or self._app_secret
        if secret:
            params["appsecret_proof"] = appsecret_proof(credentials.access_token, secret)
        headers = {"Authorization": f"Bearer {credentials.access_token}"}
        path = f"/{self.api_version}/{node_id}"
        started = time.monotonic()
        attempt = 0
        while True:
            await self._respect_usage(credentials.app_id, started)
            failure = await self._attempt(path, params, headers, credentials.app_id)
            if isinstance(failure, dict):
                GRAPH_REQUESTS.labels(platform.value, "ok").inc()
                return failure
            GRAPH_REQUESTS.labels(platform.value, failure.outcome).inc()
            attempt += 1
            error = failure.error
            if not failure.retryable or attempt >= self._max_attempts:
                raise error
            wait = capped_exponential(
                attempt - 1,
                initial=self._backoff[0],
                maximum=self._backoff[1],
                jitter=(0.5, 1.5),
            )
            if time.monotonic() - started + wait > self._total_timeout:
                raise error
            log.warning(
                "meta graph call failed, retrying",
                platform=platform.value,
                outcome=failure.outcome,
                attempt=attempt,
                wait_seconds=round(wait, 3),
                meta_code=error.meta_code,
                fbtrace_id=error.fbtrace_id,
            )
            await asyncio.sleep(wait)

    async def _attempt(
        self, path: str, params: dict[str, str], headers: dict[str, str], app_id: str
    ) -> dict[str, Any] | _Failure:
        """One request: the JSON object of a success, or the failure it was."""
        try:
            response = await self._http.get(path, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            return _Failure(
                "timeout",
                GraphTimeout(
                    f"The Meta Graph API did not answer in time ({type(exc).__name__}, "
                    f"read timeout {self._read_timeout:g} s)."
                ),
                True,
            )
        except httpx.TransportError as exc:
            return _Failure(
                "transport_error",
                GraphUnavailable(
                    f"The Meta Graph API could not be reached ({type(exc).__name__})."
                ),
                True,
            )
        self._note_usage(app_id, response.headers)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict) and "error" not in body:
            return body
        return self._classify(response, body)

    def _classify(self, response: httpx.Response, body: Any) -> _Failure:
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            if status >= 500:
                return _Failure(
                    "server_error",
                    GraphUnavailable(f"The Meta Graph API answered HTTP {status}."),
                    True,
                )
            if status == 429:
                return _Failure(
                    "throttled",
                    GraphThrottled(
                        "The Meta Graph API answered HTTP 429.",
                        retry_after=self._retry_after(response),
                    ),
                    True,
                )
            return _Failure(
                "error",
                GraphError(f"The Meta Graph API answered HTTP {status} without a Graph body."),
                False,
            )
        code = _int(error.get("code"))
        trace = error.get("fbtrace_id")
        meta: dict[str, Any] = {
            "meta_code": code,
            "meta_subcode": _int(error.get("error_subcode")),
            "fbtrace_id": trace if isinstance(trace, str) else None,
        }
        message = str(error.get("message", ""))[:300]
        detail = f"The Meta Graph API answered error {code}: {message}"
        if code == TOKEN_INVALID_CODE:
            return _Failure("token_invalid", GraphTokenInvalid(detail, **meta), False)
        if code == BAD_REQUEST_CODE:
            return _Failure("rejected", GraphRequestRejected(detail, **meta), False)
        if code in THROTTLE_CODES:
            throttled = GraphThrottled(detail, retry_after=self._retry_after(response), **meta)
            return _Failure("throttled", throttled, True)
        if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
            return _Failure("server_error", GraphUnavailable(detail, **meta), True)
        return _Failure("error", GraphError(detail, **meta), False)

    @staticmethod
    def _retry_after(response: httpx.Response) -> int:
        regain = read_usage(response.headers).regain_seconds
        return max(1, math.ceil(regain)) if regain > 0 else DEFAULT_THROTTLE_RETRY_AFTER

    def _note_usage(self, app_id: str, headers: Mapping[str, str]) -> None:
        """Apply the slow-down rule of the module docstring to ``app_id``'s next calls."""
        usage = read_usage(headers)
        if usage.regain_seconds > 0:
            pause = usage.regain_seconds
        elif usage.percent >= self._usage_threshold:
            pause = self._usage_pause
        else:
            return
        until = time.monotonic() + pause
        if until > self._not_before.get(app_id, 0.0):
            self._not_before[app_id] = until
        log.info(
            "meta graph usage high, slowing down",
            app_id=app_id,
            usage_percent=usage.percent,
            pause_seconds=round(pause, 3),
        )

    async def _respect_usage(self, app_id: str, started: float) -> None:
        now = time.monotonic()
        delay = self._not_before.get(app_id, 0.0) - now
        if delay <= 0:
            return
        if now - started + delay > self._total_timeout:
            raise GraphThrottled(
                "Meta's usage headers say this app's calls are blocked for longer than a "
                "call may wait.",
                retry_after=max(1, math.ceil(delay)),
            )
        GRAPH_USAGE_PAUSES.inc()
        await asyncio.sleep(delay)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
