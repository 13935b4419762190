"""How the SQLite store writes a unit's lots: a lot granted by an earlier unit is updated in
place, a new one inserted, and a lot taken for stored that is not is still inserted whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from prepaid_wallet import FixedClock, Money, SequentialIds, WalletService
from prepaid_wallet import wallet as _w
from prepaid_wallet.storage.sqlite import SQLiteStore
from prepaid_wallet.wallet import EntryInfo

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_lots_updated_inserted_and_taken_for_stored(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "lots.db"), synchronous="NORMAL")
    try:
        clock = FixedClock(T0)
        svc = WalletService(store, clock=clock, ids=SequentialIds())
        wallet_id = svc.open_wallet(owner_id="o", tenant_id="t", currency="EUR").id
        svc.award(wallet_id, Money.of("2.00", "EUR"), reason="old",
                  expires_at=T0 + timedelta(days=1))
        (old,) = svc.lots(wallet_id)
        clock.advance(timedelta(days=2))
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets([wallet_id])[wallet_id]
            lot = uow.get_lot(old.id)
            expired = _w.expire_lot(wallet, lot, EntryInfo("e-expire", clock.now()))
            # A lot this unit did not read and no change of it grants, yet carrying an earlier
            # entry as its grant: the in-place update finds no row, so it is inserted.
            stray = attrs.evolve(old, id="lot-stray", reason="stray")
            uow.record(attrs.evolve(expired, lots=(*expired.lots, stray)))
            awarded = _w.award(expired.wallets[0], lot_id="lot-new",
                               amount=Money.of("1.00", "EUR"), expires_at=None, priority=0,
                               reason="new", info=EntryInfo("e-award", clock.now()))
            uow.record(awarded)
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            lots = uow.get_lots([old.id, "lot-new", "lot-stray"])
        assert lots[old.id].remaining == Money.of("0", "EUR")
        assert lots[old.id].expired_entry_id == "e-expire"
        assert lots["lot-new"].remaining == Money.of("1.00", "EUR")
        assert lots["lot-stray"].reason == "stray"  # inserted, though taken for stored
    finally:
        store.close()
