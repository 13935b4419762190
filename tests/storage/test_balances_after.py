"""``balances_after``: the balance after an entry of each account it posts to, from the state
its change carries, as every store writes it next to the posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from prepaid_wallet import (
    FixedClock,
    IntegrityError,
    Money,
    SequentialIds,
    SpendRequest,
    WalletService,
)
from prepaid_wallet.ledger import parse_account
from prepaid_wallet.storage._buffer import balances_after
from prepaid_wallet.storage.memory import MemoryStore
from prepaid_wallet.wallet import Change

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _changes() -> list[Change]:
    """The changes a top-up, an award, a hold and a spend record, as the store receives
    them."""
    store = MemoryStore()
    recorded: list[Change] = []
    real = store.unit_of_work

    def unit_of_work(*, read_only: bool = False) -> Any:
        uow = real(read_only=read_only)
        record = uow.record

        def capture(change: Change) -> None:
            recorded.append(change)
            record(change)

        uow.record = capture
        return uow

    store.unit_of_work = unit_of_work  # type: ignore[method-assign]
    svc = WalletService(store, clock=FixedClock(T0), ids=SequentialIds())
    wallet = svc.open_wallet(owner_id="o", tenant_id="t", currency="EUR")
    svc.top_up(wallet.id, Money.of("5.00", "EUR"), method="card")
    svc.award(wallet.id, Money.of("2.00", "EUR"), reason="promo")
    svc.hold(wallet.id, Money.of("1.00", "EUR"), window=timedelta(hours=1))
    svc.spend(wallet.id, SpendRequest(Money.of("3.00", "EUR")))
    return recorded


def _expected(change: Change) -> list[int | None]:
    wallets = {w.id: w for w in change.wallets}
    lots = {lot.id: lot for lot in change.lots}
    out: list[int | None] = []
    for posting in change.entry.postings:
        ref = parse_account(posting.account)
        if not ref.is_wallet:
            out.append(None)
        elif ref.name is not None:
            out.append(lots[ref.name].remaining.minor_units)
        elif ref.kind.value == "held":
            out.append(wallets[ref.owner].held.minor_units)
        else:
            out.append(wallets[ref.owner].open.minor_units)
    return out


def test_each_posting_gets_its_accounts_new_state() -> None:
    changes = _changes()
    assert len(changes) >= 4
    for change in changes:
        assert balances_after(change) == _expected(change)
    assert any(None in balances_after(c) for c in changes)  # a tenant's side
    assert any(c.lots for c in changes)


def test_a_posting_whose_new_state_the_change_lacks_is_refused() -> None:
    for change in _changes():
        with pytest.raises(IntegrityError, match="does not carry"):
            balances_after(attrs.evolve(change, wallets=(), lots=()))
