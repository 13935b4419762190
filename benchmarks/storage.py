"""Storage benchmarks: spends per second on each durable backend, next to the raw driver.

Run from the project root::

    python benchmarks/storage.py              # full mode: exit 1 when a target fails
    python benchmarks/storage.py --quick      # short windows, few rounds; always exits 0
    python benchmarks/storage.py --json       # one JSON object instead of the table
    python benchmarks/storage.py --dsn postgresql://user@host/db   # include PostgreSQL

What is measured, for SQLite at ``synchronous=FULL`` and at ``NORMAL`` and, when a DSN is given
(``--dsn`` or the environment variable ``PREPAID_WALLET_TEST_DSN``) and
:mod:`prepaid_wallet.storage.postgres` imports, for PostgreSQL:

* **library** -- ``WalletService.spend(wallet_id, SpendRequest(1.00 EUR))`` on a wallet holding a
  large open balance; each worker process builds its own store object (``SQLiteStore(path,
  synchronous=...)`` or, for PostgreSQL, ``PostgresStore(dsn, schema=<a scratch schema>)``,
  what ``open_store(dsn)`` builds) and its own service (system clock, random ids);
* **raw** -- the same minimal posting done by hand with the driver, the fastest way it allows,
  against a minimal schema of its own (``balances``: one row per account; ``postings``: two rows
  per spend with the balance after). SQLite, plain :mod:`sqlite3` on a separate file with the
  same pragmas (WAL, the same ``synchronous``): ``BEGIN IMMEDIATE``; ``UPDATE`` the wallet's
  balance (guarded by ``balance >= amount``); ``INSERT`` two postings; ``UPDATE`` the other
  account's balance; ``COMMIT``. PostgreSQL, :mod:`psycopg` in autocommit mode calling a
  server-side SQL function in a scratch schema that does the same in one statement, so a spend
  is one round trip and one transaction (the wallet row is locked by its ``UPDATE``).

Each is measured with 1 and with 4 worker processes (``multiprocessing``, spawn), on one shared
wallet and on separate wallets (one per worker). With one worker "shared" and "separate" do the
same work; both rows are kept as a check on the noise.

Method: a pool of worker processes is started once. A measurement hands each of its workers a
task; each worker opens (or reuses) its own store or connection, does a few untimed warm-up
spends, waits for a common start instant, then spends in a loop for a fixed window and reports
how many spends it made and how long it took. Throughput = all spends / the longest worker's
time. A round measures every scenario of a backend, library and raw back to back (in reverse
order every other round). The **ratio** library/raw of a scenario is the median over the rounds
of the per-round ratio of the two measurements taken side by side (the verdict, as in
``benchmarks/core.py``: a pair timed together sees the same machine speed); the ops/s printed are
medians over the rounds. **Scaling** is 4 workers / 1 worker on separate wallets, from the
medians, for the library and for raw. After the run the script checks every wallet's balance
against the number of spends reported for it (no lost update); a failed check stops the script.

Targets (library / raw, per scenario): SQLite FULL >= 0.70, SQLite NORMAL >= 0.40, PostgreSQL
>= 0.50; and, on PostgreSQL, library throughput that grows with workers on separate wallets
(scaling > 1.0). SQLite runs one writer at a time per file, so its scaling is reported, not
judged. ``--backend KEY`` (repeatable) measures only ``sqlite_full``, ``sqlite_normal`` or
``postgres``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prepaid_wallet import Money, SpendRequest, WalletService
from prepaid_wallet.storage.base import Store

CURRENCY = "EUR"
TENANT = "bench"
SPEND = Money.of("1.00", CURRENCY)
#: Each wallet's opening balance: far more than a run spends (checked after the run).
BIG = Money.of("10000000.00", CURRENCY)
WORKER_COUNTS = (1, 4)
MAX_WORKERS = max(WORKER_COUNTS)
#: Library throughput on separate wallets must grow from 1 to 4 workers: passes above this.
MIN_SCALING = 1.0
DSN_ENV = "PREPAID_WALLET_TEST_DSN"


@dataclass(frozen=True)
class Plan:
    """Rounds, the timed window of one measurement (seconds) and untimed warm-up spends."""

    mode: str
    rounds: int
    seconds: float
    warm_up: int
    start_delay: float  # seconds between handing out the tasks and their common start


FULL = Plan("full", rounds=5, seconds=1.5, warm_up=20, start_delay=0.3)
QUICK = Plan("quick", rounds=2, seconds=0.2, warm_up=3, start_delay=0.1)


@dataclass(frozen=True)
class Backend:
    """One backend configuration and its target ratio (library / raw)."""

    key: str
    name: str
    sync: str
    target: float


SQLITE_FULL = Backend("sqlite_full", "sqlite", "FULL", 0.70)
SQLITE_NORMAL = Backend("sqlite_normal", "sqlite", "NORMAL", 0.40)
POSTGRES = Backend("postgres", "postgres", "-", 0.50)


@dataclass(frozen=True)
class Scenario:
    workers: int
    shared: bool

    @property
    def key(self) -> str:
        return f"{self.workers}w_{'shared' if self.shared else 'separate'}"

    @property
    def wallets(self) -> str:
        return "shared" if self.shared else "separate"


SCENARIOS = tuple(Scenario(w, shared) for w in WORKER_COUNTS for shared in (True, False))


@dataclass
class Row:
    """One backend x scenario: ops/s of library and raw per round, and the per-round ratios."""

    backend: Backend
    scenario: Scenario
    library: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.backend.key}_{self.scenario.key}"

    @property
    def library_ops(self) -> float:
        return statistics.median(self.library)

    @property
    def raw_ops(self) -> float:
        return statistics.median(self.raw)

    @property
    def ratio(self) -> float:
        return statistics.median(lib / raw for lib, raw in zip(self.library, self.raw, strict=True))

    @property
    def target(self) -> float:
        return self.backend.target

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target


@dataclass(frozen=True)
class Scaling:
    """Throughput with 4 workers over 1 worker, separate wallets."""

    backend: Backend
    library: float
    raw: float

    @property
    def target(self) -> float | None:
        """``MIN_SCALING`` where the backend lets writers on different wallets run at once
        (PostgreSQL); ``None`` for SQLite, which runs one write transaction at a time per file
        (raw ``sqlite3`` does not scale either), so its scaling is reported, not judged."""
        return MIN_SCALING if self.backend.name == "postgres" else None

    @property
    def passed(self) -> bool:
        return self.target is None or self.library > self.target


class BenchmarkSetupError(RuntimeError):
    """The set-up or a post-run check found the scenario is not what it claims to be."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkSetupError(message)


# -- the workers (run in the spawned processes) ----------------------------------------------------

#: Per worker process: open stores / connections by target, reused across rounds.
_OPEN: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class Task:
    """What one worker does in one measurement. ``target`` names the database: ``("sqlite",
    path, sync)`` or ``("postgres", dsn, schema)``; ``account`` is the wallet id (library) or
    the balance row (raw) to spend from."""

    kind: str  # "library" | "raw"
    target: tuple[str, str, str]
    account: str
    start_at: float  # time.time() of the common start
    seconds: float
    warm_up: int


def _library_spender(target: tuple[str, str, str]) -> Callable[[str], None]:
    backend, where, sync = target
    store: Store
    if backend == "sqlite":
        from prepaid_wallet.storage.sqlite import SQLiteStore

        store = SQLiteStore(where, synchronous=sync)
    else:
        store = _postgres_store(where, sync)
    service = WalletService(store)
    request = SpendRequest(SPEND)

    def spend(wallet_id: str) -> None:
        service.spend(wallet_id, request)

    return spend


def _raw_sqlite_spender(path: str, sync: str) -> Callable[[str], None]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    amount = SPEND.minor_units
    execute = conn.execute

    def spend(account: str) -> None:
        other = f"{account}:revenue"
        execute("BEGIN IMMEDIATE")
        try:
            row = execute(
                "UPDATE balances SET balance = balance - ? WHERE account = ? AND balance >= ?"
                " RETURNING balance",
                (amount, account, amount),
            ).fetchone()
            if row is None:
                raise BenchmarkSetupError(f"raw sqlite: {account} cannot pay")
            (other_after,) = execute(
                "UPDATE balances SET balance = balance + ? WHERE account = ? RETURNING balance",
                (amount, other),
            ).fetchone()
            execute(
                "INSERT INTO postings (account, minor, balance_after) VALUES (?, ?, ?), (?, ?, ?)",
                (account, -amount, row[0], other, amount, other_after),
            )
            execute("COMMIT")
        except BaseException:
            execute("ROLLBACK")
            raise

    return spend


def _raw_postgres_spender(dsn: str, schema: str) -> Callable[[str], None]:
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    sql = f"SELECT {schema}.spend(%s, %s, %s)"
    amount = SPEND.minor_units

    def spend(account: str) -> None:
        conn.execute(sql, (account, f"{account}:revenue", amount), prepare=True)

    return spend


def _spender(kind: str, target: tuple[str, str, str]) -> Callable[[str], None]:
    key = (kind, *target)
    found = _OPEN.get(key)
    if found is None:
        backend, where, extra = target
        if kind == "library":
            found = _library_spender(target)
        elif backend == "sqlite":
            found = _raw_sqlite_spender(where, extra)
        else:
            found = _raw_postgres_spender(where, extra)
        _OPEN[key] = found
    spender: Callable[[str], None] = found
    return spender


def run_task(task: Task) -> tuple[str, int, float]:
    """Warm up, wait for the common start, spend for ``task.seconds``: ``(account, spends
    including warm-up, timed seconds)``; the timed spends are ``spends - warm_up``."""
    spend = _spender(task.kind, task.target)
    for _ in range(task.warm_up):
        spend(task.account)
    delay = task.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < task.seconds:
        spend(task.account)
        done += 1
        elapsed = time.perf_counter() - start
    return task.account, task.warm_up + done, elapsed


# -- set-up (parent process) -----------------------------------------------------------------------


@dataclass
class Target:
    """One backend's two databases (library, raw), their accounts, and the spends made on each
    account so far (for the post-run check)."""

    backend: Backend
    library: tuple[str, str, str]
    raw: tuple[str, str, str]
    shared_wallet: str
    separate_wallets: tuple[str, ...]
    shared_account: str
    separate_accounts: tuple[str, ...]
    check: Callable[[dict[str, int]], None]
    cleanup: Callable[[], None]
    spent: dict[str, int] = field(default_factory=dict)

    def accounts(self, kind: str, scenario: Scenario) -> list[str]:
        if kind == "library":
            shared, separate = self.shared_wallet, self.separate_wallets
        else:
            shared, separate = self.shared_account, self.separate_accounts
        if scenario.shared:
            return [shared] * scenario.workers
        return list(separate[: scenario.workers])


def _open_wallets(store: Store) -> list[str]:
    """One shared wallet and one per worker, each topped up with ``BIG``, at a tenant of this
    run's own (a PostgreSQL database may keep an earlier run's wallets)."""
    service = WalletService(store)
    tenant = f"{TENANT}-{uuid.uuid4().hex[:12]}"
    ids = []
    for i in range(1 + MAX_WORKERS):
        owner = "shared" if i == 0 else f"worker-{i}"
        wallet = service.open_wallet(owner_id=owner, tenant_id=tenant, currency=CURRENCY)
        service.top_up(wallet.id, BIG, method="card")
        ids.append(wallet.id)
    return ids


def _raw_accounts() -> list[str]:
    return ["shared"] + [f"worker-{i}" for i in range(1, 1 + MAX_WORKERS)]


def _check_library(store: Store, spent: dict[str, int]) -> None:
    service = WalletService(store)
    for wallet_id, count in spent.items():
        expected = BIG - Money(SPEND.minor_units * count, CURRENCY)
        _require(expected.minor_units > 0, "library: a wallet ran out (raise BIG)")
        _require(
            service.balance(wallet_id).open == expected,
            f"library: wallet {wallet_id} does not show the {count} spends reported for it",
        )


RAW_SQLITE_SCHEMA = (
    "CREATE TABLE balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
    "CREATE TABLE postings (id INTEGER PRIMARY KEY, account TEXT NOT NULL,"
    " minor INTEGER NOT NULL, balance_after INTEGER NOT NULL)",
)


def sqlite_target(backend: Backend, directory: str) -> Target:
    from prepaid_wallet.storage.sqlite import SQLiteStore

    lib_path = os.path.join(directory, f"{backend.key}-library.db")
    raw_path = os.path.join(directory, f"{backend.key}-raw.db")
    store = SQLiteStore(lib_path, synchronous=backend.sync)
    try:
        wallets = _open_wallets(store)
    finally:
        store.close()

    accounts = _raw_accounts()
    conn = sqlite3.connect(raw_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        for statement in RAW_SQLITE_SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO balances (account, balance) VALUES (?, ?)",
            [(a, BIG.minor_units) for a in accounts] + [(f"{a}:revenue", 0) for a in accounts],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()

    def check(spent: dict[str, int]) -> None:
        lib = {k: v for k, v in spent.items() if k in wallets}
        raw = {k: v for k, v in spent.items() if k in accounts}
        checker = SQLiteStore(lib_path, synchronous=backend.sync)
        try:
            _check_library(checker, lib)
        finally:
            checker.close()
        db = sqlite3.connect(raw_path)
        try:
            _check_raw(lambda sql, p: db.execute(sql, p).fetchone(), raw, "?")
        finally:
            db.close()

    return Target(
        backend,
        library=("sqlite", lib_path, backend.sync),
        raw=("sqlite", raw_path, backend.sync),
        shared_wallet=wallets[0],
        separate_wallets=tuple(wallets[1:]),
        shared_account=accounts[0],
        separate_accounts=tuple(accounts[1:]),
        check=check,
        cleanup=lambda: None,
    )


def _check_raw(
    one: Callable[[str, tuple[Any, ...]], Any], spent: dict[str, int], mark: str
) -> None:
    amount = SPEND.minor_units
    for account, count in spent.items():
        (balance,) = one(f"SELECT balance FROM balances WHERE account = {mark}", (account,))
        (other,) = one(
            f"SELECT balance FROM balances WHERE account = {mark}", (f"{account}:revenue",)
        )
        (rows,) = one(f"SELECT count(*) FROM postings WHERE account = {mark}", (account,))
        _require(
            balance == BIG.minor_units - amount * count and other == amount * count,
            f"raw: account {account} does not show the {count} spends reported for it",
        )
        _require(rows == count, f"raw: account {account} has {rows} postings, expected {count}")


def _raw_postgres_sql(schema: str) -> list[str]:
    return [
        f"CREATE SCHEMA {schema}",
        f"CREATE TABLE {schema}.balances (account text PRIMARY KEY, balance bigint NOT NULL)",
        f"CREATE TABLE {schema}.postings (id bigserial PRIMARY KEY, account text NOT NULL,"
        " minor bigint NOT NULL, balance_after bigint NOT NULL)",
        # Called in autocommit mode: one round trip, one transaction. The debit's UPDATE locks
        # the wallet's row and refuses to overdraw it.
        f"""CREATE FUNCTION {schema}.spend(wallet text, other text, amount bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    wallet_after bigint;
    other_after bigint;
BEGIN
    UPDATE {schema}.balances SET balance = balance - amount
        WHERE account = wallet AND balance >= amount RETURNING balance INTO wallet_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'raw postgres: % cannot pay %', wallet, amount;
    END IF;
    UPDATE {schema}.balances SET balance = balance + amount
        WHERE account = other RETURNING balance INTO other_after;
    INSERT INTO {schema}.postings (account, minor, balance_after)
        VALUES (wallet, -amount, wallet_after), (other, amount, other_after);
    RETURN wallet_after;
END
$$""",
    ]


def _postgres_store(dsn: str, schema: str) -> Store:
    """What ``open_store(dsn)`` builds, with its tables in a scratch schema of this run."""
    from prepaid_wallet.storage.postgres import PostgresStore

    return PostgresStore(dsn, schema=schema)


def postgres_target(dsn: str) -> Target:
    import psycopg

    run = uuid.uuid4().hex[:12]
    lib_schema, schema = f"bench_lib_{run}", f"bench_raw_{run}"

    def cleanup() -> None:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            db.execute(f"DROP SCHEMA IF EXISTS {lib_schema} CASCADE")

    accounts = _raw_accounts()
    try:
        store = _postgres_store(dsn, lib_schema)
        try:
            wallets = _open_wallets(store)
        finally:
            store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in _raw_postgres_sql(schema):
                conn.execute(statement)
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {schema}.balances (account, balance) VALUES (%s, %s)",
                    [(a, BIG.minor_units) for a in accounts]
                    + [(f"{a}:revenue", 0) for a in accounts],
                )
    except BaseException:
        cleanup()
        raise

    def check(spent: dict[str, int]) -> None:
        lib = {k: v for k, v in spent.items() if k in wallets}
        raw = {k: v for k, v in spent.items() if k in accounts}
        checker = _postgres_store(dsn, lib_schema)
        try:
            _check_library(checker, lib)
        finally:
            checker.close()
        with psycopg.connect(dsn, autocommit=True) as db:
            _check_raw(
                lambda sql, p: db.execute(sql.replace("FROM ", f"FROM {schema}."), p).fetchone(),
                raw,
                "%s",
            )

    return Target(
        POSTGRES,
        library=("postgres", dsn, lib_schema),
        raw=("postgres", dsn, schema),
        shared_wallet=wallets[0],
        separate_wallets=tuple(wallets[1:]),
        shared_account=accounts[0],
        separate_accounts=tuple(accounts[1:]),
        check=check,
        cleanup=cleanup,
    )


def postgres_status(dsn: str | None) -> str | None:
    """``None`` when PostgreSQL can be measured, else why it is skipped."""
    if not dsn:
        return "no DSN"
    try:
        importlib.import_module("psycopg")
        importlib.import_module("prepaid_wallet.storage.postgres")
    except ImportError as exc:
        return f"cannot import {exc.name or exc}"
    return None


# -- measuring -------------------------------------------------------------------------------------


def measure_once(pool: Any, target: Target, kind: str, scenario: Scenario, plan: Plan) -> float:
    """Spends per second of ``scenario.workers`` workers spending together for one window."""
    start_at = time.time() + plan.start_delay
    where = target.library if kind == "library" else target.raw
    tasks = [
        Task(kind, where, account, start_at, plan.seconds, plan.warm_up)
        for account in target.accounts(kind, scenario)
    ]
    results: list[tuple[str, int, float]] = pool.map(run_task, tasks, chunksize=1)
    for account, spends, _ in results:
        target.spent[account] = target.spent.get(account, 0) + spends
    total = sum(spends - plan.warm_up for _, spends, _ in results)
    return total / max(elapsed for _, _, elapsed in results)


def measure(pool: Any, targets: Sequence[Target], plan: Plan) -> list[Row]:
    rows = {(t.backend.key, s): Row(t.backend, s) for t in targets for s in SCENARIOS}
    for r in range(plan.rounds):
        for target in targets:
            for scenario in SCENARIOS:
                row = rows[(target.backend.key, scenario)]
                kinds = ("library", "raw") if r % 2 == 0 else ("raw", "library")
                for kind in kinds:
                    rate = measure_once(pool, target, kind, scenario, plan)
                    (row.library if kind == "library" else row.raw).append(rate)
    for target in targets:
        target.check(target.spent)
    return list(rows.values())


def scalings(rows: Sequence[Row]) -> list[Scaling]:
    found: dict[str, dict[int, Row]] = {}
    for row in rows:
        if not row.scenario.shared:
            found.setdefault(row.backend.key, {})[row.scenario.workers] = row
    result = []
    for by_workers in found.values():
        one, many = by_workers[min(WORKER_COUNTS)], by_workers[max(WORKER_COUNTS)]
        result.append(
            Scaling(
                one.backend,
                many.library_ops / one.library_ops,
                many.raw_ops / one.raw_ops,
            )
        )
    return result


def passed(rows: Sequence[Row], scales: Sequence[Scaling]) -> bool:
    return all(r.passed for r in rows) and all(s.passed for s in scales)


def exit_status(rows: Sequence[Row], scales: Sequence[Scaling], quick: bool) -> int:
    """0, or 1 in full mode when a target fails (quick mode is too noisy to judge)."""
    if quick:
        return 0
    return 0 if passed(rows, scales) else 1


# -- reporting -------------------------------------------------------------------------------------


def as_json(
    plan: Plan,
    rows: Sequence[Row],
    scales: Sequence[Scaling],
    skipped: dict[str, str],
    run_seconds: float,
) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "rounds": plan.rounds,
        "seconds_per_measurement": plan.seconds,
        "run_seconds": round(run_seconds, 3),
        "rows": [
            {
                "key": r.key,
                "backend": r.backend.name,
                "sync": r.backend.sync,
                "workers": r.scenario.workers,
                "wallets": r.scenario.wallets,
                "library_ops_per_sec": r.library_ops,
                "raw_ops_per_sec": r.raw_ops,
                "ratio": r.ratio,
                "target": r.target,
                "passed": r.passed,
            }
            for r in rows
        ],
        "scaling": [
            {
                "key": s.backend.key,
                "backend": s.backend.name,
                "sync": s.backend.sync,
                "library": s.library,
                "raw": s.raw,
                "target": s.target,
                "passed": s.passed,
            }
            for s in scales
        ],
        "skipped": skipped,
        "passed": passed(rows, scales),
    }


def as_table(
    plan: Plan,
    rows: Sequence[Row],
    scales: Sequence[Scaling],
    skipped: dict[str, str],
    run_seconds: float,
) -> str:
    lines = [
        f"prepaid_wallet storage benchmarks -- {plan.mode} mode, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"{plan.rounds} rounds of {plan.seconds} s windows (run {run_seconds:.1f} s)",
        "",
        f"{'backend':<9} {'sync':<7} {'workers':>7} {'wallets':<9} {'library ops/s':>13} "
        f"{'raw ops/s':>10} {'ratio':>6} {'target':>7}  result",
    ]
    for r in rows:
        lines.append(
            f"{r.backend.name:<9} {r.backend.sync:<7} {r.scenario.workers:>7} "
            f"{r.scenario.wallets:<9} {r.library_ops:>13,.0f} {r.raw_ops:>10,.0f} "
            f"{r.ratio:>6.2f} {'>= ' + format(r.target, '.2f'):>7}  "
            f"{'PASS' if r.passed else 'FAIL'}"
        )
    lines.append("")
    for s in scales:
        lines.append(
            f"scaling {s.backend.name} {s.backend.sync}: separate wallets, "
            f"{max(WORKER_COUNTS)} workers / {min(WORKER_COUNTS)} worker: library "
            f"{s.library:.2f}, raw {s.raw:.2f} "
            + (
                "(informational: SQLite runs one writer at a time per file)"
                if s.target is None
                else f"(target library > {s.target:.1f})  {'PASS' if s.passed else 'FAIL'}"
            )
        )
    for name, why in skipped.items():
        lines.append(f"{name}: skipped ({why})")
    lines += [
        "",
        "ops/s: spends per second, median over the rounds; ratio: median over the rounds of "
        "library/raw",
        "measured side by side (the verdict).",
    ]
    if plan.mode == "quick":
        lines += [
            "",
            "quick mode: short windows and few rounds; the verdicts are informational and the "
            "exit status is always 0.",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="short windows and few rounds; always exits 0"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--backend",
        action="append",
        choices=[b.key for b in (SQLITE_FULL, SQLITE_NORMAL, POSTGRES)],
        help="measure only this backend (repeatable; default: all)",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get(DSN_ENV) or None,
        help=f"PostgreSQL DSN to include PostgreSQL (default: ${DSN_ENV})",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    skipped: dict[str, str] = {}
    chosen = set(args.backend or (SQLITE_FULL.key, SQLITE_NORMAL.key, POSTGRES.key))
    why = postgres_status(args.dsn) if POSTGRES.key in chosen else "not selected"
    if why is not None:
        skipped["postgres"] = why
    directory = tempfile.mkdtemp(prefix="prepaid-wallet-bench-")
    targets: list[Target] = []
    start = time.perf_counter()
    try:
        for backend in (SQLITE_FULL, SQLITE_NORMAL):
            if backend.key in chosen:
                targets.append(sqlite_target(backend, directory))
        if why is None:
            targets.append(postgres_target(args.dsn))
        context = multiprocessing.get_context("spawn")
        with context.Pool(MAX_WORKERS) as pool:
            rows = measure(pool, targets, plan)
    finally:
        for target in targets:
            target.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    run_seconds = time.perf_counter() - start
    scales = scalings(rows)

    if args.json:
        print(json.dumps(as_json(plan, rows, scales, skipped, run_seconds), indent=2))
    else:
        print(as_table(plan, rows, scales, skipped, run_seconds))
    return exit_status(rows, scales, args.quick)


if __name__ == "__main__":
    sys.exit(main())
