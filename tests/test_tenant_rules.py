"""Stored tenant rules: the JSON form of ``TenantRules`` (exact round trips, bad data named by
its path), and the rules as the store keeps them -- versions set by a command, read by every
process, on every backend."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from prepaid_wallet import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
    Money,
    PaymentMode,
    SpendOrder,
)
from prepaid_wallet.rules.fees import FeeRule, PeriodicFee
from prepaid_wallet.rules.limits import LimitRule, Limits, Period, Window
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


CARD_FEE = FeeRule(name="card top-up", operations={Operation.TOP_UP}, fixed=eur("0.30"),
                   percent=Decimal("1.50"), minimum=eur("0.50"), maximum=eur("5.00"))
GUEST_FEE = FeeRule(name="guest spend", operations={Operation.SPEND, Operation.PAYOUT},
                    percent=Decimal(10), owner_groups={"guests", "visitors"})
MONTHLY = PeriodicFee(name="monthly", amount=eur("1.00"), rule="FREQ=MONTHLY;BYMONTHDAY=1",
                      start=T0, zone="Europe/Nicosia", owner_groups={"members"})
LIMITS = Limits(rules=[LimitRule(operation=Operation.SPEND, max_count=3, max_amount=eur("50.00"),
                                 window=Window(period=Period.DAY, zone="Europe/Nicosia"))],
                max_balance=eur("500.00"))
LOW = LowBalanceRule((Threshold(eur("30.00"), "warn"), Threshold(eur("40.00"), "notice")))

RICH = TenantRules(fees=(CARD_FEE, GUEST_FEE), periodic_fees=(MONTHLY,), limits=LIMITS,
                   low_balance=LOW, automatic_top_ups=True, spend_order=SpendOrder.OLDEST_FIRST,
                   payment_mode=PaymentMode.CREDIT_FIRST)


# -- the JSON form --------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [TenantRules(), RICH, TenantRules(fees=(GUEST_FEE,)),
                                   TenantRules(low_balance=LOW)],
                         ids=["empty", "rich", "one-fee", "low-balance"])
def test_rules_round_trip_exactly_through_json(rules: TenantRules) -> None:
    text = json.dumps(rules.to_data(), sort_keys=True)
    again = TenantRules.from_data(json.loads(text))
    assert again == rules
    assert json.dumps(again.to_data(), sort_keys=True) == text
    for fee, before in zip(again.fees, rules.fees, strict=True):
        # 1.50 stays 1.50 (not 1.5): the exact value is kept.
        assert str(fee.percent) == str(before.percent)


def test_every_key_is_shown_and_defaults_keep_todays_behaviour() -> None:
    assert TenantRules().to_data() == {
        "fees": [], "periodic_fees": [], "limits": {}, "low_balance": None,
        "automatic_top_ups": False, "spend_order": "default", "payment_mode": "credit_only",
    }
    assert TenantRules.from_data({}) == TenantRules()
    assert TenantRules.from_data({"automatic_top_ups": True}) == TenantRules(
        automatic_top_ups=True)
    data = RICH.to_data()
    assert data["spend_order"] == "oldest_first"
    assert data["payment_mode"] == "credit_first"
    assert data["low_balance"] == {"thresholds": [
        {"amount": {"minor": 4000, "currency": "EUR"}, "label": "notice"},
        {"amount": {"minor": 3000, "currency": "EUR"}, "label": "warn"},
    ]}


def test_low_balance_rule_round_trips_on_its_own() -> None:
    assert LowBalanceRule.from_data(LOW.to_data()) == LOW
    assert Threshold.from_data(LOW.thresholds[0].to_data()) == LOW.thresholds[0]


def _with(path: str, value: Any) -> dict[str, Any]:
    """RICH's data with the value at ``path`` (dots and [i]) replaced (``...`` removes it)."""
    data = copy.deepcopy(RICH.to_data())
    parts = path.replace("[", ".").replace("]", "").split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ([], "tenant_rules", InvalidInputError),
        ({"fee": []}, "tenant_rules", InvalidInputError),
        (_with("fees", {}), "fees", InvalidInputError),
        (_with("fees[1].percent", 10.0), "fees[1].percent", InvalidInputError),
        (_with("fees[1].percent", "ten"), "fees[1].percent", InvalidInputError),
        (_with("fees[0].fixed", {"minor": 30, "currency": "USD"}), "fees[0].minimum",
         CurrencyMismatchError),
        (_with("fees[0].name", ...), "fees[0].name", InvalidInputError),
        (_with("fees[1]", "fee"), "fees[1]", InvalidInputError),
        (_with("fees[1].operations", ["transfer_in"]), "fees[1].operations", InvalidInputError),
        (_with("periodic_fees[0].zone", "Mars/Olympus"), "periodic_fees[0].zone",
         InvalidInputError),
        (_with("periodic_fees[0].start", "yesterday"), "periodic_fees[0].start",
         InvalidTimeError),
        (_with("limits.max_balance", {"minor": 1.5, "currency": "EUR"}), "limits.max_balance",
         InvalidAmountError),
        (_with("limits.max_balance", {"minor": 100, "currency": "USD"}), "limits",
         CurrencyMismatchError),
        (_with("limits.rules[0].window.period", "fortnight"), "limits.rules[0].window.period",
         InvalidInputError),
        (_with("limits.extra", 1), "limits", InvalidInputError),
        (_with("low_balance.thresholds[1].label", ""), "low_balance.thresholds[1].label",
         InvalidInputError),
        (_with("low_balance.thresholds[0].amount", "40"), "low_balance.thresholds[0].amount",
         InvalidAmountError),
        (_with("low_balance.thresholds", []), "low_balance.thresholds", InvalidInputError),
        (_with("low_balance", []), "low_balance", InvalidInputError),
        (_with("automatic_top_ups", "yes"), "automatic_top_ups", InvalidInputError),
        (_with("spend_order", "largest_first"), "spend_order", InvalidInputError),
        (_with("payment_mode", "cash"), "payment_mode", InvalidInputError),
        (_with("periodic_fees", [MONTHLY.to_data(), MONTHLY.to_data()]), "periodic_fees",
         InvalidInputError),
    ],
)
def test_bad_data_names_the_path_of_the_field_at_fault(
    data: object, field: str, error: type[InvalidInputError]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        TenantRules.from_data(data)
    assert caught.value.field == field
    assert isinstance(caught.value, error)


@pytest.mark.parametrize(("field", "value"), [("spend_order", "default"),
                                              ("payment_mode", "credit_only")])
def test_the_constructor_takes_the_enums_only(field: str, value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        TenantRules(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field
