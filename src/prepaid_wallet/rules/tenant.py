"""What one tenant configures once: its fee rules, periodic fees, limits and low-balance
thresholds. The service takes a :class:`TenantRules` per tenant
(``WalletService(rules={tenant_id: TenantRules(...)})``); every application server of a
deployment is given the same rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.rules.fees import FeeRule, PeriodicFee
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.reminders import LowBalanceRule

__all__ = ["TenantRules"]


def _items(value: object, kind: type, field: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(field, f"must be a sequence of {kind.__name__}", value)
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise InvalidInputError(field, f"must be a sequence of {kind.__name__}", item)
    return items


def _fees(value: object) -> tuple[FeeRule, ...]:
    return _items(value, FeeRule, "fees")


def _periodic(value: object) -> tuple[PeriodicFee, ...]:
    return _items(value, PeriodicFee, "periodic_fees")


def _limits(value: object) -> Limits:
    if not isinstance(value, Limits):
        raise InvalidInputError("limits", "must be a Limits", value)
    return value


def _low_balance(value: object) -> LowBalanceRule | None:
    if value is not None and not isinstance(value, LowBalanceRule):
        raise InvalidInputError("low_balance", "must be a LowBalanceRule or None", value)
    return value


@attrs.frozen(kw_only=True)
class TenantRules:
    """A tenant's rules, all optional.

    * ``fees`` -- :class:`~prepaid_wallet.rules.fees.FeeRule` values, applied in this order, each
      to the operation's amount; a rule in another currency than a wallet's is skipped for it.
    * ``periodic_fees`` -- :class:`~prepaid_wallet.rules.fees.PeriodicFee` values (distinct
      names), charged by ``WalletService.charge_periodic_fees``.
    * ``limits`` -- the tenant's :class:`~prepaid_wallet.rules.limits.Limits`; a wallet may have
      stricter overrides (``WalletService.set_limits``).
    * ``low_balance`` -- the thresholds of the low-balance events.
    * ``automatic_top_ups`` -- whether the tenant's wallets may have automatic top-up rules
      (``WalletService.set_top_up_rule``); only then does an operation read a wallet's rule.
    """

    fees: tuple[FeeRule, ...] = attrs.field(default=(), converter=_fees)
    periodic_fees: tuple[PeriodicFee, ...] = attrs.field(default=(), converter=_periodic)
    limits: Limits = attrs.field(factory=Limits, converter=_limits)
    low_balance: LowBalanceRule | None = attrs.field(default=None, converter=_low_balance)
    automatic_top_ups: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.automatic_top_ups, bool):
            raise InvalidInputError("automatic_top_ups", "must be a bool", self.automatic_top_ups)
        names = [fee.name for fee in self.periodic_fees]
        if len(set(names)) != len(names):
            raise InvalidInputError("periodic_fees", "must have distinct names", names)
