"""kit.jsonutil: what Patron's JSON encoder accepts beyond orjson's own types."""

from __future__ import annotations

import uuid
from decimal import Decimal

from asyncpg.pgproto.pgproto import UUID as DriverUUID

from patron.kit.jsonutil import dumps, loads

ID = "01a237e4-e58a-704f-b615-35273ab4d4c0"


def test_the_drivers_uuid_is_a_string_like_the_standard_one() -> None:
    # the driver fast path returns asyncpg's UUID subclass, which orjson refuses by itself
    assert loads(dumps({"a": DriverUUID(ID), "b": uuid.UUID(ID)})) == {"a": ID, "b": ID}


def test_decimals_are_strings() -> None:
    assert loads(dumps([Decimal("10.50")])) == ["10.50"]
