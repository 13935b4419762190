"""Scenario tables for WalletService: lots before / request / allocation / lots after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest

from prepaid_wallet import (
    AlreadyReversedError,
    EntryKind,
    FixedClock,
    HoldStatus,
    InsufficientFundsError,
    Money,
    PaymentMode,
    RefundExceedsOriginalError,
    SequentialIds,
    SpendDeniedError,
    SpendOrder,
    SpendRequest,
    WalletNotFoundError,
    WalletService,
    open_store,
)
from prepaid_wallet.policies import Reason

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def eur(value: str | int) -> Money:
    return Money.of(value, "EUR")


def make(
    order: SpendOrder = SpendOrder.DEFAULT, floor: str = "0"
) -> tuple[WalletService, FixedClock, str]:
    clock = FixedClock(T0)
    svc = WalletService(open_store("memory:"), clock=clock, ids=SequentialIds(), spend_order=order)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR", floor=eur(floor))
    return svc, clock, wallet.id


# Each lot: (name, amount, expires in days or None, priority). Lots are granted one minute apart
# in the order listed, so "oldest grant" follows the list order.
LotSpec = tuple[str, str, int | None, int]

SPEND_TABLE: list[tuple[str, list[LotSpec], str, str, str, list[tuple[str, str]], str]] = [
    # id, lots, open, floor, request, expected allocation [(lot name or "open", amount)], open after
    ("open only", [], "50", "0", "20", [("open", "20.00")], "30.00"),
    ("lot before open", [("a", "15", 30, 0)], "50", "0", "20",
     [("a", "15.00"), ("open", "5.00")], "45.00"),
    ("soonest expiry first", [("late", "10", 60, 0), ("soon", "10", 5, 0)], "0", "0", "15",
     [("soon", "10.00"), ("late", "5.00")], "0.00"),
    ("priority beats expiry", [("soon", "10", 5, 1), ("late", "10", 60, 0)], "0", "0", "15",
     [("late", "10.00"), ("soon", "5.00")], "0.00"),
    ("non-expiring last", [("forever", "10", None, 0), ("dated", "10", 90, 0)], "0", "0", "12",
     [("dated", "10.00"), ("forever", "2.00")], "0.00"),
    ("oldest grant breaks expiry tie", [("first", "4", 10, 0), ("second", "4", 10, 0)], "0",
     "0", "6", [("first", "4.00"), ("second", "2.00")], "0.00"),
    ("down to a negative floor", [("a", "5", 10, 0)], "10", "-100", "60",
     [("a", "5.00"), ("open", "55.00")], "-45.00"),
    ("exactly to the floor", [], "0", "-100", "100", [("open", "100.00")], "-100.00"),
]


def _grant(svc: WalletService, clock: FixedClock, wallet_id: str, lots: list[LotSpec]
           ) -> dict[str, str]:
    names = {}
    for name, amount, days, priority in lots:
        expires = None if days is None else clock.now() + days * DAY
        lot = svc.award(wallet_id, eur(amount), expires_at=expires, priority=priority, reason=name)
        names[lot.id] = name
        clock.advance(timedelta(minutes=1))
    return names


@pytest.mark.parametrize(
    ("lots", "open_", "floor", "amount", "expected", "open_after"),
    [row[1:] for row in SPEND_TABLE],
    ids=[row[0] for row in SPEND_TABLE],
)
def test_spend_order_table(
    lots: list[LotSpec], open_: str, floor: str, amount: str,
    expected: list[tuple[str, str]], open_after: str,
) -> None:
    svc, clock, wallet_id = make(floor=floor)
    if Decimal(open_) > 0:
        svc.top_up(wallet_id, eur(open_), method="card")
    names = _grant(svc, clock, wallet_id, lots)
    before = {lot.id: lot.remaining for lot in svc.lots(wallet_id)}
    decision = svc.check_spend(wallet_id, SpendRequest(eur(amount)))
    assert decision.allowed
    result = svc.spend(wallet_id, SpendRequest(eur(amount)))
    got = [("open" if p.lot_id is None else names[p.lot_id], str(p.amount.amount))
           for p in result.allocation]
    assert got == expected
    assert result.allocation == decision.allocation
    assert svc.balance(wallet_id).open == eur(open_after)
    after = {lot.id: lot.remaining for lot in svc.lots(wallet_id, include_empty=True)}
    for part in result.allocation:
        if part.lot_id is not None:
            assert after[part.lot_id] == before[part.lot_id] - part.amount
    assert svc.verify().ok


def test_credit_only_refusal_carries_shortfall_and_suggestion() -> None:
    svc, clock, wallet_id = make(floor="-10")
    svc.top_up(wallet_id, eur("20"), method="card")
    _grant(svc, clock, wallet_id, [("a", "5", 3, 0)])
    decision = svc.check_spend(wallet_id, SpendRequest(eur("50")))
    assert not decision.allowed
    assert decision.reasons == (Reason.INSUFFICIENT_CREDIT,)
    assert decision.covered == eur("35")  # 5 lot + 20 open + 10 below zero
    assert decision.shortfall == eur("15")
    assert decision.suggested_top_up >= decision.shortfall
    assert decision.allocation == ()
    dump = svc.store.export_state()
    with pytest.raises(SpendDeniedError) as info:
        svc.spend(wallet_id, SpendRequest(eur("50")))
    assert info.value.decision == decision
    assert svc.store.export_state() == dump
    # Topping up the suggestion lets the same order through.
    svc.top_up(wallet_id, decision.suggested_top_up, method="card")
    assert svc.spend(wallet_id, SpendRequest(eur("50"))).amount == eur("50")
    assert svc.balance(wallet_id).open == eur("-10")


@pytest.mark.parametrize(
    ("open_", "floor", "amount", "covered", "due"),
    [("30", "0", "50", "30.00", "20.00"), ("30", "-5", "50", "35.00", "15.00"),
     ("80", "0", "50", "50.00", "0.00"), ("0", "0", "10", "0.00", "10.00")],
)
def test_credit_first_pays_what_it_can(
    open_: str, floor: str, amount: str, covered: str, due: str
) -> None:
    svc, _, wallet_id = make(floor=floor)
    if Decimal(open_):
        svc.top_up(wallet_id, eur(open_), method="card")
    result = svc.spend(wallet_id, SpendRequest(eur(amount), mode=PaymentMode.CREDIT_FIRST))
    assert result.amount == eur(covered)
    assert result.remainder_due == eur(due)
    assert result.amount + result.remainder_due == eur(amount)
    assert (result.entry_id is None) == (covered == "0.00")
    assert svc.balance(wallet_id).open >= eur(floor)


def test_lot_is_never_spent_at_its_expiry() -> None:
    svc, clock, wallet_id = make()
    expires = T0 + timedelta(hours=5)
    svc.award(wallet_id, eur("10"), expires_at=expires, reason="promo")
    clock.set(expires - timedelta(microseconds=1))
    assert svc.check_spend(wallet_id, SpendRequest(eur("10"))).allowed
    clock.set(expires)
    decision = svc.check_spend(wallet_id, SpendRequest(eur("10")))
    assert not decision.allowed
    assert decision.covered == eur(0)
    balance = svc.balance(wallet_id)
    assert (balance.commerce, balance.expired) == (eur(0), eur("10"))
    report = svc.expire_due()
    assert report.lots_expired == 1
    assert svc.expire_due().lots_expired == 0  # booked exactly once
    assert svc.balance(wallet_id).expired == eur(0)
    entry = svc.entry(report.entry_ids[0])
    assert entry.kind is EntryKind.BREAKAGE
    assert svc.verify().ok


@pytest.mark.parametrize(
    ("order", "expected"),
    [(SpendOrder.DEFAULT, ["prio", "soon", "old"]),
     (SpendOrder.EXPIRING_FIRST, ["soon", "prio", "old"]),
     (SpendOrder.OLDEST_FIRST, ["old", "prio", "soon"])],
)
def test_spend_orders_are_policies(order: SpendOrder, expected: list[str]) -> None:
    svc, clock, wallet_id = make(order=order)
    names = _grant(svc, clock, wallet_id,
                   [("old", "1", 50, 0), ("prio", "1", 40, -1), ("soon", "1", 2, 0)])
    result = svc.spend(wallet_id, SpendRequest(eur("3")))
    assert [names[p.lot_id] for p in result.allocation if p.lot_id] == expected


def test_custom_spend_order_function() -> None:
    def largest_first(lots):  # type: ignore[no-untyped-def]
        return sorted(lots, key=lambda lot: -lot.remaining.minor_units)

    clock = FixedClock(T0)
    svc = WalletService(open_store("memory:"), clock=clock, ids=SequentialIds(),
                        spend_order=largest_first)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR")
    names = _grant(svc, clock, wallet.id, [("small", "2", 5, 0), ("big", "9", 50, 0)])
    result = svc.spend(wallet.id, SpendRequest(eur("10")))
    assert [(names[p.lot_id], str(p.amount.amount)) for p in result.allocation
            if p.lot_id] == [("big", "9.00"), ("small", "1.00")]


def test_hold_capture_releases_rest_to_sources() -> None:
    svc, clock, wallet_id = make()
    svc.top_up(wallet_id, eur("20"), method="card")
    names = _grant(svc, clock, wallet_id, [("a", "10", 10, 0)])
    before = svc.balance(wallet_id)
    held = svc.hold(wallet_id, eur("25"), window=timedelta(hours=4))
    during = svc.balance(wallet_id)
    assert (during.open, during.commerce, during.held) == (eur("5"), eur(0), eur("25"))
    assert during.total == before.total
    result = svc.capture(held.id, eur("12"))
    # The captured 12 comes from the first sources (the lot's 10, then 2 of open).
    assert [(names.get(p.lot_id or "", "open"), str(p.amount.amount))
            for p in result.allocation] == [("a", "10.00"), ("open", "2.00")]
    assert result.released == eur("13")
    after = svc.balance(wallet_id)
    assert (after.open, after.commerce, after.held) == (eur("18"), eur(0), eur(0))
    assert svc.get_hold(held.id).status is HoldStatus.CAPTURED


def test_hold_window_is_elapsed_utc_time_across_dst() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 01:30 CET; clocks jump from 02:00 to 03:00.
    start = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
    clock = FixedClock(start)
    svc = WalletService(open_store("memory:"), clock=clock, ids=SequentialIds())
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR")
    svc.top_up(wallet.id, eur("50"), method="card")
    held = svc.hold(wallet.id, eur("10"), window=timedelta(hours=4))
    assert held.expires_at - start.astimezone(UTC) == timedelta(hours=4)
    clock.advance(timedelta(hours=4) - timedelta(microseconds=1))
    svc.capture(held.id)
    assert svc.get_hold(held.id).status is HoldStatus.CAPTURED


def test_void_and_expiry_return_money_and_expired_lot_parts_become_breakage() -> None:
    svc, clock, wallet_id = make()
    svc.top_up(wallet_id, eur("10"), method="card")
    _grant(svc, clock, wallet_id, [("a", "6", 1, 0)])
    voided = svc.hold(wallet_id, eur("4"), window=timedelta(hours=1))
    assert svc.void(voided.id).status is HoldStatus.VOIDED
    assert svc.balance(wallet_id).available == eur("16")
    long = svc.hold(wallet_id, eur("8"), window=3 * DAY)  # 6 from the lot, 2 from open
    clock.advance(2 * DAY)  # the lot expires while its money is held
    clock.advance(DAY)  # and then the hold's window ends
    report = svc.expire_due()
    assert (report.holds_released, report.lots_expired) == (1, 0)
    assert svc.get_hold(long.id).status is HoldStatus.EXPIRED
    balance = svc.balance(wallet_id)
    assert (balance.open, balance.commerce, balance.held, balance.expired) == (
        eur("10"), eur(0), eur(0), eur(0))
    released = svc.entry(report.entry_ids[0])
    breakage = [p.amount for p in released.postings if p.account.endswith(":breakage")]
    assert breakage == [eur("6")]
    assert svc.verify().ok


def test_refund_returns_to_sources_last_paid_first_keeping_expiry() -> None:
    svc, clock, wallet_id = make()
    svc.top_up(wallet_id, eur("10"), method="card")
    names = _grant(svc, clock, wallet_id, [("a", "5", 10, 0), ("b", "5", 20, 0)])
    spent = svc.spend(wallet_id, SpendRequest(eur("14")))  # a 5, b 5, open 4
    first = svc.refund(spent.entry_id, eur("6"), reason="missing item")
    assert [(names.get(p.lot_id or "", "open"), str(p.amount.amount))
            for p in first.allocation] == [("open", "4.00"), ("b", "2.00")]
    lots = {names[lot.id]: lot for lot in svc.lots(wallet_id)}
    assert lots["b"].remaining == eur("2")
    assert lots["b"].expires_at == T0 + timedelta(minutes=1) + 20 * DAY
    clock.advance(11 * DAY)  # lot a has expired
    second = svc.refund(spent.entry_id, reason="order cancelled")  # the rest: b 3, a 5
    assert second.amount == eur("8")
    assert second.breakage == eur("5")
    balance = svc.balance(wallet_id)
    assert (balance.open, balance.commerce) == (eur("10"), eur("5"))
    with pytest.raises(RefundExceedsOriginalError) as info:
        svc.refund(spent.entry_id, eur("0.01"), reason="again")
    assert info.value.refundable == eur(0)
    assert svc.verify().ok


def test_reverse_top_up_once_and_only_while_money_is_there() -> None:
    svc, _, wallet_id = make()
    first = svc.top_up(wallet_id, eur("30"), method="card")
    second = svc.top_up(wallet_id, eur("5"), method="card")
    svc.spend(wallet_id, SpendRequest(eur("20")))
    with pytest.raises(InsufficientFundsError):
        svc.reverse(first.entry_id, reason="charged twice")
    reversal = svc.reverse(second.entry_id, reason="charged twice")
    assert svc.balance(wallet_id).open == eur("10")
    assert svc.entry(reversal.entry_id).reverses == second.entry_id
    with pytest.raises(AlreadyReversedError) as info:
        svc.reverse(second.entry_id, reason="again")
    assert info.value.reversal_id == reversal.entry_id
    lines = {line.entry_id: line for line in svc.statement(wallet_id).lines}
    assert lines[second.entry_id].reversed_by == reversal.entry_id
    assert lines[reversal.entry_id].reverses == second.entry_id
    assert svc.verify().ok


def test_wallets_are_isolated_per_tenant() -> None:
    svc, _, wallet_id = make()
    other = svc.open_wallet(owner_id="ann", tenant_id="hub-b", currency="EUR")
    svc.top_up(wallet_id, eur("10"), method="card")
    assert svc.balance(other.id).total == eur(0)
    # The same idempotency key at another tenant is another request.
    a = svc.top_up(wallet_id, eur("1"), method="card", idempotency_key="k")
    b = svc.top_up(other.id, eur("2"), method="card", idempotency_key="k")
    assert a.entry_id != b.entry_id
    # A service scoped to hub-b does not see hub-a's wallet: it is not found, like an unknown
    # one; a wallet of hub-b it reads as usual.
    scoped = WalletService(svc.store, clock=svc.clock, tenant_id="hub-b")
    with pytest.raises(WalletNotFoundError) as info:
        scoped.balance(wallet_id)
    assert str(info.value) == f"wallet {wallet_id!r} not found"
    assert scoped.balance(other.id).total == eur("2")


def test_statement_and_balance_as_of() -> None:
    svc, clock, wallet_id = make()
    svc.top_up(wallet_id, eur("40"), method="card")
    clock.advance(DAY)
    lot = svc.award(wallet_id, eur("10"), expires_at=clock.now() + 2 * DAY, reason="welcome")
    clock.advance(DAY)
    svc.spend(wallet_id, SpendRequest(eur("15"), description="order 17"))
    mid = svc.balance(wallet_id, as_of=T0 + DAY + timedelta(hours=1))
    assert (mid.open, mid.commerce, mid.total) == (eur("40"), eur("10"), eur("50"))
    early = svc.balance(wallet_id, as_of=T0 - DAY)
    assert early.total == eur(0)
    statement = svc.statement(wallet_id, since=T0 + DAY)
    assert statement.opening == eur("40")
    assert statement.closing == eur("35")
    assert [(line.kind, line.change) for line in statement.lines] == [
        (EntryKind.AWARD, eur("10")), (EntryKind.SPEND, eur("-15"))]
    spend_line = statement.lines[1]
    assert spend_line.description == "order 17"
    assert spend_line.lots[0].lot_id == lot.id
    assert spend_line.lots[0].expires_at == lot.expires_at
    assert statement.opening + sum((line.change for line in statement.lines), eur(0)) == \
        statement.closing


def test_balance_read_as_of_a_past_expiry() -> None:
    svc, clock, wallet_id = make()
    svc.award(wallet_id, eur("10"), expires_at=T0 + DAY, reason="promo")
    clock.advance(3 * DAY)
    svc.expire_due()
    past = svc.balance(wallet_id, as_of=T0 + 2 * DAY)  # expired, not yet booked then
    assert (past.commerce, past.expired) == (eur(0), eur("10"))
    assert svc.balance(wallet_id, as_of=T0 + timedelta(hours=1)).commerce == eur("10")


def test_verify_detects_tampering() -> None:
    svc, _, wallet_id = make()
    svc.top_up(wallet_id, eur("10"), method="card")
    svc.spend(wallet_id, SpendRequest(eur("3")))
    assert svc.verify().ok
    store = svc.store
    entries = store.entries  # type: ignore[attr-defined]
    forged = attrs.evolve(entries[0], metadata=(("note", "edited"),))
    entries[0] = forged
    problems = {p.code for p in svc.verify().problems}
    assert "hash" in problems
    # A forger who also rewrites the hash (here: the top-up said 11, not 10) passes the hash
    # check but breaks the next entry's link and the replayed balance.
    larger = tuple(attrs.evolve(p, amount=p.amount + eur("1") if p.amount.is_positive()
                                else p.amount - eur("1")) for p in entries[0].postings)
    rewritten = attrs.evolve(entries[0], postings=larger)
    entries[0] = attrs.evolve(rewritten, hash=rewritten.compute_hash())
    problems = {p.code for p in svc.verify().problems}
    assert "hash" not in problems
    assert {"chain", "balance"} <= problems


def test_idempotent_replay_returns_stored_outcome_even_after_state_changes() -> None:
    svc, clock, wallet_id = make()
    svc.top_up(wallet_id, eur("50"), method="card")
    request = SpendRequest(eur("20"))
    first = svc.spend(wallet_id, request, idempotency_key="order-1")
    clock.advance(DAY)
    svc.spend(wallet_id, SpendRequest(eur("25")))
    dump = svc.store.export_state()
    again = svc.spend(wallet_id, request, idempotency_key="order-1")
    assert again == first
    assert svc.store.export_state() == dump
    lot_expiry = clock.now() + timedelta(hours=1)
    lot = svc.award(wallet_id, eur("5"), expires_at=lot_expiry, reason="r", idempotency_key="a")
    clock.advance(DAY)  # a retry after the requested expiry still replays, not "in the past"
    assert svc.award(wallet_id, eur("5"), expires_at=lot_expiry, reason="r",
                     idempotency_key="a") == lot


def test_an_expired_award_cannot_be_reversed_its_remainder_is_breakage() -> None:
    svc, clock, wallet_id = make()
    lot = svc.award(wallet_id, eur("8"), expires_at=T0 + DAY, reason="promo")
    clock.advance(DAY)  # expired, not yet swept
    with pytest.raises(InsufficientFundsError) as info:
        svc.reverse(lot.entry_id, reason="mistake")
    assert info.value.available == eur(0)
    assert svc.expire_due().lots_expired == 1
    assert svc.verify().ok
