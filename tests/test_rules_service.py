"""Wallet rules through the service, on every backend: fees posted in the operation's own entry,
limits per window and the maximum balance, wallet overrides, periodic fees charged once per
occurrence, payouts and manual adjustments."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_wallet import (
    CurrencyMismatchError,
    EntryKind,
    FixedClock,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    Money,
    PaymentMode,
    Reason,
    SequentialIds,
    SpendDeniedError,
    SpendRequest,
    Store,
    WalletService,
    open_store,
)
from prepaid_wallet.errors import LimitExceededError
from prepaid_wallet.rules.fees import FeeRule, PeriodicFee, fees_for, total_fee
from prepaid_wallet.rules.limits import LimitRule, Limits, Period, Window
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules

#: Tuesday 2026-03-10, 09:00 in Europe/Nicosia.
T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TENANT = "hub"


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def service(store: Store, rules: TenantRules, start: datetime = T0) -> tuple[WalletService,
                                                                              FixedClock]:
    clock = FixedClock(start)
    return WalletService(store, clock=clock, ids=SequentialIds(), rules={TENANT: rules}), clock


def open_wallet(svc: WalletService, owner: str = "ann", **kwargs: object) -> str:
    return svc.open_wallet(owner_id=owner, tenant_id=TENANT, currency="EUR",  # type: ignore[arg-type]
                           **kwargs).id


def postings(svc: WalletService, entry_id: str) -> dict[str, Money]:
    return {p.account: p.amount for p in svc.entry(entry_id).postings}


# -- fees -----------------------------------------------------------------------------------------

CARD_FEE = FeeRule(name="card top-up", operations={Operation.TOP_UP}, fixed=eur("0.30"),
                   percent=Decimal("1.5"), minimum=eur("0.50"), maximum=eur("5.00"))
GUEST_FEE = FeeRule(name="guest spend", operations={Operation.SPEND}, percent=Decimal(10),
                    owner_groups={"guests"})
TRANSFER_FEE = FeeRule(name="transfer", operations={Operation.TRANSFER_OUT}, fixed=eur("1.00"))


def test_a_fee_is_posted_in_the_operations_own_entry(store: Store) -> None:
    svc, _ = service(store, TenantRules(fees=(CARD_FEE, GUEST_FEE, TRANSFER_FEE)))
    ann = open_wallet(svc)
    receipt = svc.top_up(ann, eur("10.00"), method="card")
    assert receipt.fee == eur("0.50")  # 0.30 + 0.15, raised to the minimum
    assert postings(svc, receipt.entry_id) == {
        f"tenant:{TENANT}:funding:card": eur("-10.00"),
        f"wallet:{ann}:open": eur("9.50"),
        f"tenant:{TENANT}:fees": eur("0.50"),
    }
    big = svc.top_up(ann, eur("1000.00"), method="card")
    assert big.fee == eur("5.00")  # 0.30 + 15.00, capped
    with pytest.raises(InvalidAmountError, match="fee"):
        svc.top_up(ann, eur("0.50"), method="card")  # no more than its own fee
    assert svc.verify().ok


def test_the_suggested_top_up_covers_its_own_fee(store: Store) -> None:
    svc, _ = service(store, TenantRules(fees=(CARD_FEE,)))
    ann = open_wallet(svc)
    svc.top_up(ann, eur("20.00"), method="card")  # 19.40 after the fee of 0.30 + 0.30
    refused = svc.check_spend(ann, SpendRequest(eur("100.00")))
    assert refused.shortfall == eur("80.60")
    # 0.30 + 1.5 % of 82.14 = 1.5321, rounded up to 1.54: 82.14 - 1.54 = 80.60 exactly.
    assert refused.suggested_top_up == eur("82.14")
    less = svc.top_up(ann, eur("82.13"), method="card", idempotency_key="less")
    assert less.fee == eur("1.54")  # one cent less leaves a cent short
    assert not svc.check_spend(ann, SpendRequest(eur("100.00"))).allowed
    svc.reverse(less.entry_id, reason="try again")
    svc.top_up(ann, refused.suggested_top_up, method="card")
    assert svc.check_spend(ann, SpendRequest(eur("100.00"))).allowed


@st.composite
def _top_up_fee(draw: st.DrawFn) -> FeeRule:
    fixed = draw(st.none() | st.integers(1, 5_000))
    percent = draw((st.none() if fixed is not None else st.nothing())
                   | st.decimals(Decimal("0.01"), Decimal("99.99"), places=2))
    minimum = draw(st.none() | st.integers(0, 5_000))
    maximum = draw(st.none() | st.integers(minimum or 0, 50_000))

    def money(minor: int | None) -> Money | None:
        return None if minor is None else Money.from_minor_units(minor, "EUR")

    return FeeRule("top-up", {Operation.TOP_UP}, fixed=money(fixed), percent=percent,
                   minimum=money(minimum), maximum=money(maximum))


@settings(max_examples=150, deadline=None)
@given(rule=_top_up_fee(), price=st.integers(1, 10**8))
def test_the_suggested_top_up_is_the_least_that_covers_its_own_fee(rule: FeeRule,
                                                                   price: int) -> None:
    svc = WalletService(open_store("memory:"), clock=FixedClock(T0),
                        rules={TENANT: TenantRules(fees=(rule,))})
    ann = open_wallet(svc)
    decision = svc.check_spend(ann, SpendRequest(Money.from_minor_units(price, "EUR")))
    suggested = decision.suggested_top_up.minor_units

    def left(gross: int) -> int:  # what a top-up of ``gross`` leaves after its fee
        if gross == 0:
            return 0
        charged = fees_for((rule,), Operation.TOP_UP, Money.from_minor_units(gross, "EUR"),
                           frozenset())
        return gross - total_fee(charged, "EUR").minor_units if charged else gross

    assert decision.shortfall.minor_units == price
    assert left(suggested) >= price
    assert left(suggested - 1) < price


def test_owner_groups_select_the_fee_rules(store: Store) -> None:
    svc, _ = service(store, TenantRules(fees=(GUEST_FEE,)))
    guest = open_wallet(svc, "gus", owner_groups={"guests"})
    member = open_wallet(svc, "mia")
    for w in (guest, member):
        svc.top_up(w, eur("50.00"), method="cash")
    assert svc.spend(guest, SpendRequest(eur("20.00"))).fee == eur("2.00")
    assert svc.spend(member, SpendRequest(eur("20.00"))).fee is None
    assert svc.get_wallet(guest).open == eur("28.00")
    assert svc.owner_groups(guest) == frozenset({"guests"})
    svc.set_owner_groups(guest, [])
    assert svc.spend(guest, SpendRequest(eur("10.00"))).fee is None
    svc.set_owner_groups(member, ["guests", "staff"])
    assert svc.owner_groups(member) == frozenset({"guests", "staff"})
    assert svc.spend(member, SpendRequest(eur("10.00"))).fee == eur("1.00")
    with pytest.raises(InvalidInputError):
        svc.set_owner_groups(member, "guests")  # a bare string is not a collection of names


def test_a_spend_fee_is_set_aside_from_the_open_balance(store: Store) -> None:
    svc, _ = service(store, TenantRules(fees=(GUEST_FEE,)))
    w = open_wallet(svc, owner_groups={"guests"})
    svc.top_up(w, eur("11.00"), method="cash")
    decision = svc.check_spend(w, SpendRequest(eur("11.00")))
    assert not decision.allowed  # 11.00 + 1.10 fee
    assert (decision.fee, decision.covered, decision.shortfall) == (
        eur("1.10"), eur("9.90"), eur("1.10"))
    paid = svc.spend(w, SpendRequest(eur("10.00")))
    assert (paid.amount, paid.fee) == (eur("10.00"), eur("1.00"))
    assert svc.get_wallet(w).open == eur("0.00")
    svc.top_up(w, eur("5.50"), method="cash")
    first = svc.spend(w, SpendRequest(eur("20.00"), mode=PaymentMode.CREDIT_FIRST))
    # the fee of the whole request (2.00) is set aside, then charged on what credit paid
    assert (first.amount, first.fee, first.remainder_due) == (
        eur("3.50"), eur("0.35"), eur("16.50"))
    assert svc.get_wallet(w).open == eur("1.65")
    assert svc.verify().ok


def test_a_fee_the_open_balance_cannot_pay_is_a_refusal_check_and_spend_agree(
    store: Store,
) -> None:
    """An award pays the whole purchase, but the spend fee comes from an open balance at its
    floor: check_spend and spend agree that it is refused, with the fee as the shortfall (never
    allowed by one and an IntegrityError from the other); credit-first leaves the purchase to
    another method; once the fee can be paid, the spend goes through."""
    spend_fee = FeeRule(name="service", operations={Operation.SPEND}, fixed=eur("0.50"))
    svc, _ = service(store, TenantRules(fees=(spend_fee,)))
    w = open_wallet(svc)
    svc.award(w, eur("10.00"), reason="voucher")
    before = svc.store.export_state()
    decision = svc.check_spend(w, SpendRequest(eur("5.00")))
    assert not decision.allowed
    assert (decision.covered, decision.shortfall, decision.suggested_top_up) == (
        eur("5.00"), eur("0.50"), eur("0.50"))
    with pytest.raises(SpendDeniedError) as refused:
        svc.spend(w, SpendRequest(eur("5.00")))
    assert refused.value.decision == decision
    other = svc.spend(w, SpendRequest(eur("5.00"), mode=PaymentMode.CREDIT_FIRST))
    assert (other.entry_id, other.amount, other.remainder_due, other.fee) == (
        None, eur("0.00"), eur("5.00"), None)
    assert svc.store.export_state() == before
    svc.top_up(w, eur("0.50"), method="cash")
    paid = svc.spend(w, SpendRequest(eur("5.00")))
    assert (paid.amount, paid.fee) == (eur("5.00"), eur("0.50"))
    assert svc.get_wallet(w).open == eur("0.00")
    assert svc.verify().ok


def test_the_sender_pays_the_transfer_fee(store: Store) -> None:
    svc, _ = service(store, TenantRules(fees=(TRANSFER_FEE,)))
    ann, bob = open_wallet(svc, "ann"), open_wallet(svc, "bob")
    svc.top_up(ann, eur("10.00"), method="cash")
    before = svc.store.export_state()
    with pytest.raises(InsufficientFundsError) as refused:
        svc.transfer(ann, bob, eur("9.50"))
    assert (refused.value.requested, refused.value.available) == (eur("10.50"), eur("10.00"))
    assert svc.store.export_state() == before
    receipt = svc.transfer(ann, bob, eur("9.00"))
    assert receipt.fee == eur("1.00")
    assert (svc.get_wallet(ann).open, svc.get_wallet(bob).open) == (eur("0.00"), eur("9.00"))
    reversal = svc.reverse(receipt.entry_id, reason="mistake")  # the fee comes back too
    assert postings(svc, reversal.entry_id)[f"tenant:{TENANT}:fees"] == eur("-1.00")
    assert svc.get_wallet(ann).open == eur("10.00")
    assert svc.verify().ok


def test_payout_credit_and_debit(store: Store) -> None:
    payout_fee = FeeRule(name="payout", operations={Operation.PAYOUT}, fixed=eur("0.25"))
    svc, _ = service(store, TenantRules(fees=(payout_fee,)))
    w = open_wallet(svc, floor=eur("-5.00"))
    credit = svc.credit(w, eur("20.00"), reason="goodwill")
    assert credit.kind is EntryKind.CREDIT
    debit = svc.debit(w, eur("3.00"), reason="correction")
    assert debit.kind is EntryKind.DEBIT
    payout = svc.payout(w, eur("10.00"), method="bank")
    assert (payout.kind, payout.fee) == (EntryKind.PAYOUT, eur("0.25"))
    assert postings(svc, payout.entry_id) == {
        f"wallet:{w}:open": eur("-10.25"),
        f"tenant:{TENANT}:payout:bank": eur("10.00"),
        f"tenant:{TENANT}:fees": eur("0.25"),
    }
    assert svc.get_wallet(w).open == eur("6.75")
    with pytest.raises(InsufficientFundsError):
        svc.payout(w, eur("11.60"), method="bank")  # 11.85 with the fee; 11.75 down to floor
    with pytest.raises(InsufficientFundsError):
        svc.debit(w, eur("11.76"), reason="too much")
    assert svc.verify().ok


# -- limits ---------------------------------------------------------------------------------------

NICOSIA_DAY = Window(period=Period.DAY, zone="Europe/Nicosia")
LIMITS = Limits(
    rules=(
        LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY, max_count=2),
        LimitRule(operation=Operation.TOP_UP, window=Window(rolling=DAY),
                  max_amount=eur("50.00")),
        LimitRule(operation=Operation.PAYOUT, window=NICOSIA_DAY, max_count=1),
    ),
    max_balance=eur("100.00"),
)


def test_spend_limits_refuse_with_what_is_left(store: Store) -> None:
    svc, clock = service(store, TenantRules(limits=LIMITS))
    w = open_wallet(svc)
    svc.top_up(w, eur("40.00"), method="cash")
    svc.spend(w, SpendRequest(eur("1.00")))
    svc.spend(w, SpendRequest(eur("1.00")))
    decision = svc.check_spend(w, SpendRequest(eur("1.00")))
    assert not decision.allowed
    assert decision.reasons == (Reason.LIMIT_EXCEEDED,)
    [breach] = decision.limits
    assert (breach.count_left, breach.rule) == (0, LIMITS.rules[0])
    assert "spends per day in Europe/Nicosia" in breach.describe()
    with pytest.raises(SpendDeniedError) as denied:
        svc.spend(w, SpendRequest(eur("1.00")), idempotency_key="third")
    assert denied.value.decision == decision
    with pytest.raises(SpendDeniedError) as again:  # the refusal replays under its key
        svc.spend(w, SpendRequest(eur("1.00")), idempotency_key="third")
    assert again.value.decision == decision
    clock.set(datetime(2026, 3, 10, 22, 0, tzinfo=UTC))  # midnight in Nicosia: a new day
    assert svc.spend(w, SpendRequest(eur("1.00"))).amount == eur("1.00")


def test_top_up_limit_and_maximum_balance(store: Store) -> None:
    svc, clock = service(store, TenantRules(limits=LIMITS))
    ann, bob = open_wallet(svc, "ann"), open_wallet(svc, "bob")
    svc.top_up(ann, eur("30.00"), method="cash")
    before = svc.store.export_state()
    with pytest.raises(LimitExceededError) as refused:
        svc.top_up(ann, eur("20.01"), method="cash")
    assert refused.value.operation == "top_up"
    assert "20.00 EUR left" in refused.value.breaches[0]
    assert svc.store.export_state() == before
    svc.top_up(ann, eur("20.00"), method="cash")  # exactly at the allowance
    clock.advance(DAY)
    with pytest.raises(LimitExceededError):  # exactly 24 hours later they still count
        svc.top_up(ann, eur("0.01"), method="cash")
    clock.advance(timedelta(microseconds=1))  # the rolling window has moved on
    svc.top_up(ann, eur("50.00"), method="cash")
    with pytest.raises(LimitExceededError, match=r"balance at most 100\.00 EUR"):
        svc.credit(ann, eur("0.01"), reason="goodwill")
    svc.top_up(bob, eur("10.00"), method="cash")
    with pytest.raises(LimitExceededError):
        svc.transfer(bob, ann, eur("1.00"))  # the target would pass its maximum balance
    svc.spend(ann, SpendRequest(eur("5.00")))
    svc.transfer(bob, ann, eur("5.00"))
    assert svc.get_wallet(ann).open == eur("100.00")


def test_wallet_overrides_may_only_be_stricter(store: Store) -> None:
    svc, _ = service(store, TenantRules(limits=LIMITS))
    w = open_wallet(svc)
    stricter = Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY,
                                       max_count=1),), max_balance=eur("20.00"))
    effective = svc.set_limits(w, stricter)
    assert effective.max_balance == eur("20.00")
    assert effective.rules_for(Operation.SPEND)[0].max_count == 1
    assert svc.limits(w) == effective
    looser = Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY,
                                     max_count=5),))
    with pytest.raises(InvalidInputError) as refused:
        svc.set_limits(w, looser)
    assert refused.value.field == "limits"
    assert svc.limits(w) == effective
    svc.top_up(w, eur("20.00"), method="cash")
    svc.spend(w, SpendRequest(eur("1.00")))
    assert not svc.check_spend(w, SpendRequest(eur("1.00"))).allowed
    assert svc.set_limits(w, None) == LIMITS
    assert svc.check_spend(w, SpendRequest(eur("1.00"))).allowed
    with pytest.raises(CurrencyMismatchError):
        svc.set_limits(w, Limits(max_balance=Money.of("10", "JPY")))


def test_an_override_never_loosens_a_tenant_that_lowered_its_limits(store: Store) -> None:
    """A wallet's override made when the tenant allowed 5 spends a day and 200.00 EUR stays
    in force after the tenant lowers its limits to 2 a day and 100.00 EUR: the effective limit
    is the stricter of the two, bound by bound."""
    day = LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY, max_count=5)
    loose = Limits(rules=(day,), max_balance=eur("200.00"))
    svc, clock = service(store, TenantRules(limits=loose))
    w = open_wallet(svc)
    svc.set_limits(w, Limits(rules=(attrs.evolve(day, max_count=4),),
                             max_balance=eur("150.00")))
    lowered = Limits(rules=(attrs.evolve(day, max_count=2),), max_balance=eur("100.00"))
    svc, _ = service(store, TenantRules(limits=lowered), start=clock.now())
    effective = svc.limits(w)
    assert effective.rules_for(Operation.SPEND)[0].max_count == 2
    assert effective.max_balance == eur("100.00")
    svc.top_up(w, eur("60.00"), method="cash")
    with pytest.raises(LimitExceededError):
        svc.top_up(w, eur("40.01"), method="cash")  # above the tenant's new maximum
    svc.spend(w, SpendRequest(eur("1.00")))
    svc.spend(w, SpendRequest(eur("1.00")))
    decision = svc.check_spend(w, SpendRequest(eur("1.00")))
    assert decision.reasons == (Reason.LIMIT_EXCEEDED,)


def test_payout_limit(store: Store) -> None:
    svc, _ = service(store, TenantRules(limits=LIMITS))
    w = open_wallet(svc)
    svc.top_up(w, eur("30.00"), method="cash")
    svc.payout(w, eur("5.00"), method="bank")
    with pytest.raises(LimitExceededError):
        svc.payout(w, eur("5.00"), method="bank")


# -- periodic fees --------------------------------------------------------------------------------

MONTHLY = PeriodicFee(name="maintenance", amount=eur("2.00"), rule="FREQ=MONTHLY;BYMONTHDAY=1",
                      start=datetime(2025, 12, 31, 22, 0, tzinfo=UTC),  # midnight local
                      zone="Europe/Nicosia")


def test_periodic_fees_are_charged_once_per_occurrence(store: Store) -> None:
    svc, clock = service(store, TenantRules(periodic_fees=(MONTHLY,)))
    rich, poor = open_wallet(svc, "rich"), open_wallet(svc, "poor", floor=eur("-1.00"))
    svc.top_up(rich, eur("50.00"), method="cash")
    svc.top_up(poor, eur("2.50"), method="cash")
    assert svc.charge_periodic_fees().entry_ids == ()  # nothing due yet
    clock.set(datetime(2026, 6, 15, tzinfo=UTC))  # April, May and June have begun
    report = svc.charge_periodic_fees()
    kinds = [svc.entry(e).kind for e in report.entry_ids]
    assert kinds == [EntryKind.FEE] * 5  # rich: 3; poor: 2.00, then 1.50 down to the floor
    assert report.waived == 2  # poor: 0.50 waived in May, everything in June
    assert svc.get_wallet(rich).open == eur("44.00")
    assert svc.get_wallet(poor).open == eur("-1.00")
    again = svc.charge_periodic_fees()
    assert (again.entry_ids, again.waived) == ((), 0)
    # 1 April 00:00 in Nicosia (UTC+3 in summer) is 31 March 21:00 UTC
    first = svc.entry(report.entry_ids[0])
    assert dict(first.metadata)["occurrence"] == "2026-03-31T21:00:00+00:00"
    assert svc.verify().ok


def test_periodic_fees_from_several_runs_at_once(store: Store) -> None:
    svc, clock = service(store, TenantRules(periodic_fees=(MONTHLY,)))
    wallets = [open_wallet(svc, f"owner-{i}") for i in range(3)]
    for w in wallets:
        svc.top_up(w, eur("20.00"), method="cash")
    clock.set(datetime(2026, 5, 15, tzinfo=UTC))
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(WalletService(store, clock=clock,
                                         rules={TENANT: TenantRules(periodic_fees=(MONTHLY,))})
                           .charge_periodic_fees())
        except BaseException as exc:  # pragma: no cover - reported by the assert
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(len(r.entry_ids) for r in reports) == 6  # April and May, three wallets
    assert all(svc.get_wallet(w).open == eur("16.00") for w in wallets)
    assert svc.verify().ok


# -- low-balance reminders -------------------------------------------------------------------

REMINDERS = LowBalanceRule((Threshold(eur("40.00"), "notice"), Threshold(eur("30.00"), "warn")))


def test_low_balance_events_are_written_with_the_operation(store: Store) -> None:
    svc, _ = service(store, TenantRules(low_balance=REMINDERS))
    ann, bob = open_wallet(svc, "ann", floor=eur("-100.00")), open_wallet(svc, "bob")
    svc.top_up(ann, eur("50.00"), method="card")
    assert svc.events(TENANT) == []
    paid = svc.spend(ann, SpendRequest(eur("25.00")))  # 50 -> 25: both at once
    [event] = svc.events(TENANT)
    assert (event.wallet_id, event.owner_id, event.entry_id, event.open, event.floor,
            event.thresholds) == (ann, "ann", paid.entry_id, eur("25.00"), eur("-100.00"),
                                  ("notice", "warn"))
    svc.spend(ann, SpendRequest(eur("5.00")))  # staying below: nothing more
    with pytest.raises(SpendDeniedError):
        svc.spend(bob, SpendRequest(eur("5.00")))  # refused: writes nothing, no event
    assert [e.id for e in svc.events(TENANT)] == [event.id]
    svc.top_up(ann, eur("15.01"), method="card")  # 20 -> 35.01: "warn" re-armed
    svc.transfer(ann, bob, eur("5.01"))  # 35.01 -> 30.00: equal to "warn" crosses it
    second = svc.events(TENANT)[1]
    assert (second.thresholds, second.open) == (("warn",), eur("30.00"))
    assert svc.ack_events(TENANT, [event.id, "ev-unknown"]) == 1
    assert [e.id for e in svc.events(TENANT)] == [second.id]
    assert svc.ack_events(TENANT, [event.id]) == 0
    assert svc.events(TENANT, limit=1) == [second]


def test_low_balance_report(store: Store) -> None:
    svc, _ = service(store, TenantRules(low_balance=REMINDERS))
    rich, low, lower = (open_wallet(svc, o, floor=eur("-100.00")) for o in ("rich", "low", "lower"))
    svc.top_up(rich, eur("80.00"), method="card")
    svc.top_up(low, eur("30.00"), method="card")
    svc.spend(lower, SpendRequest(eur("10.00")))
    usd = svc.open_wallet(owner_id="usd", tenant_id=TENANT, currency="USD")
    assert usd.open.is_zero()
    report = svc.low_balance_report(TENANT, "warn")
    assert [(line.owner_id, line.open, line.top_up) for line in report] == sorted(
        [("low", eur("30.00"), eur("0.01")), ("lower", eur("-10.00"), eur("40.01"))],
        key=lambda row: {"low": low, "lower": lower}[row[0]])
    assert [line.wallet_id for line in svc.low_balance_report(TENANT, eur("100.00"))] == sorted(
        [rich, low, lower])
    with pytest.raises(InvalidInputError):
        svc.low_balance_report(TENANT, "panic")
