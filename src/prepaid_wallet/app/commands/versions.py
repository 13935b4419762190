"""The commands that store a versioned tenant configuration: the shape they share
(:class:`SetVersion`) and the tenant's rules (:class:`SetTenantRules`); the access policy's is
in :mod:`prepaid_wallet.app.commands.access`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from prepaid_wallet.app.checks import check_optional_text
from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.pipeline import Command, LockSpec, NoWallet
from prepaid_wallet.app.versions import StoredVersion, Versioned
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.actors import Actor
    from prepaid_wallet.rules.tenant import TenantRules

__all__ = ["SetTenantRules", "SetVersion"]


@attrs.frozen(kw_only=True)
class SetVersion(Command[StoredVersion]):
    """Store a value of a versioned tenant configuration (:mod:`prepaid_wallet.app.versions`)
    as the tenant's next version; a value equal to the current version's writes nothing and
    returns it. ``value_field`` names the subclass's field that holds the value.

    It locks no wallet (``NoWallet``: the service must be allowed to act for the tenant). Two
    sets of one tenant's value at once cannot both become version ``n``: the versions' unique
    value makes the later commit raise ``ConflictError`` (on PostgreSQL; the other stores run
    write units one at a time), and running it again makes version ``n + 1``."""

    locks: ClassVar[LockSpec] = NoWallet("tenant_id")
    result: ClassVar[Any] = StoredVersion
    value_field: ClassVar[str]

    tenant_id: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None
    reason: str | None = None

    def validate(self) -> None:
        check_name(self.tenant_id, "tenant_id")
        self.check_value()
        check_optional_text(self.reason, "reason", required=False)

    def check_value(self) -> None:
        """Check the value (pure); ``InvalidInputError`` naming its field."""

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        found = {"tenant_id": self.tenant_id,
                 self.value_field: Versioned.encode(getattr(self, self.value_field)),
                 "metadata": metadata}
        if self.reason is not None:  # without one, the fingerprint of before reasons existed
            found["reason"] = self.reason
        return found


@attrs.frozen(kw_only=True)
class SetTenantRules(SetVersion):
    """Store ``rules`` (a :class:`~prepaid_wallet.rules.tenant.TenantRules`) as the tenant's
    next version (see :class:`SetVersion`)."""

    operation: ClassVar[str] = "set_tenant_rules"
    handler: ClassVar[str] = f"{_HANDLERS}.tenant_rules:set_tenant_rules"
    value_field: ClassVar[str] = "rules"

    rules: TenantRules

    def check_value(self) -> None:
        from prepaid_wallet.rules.tenant import TenantRules

        if not isinstance(self.rules, TenantRules):
            raise InvalidInputError("rules", "must be a TenantRules", self.rules)
