"""Translation between ``patron.v1`` messages and the service layer's schemas.

Inputs go through the same pydantic models as HTTP bodies (``CustomerUpsert``,
``OrderRecord``), so validation and its 422 errors are the same; an enum's
``*_UNSPECIFIED`` and an unset optional field mean "not sent". ``google.protobuf.Struct``
holds JSON objects (its numbers are doubles, as in JSON).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from pydantic import BaseModel, ValidationError

from patron.customers.schemas import (
    CustomerRead,
    CustomerStatus,
    CustomerType,
    CustomerUpsert,
    Platform,
    StatsRead,
)
from patron.errors import InvalidInput, validation_errors
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.orders.schemas import OrderRead, OrderRecord, OrderStatus

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=StrEnum)

# the proto enums' value names are PREFIX_<NAME>: <NAME> is the schema's value, upper-cased
_PREFIX = {
    CustomerStatus: "CUSTOMER_STATUS_",
    CustomerType: "CUSTOMER_TYPE_",
    Platform: "PLATFORM_",
    OrderStatus: "ORDER_STATUS_",
}
_PROTO_ENUM: dict[type[StrEnum], Any] = {
    CustomerStatus: pb.CustomerStatus,
    CustomerType: pb.CustomerType,
    Platform: pb.Platform,
    OrderStatus: pb.OrderStatus,
}


def uuid_field(value: str, field: str) -> uuid.UUID:
    """``value`` as a UUID. Raises :class:`InvalidInput` (422) naming ``field``."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be a UUID", loc=[field], type="uuid_parsing") from exc


def validated(model: type[M], fields: dict[str, Any]) -> M:
    """``model`` validated from ``fields``, as an HTTP body would be. Raises
    :class:`InvalidInput` (422) with the pydantic errors."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid input"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        raise InvalidInput(detail, errors=errors) from exc


def enum_in(kind: type[E], value: int) -> str | None:
    """A proto enum number as the schema's value (``None`` for ``*_UNSPECIFIED``)."""
    if value == 0:
        return None
    name: str = _PROTO_ENUM[kind].Name(value)
    return str(kind[name.removeprefix(_PREFIX[kind])].value)


def enum_out(kind: type[E], value: E | str | None) -> int:
    """A schema enum value as the proto enum number (0 for none)."""
    if value is None:
        return 0
    member = kind(value)
    number: int = _PROTO_ENUM[kind].Value(_PREFIX[kind] + member.name)
    return number


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def datetime_in(message: Message, field: str) -> datetime | None:
    """The Timestamp ``field`` of ``message`` as an aware UTC datetime, None if unset."""
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(value)
    return out


def struct_in(message: Message, field: str) -> dict[str, Any] | None:
    if not message.HasField(field):
        return None
    data: dict[str, Any] = json_format.MessageToDict(getattr(message, field))
    return data


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def stats_out(stats: StatsRead) -> pb.CustomerStats:
    return pb.CustomerStats(
        total_orders=stats.total_orders,
        total_spent=stats.total_spent,
        average_order_value=stats.average_order_value,
        lifetime_value=stats.lifetime_value,
        first_order_date=_date(stats.first_order_date),
        last_order_date=_date(stats.last_order_date),
        total_appointments=stats.total_appointments,
        last_appointment_date=_date(stats.last_appointment_date),
        currency=stats.currency,
    )


def customer_out(c: CustomerRead) -> pb.Customer:
    """A :class:`CustomerRead` as ``patron.v1.Customer`` (no access token, as over HTTP)."""
    return pb.Customer(
        id=str(c.id),
        tenant_id=c.tenant_id,
        email=c.email,
        phone=c.phone,
        first_name=c.first_name,
        last_name=c.last_name,
        full_name=c.full_name,
        gender=c.gender,
        birth_date=_date(c.birth_date),
        locale=c.locale,
        timezone=c.timezone,
        avatar_url=c.avatar_url,
        profile_pic_url=c.profile_pic_url,
        status=enum_out(CustomerStatus, c.status),  # type: ignore[arg-type]
        customer_type=enum_out(CustomerType, c.customer_type),  # type: ignore[arg-type]
        platform=enum_out(Platform, c.platform),  # type: ignore[arg-type]
        app_id=c.app_id,
        psid=c.psid,
        igsid=c.igsid,
        user_id=c.user_id,
        external_ids=c.external_ids,
        has_access_token=c.has_access_token,
        marketing_opt_in=c.marketing_opt_in,
        tags=c.tags,
        attributes=struct(c.attributes),
        preferences=struct(c.preferences),
        last_interaction_at=timestamp(c.last_interaction_at),
        blocked_at=timestamp(c.blocked_at),
        block_reason=c.block_reason,
        profile_fetched_at=timestamp(c.profile_fetched_at),
        stats=stats_out(c.stats),
        version=c.version,
        created_at=timestamp(c.created_at),
        updated_at=timestamp(c.updated_at),
    )


_UPSERT_OPTIONAL = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "locale",
    "timezone",
    "avatar_url",
    "profile_pic_url",
    "app_id",
    "psid",
    "igsid",
    "user_id",
    "access_token",
    "marketing_opt_in",
)


def upsert_in(request: pb.UpsertCustomerRequest) -> CustomerUpsert:
    """The fields set in ``request`` as a :class:`CustomerUpsert`. Raises 422."""
    message: Message = request  # field names checked at run time, not by the stubs
    fields: dict[str, Any] = {
        name: getattr(request, name) for name in _UPSERT_OPTIONAL if message.HasField(name)
    }
    for name, kind in (
        ("status", CustomerStatus),
        ("customer_type", CustomerType),
        ("platform", Platform),
    ):
        value = enum_in(kind, getattr(request, name))
        if value is not None:
            fields[name] = value
    if request.external_ids:
        fields["external_ids"] = dict(request.external_ids)
    if request.HasField("tags"):
        fields["tags"] = list(request.tags.values)
    for name in ("attributes", "preferences"):
        data = struct_in(request, name)
        if data is not None:
            fields[name] = data
    return validated(CustomerUpsert, fields)


def order_in(request: pb.RecordOrderRequest) -> OrderRecord:
    """The fields set in ``request`` as an :class:`OrderRecord`. Raises 422."""
    fields: dict[str, Any] = {"order_id": request.order_id}
    message: Message = request
    for name in ("total", "currency"):
        if message.HasField(name):
            fields[name] = getattr(request, name)
    status = enum_in(OrderStatus, request.status)
    if status is not None:
        fields["status"] = status
    placed_at = datetime_in(request, "placed_at")
    if placed_at is not None:
        fields["placed_at"] = placed_at
    metadata = struct_in(request, "metadata")
    if metadata is not None:
        fields["metadata"] = metadata
    return validated(OrderRecord, fields)


def order_out(o: OrderRead) -> pb.Order:
    return pb.Order(
        id=str(o.id),
        customer_id=str(o.customer_id),
        order_id=o.order_id,
        total=pb.Money(amount=o.total, currency=o.currency),
        status=enum_out(OrderStatus, o.status),  # type: ignore[arg-type]
        placed_at=timestamp(o.placed_at),
        metadata=struct(o.metadata),
        created_at=timestamp(o.created_at),
        updated_at=timestamp(o.updated_at),
    )
