"""The command that sets a tenant's access policy (which roles may run which operations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from prepaid_wallet.app.access import StoredPolicy, encode
from prepaid_wallet.app.checks import check_optional_text
from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.pipeline import Command, LockSpec, NoWallet, operations
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.actors import Actor
    from prepaid_wallet.rules.access import AccessPolicy

__all__ = ["SetAccessPolicy"]


@attrs.frozen(kw_only=True)
class SetAccessPolicy(Command[StoredPolicy]):
    """Store ``policy`` (an :class:`~prepaid_wallet.rules.access.AccessPolicy`) as the
    tenant's next version; a policy equal to the current version's writes nothing and returns
    it. Every operation it names must be one of the library's (:func:`operations`), or
    ``"*"``.

    It locks no wallet (``NoWallet``); it is authorized like any command, against the policy
    in force when it runs: the first policy by any actor, the next ones by an actor the
    current policy permits ``set_access_policy``."""

    operation: ClassVar[str] = "set_access_policy"
    locks: ClassVar[LockSpec] = NoWallet("tenant_id")
    handler: ClassVar[str] = f"{_HANDLERS}.access:set_access_policy"
    result: ClassVar[Any] = StoredPolicy

    tenant_id: str
    policy: AccessPolicy
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None
    reason: str | None = None

    def validate(self) -> None:
        from prepaid_wallet.rules.access import ALL, AccessPolicy

        check_name(self.tenant_id, "tenant_id")
        if not isinstance(self.policy, AccessPolicy):
            raise InvalidInputError("policy", "must be an AccessPolicy", self.policy)
        known = operations()
        for role, names in self.policy.roles.items():
            unknown = sorted(name for name in names if name != ALL and name not in known)
            if unknown:
                raise InvalidInputError(
                    f"policy.roles[{role!r}]",
                    f"must name known operations or '*' (unknown: {', '.join(unknown)};"
                    f" known: {', '.join(sorted(known))})", unknown[0])
        check_optional_text(self.reason, "reason", required=False)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        found = {"tenant_id": self.tenant_id, "policy": encode(self.policy),
                 "metadata": metadata}
        if self.reason is not None:
            found["reason"] = self.reason
        return found
