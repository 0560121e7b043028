"""Background jobs: one PostgreSQL-backed runner for every kind of background work
(profile fetches, imports, exports, GDPR exports, CRM sync, segment refresh).

- :mod:`patron.jobs.kinds`: declaring a kind (name, handler, :class:`RetryPolicy`) and the
  :class:`DoNotRetry` error.
- :mod:`patron.jobs.service`: :class:`JobService.defer`, inside the caller's unit of work.
- :mod:`patron.jobs.worker`: the worker (``patron worker``, ``patron serve``).
- :mod:`patron.jobs.listing`: every tenant's jobs for the operator (``patron jobs list``).

docs/decisions/0017-background-jobs.md says why Patron runs its own small runner.
"""

from patron.jobs.kinds import KINDS, DoNotRetry, JobKind, JobRegistry, RetryPolicy

__all__ = ["KINDS", "DoNotRetry", "JobKind", "JobRegistry", "RetryPolicy"]
