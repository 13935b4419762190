"""Batch jobs' throughput: rows per second of a bulk award, the expiry sweep and periodic fees.

Run by ``benchmarks/long_jobs.py`` (one child process per backend), or by itself::

    python benchmarks/batch_jobs.py --rows 20000                      # SQLite, synchronous=NORMAL
    python benchmarks/batch_jobs.py --rows 20000 --dsn postgresql://...  # PostgreSQL
    python benchmarks/batch_jobs.py --quick                           # 200 rows (CI)

It prints one JSON object. What is measured, through the public API with a
:class:`~prepaid_wallet.FixedClock`, on a store of its own (a SQLite file in a temporary
directory, or a PostgreSQL schema of its own, dropped at the end): ``rows / 10`` wallets are
opened and topped up with 100.00 EUR (the set-up, timed apart), then

* ``award`` -- ``WalletService.award_many``: ten calls (batch keys ``k0`` .. ``k9``) of one
  award of 1.00 EUR per wallet, expiring a day later: ``rows`` awards;
* ``expire`` -- two days later, ``WalletService.expire_due``: the ``rows`` lots, booked as
  breakage;
* ``fee`` -- a daily periodic fee of 0.01 EUR that began with the wallets, charged ten days
  later with ``WalletService.charge_periodic_fees``: ten occurrences per wallet, ``rows``
  charges.

Each is one timed call (:func:`time.perf_counter`); rows/s = rows / seconds. Every job's
result is checked (rows booked, nothing failed) and the store is verified at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

#: The rate every batch job aims at, on SQLite (synchronous=NORMAL) and on PostgreSQL.
TARGET_ROWS_PER_SECOND = 20_000
KEYS = 10
#: Rows per job in quick mode.
QUICK_ROWS = 200
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _rate(rows: int, seconds: float) -> dict[str, Any]:
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds,
            "passed": rows / seconds >= TARGET_ROWS_PER_SECOND}


def measure(rows: int, dsn: str | None, batch_size: int) -> dict[str, Any]:
    """The three jobs on a new store (see the module docstring)."""
    from prepaid_wallet import BulkAward, FixedClock, Money, WalletService
    from prepaid_wallet.rules.fees import PeriodicFee
    from prepaid_wallet.rules.tenant import TenantRules

    if rows % KEYS:
        raise SystemExit(f"--rows must be a multiple of {KEYS}")
    directory = tempfile.mkdtemp(prefix="prepaid-wallet-batch-jobs-")
    schema = f"batch_jobs_{os.getpid()}"
    if dsn is None:
        from prepaid_wallet.storage.sqlite import SQLiteStore

        store: Any = SQLiteStore(os.path.join(directory, "jobs.db"), synchronous="NORMAL")
        backend = "sqlite"
    else:
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        backend = "postgresql"
    try:
        clock = FixedClock(START)
        svc = WalletService(store, clock=clock)
        began = time.perf_counter()
        wallet_ids = []
        for i in range(rows // KEYS):
            wallet_id = svc.open_wallet(owner_id=f"o{i}", tenant_id="hub", currency="EUR").id
            svc.top_up(wallet_id, Money.of("100.00", "EUR"), method="card")
            wallet_ids.append(wallet_id)
        setup = time.perf_counter() - began

        def awards() -> Iterator[BulkAward]:
            one = Money.of("1.00", "EUR")
            for wallet_id in wallet_ids:
                yield BulkAward(wallet_id=wallet_id, amount=one, reason="promo",
                                expires_at=START + DAY)

        began = time.perf_counter()
        awarded = sum(svc.award_many(awards(), batch_key=f"k{key}", batch_size=batch_size
                                     ).awarded for key in range(KEYS))
        award = _rate(awarded, time.perf_counter() - began)
        clock.advance(2 * DAY)
        began = time.perf_counter()
        expired = svc.expire_due(batch_size=batch_size)
        expire = _rate(expired.lots_expired, time.perf_counter() - began)
        svc.set_tenant_rules("hub", TenantRules(periodic_fees=(PeriodicFee(
            "daily", Money.of("0.01", "EUR"), "FREQ=DAILY", START + DAY / 2, "UTC"),)))
        clock.advance((KEYS - 2) * DAY)
        began = time.perf_counter()
        fees = svc.charge_periodic_fees(batch_size=batch_size)
        fee = _rate(len(fees.entry_ids), time.perf_counter() - began)
        for name, done, failed in (("award", awarded, ()), ("expire", expired.lots_expired,
                                                            expired.failed),
                                   ("fee", len(fees.entry_ids), fees.failed)):
            if done != rows or failed:
                raise SystemExit(f"{name}: {done} rows booked of {rows}, {len(failed)} failed")
        if not svc.verify().ok:
            raise SystemExit("the store does not verify")
    finally:
        store.close()
        if dsn is not None:
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {"backend": backend, "rows": rows, "batch_size": batch_size,
            "setup_seconds": setup, "target_rows_per_second": TARGET_ROWS_PER_SECOND,
            "jobs": {"award": award, "expire": expire, "fee": fee}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, help="rows per job (default 20,000; quick: 200)")
    parser.add_argument("--dsn", help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--batch-size", type=int, default=500, help="rows per unit of work")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ROWS} rows, batches of 50 unless given (as CI runs it)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (what it always prints)")
    args = parser.parse_args(argv)
    rows = args.rows if args.rows is not None else QUICK_ROWS if args.quick else 20_000
    batch_size = 50 if args.quick and args.batch_size == 500 else args.batch_size
    print(json.dumps(measure(rows, args.dsn, batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
