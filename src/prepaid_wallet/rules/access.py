"""A tenant's access policy: which roles may run which operations.

An :class:`AccessPolicy` maps each role to the operations its holders may run (the
``operation`` names of the write commands, e.g. ``"spend"``, ``"top_up"``; :data:`ALL`,
``"*"``, for every one). It lives in the store, in versions, like the tenant's rules
(``WalletService.set_access_policy``). Once a tenant has a policy, access is denied by
default: an actor may run an operation only if one of its roles permits it. A tenant without
a policy lets every actor run every operation. See docs/authorization.md.

This module checks a policy's shape (role names, operation names as names); which operation
names exist is known to the application, which refuses unknown ones when a policy is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

import attrs

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.rules.versions import ConfigVersion

__all__ = ["ALL", "AccessPolicy", "AccessPolicyVersion"]

#: The operation name that stands for every operation.
ALL: Final = "*"


def _operations(value: object, field: str) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(field, "must be a collection of operation names", value)
    found = frozenset(value)
    for name in found:
        if name != ALL:
            check_name(name, field)
    return found


def _roles(value: object) -> dict[str, frozenset[str]]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("policy.roles", "must map role names to operation names",
                                value)
    roles: dict[str, frozenset[str]] = {}
    for role in sorted(value, key=str):
        check_name(role, "policy.roles")
        roles[role] = _operations(value[role], f"policy.roles[{role!r}]")
    return roles


@attrs.frozen
class AccessPolicy:
    """Which operations each role permits: ``roles`` maps a role name to operation names
    (``"*"``: all). A role with no operations permits nothing (listing it says so).

    >>> policy = AccessPolicy({"cashier": {"spend", "top_up"}, "admin": {"*"}})
    >>> policy.permits({"cashier"}, "spend"), policy.permits({"cashier"}, "payout")
    (True, False)
    """

    roles: Mapping[str, frozenset[str]] = attrs.field(converter=_roles)

    def permits(self, roles: Iterable[str], operation: str) -> bool:
        """Whether one of ``roles`` permits ``operation``."""
        for role in roles:
            allowed = self.roles.get(role)
            if allowed is not None and (operation in allowed or ALL in allowed):
                return True
        return False

    def operations(self) -> frozenset[str]:
        """Every operation name the policy mentions (``"*"`` included)."""
        return frozenset().union(*self.roles.values())

    def to_data(self) -> dict[str, Any]:
        """JSON-able data: ``{"roles": {role: [operation, ...]}}`` (sorted)."""
        return {"roles": {role: sorted(ops) for role, ops in self.roles.items()}}

    @classmethod
    def from_data(cls, data: object) -> AccessPolicy:
        """The policy :meth:`to_data` gave (``InvalidInputError`` naming what is wrong)."""
        if not isinstance(data, Mapping) or set(data) != {"roles"}:
            raise InvalidInputError("policy", 'must be an object {"roles": {role: [operation,'
                                    ' ...]}}', data)
        roles = data["roles"]
        if isinstance(roles, Mapping):
            for role, ops in roles.items():
                if not isinstance(ops, list):
                    raise InvalidInputError(f"policy.roles[{role!r}]",
                                            "must be a list of operation names", ops)
        return cls(roles)


@attrs.frozen(kw_only=True)
class AccessPolicyVersion(ConfigVersion):
    """One stored version of a tenant's access policy, and who set it (what
    ``WalletService.set_access_policy`` returns, ``access_policy`` reads and
    ``access_policy_history`` lists; the fields of
    :class:`~prepaid_wallet.rules.versions.ConfigVersion`, and ``policy``)."""

    value_field: ClassVar[str] = "policy"

    policy: AccessPolicy
