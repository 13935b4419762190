"""A purchase by hold + capture obeys the tenant's rules exactly as the same purchase by spend,
on every backend (DESIGN.md I11): the hold is decided as that spend is (refused with the same
decision, its fee reserved), the capture pays the spend fee of what it captures and counts as
one spend in the limit windows, a hold counts as that spend while it may be captured, and a
hold voided or ended counts for nothing."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import (
    FixedClock,
    Money,
    PrepaidWalletError,
    Reason,
    SequentialIds,
    SpendDeniedError,
    SpendRequest,
    Store,
    WalletService,
)
from prepaid_wallet.ledger import fees_account
from prepaid_wallet.rules.fees import FeeRule
from prepaid_wallet.rules.limits import LimitRule, Limits, Period, Window
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.tenant import TenantRules
from tests.backends import available_backends

#: Tuesday 2026-03-10, 09:00 in Europe/Nicosia.
T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TENANT = "hub"
NICOSIA_DAY = Window(period=Period.DAY, zone="Europe/Nicosia")
ROLLING_DAY = Window(rolling=timedelta(hours=24))
SPEND_FEE = FeeRule(name="service", operations={Operation.SPEND}, fixed=Money.of("0.10", "EUR"),
                    percent=Decimal(1))


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


@pytest.fixture(params=sorted(available_backends()))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of fresh stores of one backend (a test compares two services)."""
    made: list[Store] = []

    def make() -> Store:
        made.append(available_backends()[request.param](tmp_path))
        return made[-1]

    yield make
    for store in made:
        store.close()


def service(store: Store, rules: TenantRules) -> tuple[WalletService, FixedClock]:
    clock = FixedClock(T0)
    return WalletService(store, clock=clock, ids=SequentialIds(), rules={TENANT: rules}), clock


def open_wallet(svc: WalletService, owner: str = "ann", **kwargs: Any) -> str:
    return svc.open_wallet(owner_id=owner, tenant_id=TENANT, currency="EUR", **kwargs).id


def accounts(svc: WalletService, wallet_id: str) -> dict[str, Money]:
    """Every account's total over the wallet's entries: its open, held and lot accounts and the
    tenant's revenue, fees and breakage."""
    totals: dict[str, Money] = {}
    for line in svc.statement(wallet_id).lines:
        for posting in svc.entry(line.entry_id).postings:
            totals[posting.account] = totals.get(posting.account, eur("0.00")) + posting.amount
    return {account: amount for account, amount in totals.items() if not amount.is_zero()}


def state(svc: WalletService, wallet_id: str) -> tuple[Any, ...]:
    """What a purchase leaves behind: the wallet's balances, its lots and every account."""
    wallet = svc.get_wallet(wallet_id)
    lots = [(lot.id, lot.remaining) for lot in svc.lots(wallet_id, include_empty=True)]
    return (wallet.open, wallet.commerce, wallet.held), lots, accounts(svc, wallet_id)


def by_hold(svc: WalletService, wallet_id: str, amount: Money) -> Any:
    """The purchase of ``amount`` as a hold captured in full at once: the capture, or the
    hold's refusal."""
    try:
        held = svc.hold(wallet_id, amount, window=HOUR)
    except SpendDeniedError as exc:
        return "refused", exc.decision
    return "paid", svc.capture(held.id)


def by_spend(svc: WalletService, wallet_id: str, amount: Money) -> Any:
    try:
        return "paid", svc.spend(wallet_id, SpendRequest(amount))
    except SpendDeniedError as exc:
        return "refused", exc.decision


def outcome(result: Any) -> Any:
    """What the two paths must agree on: a refusal's decision, or what was paid and its fee."""
    if result[0] == "refused":
        return result
    paid = result[1]
    captured = getattr(paid, "captured", None)
    return "paid", captured if captured is not None else paid.amount, paid.allocation, paid.fee


# -- fees -----------------------------------------------------------------------------------------


def test_a_captured_hold_pays_the_spend_fee(make_store: Callable[[], Store]) -> None:
    """The fee dodge: hold + capture paid no fee where the spend paid 0.30. The hold reserves
    the spend's fee (held = amount + fee), the capture pays it to the tenant's fee account in
    its own entry, and the wallet and the tenant end as after the spend."""
    rules = TenantRules(fees=(SPEND_FEE,))
    (holding, _), (spending, _) = service(make_store(), rules), service(make_store(), rules)
    a, b = open_wallet(holding), open_wallet(spending)
    holding.top_up(a, eur("50.00"), method="cash")
    spending.top_up(b, eur("50.00"), method="cash")
    assert holding.check_spend(a, SpendRequest(eur("20.00"))).fee == eur("0.30")
    held = holding.hold(a, eur("20.00"), window=HOUR)
    assert (held.amount, held.reserved_fee, held.reserved) == (
        eur("20.00"), eur("0.30"), eur("20.30"))
    balance = holding.balance(a)
    assert (balance.open, balance.held) == (eur("29.70"), eur("20.30"))
    captured = holding.capture(held.id)
    assert (captured.captured, captured.released, captured.fee) == (
        eur("20.00"), eur("0.00"), eur("0.30"))
    entry = holding.entry(captured.entry_id)
    assert {p.account: p.amount for p in entry.postings}[fees_account(TENANT)] == eur("0.30")
    paid = spending.spend(b, SpendRequest(eur("20.00")))
    assert (paid.amount, paid.fee) == (eur("20.00"), eur("0.30"))
    assert state(holding, a) == state(spending, b)
    assert holding.get_wallet(a).open == eur("29.70")
    assert holding.verify().ok


def test_a_partial_capture_pays_the_fee_of_what_it_captures(
    make_store: Callable[[], Store],
) -> None:
    """Capturing 6.00 of a 20.00 hold pays the fee of 6.00 (0.16); the rest of the purchase and
    of the reserved fee go back: the same as a spend of 6.00."""
    rules = TenantRules(fees=(SPEND_FEE,))
    (holding, _), (spending, _) = service(make_store(), rules), service(make_store(), rules)
    a, b = open_wallet(holding), open_wallet(spending)
    for svc, w in ((holding, a), (spending, b)):
        svc.top_up(w, eur("30.00"), method="cash")
        svc.award(w, eur("4.00"), reason="voucher")
    held = holding.hold(a, eur("20.00"), window=HOUR)
    assert held.reserved_fee == eur("0.30")
    captured = holding.capture(held.id, eur("6.00"))
    assert (captured.captured, captured.released, captured.fee) == (
        eur("6.00"), eur("14.00"), eur("0.16"))
    paid = spending.spend(b, SpendRequest(eur("6.00")))
    assert (paid.allocation, paid.fee) == (captured.allocation, captured.fee)
    assert state(holding, a) == state(spending, b)
    assert holding.get_wallet(a).open == eur("27.84")  # the voucher paid 4.00, open 2.00
    assert holding.verify().ok


def test_a_hold_whose_fee_cannot_be_paid_is_refused_as_the_spend(
    make_store: Callable[[], Store],
) -> None:
    """A hold of the whole open balance leaves nothing for its fee; a voucher pays the purchase
    but the open balance is at its floor: each hold is refused with the spend's decision (the
    fee in its shortfall), check_spend agrees, and nothing is written."""
    svc, _ = service(make_store(), TenantRules(fees=(SPEND_FEE,)))
    w, v = open_wallet(svc, "ann"), open_wallet(svc, "vic")
    svc.top_up(w, eur("10.00"), method="cash")
    svc.award(v, eur("10.00"), reason="voucher")
    before = svc.store.export_state()
    for wallet_id, amount, shortfall in ((w, "10.00", "0.20"), (v, "5.00", "0.15")):
        decision = svc.check_spend(wallet_id, SpendRequest(eur(amount)))
        with pytest.raises(SpendDeniedError) as refused:
            svc.hold(wallet_id, eur(amount), window=HOUR)
        assert refused.value.action == "hold"
        assert refused.value.decision == decision
        assert (decision.allowed, decision.reasons, decision.shortfall) == (
            False, (Reason.INSUFFICIENT_CREDIT,), eur(shortfall))
    assert svc.store.export_state() == before
    held = svc.hold(w, eur("9.80"), window=HOUR)  # 9.80 + 0.20 fits
    assert (held.reserved, svc.get_wallet(w).open) == (eur("10.00"), eur("0.00"))


def test_a_refunded_capture_keeps_its_fee_as_a_refunded_spend_does(
    make_store: Callable[[], Store],
) -> None:
    rules = TenantRules(fees=(SPEND_FEE,))
    (holding, _), (spending, _) = service(make_store(), rules), service(make_store(), rules)
    a, b = open_wallet(holding), open_wallet(spending)
    holding.top_up(a, eur("50.00"), method="cash")
    spending.top_up(b, eur("50.00"), method="cash")
    captured = holding.capture(holding.hold(a, eur("20.00"), window=HOUR).id)
    paid = spending.spend(b, SpendRequest(eur("20.00")))
    assert paid.entry_id is not None
    refunds = (holding.refund(captured.entry_id, reason="returned"),
               spending.refund(paid.entry_id, reason="returned"))
    assert [refund.amount for refund in refunds] == [eur("20.00")] * 2
    assert state(holding, a) == state(spending, b)
    assert accounts(holding, a)[fees_account(TENANT)] == eur("0.30")
    assert holding.get_wallet(a).open == eur("49.70")


def test_a_void_or_an_ended_hold_gives_its_reserved_fee_back(
    make_store: Callable[[], Store],
) -> None:
    svc, clock = service(make_store(), TenantRules(fees=(SPEND_FEE,)))
    w = open_wallet(svc)
    svc.top_up(w, eur("50.00"), method="cash")
    svc.void(svc.hold(w, eur("20.00"), window=HOUR).id)
    ended = svc.hold(w, eur("10.00"), window=HOUR)
    clock.advance(HOUR)
    [expiry] = list(svc.sweep_expired())
    assert (expiry.subject_id, expiry.amount) == (ended.id, eur("10.20"))
    wallet = svc.get_wallet(w)
    assert (wallet.open, wallet.held) == (eur("50.00"), eur("0.00"))
    assert fees_account(TENANT) not in accounts(svc, w)
    assert svc.verify().ok


def test_a_capture_pays_at_most_the_fee_its_hold_reserved(
    make_store: Callable[[], Store],
) -> None:
    """The tenant changes its rules between hold and capture: the capture pays the fee of the
    rules then in force, never more than the hold reserved (what the customer authorised)."""
    store, clock, ids = make_store(), FixedClock(T0), SequentialIds()

    def with_fees(*fees: FeeRule) -> WalletService:
        return WalletService(store, clock=clock, ids=ids, rules={TENANT: TenantRules(fees=fees)})

    before = with_fees()
    w = open_wallet(before)
    before.top_up(w, eur("50.00"), method="cash")
    unreserved = before.hold(w, eur("10.00"), window=HOUR)
    whole, part = (with_fees(SPEND_FEE).hold(w, eur("10.00"), window=HOUR) for _ in range(2))
    assert (unreserved.reserved_fee, whole.reserved_fee) == (None, eur("0.20"))
    after = with_fees(FeeRule(name="dearer", operations={Operation.SPEND}, percent=Decimal(5)))
    assert after.capture(unreserved.id).fee is None
    assert after.capture(whole.id).fee == eur("0.20")  # not 5 % of 10.00
    assert after.capture(part.id, eur("2.00")).fee == eur("0.10")  # 5 % of 2.00
    assert after.get_wallet(w).open == eur("27.70")
    assert after.verify().ok


# -- limits ---------------------------------------------------------------------------------------

ONE_A_DAY = Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY,
                                    max_count=1),))
TEN_A_DAY = Limits(rules=(LimitRule(operation=Operation.SPEND, window=ROLLING_DAY,
                                    max_amount=eur("10.00")),))
LENIENT = Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY, max_count=9),
                        LimitRule(operation=Operation.SPEND, window=ROLLING_DAY,
                                  max_amount=eur("99.00"))))
#: (tenant limits, the wallet's override): a count and an amount limit, each set by the tenant
#: or by a wallet override of lenient tenant limits.
LIMIT_CASES = {
    "tenant count": (ONE_A_DAY, None),
    "tenant amount": (TEN_A_DAY, None),
    "override count": (LENIENT, ONE_A_DAY),
    "override amount": (LENIENT, TEN_A_DAY),
}


def limited(make_store: Callable[[], Store], case: str) -> tuple[WalletService, FixedClock, str]:
    tenant, override = LIMIT_CASES[case]
    svc, clock = service(make_store(), TenantRules(limits=tenant))
    w = open_wallet(svc)
    if override is not None:
        svc.set_limits(w, override)
    svc.top_up(w, eur("80.00"), method="cash")
    return svc, clock, w


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_a_hold_is_refused_when_the_spend_would_breach_a_limit(
    make_store: Callable[[], Store], case: str,
) -> None:
    """The limit dodge: after a spend of 6.00 used the day's allowance, a hold of 6.00 went
    through. It is refused with the decision check_spend and spend give (which limits, with
    what is left), and writes nothing."""
    svc, _, w = limited(make_store, case)
    svc.spend(w, SpendRequest(eur("6.00")))
    before = svc.store.export_state()
    decision = svc.check_spend(w, SpendRequest(eur("6.00")))
    assert decision.reasons == (Reason.LIMIT_EXCEEDED,)
    with pytest.raises(SpendDeniedError) as refused:
        svc.hold(w, eur("6.00"), window=HOUR, idempotency_key="h")
    assert refused.value.decision == decision
    with pytest.raises(SpendDeniedError) as again:
        svc.spend(w, SpendRequest(eur("6.00")))
    assert again.value.decision == decision
    with pytest.raises(SpendDeniedError) as replayed:  # the refusal replays under its key
        svc.hold(w, eur("6.00"), window=HOUR, idempotency_key="h")
    assert replayed.value.decision == decision
    after = svc.store.export_state()
    assert after["wallets"] == before["wallets"]
    assert after["entries"] == before["entries"]


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_an_active_hold_and_its_capture_count_as_one_spend(
    make_store: Callable[[], Store], case: str,
) -> None:
    """A hold of 6.00 uses the allowance as the spend would: while it may be captured a spend
    of 6.00 is refused (else hold, spend, capture would pass two purchases through a limit of
    one), and after the capture too; the capture itself is never refused."""
    svc, _, w = limited(make_store, case)
    held = svc.hold(w, eur("6.00"), window=HOUR)
    decision = svc.check_spend(w, SpendRequest(eur("6.00")))
    assert decision.reasons == (Reason.LIMIT_EXCEEDED,)
    with pytest.raises(SpendDeniedError):
        svc.hold(w, eur("6.00"), window=HOUR)
    captured = svc.capture(held.id)
    assert captured.captured == eur("6.00")
    assert svc.check_spend(w, SpendRequest(eur("6.00"))) == decision


def test_a_capture_counts_exactly_once(make_store: Callable[[], Store]) -> None:
    """Two purchases a day: hold and capture one, and exactly one more goes through, with the
    allowance left as after one spend."""
    two = Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY, max_count=2,
                                  max_amount=eur("50.00")),))
    svc, _ = service(make_store(), TenantRules(limits=two))
    w = open_wallet(svc)
    svc.top_up(w, eur("80.00"), method="cash")

    def left() -> tuple[int | None, Money | None]:
        [breach] = svc.check_spend(w, SpendRequest(eur("50.01"))).limits
        return breach.count_left, breach.amount_left

    held = svc.hold(w, eur("5.00"), window=HOUR)
    assert left() == (1, eur("45.00"))
    svc.capture(held.id, eur("4.00"))
    assert left() == (1, eur("46.00"))
    svc.spend(w, SpendRequest(eur("1.00")))
    assert not svc.check_spend(w, SpendRequest(eur("1.00"))).allowed


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
@pytest.mark.parametrize("end", ["void", "ended", "swept"])
def test_a_hold_voided_or_ended_counts_for_nothing(
    make_store: Callable[[], Store], case: str, end: str,
) -> None:
    svc, clock, w = limited(make_store, case)
    held = svc.hold(w, eur("6.00"), window=HOUR)
    clock.advance(HOUR - timedelta(microseconds=1))  # the last instant it may be captured
    assert not svc.check_spend(w, SpendRequest(eur("6.00"))).allowed
    if end == "void":
        svc.void(held.id)
    else:
        clock.advance(timedelta(microseconds=1))  # the hold can no longer be captured
        if end == "swept":
            svc.expire_due()
    assert svc.check_spend(w, SpendRequest(eur("6.00"))).allowed
    svc.spend(w, SpendRequest(eur("6.00")))
    assert svc.verify().ok


# -- the two paths, over many rule sets ----------------------------------------------------------

GUESTS = FeeRule(name="guest", operations={Operation.SPEND}, percent=Decimal(10),
                 owner_groups={"guests"})
CAPPED = FeeRule(name="capped", operations={Operation.SPEND, Operation.TOP_UP},
                 fixed=eur("0.30"), percent=Decimal("2.5"), minimum=eur("0.50"),
                 maximum=eur("3.00"))
FEE_SETS: tuple[tuple[FeeRule, ...], ...] = ((), (SPEND_FEE,), (GUESTS,), (CAPPED, SPEND_FEE))
LIMIT_SETS: tuple[tuple[Limits, Limits | None], ...] = (
    (Limits(), None),
    (ONE_A_DAY, None),
    (Limits(rules=(LimitRule(operation=Operation.SPEND, window=NICOSIA_DAY, max_count=3,
                             max_amount=eur("40.00")),)), None),
    (LENIENT, Limits(rules=(LimitRule(operation=Operation.SPEND, window=ROLLING_DAY,
                                      max_count=2, max_amount=eur("25.00")),))),
)


def _scenario(rng: random.Random) -> dict[str, Any]:
    fees = rng.choice(FEE_SETS)
    limits, override = rng.choice(LIMIT_SETS)
    return {
        "rules": TenantRules(fees=fees, limits=limits),
        "override": override,
        "groups": rng.choice([set(), {"guests"}]),
        "floor": rng.choice([0, 0, -1_500]),
        "top_up": rng.choice([0, 500, 2_000, 6_000]),
        "awards": [(rng.randint(100, 1_500), rng.choice([None, 5, 30]))
                   for _ in range(rng.randint(0, 2))],
        "purchases": [(rng.randint(1, 3_000), rng.choice([0, 0, 3, 20]))
                      for _ in range(rng.randint(1, 6))],
    }


def _run(svc: WalletService, clock: FixedClock, scenario: dict[str, Any],
         buy: Callable[[WalletService, str, Money], Any]) -> list[Any]:
    """The scenario on one service, each purchase made with ``buy``: what each purchase did,
    the wallet's state after it, and then what later spends are told."""
    w = open_wallet(svc, owner_groups=scenario["groups"],
                    floor=Money.from_minor_units(scenario["floor"], "EUR"))
    if scenario["override"] is not None:
        svc.set_limits(w, scenario["override"])
    if scenario["top_up"]:
        svc.top_up(w, Money.from_minor_units(scenario["top_up"], "EUR"), method="cash")
    for minor, hours in scenario["awards"]:
        svc.award(w, Money.from_minor_units(minor, "EUR"), reason="voucher",
                  expires_at=None if hours is None else clock.now() + timedelta(hours=hours))
    seen: list[Any] = []
    for minor, hours in scenario["purchases"]:
        clock.advance(timedelta(hours=hours))
        seen.append((outcome(buy(svc, w, Money.from_minor_units(minor, "EUR"))),
                     state(svc, w)))
    for probe in ("0.01", "1.00", "7.50", "30.00"):
        seen.append(svc.check_spend(w, SpendRequest(eur(probe))))
    for _ in range(3):  # later spends use what is left of every allowance
        try:
            seen.append(svc.spend(w, SpendRequest(eur("2.00"))).fee)
        except PrepaidWalletError as exc:
            seen.append(repr(exc))
    seen.append(state(svc, w))
    assert svc.verify().ok
    return seen


def test_hold_and_capture_all_is_the_spend_over_many_rule_sets(
    make_store: Callable[[], Store],
) -> None:
    """For the same wallet, rules and purchases, paying each purchase by hold + capture all
    leaves exactly what paying it by spend leaves, purchase by purchase: the same refusals
    (with the same decisions), fees, balances, lots, tenant accounts and limit usage (what
    later spends are told), on every backend."""
    rng = random.Random(13)
    reached: set[str] = set()
    for _ in range(12):
        scenario = _scenario(rng)
        holding, spending = (service(make_store(), scenario["rules"]) for _ in range(2))
        spent = _run(*spending, scenario, by_spend)
        assert _run(*holding, scenario, by_hold) == spent, scenario
        for (kind, *paid), _ in spent[:len(scenario["purchases"])]:
            if kind == "refused":
                reached.update(reason.value for reason in paid[0].reasons)
            else:
                reached.add("no fee" if paid[2] is None else "fee")
        if scenario["override"] is not None:
            reached.add("override")
    # the scenarios reach fees, refusals of both kinds and wallet overrides
    assert reached >= {"fee", "no fee", "insufficient_credit", "limit_exceeded", "override"}

