"""A local fake of Meta's Graph API: a real HTTP server (Starlette on uvicorn, in a thread)
answering ``GET /{version}/{user_id}`` the way ``tests/meta/spec/`` describes it.

By default it answers the spec's example profile for the fields asked (Messenger fields
give the Messenger example, Instagram fields the Instagram one) with ``id`` set to the
user id. Like Meta, it checks the request: no access token is error 190, a field the spec
does not know is error 100, and, when built with ``app_secret``, a missing or wrong
``appsecret_proof`` is error 100 ("Invalid appsecret_proof provided in the API argument").
Tests queue scripted answers (:class:`Reply`: status, body, headers, delay) that are used,
in order, before the default; every request is recorded (:attr:`FakeGraph.requests`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.live_server import ThreadedServer

SPEC = Path(__file__).resolve().parent / "spec"
ERRORS: dict[str, Any] = json.loads((SPEC / "graph-errors.json").read_text())
MESSENGER_EXAMPLE: dict[str, Any] = json.loads(
    (SPEC / "messenger-user-profile.response.json").read_text()
)
INSTAGRAM_EXAMPLE: dict[str, Any] = json.loads(
    (SPEC / "instagram-user-profile.response.json").read_text()
)
KNOWN_FIELDS = {
    "id",
    "first_name",
    "last_name",
    "name",
    "username",
    "profile_pic",
    "locale",
    "timezone",
    "gender",
    "follower_count",
    "is_user_follow_business",
    "is_business_follow_user",
    "is_verified_user",
}


def error_body(name: str) -> dict[str, Any]:
    """The body of one error of ``graph-errors.json`` by code, e.g. ``error_body("190")``."""
    for key, body in ERRORS.items():
        if key.split("_", 1)[0] == name:
            return copy.deepcopy(body)
    raise KeyError(name)


@dataclass
class Reply:
    """One scripted answer: HTTP status, JSON body (``None``: the default profile),
    headers, and seconds to wait before answering."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def error(cls, code: str, status: int = 400, **kwargs: Any) -> Reply:
        return cls(status=status, body=error_body(code), **kwargs)


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_url: str


# The app secret the fake checks appsecret_proof with, when told to (``app_secret=``).
APP_SECRET = "app-s3cret-for-tests"


class FakeGraph(ThreadedServer):
    """``with FakeGraph() as graph: graph.url`` → ``http://127.0.0.1:N`` (no version)."""

    def __init__(self, app_secret: str | None = None) -> None:
        self.app_secret = app_secret
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.default_headers: dict[str, str] = {}
        self._lock = threading.Lock()
        super().__init__(Starlette(routes=[Route("/{version}/{user_id}", self._profile)]))

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self.script.extend(replies)

    def count(self, user_id: str | None = None) -> int:
        """Requests received (for ``user_id`` only, when given)."""
        return sum(1 for r in self.requests if user_id is None or r.path.endswith(f"/{user_id}"))

    async def _profile(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        self.requests.append(
            Recorded(
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                raw_url=str(request.url),
            )
        )
        with self._lock:
            reply = self.script.popleft() if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = {**self.default_headers, **reply.headers}
        if reply.body is not None:
            if isinstance(reply.body, str):
                return Response(reply.body, status_code=reply.status, headers=headers)
            return JSONResponse(reply.body, status_code=reply.status, headers=headers)
        refused = self._check(request)
        if refused is not None:
            return JSONResponse(refused, status_code=400, headers=headers)
        fields = request.query_params["fields"].split(",")
        example = MESSENGER_EXAMPLE if "first_name" in fields else INSTAGRAM_EXAMPLE
        body = {k: v for k, v in example.items() if k in fields}
        body["id"] = user_id
        return JSONResponse(body, status_code=reply.status, headers=headers)

    def _check(self, request: Request) -> dict[str, Any] | None:
        """Meta's own refusals: no token (190), unknown field or bad proof (100)."""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        token = token or request.query_params.get("access_token")
        if not token:
            body = error_body("190")
            body["error"]["message"] = "An active access token must be used."
            return body
        fields = request.query_params.get("fields", "").split(",")
        if any(f not in KNOWN_FIELDS for f in fields):
            return error_body("100")
        if self.app_secret is not None:
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            given = request.query_params.get("appsecret_proof", "")
            if not hmac.compare_digest(given, expected.hexdigest()):
                body = error_body("100")
                body["error"]["message"] = "Invalid appsecret_proof provided in the API argument"
                return body
        return None
