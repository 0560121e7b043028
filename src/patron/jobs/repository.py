"""``jobs`` rows of one tenant (the scoped repository base adds the tenant filter)."""

from __future__ import annotations

from patron.db.repository import TenantScopedRepository
from patron.models import Job


class JobRepository(TenantScopedRepository[Job]):
    model = Job
