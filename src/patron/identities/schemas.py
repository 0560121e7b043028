"""Identity keys."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PSID = "psid"
    IGSID = "igsid"
    USER_ID = "user_id"
    EXTERNAL = "external"


class IdentityKey(NamedTuple):
    """``(kind, namespace, value)``; namespace is the app id (PSID / IGSID), the system
    (external ids) or ``""``. Values are stored normalised (email lower-cased, phone E.164)."""

    kind: IdentityKind
    namespace: str
    value: str

    def as_json(self) -> dict[str, str]:
        """``{"kind", "namespace", "value"}``: how problem bodies and the merge journal name it."""
        return {"kind": str(self.kind), "namespace": self.namespace, "value": self.value}

    def describe(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.value}"
