"""One table from :class:`patron.errors.PatronError` to gRPC status codes (API.md "gRPC").

The table maps the HTTP status each error already carries, so every domain error (a
subclass declared in any package) maps the same way as it renders over HTTP. A 422
(:class:`patron.errors.InvalidInput`) carries its field errors as ``google.rpc.BadRequest``
field violations in the status details (``grpc-status-details-bin``, read back with
``grpc_status.rpc_status.from_call``); a 429 or 503 carries ``google.rpc.RetryInfo``.
Codes: https://grpc.github.io/grpc/core/md_doc_statuscodes.html.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from patron.errors import PatronError

STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
}


def code_for(error: PatronError) -> grpc.StatusCode:
    """The gRPC code of ``error``: by its HTTP status, INTERNAL for any status not in
    :data:`STATUS_CODES` (a 500)."""
    return STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)


def status_for(error: PatronError) -> grpc.Status:
    """``error`` as a rich gRPC status (code, ``detail`` as the message, details).

    ``grpc.Status`` carries ``code``, ``details`` and ``trailing_metadata`` (with
    ``grpc-status-details-bin``), ready for ``ServicerContext.abort``.
    """
    code = code_for(error)
    details: list[Any] = []
    violations = _field_violations(error.extra.get("errors"))
    if violations:
        details.append(error_details_pb2.BadRequest(field_violations=violations))
    retry_after = error.extra.get("retry_after")
    if isinstance(retry_after, int):
        details.append(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after))
        )
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    message = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=error.detail, details=packed
    )
    return rpc_status.to_status(message)


def _field_violations(errors: Any) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """Pydantic-shaped ``{"loc", "msg"}`` errors as field violations (``loc`` joined by
    ``.``, as google.rpc.BadRequest's ``field`` path)."""
    if not isinstance(errors, list):
        return []
    return [
        error_details_pb2.BadRequest.FieldViolation(
            field=".".join(str(p) for p in err.get("loc", ())),
            description=str(err.get("msg", "")),
        )
        for err in errors
        if isinstance(err, dict)
    ]
