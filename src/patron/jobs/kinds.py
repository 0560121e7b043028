"""Job kinds: what a background job does, declared once (name, handler, retry policy).

A kind is registered in a :class:`JobRegistry` (the process-wide one is :data:`KINDS`),
usually with its decorator::

    @KINDS.kind("customers.fetch_profile", retry=RetryPolicy(attempts=8))
    async def fetch_profile(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        await ProfileService(ctx).fetch(uuid.UUID(payload["customer_id"]))

and deferred from a service operation with :meth:`patron.jobs.service.JobService.defer`.
The handler is a transport like an HTTP route (CONTRIBUTING.md): it gets a
:class:`~patron.usecases.ServiceContext` of the job's tenant and calls one service
operation, which opens its own unit of work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from patron.kit.backoff import capped_exponential
from patron.usecases import ServiceContext

Handler = Callable[[ServiceContext, dict[str, Any]], Awaitable[None]]

# ``kind`` column width (models.job); names are dotted, ``<domain>.<action>``.
MAX_KIND_LENGTH = 100


class DoNotRetry(Exception):
    """Raised by a handler for a failure that retrying cannot mend (a revoked token, a
    deleted customer): the job is failed at once. Its message is shown as the job's
    ``last_error`` (``patron jobs list``): say what failed, never a secret."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing job runs and how long it waits in between.

    ``attempts`` is the total number of runs (1: never retried). After failed attempt
    ``n`` (1-based) the job waits ``min(backoff_max, backoff_initial * 2^(n-1))`` seconds
    times a random factor in [0.5, 1] ("equal jitter", AWS Architecture Blog,
    "Exponential Backoff And Jitter"), so that many failing jobs do not retry in lockstep.
    """

    attempts: int = 5
    backoff_initial: float = 10.0
    backoff_max: float = 3600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a job runs at least once (attempts >= 1)")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("backoff seconds cannot be negative")

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) failed runs."""
        return capped_exponential(
            failed_attempts - 1,
            initial=self.backoff_initial,
            maximum=self.backoff_max,
            jitter=(0.5, 1.0),
        )


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job: its unique dotted ``name`` (stored in each job row), the async
    ``handler`` that runs it, and its :class:`RetryPolicy`."""

    name: str
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_KIND_LENGTH:
            raise ValueError(f"a job kind name has 1..{MAX_KIND_LENGTH} characters")


class JobRegistry:
    """The job kinds a process knows, by name. A worker claims only jobs of the kinds in
    its registry, so a rolling deploy's older workers leave a new kind's jobs to newer
    ones instead of failing them."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> JobKind:
        """Add ``kind``; ``ValueError`` if another kind already has its name."""
        known = self._kinds.get(kind.name)
        if known is not None and known is not kind:
            raise ValueError(f"job kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind
        return kind

    def kind(self, name: str, *, retry: RetryPolicy | None = None) -> Callable[[Handler], JobKind]:
        """Decorator: register the decorated handler as job kind ``name``; the decorated
        name becomes the :class:`JobKind` (what ``defer`` takes)."""

        def decorate(handler: Handler) -> JobKind:
            return self.register(JobKind(name, handler, retry or RetryPolicy()))

        return decorate

    def get(self, name: str) -> JobKind | None:
        """The kind called ``name``, or None."""
        return self._kinds.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._kinds)


# The process-wide registry: domain packages register their kinds here at import, and the
# worker of `patron worker` / `patron serve` runs them.
KINDS = JobRegistry()
