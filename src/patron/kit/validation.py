"""Normalisation of contact points with maintained libraries.

- Phone numbers: ``phonenumbers`` (libphonenumber), output E.164 (ITU-T E.164).
- Email addresses: ``email-validator`` syntax checks (RFC 5321/5322, IDNA), no DNS look-up;
  the domain is lower-cased, the local part kept as given (RFC 5321 §2.4) but compared
  case-insensitively through the identity value, which is lower-cased whole.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ContactPointError(ValueError):
    """The value is not a valid phone number or email address; ``str()`` says why."""


def normalize_phone(raw: str, default_region: str) -> str:
    """E.164 form of ``raw`` (``+14155550123``). National formats use ``default_region``.

    Raises :class:`ContactPointError` if the number cannot be parsed or is not a valid
    number for its region.
    """
    text = raw.strip()
    if not text or len(text) > 64:
        raise ContactPointError("phone number is empty or too long")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise ContactPointError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ContactPointError("not a valid phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """Normalised address (Unicode domain lower-cased). Raises :class:`ContactPointError`."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ContactPointError(str(exc)) from exc
    return str(result.normalized)


def email_identity_value(email: str) -> str:
    """The identity key of a normalised email: compared case-insensitively in practice."""
    return email.lower()
