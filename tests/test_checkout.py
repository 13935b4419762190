"""Credit at checkout on every backend: one pending credit payment per order (a hold
underneath), re-sized when the total changes, captured when the order is placed, released when
it is abandoned; what remains due for another method; credit owed, once; and two checkouts of
one member at once never spending the same credit twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from prepaid_wallet import FixedClock, Money, SequentialIds, Store, WalletService
from prepaid_wallet.errors import (
    InvalidInputError,
    NoCreditOwedError,
    OrderExpiredError,
    OrderNotCoveredError,
    OrderNotFoundError,
    OrderStateError,
)
from prepaid_wallet.policies import PaymentMode
from prepaid_wallet.rules.checkout import CHECKOUT_WINDOW, CreditClaim, OrderStatus
from prepaid_wallet.rules.fees import FeeRule
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.wallet import HoldStatus
from tests.backends import durable_backends

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
HUB = "hub"
CREDIT_FIRST = TenantRules(payment_mode=PaymentMode.CREDIT_FIRST)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _service(store: Store, clock: FixedClock, rules: TenantRules = CREDIT_FIRST,
             *, sequential: bool = True) -> WalletService:
    if not sequential:  # services sharing a store concurrently need ids of their own
        return WalletService(store, clock=clock, rules={HUB: rules})
    return WalletService(store, clock=clock, ids=SequentialIds(), rules={HUB: rules})


def _member(svc: WalletService, credit: str, owner: str = "ann") -> str:
    wallet = svc.open_wallet(owner_id=owner, tenant_id=HUB, currency="EUR")
    if Decimal(credit) > 0:
        svc.top_up(wallet.id, eur(credit), method="card")
    return wallet.id


def test_credit_pays_the_least_of_credit_and_total_and_says_what_remains(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    w = _member(svc, "30.00")
    paid = svc.apply_credit(w, order_id="o-1", total=eur("45.00"))
    assert (paid.credit, paid.remainder_due, paid.status) == (
        eur("30.00"), eur("15.00"), OrderStatus.PENDING)
    assert paid.expires_at == T0 + CHECKOUT_WINDOW
    assert svc.balance(w).available == eur("0.00")
    small = svc.apply_credit(w, order_id="o-1", total=eur("12.00"))  # re-sized down
    assert (small.credit, small.remainder_due) == (eur("12.00"), eur("0.00"))
    assert small.hold_id != paid.hold_id
    assert svc.get_hold(paid.hold_id or "").status is (
        HoldStatus.VOIDED)
    assert svc.balance(w).available == eur("18.00")
    assert len(svc.holds(w)) == 2
    assert [h.status for h in svc.holds(w)].count(
        HoldStatus.ACTIVE) == 1
    big = svc.apply_credit(w, order_id="o-1", total=eur("100.00"))  # re-sized up
    assert (big.credit, big.remainder_due) == (eur("30.00"), eur("70.00"))
    none = svc.apply_credit(w, order_id="o-1", total=eur("0.00"))  # never below zero
    assert (none.credit, none.remainder_due, none.hold_id) == (eur("0.00"), eur("0.00"), None)
    assert svc.balance(w).available == eur("30.00")
    assert svc.verify().ok


def test_applying_again_with_the_same_total_changes_nothing(store: Store) -> None:
    clock = FixedClock(T0)
    svc = _service(store, clock)
    w = _member(svc, "30.00")
    first = svc.apply_credit(w, order_id="o-1", total=eur("20.00"))
    entries = len(svc.statement(w).lines)
    clock.advance(timedelta(minutes=5))
    assert svc.apply_credit(w, order_id="o-1", total=eur("20.00")) == first
    assert len(svc.statement(w).lines) == entries
    assert svc.order_payment(w, "o-1") == first


def test_placing_captures_and_abandoning_releases(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    w = _member(svc, "30.00")
    svc.apply_credit(w, order_id="o-1", total=eur("10.00"))
    placed = svc.place_order(w, order_id="o-1")
    assert placed.status is OrderStatus.PLACED
    assert placed.entry_id is not None
    assert svc.balance(w).open == eur("20.00")
    with pytest.raises(OrderStateError):
        svc.place_order(w, order_id="o-1")
    with pytest.raises(OrderStateError):
        svc.apply_credit(w, order_id="o-1", total=eur("5.00"))
    svc.apply_credit(w, order_id="o-2", total=eur("15.00"))
    assert svc.balance(w).available == eur("5.00")
    gone = svc.abandon_order(w, order_id="o-2")
    assert gone.status is OrderStatus.ABANDONED
    assert svc.balance(w).available == eur("20.00")
    with pytest.raises(OrderStateError):
        svc.abandon_order(w, order_id="o-2")
    with pytest.raises(OrderNotFoundError):
        svc.place_order(w, order_id="o-3")
    assert [p.order_id for p in svc.order_payments(w)] == ["o-1", "o-2"]
    assert svc.verify().ok


def test_an_expired_payment_is_not_placed_until_credit_is_applied_again(store: Store) -> None:
    clock = FixedClock(T0)
    svc = _service(store, clock)
    w = _member(svc, "30.00")
    svc.apply_credit(w, order_id="o-1", total=eur("10.00"), window=timedelta(minutes=30))
    clock.advance(timedelta(minutes=30))
    before = svc.balance(w)
    with pytest.raises(OrderExpiredError):
        svc.place_order(w, order_id="o-1")
    assert svc.balance(w) == before
    renewed = svc.apply_credit(w, order_id="o-1", total=eur("10.00"))
    assert renewed.expires_at == clock.now() + CHECKOUT_WINDOW
    assert svc.place_order(w, order_id="o-1").status is OrderStatus.PLACED
    assert svc.balance(w).open == eur("20.00")
    assert svc.balance(w).held == eur("0.00")
    assert svc.verify().ok


def test_credit_only_orders_are_placed_only_when_credit_covers_them(store: Store) -> None:
    svc = _service(store, FixedClock(T0), TenantRules())  # the hub is credit only
    w = _member(svc, "10.00")
    short = svc.apply_credit(w, order_id="o-1", total=eur("12.00"))
    assert short.mode is PaymentMode.CREDIT_ONLY
    assert short.remainder_due == eur("2.00")
    with pytest.raises(OrderNotCoveredError) as refused:
        svc.place_order(w, order_id="o-1", idempotency_key="k")
    assert refused.value.remainder_due == eur("2.00")
    with pytest.raises(OrderNotCoveredError):  # the refusal replays
        svc.place_order(w, order_id="o-1", idempotency_key="k")
    assert svc.apply_credit(w, order_id="o-1", total=eur("9.00")).remainder_due == eur("0.00")
    assert svc.place_order(w, order_id="o-1").status is OrderStatus.PLACED


def test_fees_are_reserved_and_paid_as_for_a_hold(store: Store) -> None:
    fee = FeeRule(name="service", operations={Operation.SPEND}, fixed=eur("1.00"))
    svc = _service(store, FixedClock(T0), TenantRules(fees=(fee,),
                                                      payment_mode=PaymentMode.CREDIT_FIRST))
    w = _member(svc, "10.00")
    paid = svc.apply_credit(w, order_id="o-1", total=eur("20.00"))
    assert (paid.credit, paid.remainder_due) == (eur("9.00"), eur("11.00"))
    svc.place_order(w, order_id="o-1")
    assert svc.balance(w).open == eur("0.00")
    assert svc.verify().ok


def test_another_wallets_order_is_not_reachable(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    ann = _member(svc, "10.00")
    bob = _member(svc, "10.00", owner="bob")
    svc.apply_credit(ann, order_id="o-1", total=eur("5.00"))
    with pytest.raises(InvalidInputError) as bad:
        svc.apply_credit(bob, order_id="o-1", total=eur("5.00"))
    assert bad.value.field == "order_id"
    with pytest.raises(OrderNotFoundError):
        svc.place_order(bob, order_id="o-1")


def test_credit_owed_is_credited_once_by_a_staff_member(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    w = _member(svc, "10.00")
    svc.apply_credit(w, order_id="o-1", total=eur("25.00"))
    svc.place_order(w, order_id="o-1")  # 10.00 credit, 15.00 by card
    with pytest.raises(NoCreditOwedError):
        svc.credit_owed(w, order_id="o-1", total=eur("25.00"),
                        paid_by_other_methods=eur("15.00"), actor="staff-1")
    done = svc.credit_owed(w, order_id="o-1", total=eur("21.50"),
                           paid_by_other_methods=eur("15.00"), actor="staff-1",
                           reason="one item out of stock")
    assert (done.credited, done.credited_by) == (eur("3.50"), "staff-1")
    assert svc.balance(w).open == eur("3.50")
    line = svc.statement(w).lines[-1]
    assert line.entry_id == done.credited_entry_id
    before = svc.balance(w)
    with pytest.raises(NoCreditOwedError) as again:
        svc.credit_owed(w, order_id="o-1", total=eur("21.50"),
                        paid_by_other_methods=eur("15.00"), actor="staff-1")
    assert again.value.credited_entry_id == done.credited_entry_id
    assert svc.balance(w) == before
    with pytest.raises(InvalidInputError) as bad:
        svc.credit_owed(w, order_id="o-1", total=eur("1.00"),
                        paid_by_other_methods=eur("0.00"), actor=None)  # type: ignore[arg-type]
    assert bad.value.field == "actor"
    assert svc.verify().ok


def test_an_order_paid_by_other_methods_only_is_owed_once(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    w = _member(svc, "0.00")
    other = _member(svc, "0.00", owner="bob")
    state = store.export_state()
    with pytest.raises(NoCreditOwedError):  # paid exactly its total: nothing owed, nothing kept
        svc.credit_owed(w, order_id="o-cash", total=eur("10.00"),
                        paid_by_other_methods=eur("10.00"), actor="staff-1")
    assert store.export_state() == state
    done = svc.credit_owed(w, order_id="o-cash", total=eur("10.00"),
                           paid_by_other_methods=eur("12.00"), actor="staff-1")
    assert (done.credit, done.credited, done.status) == (eur("0.00"), eur("2.00"),
                                                         OrderStatus.PLACED)
    assert svc.balance(w).open == eur("2.00")
    with pytest.raises(NoCreditOwedError):
        svc.credit_owed(w, order_id="o-cash", total=eur("10.00"),
                        paid_by_other_methods=eur("12.00"), actor="staff-1")
    with pytest.raises(OrderNotFoundError):  # the order is the first wallet's
        svc.credit_owed(other, order_id="o-cash", total=eur("10.00"),
                        paid_by_other_methods=eur("12.00"), actor="staff-1")
    assert svc.balance(w).open == eur("2.00")
    assert svc.balance(other).open == eur("0.00")
    assert svc.verify().ok


def test_credit_owed_in_bulk_gives_one_entry_per_order(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    ann = _member(svc, "50.00")
    bob = _member(svc, "50.00", owner="bob")
    for wallet, order in ((ann, "a-1"), (bob, "b-1"), (ann, "a-2")):
        svc.apply_credit(wallet, order_id=order, total=eur("10.00"))
        svc.place_order(wallet, order_id=order)
    claims = [CreditClaim(wallet_id=ann, order_id="a-1", total=eur("8.00"),
                          paid_by_other_methods=eur("0.00")),
              CreditClaim(wallet_id=bob, order_id="b-1", total=eur("7.00"),
                          paid_by_other_methods=eur("0.00")),
              CreditClaim(wallet_id=ann, order_id="a-2", total=eur("10.00"),
                          paid_by_other_methods=eur("0.00"))]
    results = svc.credit_owed_many(claims, actor="staff-2")
    assert [getattr(r, "credited", None) for r in results[:2]] == [eur("2.00"), eur("3.00")]
    assert isinstance(results[2], NoCreditOwedError)
    assert len({getattr(r, "credited_entry_id", None) for r in results[:2]}) == 2
    again = svc.credit_owed_many(claims, actor="staff-2")
    assert all(isinstance(r, NoCreditOwedError) for r in again)
    assert (svc.balance(ann).open, svc.balance(bob).open) == (eur("32.00"), eur("43.00"))
    with pytest.raises(InvalidInputError) as bad:
        svc.credit_owed_many([claims[0], "nope"], actor="s")  # type: ignore[list-item]
    assert bad.value.field == "claims[1]"
    assert svc.verify().ok


def test_a_replayed_apply_returns_the_stored_payment(store: Store) -> None:
    svc = _service(store, FixedClock(T0))
    w = _member(svc, "30.00")
    first = svc.apply_credit(w, order_id="o-1", total=eur("20.00"), idempotency_key="a")
    svc.apply_credit(w, order_id="o-1", total=eur("5.00"))
    assert svc.apply_credit(w, order_id="o-1", total=eur("20.00"), idempotency_key="a") == first


@pytest.mark.parametrize("backend", sorted(durable_backends()))
def test_two_checkouts_at_once_never_spend_the_same_credit_twice(
        backend: str, tmp_path: Path) -> None:
    from prepaid_wallet import open_store

    url = durable_backends()[backend](tmp_path)
    setup = open_store(url, create=True)
    svc = _service(setup, FixedClock(T0))
    w = _member(svc, "30.00")
    setup.close()
    rounds = 6
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def checkout(thread: int) -> None:
        store = open_store(url)
        try:
            mine = _service(store, FixedClock(T0), sequential=False)
            for i in range(rounds):
                barrier.wait()
                order = f"t{thread}-{i}"
                mine.apply_credit(w, order_id=order, total=eur("20.00"))
                mine.place_order(w, order_id=order)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=checkout, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    check = open_store(url)
    try:
        svc = _service(check, FixedClock(T0))
        paid = [p.credit for p in svc.order_payments(w)]
        assert len(paid) == 2 * rounds
        assert Money.sum(paid, "EUR") == eur("30.00")
        assert svc.balance(w).open == eur("0.00")
        assert svc.verify().ok
    finally:
        check.close()
