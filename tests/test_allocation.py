"""Which lot pays which line: the allocation over conditioned commerce, unconditioned commerce and
the open balance, as scenario tables (lots before / request / allocation / lots after) and as a
property checked against a brute-force maximum."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_wallet.conditions import ConditionGroup, LineItem, SpendCondition, TimeWindow
from prepaid_wallet.money import Money
from prepaid_wallet.policies import (
    PaymentMode,
    SpendOrder,
    SpendRequest,
    decide_spend,
    default_lot_key,
    order_lots,
)
from prepaid_wallet.wallet import AllocationPart, Lot, Wallet, new_wallet

#: Tuesday 2026-03-10, 09:00 in Europe/Nicosia (UTC+2 in winter).
TUESDAY_9 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
WEEKDAY_MORNINGS = TimeWindow(
    days=frozenset({1, 2, 3, 4, 5}), start=time(8), end=time(12), zone="Europe/Nicosia"
)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def lot(
    lot_id: str,
    amount: str,
    condition: SpendCondition | None = None,
    *,
    priority: int = 0,
    group_id: str | None = None,
    expires_at: datetime | None = None,
) -> Lot:
    return Lot(
        id=lot_id, wallet_id="w", amount=eur(amount), remaining=eur(amount),
        granted_at=TUESDAY_9 - timedelta(days=30), expires_at=expires_at, priority=priority,
        reason="award", entry_id="e", condition=condition, group_id=group_id,
        group_version=None if group_id is None else 1,
    )


def wallet(open_amount: str = "0.00", floor: str = "0.00") -> Wallet:
    w = new_wallet(wallet_id="w", tenant_id="t", owner_id="o", currency="EUR",
                   floor=eur(floor), at=TUESDAY_9 - timedelta(days=60))
    return attrs.evolve(w, open=eur(open_amount))


def line(product: str, amount: str, category: str | None = None) -> LineItem:
    return LineItem(product_id=product, amount=eur(amount), category=category)


def decide(w: Wallet, request: SpendRequest, lots: list[Lot], **kwargs):  # type: ignore[no-untyped-def]
    ordered = sorted(lots, key=default_lot_key)
    return decide_spend(w, request, ordered, TUESDAY_9, **kwargs)


def parts(decision) -> list[tuple[str | None, int | None, str]]:  # type: ignore[no-untyped-def]
    return [(p.lot_id, p.line, str(p.amount.amount)) for p in decision.allocation]


def lots_after(lots: list[Lot], allocation: tuple[AllocationPart, ...]) -> dict[str, str]:
    left = {x.id: x.remaining.minor_units for x in lots}
    for part in allocation:
        if part.lot_id is not None:
            left[part.lot_id] -= part.amount.minor_units
    return {lot_id: str(Money(minor, "EUR").amount) for lot_id, minor in left.items()}


SMARTWATCHES_AT_TECHNO = SpendCondition(
    categories=frozenset({"smartwatches"}), merchants=frozenset({"techno"})
)


@dataclass(frozen=True)
class Scenario:
    name: str
    open: str
    lots: list[Lot]
    request: SpendRequest
    allowed: bool
    allocation: list[tuple[str | None, int | None, str]]
    after: dict[str, str]


SCENARIOS = [
    Scenario(
        "smartwatch award pays the smartwatch line at its merchant, open pays the rest",
        open="100.00",
        lots=[lot("watch-award", "30.00", SMARTWATCHES_AT_TECHNO)],
        request=SpendRequest(
            eur("60.00"),
            lines=(line("watch-9", "50.00", "smartwatches"), line("cable", "10.00", "cables")),
            merchant="techno",
        ),
        allowed=True,
        allocation=[("watch-award", 0, "30.00"), (None, 0, "20.00"), (None, 1, "10.00")],
        after={"watch-award": "0.00"},
    ),
    Scenario(
        "smartwatch award pays nothing at another merchant",
        open="100.00",
        lots=[lot("watch-award", "30.00", SMARTWATCHES_AT_TECHNO)],
        request=SpendRequest(
            eur("50.00"), lines=(line("watch-9", "50.00", "smartwatches"),), merchant="other"
        ),
        allowed=True,
        allocation=[(None, 0, "50.00")],
        after={"watch-award": "30.00"},
    ),
    Scenario(
        "weekday-morning award pays on Tuesday at 09:00",
        open="0.00",
        lots=[lot("morning", "20.00", SpendCondition(windows=(WEEKDAY_MORNINGS,)))],
        request=SpendRequest(eur("15.00"), at=TUESDAY_9),
        allowed=True,
        allocation=[("morning", None, "15.00")],
        after={"morning": "5.00"},
    ),
    Scenario(
        "weekday-morning award pays nothing on Saturday",
        open="0.00",
        lots=[lot("morning", "20.00", SpendCondition(windows=(WEEKDAY_MORNINGS,)))],
        request=SpendRequest(eur("15.00"), at=TUESDAY_9 - timedelta(days=3)),
        allowed=False,
        allocation=[],
        after={"morning": "20.00"},
    ),
    Scenario(
        "a line no lot may pay goes to the open balance",
        open="10.00",
        lots=[lot("coffee-only", "50.00", SpendCondition(products=frozenset({"coffee"})))],
        request=SpendRequest(eur("10.00"), lines=(line("tea", "10.00"),)),
        allowed=True,
        allocation=[(None, 0, "10.00")],
        after={"coffee-only": "50.00"},
    ),
    Scenario(
        "a line no lot may pay, and no open balance: refused",
        open="0.00",
        lots=[lot("coffee-only", "50.00", SpendCondition(products=frozenset({"coffee"})))],
        request=SpendRequest(eur("10.00"), lines=(line("tea", "10.00"),)),
        allowed=False,
        allocation=[],
        after={"coffee-only": "50.00"},
    ),
    Scenario(
        "a line only one lot may pay goes to that lot",
        open="20.00",
        lots=[
            lot("food-or-drink", "10.00", SpendCondition(categories=frozenset({"food", "drink"})),
                priority=0),
            lot("food-only", "10.00", SpendCondition(categories=frozenset({"food"})), priority=1),
        ],
        request=SpendRequest(
            eur("20.00"), lines=(line("bread", "10.00", "food"), line("juice", "10.00", "drink"))
        ),
        allowed=True,
        allocation=[("food-or-drink", 1, "10.00"), ("food-only", 0, "10.00")],
        after={"food-or-drink": "0.00", "food-only": "0.00"},
    ),
    Scenario(
        "conditioned commerce pays before unconditioned commerce whatever the priority",
        open="0.00",
        lots=[
            lot("plain", "10.00", priority=0),
            lot("techno-only", "10.00", SpendCondition(merchants=frozenset({"techno"})),
                priority=9),
        ],
        request=SpendRequest(eur("15.00"), merchant="techno"),
        allowed=True,
        allocation=[("techno-only", None, "10.00"), ("plain", None, "5.00")],
        after={"plain": "5.00", "techno-only": "0.00"},
    ),
    Scenario(
        "a minimum purchase not reached: the award pays nothing",
        open="0.00",
        lots=[lot("big-baskets", "10.00", SpendCondition(minimum_purchase=eur("20.00")))],
        request=SpendRequest(eur("15.00")),
        allowed=False,
        allocation=[],
        after={"big-baskets": "10.00"},
    ),
    Scenario(
        "lines paid by lots in order, across lines",
        open="0.00",
        lots=[lot("first", "12.00", priority=0), lot("second", "10.00", priority=1)],
        request=SpendRequest(eur("20.00"), lines=(line("a", "5.00"), line("b", "15.00"))),
        allowed=True,
        allocation=[("first", 0, "5.00"), ("first", 1, "7.00"), ("second", 1, "8.00")],
        after={"first": "0.00", "second": "2.00"},
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(case: Scenario) -> None:
    decision = decide(wallet(case.open), case.request, case.lots)
    assert decision.allowed is case.allowed
    assert parts(decision) == case.allocation
    assert lots_after(case.lots, decision.allocation) == case.after
    if decision.allowed:
        assert Money.sum((p.amount for p in decision.allocation), "EUR") == case.request.amount


def test_a_refusal_says_how_much_is_spendable_for_the_request() -> None:
    lots = [lot("coffee-only", "5.00", SpendCondition(products=frozenset({"coffee"})))]
    request = SpendRequest(eur("10.00"), lines=(line("coffee", "10.00"),))
    decision = decide(wallet("3.00"), request, lots)
    assert not decision.allowed
    assert decision.covered == eur("8.00")
    assert decision.shortfall == eur("2.00")
    first = decide(wallet("3.00"), attrs.evolve(request, mode=PaymentMode.CREDIT_FIRST), lots)
    assert first.allowed
    assert first.remainder_due == eur("2.00")
    assert parts(first) == [("coffee-only", 0, "5.00"), (None, 0, "3.00")]


def test_a_window_boundary_is_half_open() -> None:
    lots = [lot("morning", "20.00", SpendCondition(windows=(WEEKDAY_MORNINGS,)))]
    noon = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # 12:00 in Nicosia
    before = decide(wallet(), SpendRequest(eur("1.00"), at=noon - timedelta(microseconds=1)), lots)
    at_noon = decide(wallet(), SpendRequest(eur("1.00"), at=noon), lots)
    assert before.allowed
    assert not at_noon.allowed


def test_a_group_lot_follows_the_groups_validity() -> None:
    group = ConditionGroup(
        id="cg", tenant_id="t", name="spring", condition=SpendCondition(), version=1,
        valid_until=TUESDAY_9 + timedelta(hours=1),
    )
    lots = [lot("spring", "10.00", SpendCondition(), group_id="cg")]
    request = SpendRequest(eur("4.00"))
    assert decide(wallet(), request, lots, groups={"cg": group}).allowed
    ended = attrs.evolve(group, valid_until=TUESDAY_9)
    assert not decide(wallet(), request, lots, groups={"cg": ended}).allowed
    assert not decide(wallet(), request, lots, groups={}).allowed  # an unknown group pays nothing
    later = attrs.evolve(group, valid_from=TUESDAY_9 + timedelta(minutes=1))
    assert not decide(wallet(), request, lots, groups={"cg": later}).allowed


def test_expired_conditioned_lot_pays_nothing_even_for_a_purchase_dated_before() -> None:
    expiring = lot("gone", "10.00", SpendCondition(merchants=frozenset({"m"})),
                   expires_at=TUESDAY_9)
    request = SpendRequest(eur("1.00"), merchant="m", at=TUESDAY_9 - timedelta(hours=1))
    assert not decide(wallet(), request, [expiring]).allowed


def test_other_orders_still_put_conditioned_lots_first() -> None:
    plain = lot("plain", "10.00", expires_at=TUESDAY_9 + timedelta(days=1))
    conditioned = lot("cond", "10.00", SpendCondition(merchants=frozenset({"m"})),
                      expires_at=TUESDAY_9 + timedelta(days=9))
    for order in (SpendOrder.EXPIRING_FIRST, SpendOrder.OLDEST_FIRST, lambda lots: list(lots)):
        assert [x.id for x in order_lots(order, [plain, conditioned])] == ["cond", "plain"]


# -- the property: the most commerce can pay, lot by lot --------------------------------------

CATEGORIES = ("a", "b", "c")


@st.composite
def problems(draw):  # type: ignore[no-untyped-def]
    lot_count = draw(st.integers(1, 5))
    lots = []
    for i in range(lot_count):
        cats = draw(st.frozensets(st.sampled_from(CATEGORIES), max_size=3))
        minor = draw(st.integers(1, 3000))
        condition = SpendCondition(categories=cats) if cats else None
        lots.append(attrs.evolve(
            lot(f"l{i}", "0.01", condition, priority=draw(st.integers(0, 3))),
            amount=Money(minor, "EUR"), remaining=Money(minor, "EUR"),
        ))
    lines = tuple(
        LineItem(product_id=f"p{j}", amount=Money(draw(st.integers(1, 3000)), "EUR"),
                 category=draw(st.sampled_from(CATEGORIES)))
        for j in range(draw(st.integers(1, 4)))
    )
    open_minor = draw(st.integers(0, 5000))
    return lots, lines, open_minor


def _may_pay(x: Lot, item: LineItem) -> bool:
    return x.condition is None or item.category in x.condition.categories


def _max_commerce(lots: list[Lot], lines: tuple[LineItem, ...]) -> int:
    """Max flow lots -> lines by the min cut: the lines on the source side pay their amounts,
    and every lot that may pay a line on the sink side is cut."""
    best = None
    for size in range(len(lines) + 1):
        for side in itertools.combinations(range(len(lines)), size):
            cut = sum(lines[j].amount.minor_units for j in side)
            cut += sum(
                x.remaining.minor_units for x in lots
                if any(_may_pay(x, lines[j]) for j in range(len(lines)) if j not in side)
            )
            best = cut if best is None else min(best, cut)
    assert best is not None
    return best


@settings(max_examples=300, deadline=None)
@given(problems())
def test_allocation_pays_the_most_commerce_can_and_respects_every_condition(problem) -> None:  # type: ignore[no-untyped-def]
    lots, lines, open_minor = problem
    total = sum(x.amount.minor_units for x in lines)
    request = SpendRequest(Money(total, "EUR"), mode=PaymentMode.CREDIT_FIRST, lines=lines)
    decision = decide(wallet(str(Money(open_minor, "EUR").amount)), request, lots)
    by_id = {x.id: x for x in lots}
    per_lot: dict[str, int] = {}
    per_line = [0] * len(lines)
    commerce = 0
    for part in decision.allocation:
        assert part.line is not None
        per_line[part.line] += part.amount.minor_units
        if part.lot_id is not None:
            assert _may_pay(by_id[part.lot_id], lines[part.line])
            per_lot[part.lot_id] = per_lot.get(part.lot_id, 0) + part.amount.minor_units
            commerce += part.amount.minor_units
    assert all(per_lot[i] <= by_id[i].remaining.minor_units for i in per_lot)
    assert all(paid <= item.amount.minor_units for paid, item in zip(per_line, lines, strict=False))
    assert commerce == _max_commerce(lots, lines)
    # Open balance pays what commerce left, as far as it goes.
    assert sum(per_line) == min(total, commerce + open_minor)
    assert decision.remainder_due.minor_units == total - sum(per_line)
    # The first lot in paying order pays as much as it possibly can.
    ordered = order_lots(SpendOrder.DEFAULT, sorted(lots, key=default_lot_key))
    first = next(iter(ordered))
    reachable = sum(item.amount.minor_units for item in lines if _may_pay(first, item))
    assert per_lot.get(first.id, 0) == min(first.remaining.minor_units, reachable)


@given(st.lists(st.tuples(
    st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    st.integers(-10**12, 10**12).filter(bool),
    st.sampled_from(["EUR", "JPY", "KWD"]),
    st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    st.one_of(st.none(), st.integers(0, 50)),
), max_size=6))
def test_allocation_text_written_directly_is_the_canonical_text(parts_data) -> None:  # type: ignore[no-untyped-def]
    """Stores write an allocation with ``_codec.dumps_parts``: the same text as the generic
    ``_codec.dumps``, and it reads back equal."""
    from prepaid_wallet import _codec

    parts = tuple(AllocationPart(lot_id, Money(minor, currency), at, line)
                  for lot_id, minor, currency, at, line in parts_data)
    text = _codec.dumps_parts(parts)
    assert text == _codec.dumps(parts)
    assert _codec.loads(tuple[AllocationPart, ...], text) == parts
