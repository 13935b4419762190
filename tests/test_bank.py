"""The bank test, after Jepsen's: concurrent money movements never create or lose money.

Ten wallets (floor 0) are funded with 100.00 EUR each: 1,000.00 EUR in all. ``BANK_WORKERS``
worker *processes* (spawned) run ``BANK_OPS`` random operations each on their own connection to
the same durable store (tests/bank_worker.py): transfers between random wallets, credit-only
spends and holds followed by a partial capture or a void, each under its own idempotency key,
10% sent twice. Meanwhile the parent takes whole snapshots, each in ONE read-only unit of work
(every wallet and the whole journal read from the same committed state).

How a snapshot is checked (:func:`check_snapshot`), and why it is sound: money leaves the ten
wallets only as revenue (spends and captures) and enters only as the initial top-ups. Within one
snapshot the wallet *rows* (what a lost update corrupts) and the journal (append-only, written in
the same transaction) must therefore agree:

* each wallet's stored open / held / commerce equals the sum of its accounts' postings;
* no wallet is below its floor (open >= floor, held >= 0, commerce >= 0);
* the top-ups in the journal still add up to exactly 1,000.00, and
  sum(open + commerce + held over all wallets) + revenue == 1,000.00.

This needs no clock shared with the workers, so it cannot be fooled by an ack that is still in
flight. Acknowledgements are checked separately, with timestamps from the machine-wide monotonic
clock: an operation acknowledged before a snapshot began is in that snapshot; at the end every
acknowledged operation is in the journal exactly once (by entry id and by idempotency key), a
refused one not at all, and ``verify().ok``. No error other than the documented refusals may
reach a worker, and a retry returns the first outcome.

A negative control runs the same workload and checker on a deliberately broken store (no lock,
no version check, a sleep in the read-modify-write window) and requires the checker to notice.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from prepaid_wallet import (
    Money,
    Store,
    UnitOfWork,
    Wallet,
    WalletService,
    open_store,
)
from prepaid_wallet.ledger import Entry
from prepaid_wallet.storage.base import RecordType
from prepaid_wallet.storage.memory import MemoryStore, MemoryUnitOfWork
from prepaid_wallet.wallet import Change
from tests.backends import durable_backends
from tests.bank_worker import run_ops, worker

TENANT = "bank"
WALLETS = 10
FUNDING = 10_000  # minor units per wallet: 100.00 EUR
TOTAL = WALLETS * FUNDING  # 1,000.00 EUR

_CI = os.environ.get("CI", "").lower() == "true"
BANK_WORKERS = int(os.environ.get("BANK_WORKERS", "8" if _CI else "4"))
BANK_OPS = int(os.environ.get("BANK_OPS", "500" if _CI else "60"))


# -- the checker -----------------------------------------------------------------------------


def take_snapshot(store: Store) -> tuple[list[Wallet], list[Entry]]:
    """Every wallet and the whole journal, read in one read-only unit of work."""
    uow: UnitOfWork
    with store.unit_of_work(read_only=True) as uow:
        return list(uow.iter_wallets()), list(uow.iter_entries())


def check_snapshot(wallets: Sequence[Wallet], entries: Iterable[Entry]) -> list[str]:
    """What is wrong with one consistent snapshot (empty if nothing): see the module docstring."""
    sums: dict[str, int] = {}
    for entry in entries:
        for posting in entry.postings:
            sums[posting.account] = sums.get(posting.account, 0) + posting.amount.minor_units
    problems = []
    funded = -sum(v for k, v in sums.items() if k.startswith(f"tenant:{TENANT}:funding:"))
    if funded != TOTAL:
        problems.append(f"top-ups add up to {funded}, not {TOTAL}")
    revenue = sums.get(f"tenant:{TENANT}:revenue", 0)
    held_total = 0
    for w in wallets:
        prefix = f"wallet:{w.id}:"
        lots = sum(v for k, v in sums.items() if k.startswith(prefix + "lot:"))
        for name, stored, replayed in (
            ("open", w.open.minor_units, sums.get(prefix + "open", 0)),
            ("held", w.held.minor_units, sums.get(prefix + "held", 0)),
            ("commerce", w.commerce.minor_units, lots),
        ):
            if stored != replayed:
                problems.append(f"{w.id} {name} is {stored} but its postings give {replayed}")
        if w.open < w.floor or w.held.is_negative() or w.commerce.is_negative():
            problems.append(f"{w.id} below its floor: open {w.open}, held {w.held}")
        held_total += (w.open + w.commerce + w.held).minor_units
    if held_total + revenue != TOTAL:
        problems.append(f"wallets hold {held_total} and revenue is {revenue}: "
                        f"{held_total + revenue} != {TOTAL}")
    return problems


class Watcher:
    """Takes snapshots in a loop (in a thread) until stopped; keeps problems and entry ids."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.problems: list[str] = []
        self.snapshots: list[tuple[float, frozenset[str]]] = []  # (started at, entry ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.once()
            time.sleep(0.01)

    def once(self) -> None:
        started = time.monotonic()
        try:
            wallets, entries = take_snapshot(self.store)
        except Exception as exc:  # a failing read is a finding, kept for the test
            self.problems.append(f"snapshot raised {exc!r}")
            return
        self.problems.extend(check_snapshot(wallets, entries))
        self.snapshots.append((started, frozenset(e.id for e in entries)))

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.once()  # one more after everything settled


def check_acks(
    acks: Sequence[tuple[str, str, str, str | None, float]],
    snapshots: Sequence[tuple[float, frozenset[str]]],
    entries: Sequence[Entry],
) -> list[str]:
    """Acked operations are visible in every snapshot begun after the ack, and in the final
    journal exactly once (by entry id and by key); refused ones wrote no entry."""
    problems = []
    by_id: dict[str, int] = {}
    by_key: dict[str, list[Entry]] = {}
    for e in entries:
        by_id[e.id] = by_id.get(e.id, 0) + 1
        if e.idempotency_key is not None:
            by_key.setdefault(e.idempotency_key, []).append(e)
    for key, kind, outcome, entry_id, acked_at in acks:
        written = by_key.get(key, [])
        if outcome != "ok":
            if written:
                problems.append(f"refused {kind} {key} wrote {[e.id for e in written]}")
            continue
        if entry_id is None or by_id.get(entry_id) != 1:
            problems.append(f"acked {kind} {key}: entry {entry_id} appears "
                            f"{by_id.get(entry_id or '', 0)} times")
        if [e.id for e in written] != [entry_id]:
            problems.append(f"acked {kind} {key}: entries under its key {written}")
        missing = [t for t, ids in snapshots if t > acked_at and entry_id not in ids]
        if missing:
            problems.append(f"acked {kind} {key} missing from {len(missing)} later snapshots")
    return problems


# -- the set-up --------------------------------------------------------------------------------


def fund(store: Store) -> list[str]:
    """Ten wallets with floor 0 and 100.00 EUR each; their ids."""
    svc = WalletService(store)
    ids = []
    for i in range(WALLETS):
        w = svc.open_wallet(owner_id=f"acct-{i}", tenant_id=TENANT, currency="EUR")
        svc.top_up(w.id, Money.from_minor_units(FUNDING, "EUR"), method="card",
                   idempotency_key=f"fund-{i}")
        ids.append(w.id)
    return ids


def run_bank(url: str, workers: int, ops: int, seed: int) -> dict[str, Any]:
    """Run the bank workload in worker processes on the store at ``url``, watching it."""
    store = open_store(url)
    try:
        wallet_ids = fund(store)
        problems = check_snapshot(*take_snapshot(store))
        assert problems == [], problems
        spawn = multiprocessing.get_context("spawn")
        with Watcher(store) as watcher, concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=spawn
        ) as pool:
            futures = [pool.submit(worker, url, wallet_ids, f"p{n}", ops, seed * 1000 + n)
                       for n in range(workers)]
            results = [f.result(timeout=600) for f in futures]
        wallets, entries = take_snapshot(store)
        report = WalletService(store).verify()
        acks = [a for r in results for a in r["acks"]]
        return {
            "watch_problems": watcher.problems,
            "snapshots": len(watcher.snapshots),
            "ack_problems": check_acks(acks, watcher.snapshots, entries),
            "final_problems": check_snapshot(wallets, entries),
            "unexpected": [u for r in results for u in r["unexpected"]],
            "retried": sum(r["retried"] for r in results),
            "acks": acks,
            "verify": report,
        }
    finally:
        store.close()


@pytest.mark.parametrize("backend", sorted(durable_backends()))
def test_bank_concurrent_workers_never_create_or_lose_money(backend: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = durable_backends()[backend](Path(tmp))
        started = time.monotonic()
        out = run_bank(url, BANK_WORKERS, BANK_OPS, seed=7)
        elapsed = time.monotonic() - started
    print(f"bank on {backend}: {BANK_WORKERS} workers x {BANK_OPS} ops in {elapsed:.1f}s, "
          f"{out['snapshots']} snapshots, {len(out['acks'])} acks, {out['retried']} retries")
    assert out["unexpected"] == []
    assert out["watch_problems"] == []
    assert out["final_problems"] == []
    assert out["ack_problems"] == []
    assert out["verify"].ok, out["verify"]
    # The run was a real test: snapshots overlapped the work, and both outcomes happened.
    assert out["snapshots"] >= 3
    outcomes = {(kind, outcome) for _, kind, outcome, _, _ in out["acks"]}
    assert {("transfer", "ok"), ("spend", "ok"), ("hold", "ok")} <= outcomes, outcomes
    assert any(outcome != "ok" for _, _, outcome, _, _ in out["acks"])
    assert out["retried"] > 0


# -- the negative control ----------------------------------------------------------------------


class _RacyUnitOfWork(MemoryUnitOfWork):
    """A write unit that takes no lock and skips the version checks: read, sleep, write."""

    def __enter__(self) -> _RacyUnitOfWork:
        self._entered = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self.rollback()

    def lock_wallets(self, wallet_ids: Sequence[str], *,
                     tenant_records: Sequence[RecordType[Any]] = ()) -> dict[str, Wallet]:
        wallets = super().lock_wallets(wallet_ids)  # locks nothing
        time.sleep(0.002)  # widen the read-modify-write window
        return wallets

    def record(self, change: Change) -> None:
        # The real record() refuses a wallet version that is not current + 1; skip that.
        for wallet in change.wallets:
            self._wallets[wallet.id] = wallet
        self._lots.update((lot.id, lot) for lot in change.lots)
        self._holds.update((h.id, h) for h in change.holds)
        self._charges.update((c.entry_id, c) for c in change.charges)
        self._changes.append(change)

    def commit(self) -> None:
        store = self._store
        with store._lock:  # apply atomically (so snapshots stay consistent), but blindly
            store._owner = threading.get_ident()
            try:
                self._base_versions = {
                    wid: store.wallets[wid].version for wid in self._wallets
                    if wid in store.wallets
                }
                super().commit()
            finally:
                store._owner = None


class BrokenStore(MemoryStore):
    """A memory store whose write units do not lock and do not check versions (lost updates).
    Read-only units still take the lock, so the checker's snapshots are consistent."""

    def unit_of_work(self, *, read_only: bool = False) -> MemoryUnitOfWork:
        if read_only:
            return super().unit_of_work(read_only=True)
        return _RacyUnitOfWork(self)


def run_threads(store: Store, threads: int, ops: int) -> dict[str, Any]:
    """The bank workload in threads on one in-process store, watched like the real one."""
    wallet_ids = fund(store)
    results: list[dict[str, Any]] = []
    with Watcher(store) as watcher:
        pool = [threading.Thread(target=lambda n=n: results.append(
            run_ops(WalletService(store), wallet_ids, f"t{n}", ops, 100 + n)))
            for n in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    wallets, entries = take_snapshot(store)
    acks = [a for r in results for a in r["acks"]]
    return {
        "watch_problems": watcher.problems,
        "final_problems": check_snapshot(wallets, entries),
        "ack_problems": check_acks(acks, watcher.snapshots, entries),
        "unexpected": [u for r in results for u in r["unexpected"]],
        "verify": WalletService(store).verify(),
    }


def test_bank_checker_passes_a_correct_store_under_threads() -> None:
    out = run_threads(open_store("memory:"), threads=4, ops=60)
    assert out["unexpected"] == []
    assert out["watch_problems"] == out["final_problems"] == out["ack_problems"] == []
    assert out["verify"].ok


def test_bank_checker_detects_lost_updates_in_a_broken_store() -> None:
    out = run_threads(BrokenStore(), threads=4, ops=60)
    found = out["watch_problems"] + out["final_problems"]
    assert found, "the checker missed the broken store's lost updates"
    assert any("postings give" in p or "!=" in p or "below its floor" in p for p in found), found
    assert not out["verify"].ok  # the library's own verify agrees


def test_broken_store_is_fine_without_concurrency() -> None:
    """The negative control fails because of concurrency, not because BrokenStore is broken
    on its own: one thread on it passes every check."""
    out = run_threads(BrokenStore(), threads=1, ops=80)
    assert out["unexpected"] == []
    assert out["watch_problems"] == out["final_problems"] == out["ack_problems"] == []
    assert out["verify"].ok
