"""What one tenant configures: its fee rules, periodic fees, limits, low-balance thresholds,
automatic top-ups, spend order, default payment mode and how far ahead holds and awards may
expire.

The rules live in the store, in versions: ``WalletService.set_tenant_rules`` stores a new
version and every process that opens the store applies it from its next command on
(``WalletService(rules={tenant_id: TenantRules(...)})`` stores them too, as a convenience).
:meth:`TenantRules.to_data` and :meth:`TenantRules.from_data` are the JSON form they are stored,
shown and set in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

import attrs

from prepaid_wallet._data import money_from_data, money_to_data
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode, SpendOrder
from prepaid_wallet.rules.customer_top_ups import CustomerTopUpRules
from prepaid_wallet.rules.fees import FeeRule, PeriodicFee
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.reminders import LowBalanceRule
from prepaid_wallet.rules.versions import ConfigVersion

__all__ = [
    "DEFAULT_AWARD_HORIZON_DAYS",
    "DEFAULT_HOLD_HORIZON_DAYS",
    "MAX_HORIZON_DAYS",
    "TenantRules",
    "TenantRulesVersion",
]

#: How far ahead a hold may end by default: 31 days, as long as the longest card
#: authorizations last (a hold is money a customer cannot spend meanwhile).
DEFAULT_HOLD_HORIZON_DAYS: Final = 31
#: How far ahead an award (a lot) may expire by default: ten years (3653 days, leap days
#: included). An award that never expires is not bounded by it.
DEFAULT_AWARD_HORIZON_DAYS: Final = 3653
#: The largest horizon a tenant may set: a hundred years.
MAX_HORIZON_DAYS: Final = 36525


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


def _spend_order(value: object) -> SpendOrder:
    if not isinstance(value, SpendOrder):
        raise InvalidInputError("spend_order", "must be a SpendOrder", value)
    return value


def _default_floors(value: object) -> tuple[Money, ...]:
    floors: tuple[Money, ...] = _items(value, Money, "default_floors")
    seen: set[str] = set()
    for index, floor in enumerate(floors):
        if floor.is_positive():
            raise InvalidAmountError(f"default_floors[{index}]", "must be zero or negative",
                                     floor)
        if floor.currency in seen:
            raise InvalidInputError("default_floors", "must have one floor per currency",
                                    floors)
        seen.add(floor.currency)
    return floors


def _money(value: object) -> Money:
    return money_from_data(value, "money")
def _customer_top_ups(value: object) -> CustomerTopUpRules:
    if not isinstance(value, CustomerTopUpRules):
        raise InvalidInputError("customer_top_ups", "must be a CustomerTopUpRules", value)
    return value


def _horizon(value: object, field: str) -> int:
    # An int subclass is read as the int it holds (its own comparisons may lie).
    days = None if isinstance(value, bool) or not isinstance(value, int) else int.__index__(value)
    if days is None or not 1 <= days <= MAX_HORIZON_DAYS:
        raise InvalidInputError(field, f"must be an int from 1 to {MAX_HORIZON_DAYS} (days)",
                                value)
    return days


def _hold_horizon(value: object) -> int:
    return _horizon(value, "hold_horizon_days")


def _award_horizon(value: object) -> int:
    return _horizon(value, "award_horizon_days")


def _payment_mode(value: object) -> PaymentMode:
    if not isinstance(value, PaymentMode):
        raise InvalidInputError("payment_mode", "must be a PaymentMode", value)
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
    * ``spend_order`` -- which of the tenant's lots pays first
      (:class:`~prepaid_wallet.policies.SpendOrder`, default ``SpendOrder.DEFAULT``); a service
      built with ``spend_order=`` uses its own order instead, in that process.
    * ``payment_mode`` -- the :class:`~prepaid_wallet.policies.PaymentMode` of a spend request
      that names none (``SpendRequest(mode=None)``, the default); default ``CREDIT_ONLY``.
    * ``member_payment_modes`` -- whether a member may have a payment mode of its own, which
      overrides ``payment_mode`` for its requests (``WalletService.set_payment_mode``); only
      then does a spend without a mode read the member's setting. Default ``False``.
    * ``default_floors`` -- the floor (zero or negative) a new wallet in each currency gets when
      ``WalletService.open_wallet`` names none, one per currency; a currency without one gets
      zero. Changing it does not change the floor of wallets already open
      (``WalletService.set_floor`` does, one wallet at a time).
    * ``customer_top_ups`` -- the bounds and lifetime of customer top-ups
      (:class:`~prepaid_wallet.rules.customer_top_ups.CustomerTopUpRules`; default: no bounds
      of their own, a lifetime of one day).
    * ``hold_horizon_days`` -- how many days ahead a hold may end at most (its ``expires_at``,
      or the end of its ``window``); default 31 (:data:`DEFAULT_HOLD_HORIZON_DAYS`).
    * ``award_horizon_days`` -- how many days ahead a lot may expire at most (``award`` and
      ``extend_expiry``; a lot that never expires is not bounded); default 3653, ten years
      (:data:`DEFAULT_AWARD_HORIZON_DAYS`). Both from 1 to :data:`MAX_HORIZON_DAYS`; a day is
      24 hours of elapsed time.

    Raises ``InvalidInputError`` naming the field for a value of the wrong type, and
    ``"periodic_fees"`` for two periodic fees of one name.
    """

    fees: tuple[FeeRule, ...] = attrs.field(default=(), converter=_fees)
    periodic_fees: tuple[PeriodicFee, ...] = attrs.field(default=(), converter=_periodic)
    limits: Limits = attrs.field(factory=Limits, converter=_limits)
    low_balance: LowBalanceRule | None = attrs.field(default=None, converter=_low_balance)
    automatic_top_ups: bool = False
    spend_order: SpendOrder = attrs.field(default=SpendOrder.DEFAULT, converter=_spend_order)
    payment_mode: PaymentMode = attrs.field(default=PaymentMode.CREDIT_ONLY,
                                            converter=_payment_mode)
    member_payment_modes: bool = False
    default_floors: tuple[Money, ...] = attrs.field(default=(), converter=_default_floors)
    customer_top_ups: CustomerTopUpRules = attrs.field(factory=CustomerTopUpRules,
                                                       converter=_customer_top_ups)
    hold_horizon_days: int = attrs.field(default=DEFAULT_HOLD_HORIZON_DAYS,
                                         converter=_hold_horizon)
    award_horizon_days: int = attrs.field(default=DEFAULT_AWARD_HORIZON_DAYS,
                                          converter=_award_horizon)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.automatic_top_ups, bool):
            raise InvalidInputError("automatic_top_ups", "must be a bool", self.automatic_top_ups)
        if not isinstance(self.member_payment_modes, bool):
            raise InvalidInputError("member_payment_modes", "must be a bool",
                                    self.member_payment_modes)
        names = [fee.name for fee in self.periodic_fees]
        if len(set(names)) != len(names):
            raise InvalidInputError("periodic_fees", "must have distinct names", names)

    def default_floor(self, currency: str) -> Money:
        """The floor of a new wallet in ``currency`` that names none: the tenant's default for
        the currency, else zero."""
        for floor in self.default_floors:
            if floor.currency == currency:
                return floor
        return Money.zero(currency)

    def to_data(self) -> dict[str, Any]:
        """The rules as JSON-able data, every key present; :meth:`from_data` rebuilds equal
        rules::

            {"fees": [<FeeRule.to_data()>, ...],
             "periodic_fees": [<PeriodicFee.to_data()>, ...],
             "limits": <Limits.to_data()>,
             "low_balance": <LowBalanceRule.to_data()> or null,
             "automatic_top_ups": false,
             "spend_order": "default",
             "payment_mode": "credit_only",
             "member_payment_modes": false,
             "default_floors": [<Money>, ...],
             "customer_top_ups": <CustomerTopUpRules.to_data()>,
             "hold_horizon_days": 31,
             "award_horizon_days": 3653}

        Money is ``{"minor": <int>, "currency": <code>}``, instants ISO 8601 text with an
        offset, the spend order and payment mode their enum values.
        """
        return {
            "fees": [fee.to_data() for fee in self.fees],
            "periodic_fees": [fee.to_data() for fee in self.periodic_fees],
            "limits": self.limits.to_data(),
            "low_balance": None if self.low_balance is None else self.low_balance.to_data(),
            "automatic_top_ups": self.automatic_top_ups,
            "spend_order": self.spend_order.value,
            "payment_mode": self.payment_mode.value,
            "member_payment_modes": self.member_payment_modes,
            "default_floors": [money_to_data(floor) for floor in self.default_floors],
            "customer_top_ups": self.customer_top_ups.to_data(),
            "hold_horizon_days": self.hold_horizon_days,
            "award_horizon_days": self.award_horizon_days,
        }

    @classmethod
    def from_data(cls, data: object) -> TenantRules:
        """Rebuild rules from :meth:`to_data` output (a key left out takes its default),
        validating them like the constructors.

        Raises ``InvalidInputError`` (or the subclass the value's own check raises:
        ``InvalidAmountError``, ``CurrencyMismatchError``...) whose ``field`` is the path of
        the value at fault: ``"tenant_rules"`` for a non-mapping or an unknown key, then e.g.
        ``"fees[1].percent"``, ``"periodic_fees[0].zone"``, ``"limits.max_balance"``,
        ``"limits.rules[0].window.period"``, ``"low_balance.thresholds[2].label"``,
        ``"automatic_top_ups"``, ``"spend_order"``, ``"payment_mode"``,
        ``"member_payment_modes"``, ``"default_floors[0]"``, ``"customer_top_ups.minimum"``,
        ``"hold_horizon_days"``, ``"award_horizon_days"``.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError("tenant_rules", "must be a mapping (a JSON object)", data)
        for key in data:
            if key not in _KEYS:
                raise InvalidInputError("tenant_rules", f"has an unknown key {key!r} (known: "
                                        f"{', '.join(_KEYS)})", data)
        values: dict[str, Any] = {}
        if "fees" in data:
            values["fees"] = _decoded_list(data["fees"], "fees", FeeRule.from_data, "fee_rule")
        if "periodic_fees" in data:
            values["periodic_fees"] = _decoded_list(
                data["periodic_fees"], "periodic_fees", PeriodicFee.from_data, "periodic_fee")
        if "limits" in data:
            values["limits"] = _decoded(data["limits"], "limits", Limits.from_data, "limits")
        if data.get("low_balance") is not None:
            values["low_balance"] = _decoded(data["low_balance"], "low_balance",
                                             LowBalanceRule.from_data, "low_balance")
        if "automatic_top_ups" in data:
            values["automatic_top_ups"] = data["automatic_top_ups"]
        if "spend_order" in data:
            values["spend_order"] = _enum(SpendOrder, data["spend_order"], "spend_order")
        if "payment_mode" in data:
            values["payment_mode"] = _enum(PaymentMode, data["payment_mode"], "payment_mode")
        if "member_payment_modes" in data:
            values["member_payment_modes"] = data["member_payment_modes"]
        if "default_floors" in data:
            values["default_floors"] = _decoded_list(data["default_floors"], "default_floors",
                                                     _money, "money")
        if data.get("customer_top_ups") is not None:
            values["customer_top_ups"] = _decoded(
                data["customer_top_ups"], "customer_top_ups", CustomerTopUpRules.from_data,
                "customer_top_ups")
        for horizon in ("hold_horizon_days", "award_horizon_days"):
            if horizon in data:
                values[horizon] = data[horizon]
        return cls(**values)


_KEYS: Final = ("fees", "periodic_fees", "limits", "low_balance", "automatic_top_ups",
                "spend_order", "payment_mode", "member_payment_modes", "default_floors",
                "customer_top_ups", "hold_horizon_days", "award_horizon_days")
_RENAMEABLE: Final = (InvalidTimeError, InvalidCurrencyError, InvalidAmountError)


def _at(exc: InvalidInputError, path: str, whole: str) -> InvalidInputError:
    """``exc`` again, of the same kind, naming its field under ``path`` (``whole``, the name the
    value's own ``from_data`` gives the value as a whole, becomes ``path`` itself)."""
    field = path if exc.field == whole else f"{path}.{exc.field}"
    if isinstance(exc, CurrencyMismatchError):
        return CurrencyMismatchError(exc.left, exc.right, field)
    for kind in _RENAMEABLE:
        if isinstance(exc, kind):
            return kind(field, exc.rule, exc.value)
    return InvalidInputError(field, exc.rule, exc.value)


def _decoded(value: object, path: str, decode: Any, whole: str) -> Any:
    try:
        return decode(value)
    except InvalidInputError as exc:
        raise _at(exc, path, whole) from exc


def _decoded_list(value: object, path: str, decode: Any, whole: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(path, "must be a list", value)
    return [_decoded(item, f"{path}[{index}]", decode, whole)
            for index, item in enumerate(value)]


def _enum(kind: Any, value: object, field: str) -> Any:
    names = [member.value for member in kind]
    if not isinstance(value, str) or value not in names:
        raise InvalidInputError(field, f"must be one of {', '.join(names)}", value)
    return kind(value)


@attrs.frozen(kw_only=True)
class TenantRulesVersion(ConfigVersion):
    """One stored version of a tenant's rules, and who set it (what
    ``WalletService.set_tenant_rules`` returns, and ``tenant_rules_history`` lists; the fields
    of :class:`~prepaid_wallet.rules.versions.ConfigVersion`, and ``rules``)."""

    value_field: ClassVar[str] = "rules"

    rules: TenantRules
