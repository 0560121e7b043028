"""Errors of the orders domain (orders, appointments, inbound events), rendered by the one
problem+json handler."""

from __future__ import annotations

from patron.errors import Conflict, NotFound


class OrderTaken(Conflict):
    """409: the ``order_id`` is recorded for another customer of the tenant."""

    def __init__(self, order_id: str) -> None:
        super().__init__("this order_id is recorded for another customer", order_id=order_id)


class AppointmentTaken(Conflict):
    """409: the ``appointment_id`` is recorded for another customer of the tenant."""

    def __init__(self, appointment_id: str) -> None:
        super().__init__(
            "this appointment_id is recorded for another customer", appointment_id=appointment_id
        )


class CustomerIdentityNotFound(NotFound):
    """404: an inbound event names a customer by identities no live customer holds (yet);
    ``identity`` lists their kinds. The consumer retries such a message."""

    def __init__(self, kinds: list[str]) -> None:
        super().__init__("no customer with this identity", identity=kinds)
