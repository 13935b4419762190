"""A stored version of a tenant's configuration (its rules, its access policy), and who set it:
the fields every kind shares, as the service returns them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

__all__ = ["ConfigVersion"]


@attrs.frozen(kw_only=True)
class ConfigVersion:
    """One stored version of a tenant's configuration, and who set it.

    ``version`` counts from 1 per tenant; ``set_at`` is the instant of the command that set it
    (aware, UTC), with its ``actor`` (the id of the call's actor, else the service's),
    ``idempotency_key``, ``metadata`` and ``reason`` (why it was set; None when none was
    given). A version is never changed: setting another value makes the next one. A subclass
    adds the value, in the field ``value_field`` names.
    """

    value_field: ClassVar[str]

    tenant_id: str
    version: int
    set_at: datetime
    actor: str | None = None
    idempotency_key: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    reason: str | None = None

    def to_data(self) -> dict[str, Any]:
        """JSON-able data: ``{"tenant_id", "version", "set_at" (ISO 8601, UTC), "actor",
        "idempotency_key", "metadata", "reason", <value_field>: the value's ``to_data()``}``."""
        return {
            "tenant_id": self.tenant_id,
            "version": self.version,
            "set_at": self.set_at.isoformat(),
            "actor": self.actor,
            "idempotency_key": self.idempotency_key,
            "metadata": dict(self.metadata),
            "reason": self.reason,
            self.value_field: getattr(self, self.value_field).to_data(),
        }
