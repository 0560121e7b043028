"""Errors of the events API, rendered by the one problem+json handler."""

from __future__ import annotations

from patron.errors import Conflict, InvalidInput, NotFound


class EventNotFound(NotFound):
    """404: no event with this id in the tenant."""

    def __init__(self) -> None:
        super().__init__("event not found")


class EventNotDeadLettered(Conflict):
    """409: requeue asked for an event the relay has not given up on."""

    def __init__(self) -> None:
        super().__init__("the event is not dead-lettered")


class UnknownAfter(InvalidInput):
    """422 at ``query.after``: the position to continue from is not an event of this
    tenant."""

    def __init__(self) -> None:
        super().__init__("after is not the id of an event of this tenant", loc=["query", "after"])
