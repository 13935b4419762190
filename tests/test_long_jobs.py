"""The long jobs -- the expiry sweep, verify and a statement export -- run in bounded memory:
their peak Python memory stays flat when the store grows tenfold (measured with
:mod:`tracemalloc` around the job alone, on a real SQLite file). Reading everything into lists
first, as a naive job would, makes these fail."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prepaid_wallet import EntryKind, FixedClock, Money, WalletService
from prepaid_wallet.app import pipeline
from prepaid_wallet.ledger import parse_account
from prepaid_wallet.storage import _sql
from prepaid_wallet.storage.base import Store
from prepaid_wallet.storage.sqlite import SQLiteStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SMALL, LARGE = 500, 5000


def _eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _service(path: Path) -> tuple[WalletService, FixedClock]:
    clock = FixedClock(T0)
    return WalletService(SQLiteStore(str(path), synchronous="NORMAL"), clock=clock), clock


def _saturate_caches() -> None:
    """Fill the library's bounded caches (parsed account names keep the last 4096) so that
    their filling up does not count as growth: they stay the same size from here on."""
    for i in range(parse_account.cache_info().maxsize or 0):
        parse_account(f"wallet:w_{i:032x}:lot:lot_{i:032x}")  # as long as real names


def _peak(job: Callable[[], int]) -> tuple[int, int]:
    """Run ``job`` under tracemalloc; (rows it reported, how far the memory in use rose above
    where it started)."""
    tracemalloc.start()
    try:
        _saturate_caches()  # traced, so entries they evict and replace cancel out
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        rows = job()
        return rows, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _lots_store(path: Path, lots: int) -> tuple[WalletService, FixedClock]:
    """``lots`` one-euro awards, ten per wallet, all due a day later."""
    svc, clock = _service(path)
    for w in range(lots // 10):
        wallet = svc.open_wallet(owner_id=f"o{w}", tenant_id="hub", currency="EUR")
        for _ in range(10):
            svc.award(wallet.id, _eur("1.00"), reason="promo", expires_at=T0 + timedelta(days=1))
    clock.advance(timedelta(days=2))
    return svc, clock


def _history_store(path: Path, entries: int) -> tuple[WalletService, str]:
    svc, clock = _service(path)
    wallet = svc.open_wallet(owner_id="big", tenant_id="hub", currency="EUR")
    for _ in range(entries):
        clock.advance(timedelta(seconds=1))
        svc.top_up(wallet.id, _eur("0.01"), method="card")
    return svc, wallet.id


def _count(rows: Iterator[object]) -> int:
    return sum(1 for _ in rows)


#: The tests of ``lot_stores`` run on one pytest-xdist worker, which builds the stores once.
LOT_STORES = pytest.mark.xdist_group("long_jobs_lot_stores")


@pytest.fixture(scope="module")
def lot_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, WalletService]:
    base = tmp_path_factory.mktemp("lots")
    return {n: _lots_store(base / f"{n}.db", n)[0] for n in (SMALL, LARGE)}


def _flat(small: int, large: int) -> None:
    # Ten times the rows may cost a little more (a larger page of ids, interned strings), never
    # ten times the memory: a job that kept every row would need far over twice the peak.
    assert large < 2 * small + 64 * 1024, (small, large)


@LOT_STORES
def test_the_sweep_books_every_lot_in_flat_memory(lot_stores: dict[int, WalletService]) -> None:
    peaks = {}
    for n, svc in lot_stores.items():
        rows, peaks[n] = _peak(lambda svc=svc: _count(svc.sweep_expired()))
        assert rows == n
        assert svc.balance(svc.wallets("hub")[0].id).commerce == _eur("0")
    _flat(peaks[SMALL], peaks[LARGE])


@LOT_STORES
def test_verify_checks_every_wallet_in_flat_memory(lot_stores: dict[int, WalletService],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Wallets are listed a page at a time: one page as large as the small store's wallets, so
    # that filling the page (a fixed buffer) is not taken for growth.
    monkeypatch.setattr(_sql, "_PAGE", SMALL // 10)
    peaks = {}
    for n, svc in lot_stores.items():
        seen: dict[str, int] = {}

        def job(svc: WalletService = svc, seen: dict[str, int] = seen) -> int:
            return _count(svc.iter_verify(progress=seen.__setitem__))

        problems, peaks[n] = _peak(job)
        assert problems == 0
        assert seen["wallets"] == n // 10
        assert seen["entries"] >= n  # the awards, and the breakage if the sweep ran first
    _flat(peaks[SMALL], peaks[LARGE])


def test_a_statement_streams_in_flat_memory(tmp_path: Path) -> None:
    peaks = {}
    for n in (SMALL, LARGE):
        svc, wallet_id = _history_store(tmp_path / f"{n}.db", n)

        def job(svc: WalletService = svc, wallet_id: str = wallet_id, n: int = n) -> int:
            with svc.stream_statement(wallet_id) as stream:
                rows = _count(iter(stream))
                assert stream.closing == _eur("0.01") * n
            return rows

        rows, peaks[n] = _peak(job)
        assert rows == n
    _flat(peaks[SMALL], peaks[LARGE])


def test_an_abandoned_statement_stream_releases_its_unit(tmp_path: Path) -> None:
    svc, wallet_id = _history_store(tmp_path / "s.db", 5)
    with svc.stream_statement(wallet_id) as stream:
        first = next(iter(stream))
        assert stream.opening == _eur("0")
        assert stream.closing == first.total_after == _eur("0.01")
    # The unit of work is closed: the same thread may write again.
    svc.top_up(wallet_id, _eur("1.00"), method="card")
    assert svc.statement(wallet_id).closing == _eur("1.05")




def test_verify_names_an_entry_recorded_before_the_one_it_follows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store written before recorded time was kept moving forward along each wallet's chain
    # (schema version 8) may hold entries later in the journal and earlier in time: as when a
    # command read the clock first but committed second. Its statements list them out of
    # order; verify names the entry and still follows the chain.
    monkeypatch.setattr(pipeline, "not_before", lambda at, wallets: at)
    clock = FixedClock(T0 + timedelta(days=1))
    svc = WalletService(store, clock=clock)
    ann = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
    ben = svc.open_wallet(owner_id="ben", tenant_id="hub", currency="EUR").id
    svc.top_up(ann, _eur("10"), method="card")
    clock.set(T0)
    transfer = svc.transfer(ann, ben, _eur("3")).entry_id
    svc.top_up(ann, _eur("1"), method="card")
    assert [line.kind for line in svc.statement(ann).lines] == [
        EntryKind.TRANSFER, EntryKind.TOP_UP, EntryKind.TOP_UP]
    report = svc.verify()
    assert (report.entries, report.wallets) == (3, 2)
    assert [(p.code, p.subject) for p in report.problems if p.code == "time"] == [
        ("time", transfer)]
    assert not {"chain", "order", "balance"} & {p.code for p in report.problems}


def test_listings_page_by_key_on_every_backend(store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FixedClock(T0)
    svc = WalletService(store, clock=clock)
    ids = {t: [svc.open_wallet(owner_id=f"o{i}", tenant_id=t, currency="EUR").id
               for i in range(5)] for t in ("a", "b")}
    big = ids["a"][0]
    for _ in range(7):  # several entries at one instant: pages must not split ties wrongly
        svc.top_up(big, _eur("1"), method="card")
    clock.advance(timedelta(seconds=1))
    svc.top_up(big, _eur("2"), method="card")
    expected = [line.entry_id for line in svc.statement(big).lines]
    monkeypatch.setattr(_sql, "_PAGE", 2)
    monkeypatch.setattr(_sql, "_BATCH", 2)  # both SQL stores read their batches by it
    assert [w.id for w in svc.wallets()] == sorted(ids["a"] + ids["b"])
    assert [w.id for w in svc.iter_wallets("a")] == sorted(ids["a"])
    assert [w.id for w in svc.wallets("b")] == sorted(ids["b"])
    with svc.stream_statement(big) as stream:
        assert [line.entry_id for line in stream] == expected
        assert stream.closing == _eur("9")
    assert len(expected) == 8
    assert svc.verify().ok


def test_wallets_are_listed_in_flat_memory(tmp_path: Path) -> None:
    peaks = {}
    for n in (SMALL, LARGE):
        svc, _ = _service(tmp_path / f"{n}.db")
        for i in range(n):
            svc.open_wallet(owner_id=f"o{i}", tenant_id="hub", currency="EUR")
        rows, peaks[n] = _peak(lambda svc=svc: _count(svc.iter_wallets("hub")))
        assert rows == n
    _flat(peaks[SMALL], peaks[LARGE])
