"""The signature headers on their own: Standard Webhooks (checked with the reference library
and a known answer) and the legacy ``Patron-Signature``, with one and two secrets, and
secrets in the format Patron used before."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from patron.webhooks.signing import (
    new_secret,
    signature,
    signed_headers,
    standard_key,
    standard_signature,
)
from tests.webhooks.receiver import verify

BODY = json.dumps({"specversion": "1.0", "id": "e1", "data": {"name": "Zoë"}}).encode()
EVENT_ID = "01935c1e-7a52-7c3e-9b0e-2b1f4f0c8a11"


def legacy_secret(*, with_url_safe_characters: bool) -> str:
    """A secret as Patron made them before (``whsec_`` + ``token_urlsafe(32)``), with or
    without a ``-`` / ``_`` in it."""
    while True:
        secret = "whsec_" + secrets.token_urlsafe(32)
        has = any(c in secret[6:] for c in "-_")
        if has == with_url_safe_characters:
            return secret


def test_the_known_answer_of_the_reference_implementation() -> None:
    # the vector of the standard-webhooks libraries' own tests (test_sign_function)
    key = standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert key is not None
    assert (
        standard_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_new_secrets_are_in_the_spec_format() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    encoded = secret.removeprefix("whsec_")
    assert len(encoded) == 44  # padded standard base64 of 32 bytes
    key = base64.b64decode(encoded, validate=True)
    assert len(key) == 32
    assert standard_key(secret) == key
    assert new_secret() != secret


def test_headers_verify_with_the_library_and_as_the_spec_says() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = signed_headers([secret], EVENT_ID, now, BODY)
    assert headers["webhook-id"] == EVENT_ID
    assert headers["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    # the same by hand: base64 HMAC-SHA256 of "id.timestamp.body" under the decoded key
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{EVENT_ID}.{now}.".encode() + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    # the legacy header, keyed with the whole secret string
    assert verify(secret, headers["Patron-Signature"], BODY) == now
    # a changed body, id or another secret do not verify
    for changed_body, changed in (
        (BODY + b" ", headers),
        (BODY, {**headers, "webhook-id": "another"}),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(changed_body, changed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_two_secrets_sign_both_headers_twice_newest_first() -> None:
    new, old = new_secret(), new_secret()
    now = int(time.time())
    headers = signed_headers([new, old], EVENT_ID, now, BODY)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert signatures[0] == signed_headers([new], EVENT_ID, now, BODY)["webhook-signature"]
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
        assert verify(secret, headers["Patron-Signature"], BODY) == now
    legacy = headers["Patron-Signature"].split(",")
    assert legacy[0] == f"t={now}"
    assert [p.split("=", 1)[0] for p in legacy[1:]] == ["v1", "v1"]
    # the old secret's v1 comes last: receivers that parsed the header into a dict (as an
    # older docs/webhooks.md did) keep the last v1, and keep working with the old secret
    assert dict(p.split("=", 1) for p in legacy)["v1"] == signature(old, now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_an_old_secret_with_url_safe_characters_signs_only_the_legacy_header() -> None:
    old = legacy_secret(with_url_safe_characters=True)
    assert standard_key(old) is None
    now = int(time.time())
    headers = signed_headers([old], EVENT_ID, now, BODY)
    assert "webhook-signature" not in headers
    assert headers["webhook-id"] == EVENT_ID
    assert verify(old, headers["Patron-Signature"], BODY) == now
    # the library refuses this secret, or takes it but derives another key (it drops the
    # characters that are not standard base64): no signature is better than that one
    try:
        derived: bytes | None = Webhook(old)._whsecret
    except binascii.Error:  # the dropped characters left a length base64 cannot have
        derived = None
    assert derived != base64.urlsafe_b64decode(old[6:] + "=")
    # after a rotation the new secret signs the standard header alone, both sign the legacy
    new = new_secret()
    rotated = signed_headers([new, old], EVENT_ID, now, BODY)
    assert len(rotated["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(BODY, rotated) == json.loads(BODY)
    assert verify(old, rotated["Patron-Signature"], BODY) == now


def test_an_old_secret_that_is_standard_base64_signs_both() -> None:
    old = legacy_secret(with_url_safe_characters=False)
    assert len(old) == 6 + 43  # unpadded
    assert standard_key(old) == base64.urlsafe_b64decode(old[6:] + "=")
    headers = signed_headers([old], EVENT_ID, int(time.time()), BODY)
    assert Webhook(old).verify(BODY, headers) == json.loads(BODY)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),  # shorter than the spec's 24 bytes
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # longer than its 64
        "whsec_abcde",  # not base64 at all (length 4k+1)
        base64.b64encode(b"x" * 32).decode(),  # no prefix
    ],
)
def test_secrets_with_no_standard_key(secret: str) -> None:
    assert standard_key(secret) is None


def test_an_id_with_a_dot_or_no_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="may not contain"):
        signed_headers([new_secret()], "a.b", 1, BODY)
    with pytest.raises(ValueError, match="at least one"):
        signed_headers([], EVENT_ID, 1, BODY)
