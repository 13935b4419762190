"""Batch jobs: how much of a row's time is the SQL the store sends, and what rate it allows.

Run from the project root::

    python benchmarks/batch_sql.py                # 20,000 rows per job, batches of 500
    python benchmarks/batch_sql.py --rows 100000  # more rows
    python benchmarks/batch_sql.py --quick        # 200 rows, batches of 50 (CI)
    python benchmarks/batch_sql.py --json         # one JSON object instead of the table
    python benchmarks/batch_sql.py --dsn postgresql://...  # on PostgreSQL (with any of the above)

``benchmarks/batch_jobs.py`` measures the batch jobs' rows per second against a target of
20,000. This script says how much of that time no Python in the library could save: it runs
the same three jobs (``award_many``, the expiry sweep, periodic fees) through the public API
the way ``batch_jobs.py`` does -- ``rows / 10`` wallets topped up, ten bulk awards of 1.00 EUR
each, the lots expired two days later, then ten daily fees of 0.01 EUR -- and measures the SQL
each job sends.

On SQLite (the default; a store at ``synchronous=NORMAL`` in a temporary directory), while each
job runs it records every statement the store sends on its connection, with its parameters (a
thin wrapper around the store's ``sqlite3`` connection, which the job's timing includes).
Before each job the database is copied (SQLite's online backup); afterwards the recorded
statements are executed again, in order, on the copy, by a bare ``sqlite3`` connection with the
store's pragmas, and timed. It checks that the replay changed the copy exactly as the job
changed the store (the same number of entries).

On PostgreSQL (``--dsn``; a ``PostgresStore`` in a scratch schema of its own, dropped at the
end) a replay would not hold (ids and versions would differ), so every query is timed where it
runs, during the job (the timing's own small cost is part of the job's time): each connection
the store takes from its pool executes through a psycopg cursor class that times ``execute``,
``executemany`` and every fetch of rows, a pipeline is timed as one round trip (its queries'
sending, and its end, which waits for their results), and the ``ROLLBACK`` the store sends
straight through libpq is timed too. What is timed is the server's work (a write unit's
``SELECT write_unit(...); COMMIT`` includes the deferred balance and foreign-key checks at
commit), the socket round trip, and psycopg's handling of the query and its result (adapting
the parameters, converting the rows): everything but the library's own Python. No client
sending these statements could book rows faster than the server answers them, so the rate they
allow is a ceiling as well. The statement texts are folded (whitespace; the JSON literal handed
to ``write_unit`` cut to ``write_unit(...)``, arrays of literals to ``ARRAY[...]``); the JSON
report counts the round trips too.

Per job it prints the library's rows per second and time per row, the time per row of its SQL
(replayed alone on SQLite, as sent on PostgreSQL), the rest (the library's Python and, on
SQLite, the driver's calls: everything but what was timed as SQL), the statements sent (queries
handed to the driver), and the **SQL ceiling**: the rows per second the job would reach if
everything but its SQL cost nothing. A target above the ceiling cannot be met by making the
library's Python faster; it needs fewer or cheaper statements (fewer rows or indexes per booked
row, bigger batches). The slowest statements are listed per job. It judges nothing (exit status
0) and checks that each job booked every row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

#: The rate every batch job aims at (``benchmarks/batch_jobs.py``).
TARGET_ROWS_PER_SECOND = 20_000
KEYS = 10
QUICK_ROWS = 200
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
JOBS = ("award", "expire", "fee")
#: The pragmas the store sets on its connections (``SQLiteStore`` at synchronous=NORMAL).
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
           "PRAGMA foreign_keys = ON")


class Counted:
    """A cursor that counts the rows read from it (a replay reads as many, no more: the store
    reads a due list lazily and leaves the rest of it unread)."""

    def __init__(self, cursor: sqlite3.Cursor, entry: list[Any]) -> None:
        self.cursor = cursor
        self.entry = entry

    def _count(self, rows: list[Any]) -> list[Any]:
        self.entry[3] += len(rows)
        return rows

    def fetchone(self) -> Any:
        row = self.cursor.fetchone()
        if row is not None:
            self.entry[3] += 1
        return row

    def fetchmany(self, size: int = 1) -> list[Any]:
        return self._count(self.cursor.fetchmany(size))

    def fetchall(self) -> list[Any]:
        return self._count(self.cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        for row in self.cursor:
            self.entry[3] += 1
            yield row

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


class Recorder:
    """A store's ``sqlite3`` connection that records the statements sent through it: ``[kind,
    sql, parameters, rows read]``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.log: list[list[Any]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Counted:
        entry: list[Any] = ["one", sql, tuple(params), 0]
        self.log.append(entry)
        return Counted(self.conn.execute(sql, params), entry)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        rows = [tuple(row) for row in rows]
        self.log.append(["many", sql, rows, 0])
        return self.conn.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def replay(path: str, log: Sequence[list[Any]], checkpoint: int | None = None
           ) -> tuple[float, dict[str, float]]:
    """Execute ``log`` on the database at ``path``, reading as many rows of each statement as
    the store read: total seconds, and seconds per statement (its text, whitespace folded).
    ``checkpoint``: the replay's ``wal_autocheckpoint`` in pages (None: SQLite's default,
    1,000, as the store runs; 0: no checkpoint while it replays)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        if checkpoint is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
        per: dict[str, float] = {}
        began = time.perf_counter()
        for kind, sql, params, read in log:
            one = time.perf_counter()
            if kind == "one":
                cursor = conn.execute(sql, params)
                if read:
                    cursor.fetchmany(read)
                cursor.close()
            else:
                conn.executemany(sql, params)
            text = " ".join(sql.split())
            per[text] = per.get(text, 0.0) + time.perf_counter() - one
        return time.perf_counter() - began, per
    finally:
        conn.close()


def _entries(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        return int(count)
    finally:
        conn.close()


def _jobs(store: Any, rows: int, batch_size: int) -> dict[str, Callable[[], int]]:
    """Set up ``store`` for the three jobs (``rows / 10`` wallets topped up) and return them, by
    name, each a call that runs the job and returns the rows it booked."""
    from prepaid_wallet import BulkAward, FixedClock, Money, WalletService
    from prepaid_wallet.rules.fees import PeriodicFee
    from prepaid_wallet.rules.tenant import TenantRules

    if rows % KEYS:
        raise SystemExit(f"--rows must be a multiple of {KEYS}")
    clock = FixedClock(START)
    svc = WalletService(store, clock=clock)
    wallet_ids = []
    for i in range(rows // KEYS):
        wallet_id = svc.open_wallet(owner_id=f"o{i}", tenant_id="hub", currency="EUR").id
        svc.top_up(wallet_id, Money.of("100.00", "EUR"), method="card")
        wallet_ids.append(wallet_id)
    one = Money.of("1.00", "EUR")

    def awards() -> Iterator[BulkAward]:
        for wallet_id in wallet_ids:
            yield BulkAward(wallet_id=wallet_id, amount=one, reason="promo",
                            expires_at=START + DAY)

    def award() -> int:
        return sum(svc.award_many(awards(), batch_key=f"k{key}", batch_size=batch_size
                                  ).awarded for key in range(KEYS))

    def expire() -> int:
        clock.advance(2 * DAY)
        return svc.expire_due(batch_size=batch_size).lots_expired

    def fee() -> int:
        svc.set_tenant_rules("hub", TenantRules(periodic_fees=(PeriodicFee(
            "daily", Money.of("0.01", "EUR"), "FREQ=DAILY", START + DAY / 2, "UTC"),)))
        clock.advance((KEYS - 2) * DAY)
        return len(svc.charge_periodic_fees(batch_size=batch_size).entry_ids)

    return {"award": award, "expire": expire, "fee": fee}


def _timed(name: str, run: Callable[[], int], rows: int) -> float:
    """Seconds ``run`` took; it must have booked ``rows`` rows."""
    began = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - began
    if done != rows:
        raise SystemExit(f"{name}: {done} rows booked of {rows}")
    return seconds


def measure(rows: int, batch_size: int, checkpoint: int | None = None) -> dict[str, Any]:
    """The three jobs on SQLite, each recorded and replayed (see the module docstring);
    ``checkpoint`` as :func:`replay` takes it."""
    from prepaid_wallet.storage.sqlite import SQLiteStore

    directory = tempfile.mkdtemp(prefix="prepaid-wallet-batch-sql-")
    store = SQLiteStore(os.path.join(directory, "jobs.db"), synchronous="NORMAL")
    try:
        runs = _jobs(store, rows, batch_size)
        jobs = []
        for name in JOBS:
            conn = store._connection()  # this thread's connection, as every unit uses it
            copy = os.path.join(directory, f"before-{name}.db")
            target = sqlite3.connect(copy)
            conn.backup(target)
            target.close()
            recorder = Recorder(conn)
            store._local.conn = recorder
            try:
                seconds = _timed(name, runs[name], rows)
            finally:
                store._local.conn = conn
            sql_seconds, per = replay(copy, recorder.log, checkpoint)
            if _entries(copy) != _entries(store.path):
                raise SystemExit(f"{name}: the replay did not book what the job booked")
            jobs.append(_job(name, rows, seconds, sql_seconds, len(recorder.log), per))
        return {"backend": "sqlite", "synchronous": "NORMAL", "rows": rows,
                "batch_size": batch_size, "target_rows_per_second": TARGET_ROWS_PER_SECOND,
                "replay_wal_autocheckpoint": 1000 if checkpoint is None else checkpoint,
                "jobs": jobs}
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


def fold(sql: str | bytes) -> str:
    """A statement's text as reported: whitespace folded, the JSON literal ``write_unit`` is
    called with cut to ``write_unit(...)`` and arrays of literals to ``ARRAY[...]`` (so the
    statements of every unit add up under one text)."""
    text = " ".join((sql.decode() if isinstance(sql, bytes) else sql).split())
    text = _WRITE_UNIT.sub("write_unit(...)", text)
    return _ARRAY.sub("ARRAY[...]", text)


_WRITE_UNIT = re.compile(r"write_unit\(.*::jsonb\)")
_ARRAY = re.compile(r"ARRAY\[.*?\](?=::)")


class Sent:
    """One round trip timed: the statements sent in it and the seconds spent."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.seconds = 0.0


class Timer:
    """What the store's PostgreSQL connections sent while :attr:`active`, in order."""

    def __init__(self) -> None:
        self.active = False
        self.log: list[Sent] = []
        #: The pipeline being sent: its statements are one round trip.
        self.pipeline: Sent | None = None

    def sent(self, query: Any) -> Sent:
        """Where the time of ``query``, sent now, goes (the open pipeline, or a new round
        trip)."""
        sent = self.pipeline
        if sent is None:
            sent = Sent()
            self.log.append(sent)
        sent.texts.append(fold(query if isinstance(query, str | bytes) else str(query)))
        return sent

    def take(self) -> tuple[float, dict[str, float], int, int]:
        """Seconds, seconds per text (a pipeline's queries joined by ``; ``), queries and
        round trips sent since the last call; the log starts again."""
        per: dict[str, float] = {}
        for sent in self.log:
            text = "; ".join(sent.texts)
            per[text] = per.get(text, 0.0) + sent.seconds
        queries = sum(len(sent.texts) for sent in self.log)
        round_trips = len(self.log)
        self.log = []
        return sum(per.values()), per, queries, round_trips


def timed_cursor(timer: Timer) -> type[Any]:
    """A psycopg cursor class that times, while ``timer`` is active, every query it executes
    and every row fetched from it (their time goes to the query's round trip)."""
    import psycopg

    class TimedCursor(psycopg.Cursor[Any]):
        _sent: Sent | None = None

        def _time(self, call: Callable[[], Any]) -> Any:
            sent = self._sent
            if sent is None or not timer.active:
                return call()
            began = time.perf_counter()
            try:
                return call()
            finally:
                sent.seconds += time.perf_counter() - began

        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            self._sent = timer.sent(query) if timer.active else None
            return self._time(lambda: super(TimedCursor, self).execute(query, *args, **kwargs))

        def executemany(self, query: Any, *args: Any, **kwargs: Any) -> None:
            # Sent as one pipeline (the driver's own): one round trip.
            if not timer.active or timer.pipeline is not None:
                self._sent = timer.sent(query) if timer.active else None
                self._time(lambda: super(TimedCursor, self).executemany(
                    query, *args, **kwargs))
                return
            self._sent = timer.pipeline = timer.sent(query)
            try:
                self._time(lambda: super(TimedCursor, self).executemany(
                    query, *args, **kwargs))
            finally:
                timer.pipeline = None

        def fetchone(self) -> Any:
            return self._time(super().fetchone)

        def fetchmany(self, size: int = 0) -> Any:
            return self._time(lambda: super(TimedCursor, self).fetchmany(size))

        def fetchall(self) -> Any:
            return self._time(super().fetchall)

        def __next__(self) -> Any:
            return self._time(super().__next__)

        def nextset(self) -> Any:
            return self._time(super().nextset)

    return TimedCursor


@contextlib.contextmanager
def timed_queries(store: Any, timer: Timer) -> Iterator[None]:
    """Within: every connection ``store`` takes from its pool sends through a cursor of
    :func:`timed_cursor`, its pipelines timed as one round trip each (from entering the
    pipeline to its end, the sync that sends it and waits for its results, but the library's
    code run inside it), and the ``ROLLBACK`` the store sends straight through libpq (past the
    driver's statement cache: a read-only unit ends with one) is timed too."""
    import prepaid_wallet.storage.postgres as postgres

    module: Any = postgres  # its ``rollback``, replaced while timing
    rollback = module.rollback

    def timed_rollback(conn: Any) -> None:
        sent = timer.sent("ROLLBACK") if timer.active else None
        began = time.perf_counter()
        try:
            rollback(conn)
        finally:
            if sent is not None:
                sent.seconds += time.perf_counter() - began

    cursor_class = timed_cursor(timer)
    pool = store._pool
    getconn = pool.getconn

    def timed(conn: Any) -> Any:
        if conn.cursor_factory is cursor_class:
            return conn
        conn.cursor_factory = cursor_class
        pipeline = conn.pipeline

        @contextlib.contextmanager
        def timed_pipeline(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if not timer.active or timer.pipeline is not None:
                with pipeline(*args, **kwargs) as inner:
                    yield inner
                return
            sent = timer.pipeline = Sent()
            timer.log.append(sent)
            try:
                began = time.perf_counter()
                with pipeline(*args, **kwargs) as inner:
                    sent.seconds += time.perf_counter() - began
                    yield inner  # each statement in it times its own sending
                    began = time.perf_counter()
                sent.seconds += time.perf_counter() - began
            finally:
                timer.pipeline = None

        conn.pipeline = timed_pipeline
        return conn

    pool.getconn = lambda *args, **kwargs: timed(getconn(*args, **kwargs))
    module.rollback = timed_rollback
    try:
        yield
    finally:
        module.rollback = rollback
        del pool.getconn  # the pool's own again


def server_version(dsn: str) -> str:
    """The PostgreSQL server's version, ``major.minor``."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.info.server_version
    return f"{version // 10000}.{version % 10000}"


def measure_postgres(rows: int, batch_size: int, dsn: str) -> dict[str, Any]:
    """The three jobs on PostgreSQL, every query timed where it runs (see the module
    docstring), on a store in a scratch schema of its own, dropped at the end."""
    import psycopg

    from prepaid_wallet.storage.postgres import PostgresStore

    schema = f"batch_sql_{os.getpid()}"
    store = PostgresStore(dsn, schema=schema)
    try:
        timer = Timer()
        runs = _jobs(store, rows, batch_size)
        jobs = []
        with timed_queries(store, timer):
            for name in JOBS:
                timer.log, timer.active = [], True
                try:
                    seconds = _timed(name, runs[name], rows)
                finally:
                    timer.active = False
                sql_seconds, per, statements, round_trips = timer.take()
                job = _job(name, rows, seconds, sql_seconds, statements, per)
                jobs.append({**job, "round_trips": round_trips})
    finally:
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return {"backend": "postgresql", "server_version": server_version(dsn), "rows": rows,
            "batch_size": batch_size, "target_rows_per_second": TARGET_ROWS_PER_SECOND,
            "jobs": jobs}


def _job(name: str, rows: int, seconds: float, sql_seconds: float, statements: int,
         per: dict[str, float]) -> dict[str, Any]:
    slowest = sorted(per.items(), key=lambda item: -item[1])[:5]
    return {
        "job": name,
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds,
        "us_per_row": seconds / rows * 1e6,
        "sql_us_per_row": sql_seconds / rows * 1e6,
        "rest_us_per_row": max(seconds - sql_seconds, 0.0) / rows * 1e6,
        "sql_share": min(sql_seconds / seconds, 1.0),
        "sql_ceiling_rows_per_second": rows / sql_seconds,
        "statements": statements,
        "slowest": [{"sql": sql[:100], "us_per_row": spent / rows * 1e6}
                    for sql, spent in slowest],
    }


def as_table(report: dict[str, Any]) -> str:
    """The report as text."""
    if report["backend"] == "postgresql":
        backend, how = f"PostgreSQL {report['server_version']}", "as sent"
    else:
        backend, how = "SQLite synchronous=NORMAL", "replayed"
        if report["replay_wal_autocheckpoint"] != 1000:
            backend += (f" (replayed with wal_autocheckpoint="
                        f"{report['replay_wal_autocheckpoint']})")
    lines = [
        f"prepaid_wallet batch jobs' SQL -- {backend}, {report['rows']:,} rows "
        f"per job, batches of {report['batch_size']}, Python "
        f"{sys.version_info.major}.{sys.version_info.minor}, load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        f"{'job':<8}{'rows/s':>9}{'us/row':>9}{'SQL us':>9}{'rest us':>9}{'SQL %':>7}"
        f"{'SQL ceiling rows/s':>20}{'target':>9}{'stmts':>7}",
    ]
    for job in report["jobs"]:
        lines.append(
            f"{job['job']:<8}{job['rows_per_second']:>9,.0f}{job['us_per_row']:>9.1f}"
            f"{job['sql_us_per_row']:>9.1f}{job['rest_us_per_row']:>9.1f}"
            f"{job['sql_share'] * 100:>6.0f}%{job['sql_ceiling_rows_per_second']:>20,.0f}"
            f"{report['target_rows_per_second']:>9,}{job['statements']:>7}")
    lines.append("")
    lines.append(f"slowest statements (time per row of the job, {how}):")
    for job in report["jobs"]:
        lines.append(f"  {job['job']}:")
        for found in job["slowest"]:
            lines.append(f"    {found['us_per_row']:7.1f} us  {found['sql'][:80]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, help="rows per job (default 20,000; quick: 200)")
    parser.add_argument("--batch-size", type=int, default=500, help="rows per unit of work")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ROWS} rows, batches of 50 unless given (as CI runs it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", help="a PostgreSQL URL: time the jobs' queries there "
                                      "(default: SQLite, replayed)")
    parser.add_argument("--wal-autocheckpoint", type=int, metavar="PAGES",
                        help="SQLite: the replay's pages between checkpoints (default 1,000, "
                             "as the store runs; 0: none while it replays)")
    args = parser.parse_args(argv)
    if args.wal_autocheckpoint is not None and (args.dsn or args.wal_autocheckpoint < 0):
        parser.error("--wal-autocheckpoint takes pages >= 0, and SQLite only (no --dsn)")
    rows = args.rows if args.rows is not None else QUICK_ROWS if args.quick else 20_000
    batch_size = 50 if args.quick and args.batch_size == 500 else args.batch_size
    report = (measure(rows, batch_size, args.wal_autocheckpoint) if args.dsn is None
              else measure_postgres(rows, batch_size, args.dsn))
    report["mode"] = "quick" if args.quick else "full"
    print(json.dumps(report) if args.json else as_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
