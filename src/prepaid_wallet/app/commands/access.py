"""The command that sets a tenant's access policy (which roles may run which operations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs

from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.commands.versions import SetVersion
from prepaid_wallet.app.pipeline import operations
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from prepaid_wallet.rules.access import AccessPolicy

__all__ = ["SetAccessPolicy"]


@attrs.frozen(kw_only=True)
class SetAccessPolicy(SetVersion):
    """Store ``policy`` (an :class:`~prepaid_wallet.rules.access.AccessPolicy`) as the
    tenant's next version (see :class:`~prepaid_wallet.app.commands.SetVersion`). Every
    operation it names must be one of the library's (:func:`operations`), or ``"*"``.

    It is authorized like any command, against the policy in force when it runs: the first
    policy by any actor, the next ones by an actor the current policy permits
    ``set_access_policy``."""

    operation: ClassVar[str] = "set_access_policy"
    handler: ClassVar[str] = f"{_HANDLERS}.access:set_access_policy"
    value_field: ClassVar[str] = "policy"

    policy: AccessPolicy

    def check_value(self) -> None:
        from prepaid_wallet.rules.access import ALL, AccessPolicy

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
