"""Recorded time never goes backwards along a wallet's chain (DESIGN.md I13), on every backend:
a command whose clock is behind the latest entry of a wallet it locks is recorded at that
entry's instant, so statements, balances as of an instant and the wallet's history read in
journal order; a clock that moves forward gives exactly its own instants. And how far ahead a
hold may end and an award expire: the tenant's horizons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from prepaid_wallet import (
    FixedClock,
    InvalidTimeError,
    Money,
    SequentialIds,
    SpendRequest,
    Store,
    WalletService,
)
from prepaid_wallet.rules.tenant import TenantRules

T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TENANT = "hub"


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _service(store: Store, at: datetime, first_id: int = 1) -> tuple[WalletService, FixedClock]:
    clock = FixedClock(at)
    return WalletService(store, clock=clock, ids=SequentialIds(first_id)), clock


def test_a_clock_set_back_records_at_the_wallets_latest_instant(store: Store) -> None:
    svc, clock = _service(store, T0)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    first = svc.top_up(wallet.id, eur("10.00"), method="card")
    assert first.recorded_at == T0
    assert svc.get_wallet(wallet.id).last_at == T0
    clock.set(T0 - HOUR)  # the clock goes back an hour
    second = svc.top_up(wallet.id, eur("20.00"), method="card")
    assert second.recorded_at == first.recorded_at == T0
    assert svc.entry(second.entry_id).effective_at == T0
    assert svc.get_wallet(wallet.id).last_at == T0
    statement = svc.statement(wallet.id)
    assert [line.entry_id for line in statement.lines] == [first.entry_id, second.entry_id]
    assert [line.total_after for line in statement.lines] == [eur("10.00"), eur("30.00")]
    assert svc.balance(wallet.id, as_of=T0 - HOUR / 2).total == eur("0.00")
    assert svc.balance(wallet.id, as_of=T0).total == eur("30.00")
    report = svc.verify()
    assert report.ok, report.problems


def test_a_clock_that_moves_forward_gives_its_own_instants(store: Store) -> None:
    svc, clock = _service(store, T0)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    assert wallet.created_at == T0
    assert wallet.last_at is None
    instants = []
    for minutes in (0, 1, 1, 90):
        clock.advance(timedelta(minutes=minutes))
        instants.append(svc.top_up(wallet.id, eur("1.00"), method="card").recorded_at)
    assert instants == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2),
                        T0 + timedelta(minutes=92)]
    spent = svc.spend(wallet.id, SpendRequest(eur("0.50")))
    assert svc.entry(spent.entry_id).recorded_at == T0 + timedelta(minutes=92)


def test_a_new_wallet_is_never_written_before_it_was_opened(store: Store) -> None:
    svc, clock = _service(store, T0)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    clock.set(T0 - HOUR)
    receipt = svc.top_up(wallet.id, eur("1.00"), method="card")
    assert receipt.recorded_at == T0
    # a command that locks no wallet keeps its clock's instant
    other = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR")
    assert other.created_at == T0 - HOUR


def test_two_servers_with_skewed_clocks_keep_each_wallets_order(store: Store) -> None:
    ahead, _ = _service(store, T0)
    behind, behind_clock = _service(store, T0 - HOUR, first_id=1000)
    ann = ahead.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    bob = behind.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR")
    ahead.top_up(ann.id, eur("10.00"), method="card")
    behind.top_up(bob.id, eur("5.00"), method="card")  # bob's own time: T0 - 1h
    assert behind.get_wallet(bob.id).last_at == T0 - HOUR
    # a transfer touching both is recorded at the later of the two chains
    moved = behind.transfer(ann.id, bob.id, eur("2.00"))
    assert moved.recorded_at == T0
    assert ahead.get_wallet(bob.id).last_at == T0
    behind_clock.advance(HOUR / 2)
    spent = behind.spend(bob.id, SpendRequest(eur("1.00")))
    assert behind.entry(spent.entry_id).recorded_at == T0
    for wallet_id in (ann.id, bob.id):
        lines = ahead.statement(wallet_id).lines
        times = [line.recorded_at for line in lines]
        assert times == sorted(times)
    report = ahead.verify()
    assert report.ok, report.problems


def test_the_expiry_sweep_with_a_clock_behind_keeps_the_order(store: Store) -> None:
    svc, clock = _service(store, T0)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.award(wallet.id, eur("3.00"), reason="promo", expires_at=T0 + HOUR)
    clock.set(T0 + 3 * HOUR)
    svc.top_up(wallet.id, eur("1.00"), method="card")  # recorded at T0 + 3h
    clock.set(T0 + 2 * HOUR)  # behind the top-up, after the award's expiry
    report = svc.expire_due()
    assert report.lots_expired == 1
    lines = svc.statement(wallet.id).lines
    assert [line.recorded_at for line in lines] == [T0, T0 + 3 * HOUR, T0 + 3 * HOUR]
    assert lines[-1].commerce_change == eur("-3.00")


# -- how far ahead holds and awards may end ------------------------------------------------------


def _refused(store: Store, call: Callable[[], object], field: str, days: int) -> None:
    """``call`` raises ``InvalidTimeError`` naming ``field`` and the horizon; nothing changes."""
    before = store.export_state()
    with pytest.raises(InvalidTimeError) as caught:
        call()
    assert caught.value.field == field
    assert f"at most {days} days ahead" in caught.value.rule
    assert store.export_state() == before


def test_holds_and_awards_end_within_the_default_horizons(store: Store) -> None:
    svc, _ = _service(store, T0)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.top_up(wallet.id, eur("50.00"), method="card")
    assert svc.hold(wallet.id, eur("1.00"), window=31 * DAY).expires_at == T0 + 31 * DAY
    assert svc.hold(wallet.id, eur("1.00"), expires_at=T0 + 31 * DAY).expires_at == T0 + 31 * DAY
    _refused(store, lambda: svc.hold(wallet.id, eur("1.00"), window=31 * DAY + SECOND),
             "window", 31)
    _refused(store, lambda: svc.hold(wallet.id, eur("1.00"), expires_at=T0 + 32 * DAY),
             "expires_at", 31)
    lot = svc.award(wallet.id, eur("1.00"), reason="r", expires_at=T0 + 3653 * DAY)
    assert lot.expires_at == T0 + 3653 * DAY
    assert svc.award(wallet.id, eur("1.00"), reason="r").expires_at is None  # never expires
    _refused(store, lambda: svc.award(wallet.id, eur("1.00"), reason="r",
                                      expires_at=T0 + 3653 * DAY + SECOND), "expires_at", 3653)
    _refused(store, lambda: svc.extend_expiry(lot.id, T0 + 3654 * DAY), "expires_at", 3653)


def test_a_tenant_sets_its_own_horizons(store: Store) -> None:
    svc, clock = _service(store, T0)
    svc.set_tenant_rules(TENANT, TenantRules(hold_horizon_days=2, award_horizon_days=30))
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.top_up(wallet.id, eur("50.00"), method="card")
    _refused(store, lambda: svc.hold(wallet.id, eur("1.00"), window=3 * DAY), "window", 2)
    _refused(store, lambda: svc.hold(wallet.id, eur("1.00"), expires_at=T0 + 3 * DAY,
                                     idempotency_key="h-1"), "expires_at", 2)
    _refused(store, lambda: svc.award(wallet.id, eur("1.00"), reason="r",
                                      expires_at=T0 + 31 * DAY), "expires_at", 30)
    lot = svc.award(wallet.id, eur("1.00"), reason="r", expires_at=T0 + 30 * DAY)
    clock.advance(10 * DAY)  # the horizon counts from the command's instant
    moved = svc.extend_expiry(lot.id, T0 + 40 * DAY)
    assert moved.expires_at == T0 + 40 * DAY
    _refused(store, lambda: svc.extend_expiry(moved.id, T0 + 41 * DAY), "expires_at", 30)
    assert svc.hold(wallet.id, eur("1.00"), window=2 * DAY).expires_at == T0 + 12 * DAY
