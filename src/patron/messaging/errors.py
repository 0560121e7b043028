"""Errors of the webhook receiver, rendered by the one problem+json handler."""

from __future__ import annotations

from patron.errors import BadRequest, Forbidden, PatronError


class SignatureRefused(PatronError):
    """401: ``X-Hub-Signature-256`` is missing, malformed, or not the HMAC-SHA256 of the
    raw body under the app secret of the pages the payload names. Nothing was processed.
    No ``WWW-Authenticate``: Meta signs, it does not authenticate with a scheme."""

    status, title, slug = 401, "Unauthorized", "webhook-signature-refused"


class VerificationRefused(Forbidden):
    """403: the subscribe handshake named another mode or a wrong ``hub.verify_token``
    (or ``META_VERIFY_TOKEN`` is not set)."""

    def __init__(self) -> None:
        super().__init__("webhook verification refused")


class MalformedNotification(BadRequest):
    """400: a correctly signed body that is not a Meta webhook notification (not JSON, or
    no ``object`` / ``entry``). Never echoes the body."""
