"""Peer benchmark: transfers per second on PostgreSQL, the library next to pgledger.

Run from the project root::

    python benchmarks/peers.py --pgledger ~/src/pgledger   # full mode: exit 1 when the target fails
    python benchmarks/peers.py --quick ...                  # short windows; always exits 0
    python benchmarks/peers.py --json ...                   # one JSON object instead of the table
    python benchmarks/peers.py --dsn postgresql://user@host/db --pgledger PATH

The peer is pgledger (https://github.com/pgr0ss/pgledger), a double-entry ledger written as
PostgreSQL tables and PL/pgSQL functions: one call of ``pgledger_create_transfer`` per transfer.
Nothing of it ships with this project: ``--pgledger PATH`` (or the environment variable
``PGLEDGER_DIR``) names a checkout, and the script loads its SQL from there, as its ``justfile``'s
``dbload`` does (``vendor/scoville-pgsql-ulid/ulid-to-uuid.sql``,
``vendor/scoville-pgsql-ulid/uuid-to-ulid.sql``, ``pgledger.sql``, in one transaction), into a
scratch schema of its own. PostgreSQL comes from ``--dsn`` or ``PREPAID_WALLET_TEST_DSN``.
Without a checkout or a DSN it says what to pass and exits 0.

The workload, the same for both: ``ACCOUNTS`` accounts in one currency, each funded with
``FUNDING``; every transfer moves 1.00 between two different accounts drawn at random (the same
seeded draws for both). ``W`` worker processes (1 and 4), each with its own connection or store:

* **pgledger** -- ``SELECT id FROM pgledger_create_transfer($1, $2, $3)`` in autocommit mode
  (prepared): one round trip, one transaction; the accounts are created with
  ``allow_negative_balance`` off, funded from a funding account that may go negative;
* **library** -- ``WalletService.transfer(from, to, 1.00 EUR)`` on ``open_store(url)``, the URL
  putting a scratch schema first on the search path; wallets topped up with ``FUNDING``.

Method: the worker processes (spawn) are started once and kept. A measurement hands each of its
workers a task; each opens (or reuses) its connection or store, makes a few untimed warm-up
transfers and says it is ready; once all are, the parent gives them one start instant, from
which each transfers in a loop for a fixed window, timing every call. Throughput = all timed
transfers / the longest worker's time; p50/p99 are over every timed transfer of every round.
A round measures W = 1 and 4, pgledger and library back to back (in reverse order every other
round); the **ratio** library / pgledger is the median over the rounds of the ratio of the two
measurements taken side by side (the verdict); transfers/s are medians over the rounds.

After the run both sides are checked for lost or doubled updates: the sum of the accounts'
balances is unchanged, each account's balance is its funding plus what the workers reported
moving in and out of it, the ledger holds exactly the transfers reported; for the library
``verify()`` is clean, for pgledger each account's balance and version agree with its entries.
A failed check stops the script.

Target: library / pgledger at least ``TARGET`` (2.0) at every W.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

CURRENCY = "EUR"
TENANT = "bench-peers"
ACCOUNTS = 50
AMOUNT = "1.00"
#: Each account's funding: far more than a run moves out of it (checked after the run).
FUNDING = "1000000.00"
WORKER_COUNTS = (1, 4)
MAX_WORKERS = max(WORKER_COUNTS)
#: library / pgledger transfers per second must be at least this.
TARGET = 2.0
DSN_ENV = "PREPAID_WALLET_TEST_DSN"
#: The machine's load average (1, 5, 15 min) when the run began, for the report.
LOAD_BEFORE: list[float] = list(os.getloadavg())
PGLEDGER_ENV = "PGLEDGER_DIR"
PGLEDGER_URL = "https://github.com/pgr0ss/pgledger"
#: The files pgledger's ``justfile`` (``dbload``) loads, in its order.
PGLEDGER_FILES = (
    "vendor/scoville-pgsql-ulid/ulid-to-uuid.sql",
    "vendor/scoville-pgsql-ulid/uuid-to-ulid.sql",
    "pgledger.sql",
)
KINDS = ("pgledger", "library")


@dataclass(frozen=True)
class Plan:
    """Rounds, the timed window of one measurement (seconds) and untimed warm-up transfers."""

    mode: str
    rounds: int
    seconds: float
    warm_up: int
    start_delay: float  # seconds from "every worker is ready" to the common start


FULL = Plan("full", rounds=5, seconds=2.0, warm_up=20, start_delay=0.05)
QUICK = Plan("quick", rounds=3, seconds=0.25, warm_up=3, start_delay=0.05)


class BenchmarkSetupError(RuntimeError):
    """The set-up or a post-run check found the run is not what it claims to be."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkSetupError(message)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in (0, 1]) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Row:
    """One worker count: transfers/s of each side per round, and every timed latency."""

    workers: int
    library: list[float] = field(default_factory=list)
    pgledger: list[float] = field(default_factory=list)
    library_latencies: list[float] = field(default_factory=list)
    pgledger_latencies: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.workers}w"

    @property
    def library_ops(self) -> float:
        return statistics.median(self.library)

    @property
    def pgledger_ops(self) -> float:
        return statistics.median(self.pgledger)

    @property
    def ratio(self) -> float:
        """library / pgledger: the median of the rounds' side-by-side ratios."""
        return statistics.median(
            lib / peer for lib, peer in zip(self.library, self.pgledger, strict=True))

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET


# -- the workers (spawned processes) ----------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What one worker does in one measurement: ``kind`` transfers between ``accounts`` (drawn
    with ``seed``) on ``url`` for ``seconds`` from the common start."""

    kind: str
    url: str
    accounts: tuple[str, ...]
    seed: int
    seconds: float
    warm_up: int


@dataclass
class Outcome:
    """What one worker reports: the net movement per account (in transfers of ``AMOUNT``,
    warm-up included), the transfers made (warm-up included), the timed window and the
    latency of each timed transfer."""

    pid: int
    moved: dict[str, int]
    transfers: int
    elapsed: float
    latencies: list[float]


#: Per worker process: the open transfer function and its closer, by (kind, url).
_OPEN: dict[tuple[str, str], tuple[Callable[[str, str], None], Callable[[], None]]] = {}


def _pgledger_transferer(url: str) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    amount = Decimal(AMOUNT)

    def transfer(source: str, target: str) -> None:
        conn.execute("SELECT id FROM pgledger_create_transfer(%s, %s, %s)",
                     (source, target, amount), prepare=True).fetchone()

    return transfer, conn.close


def _library_transferer(url: str) -> tuple[Callable[[str, str], None], Callable[[], None]]:
    from prepaid_wallet import Money, WalletService, open_store

    store = open_store(url, create=False)
    service = WalletService(store)
    amount = Money.of(AMOUNT, CURRENCY)

    def transfer(source: str, target: str) -> None:
        service.transfer(source, target, amount)

    return transfer, store.close


def _transferer(kind: str, url: str) -> Callable[[str, str], None]:
    found = _OPEN.get((kind, url))
    if found is None:
        found = (_library_transferer if kind == "library" else _pgledger_transferer)(url)
        _OPEN[(kind, url)] = found
    return found[0]


def close_open() -> None:
    """Close every connection and store this process opened for its tasks."""
    while _OPEN:
        _, (_, close) = _OPEN.popitem()
        close()


def run_task(task: Task, ready: Callable[[], float]) -> Outcome:
    """Open (or reuse) the connection or store and warm up, then call ``ready()``, which
    returns the common start (``time.time()``) once every worker of the measurement is ready;
    from then, transfer for ``task.seconds``."""
    transfer = _transferer(task.kind, task.url)
    rng = random.Random(task.seed)
    moved: dict[str, int] = {}
    accounts = task.accounts

    def one() -> None:
        source, target = rng.sample(accounts, 2)
        transfer(source, target)
        moved[source] = moved.get(source, 0) - 1
        moved[target] = moved.get(target, 0) + 1

    for _ in range(task.warm_up):
        one()
    delay = ready() - time.time()
    if delay > 0:
        time.sleep(delay)
    latencies = []
    clock = time.perf_counter
    start = clock()
    elapsed = 0.0
    while elapsed < task.seconds:
        began = clock()
        one()
        done = clock()
        latencies.append(done - began)
        elapsed = done - start
    return Outcome(os.getpid(), moved, task.warm_up + len(latencies), elapsed, latencies)


def _serve(conn: Any) -> None:
    """A worker process: for each task received on ``conn``, get ready, say so, receive the
    common start, run, send back the outcome (or the exception); stop at ``None``."""

    def ready() -> float:
        conn.send("ready")
        start_at: float = conn.recv()
        return start_at

    while True:
        task = conn.recv()
        if task is None:
            close_open()
            return
        try:
            conn.send(run_task(task, ready))
        except BaseException as error:  # reported to the parent
            conn.send(error)


class Workers:
    """``count`` worker processes started once; ``run(tasks)`` gives task i to worker i, so
    the tasks of one measurement always run in different processes."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes = []
        self._processes = []
        self.broken = False
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child,), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)

    def run(self, tasks: Sequence[Task], start_delay: float) -> list[Outcome]:
        """Hand task i to worker i; once all are ready (connected, warmed up), give them one
        start instant ``start_delay`` seconds ahead; collect their outcomes."""
        pipes = self._pipes[:len(tasks)]
        for pipe, task in zip(pipes, tasks, strict=True):
            pipe.send(task)
        answers = [pipe.recv() for pipe in pipes]
        failed = [a for a in answers if isinstance(a, BaseException)]
        if not failed:
            start_at = time.time() + start_delay
            for pipe in pipes:
                pipe.send(start_at)
            answers = [pipe.recv() for pipe in pipes]
            failed = [a for a in answers if isinstance(a, BaseException)]
        if failed:
            self.broken = True
            raise failed[0]
        return answers

    def close(self) -> None:
        """Stop the workers (a worker left waiting by a failed measurement is terminated)."""
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            if self.broken:
                process.terminate()
            else:
                pipe.send(None)
        for process in self._processes:
            process.join(30)


# -- set-up and checks (parent process) -------------------------------------------------------


def skip_reason(dsn: str | None, checkout: str | None) -> str | None:
    """``None`` when the benchmark can run, else why not and what to pass."""
    if not checkout:
        return (f"no pgledger checkout: pass --pgledger PATH (or set {PGLEDGER_ENV}) to a clone "
                f"of {PGLEDGER_URL}")
    missing = [name for name in PGLEDGER_FILES if not (Path(checkout) / name).is_file()]
    if missing:
        return (f"{checkout} is not a pgledger checkout (no {', '.join(missing)}): pass "
                f"--pgledger PATH to a clone of {PGLEDGER_URL}")
    if not dsn:
        return (f"no PostgreSQL: pass --dsn postgresql://user@host/dbname (or set {DSN_ENV})")
    for module in ("psycopg", "prepaid_wallet.storage.postgres"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"cannot import {exc.name or module}: pip install 'prepaid_wallet[postgres]'"
    return None


def checkout_commit(checkout: str) -> str | None:
    """The checkout's commit (``git rev-parse``), or ``None`` when git cannot tell."""
    try:
        done = subprocess.run(["git", "-C", checkout, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def scratch_url(dsn: str, schema: str) -> str:
    """A connection URL putting ``schema`` first on the search path."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-c search_path={schema}', safe='')}"


def _sql(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


@dataclass
class Side:
    """One side's accounts, where they live, and what its workers reported."""

    kind: str
    url: str
    accounts: tuple[str, ...]
    moved: dict[str, int] = field(default_factory=dict)
    transfers: int = 0
    baseline: int = 0  # ledger rows before the run (library: entries; pgledger: transfers)
    check: dict[str, Any] = field(default_factory=dict)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.transfers += outcome.transfers
            for account, net in outcome.moved.items():
                self.moved[account] = self.moved.get(account, 0) + net


def set_up_pgledger(dsn: str, schema: str, checkout: str) -> Side:
    """Load pgledger into ``schema`` (one transaction, as ``dbload``) and fund the accounts."""
    import psycopg

    url = scratch_url(dsn, schema)
    _sql(dsn, f'CREATE SCHEMA "{schema}"')
    with psycopg.connect(url) as conn:  # one transaction, like psql --single-transaction
        for name in PGLEDGER_FILES:
            conn.execute((Path(checkout) / name).read_text(encoding="utf-8"))  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        (funding,) = conn.execute(
            "SELECT id FROM pgledger_create_account('funding', %s, true, true)",
            (CURRENCY,)).fetchone() or ("",)
        ids = []
        for i in range(ACCOUNTS):
            (account,) = conn.execute(
                "SELECT id FROM pgledger_create_account(%s, %s, false, true)",
                (f"account-{i}", CURRENCY)).fetchone() or ("",)
            conn.execute("SELECT id FROM pgledger_create_transfer(%s, %s, %s)",
                         (funding, account, Decimal(FUNDING)))
            ids.append(account)
        (baseline,) = conn.execute("SELECT count(*) FROM pgledger_transfers").fetchone() or (0,)
    return Side("pgledger", url, tuple(ids), baseline=baseline)


def set_up_library(dsn: str, schema: str) -> Side:
    """The library's tables in ``schema`` and ``ACCOUNTS`` wallets topped up with ``FUNDING``."""
    from prepaid_wallet import Money, WalletService, open_store

    url = scratch_url(dsn, schema)
    _sql(dsn, f'CREATE SCHEMA "{schema}"')
    store = open_store(url)
    try:
        service = WalletService(store)
        ids = []
        for i in range(ACCOUNTS):
            wallet = service.open_wallet(owner_id=f"account-{i}", tenant_id=TENANT,
                                         currency=CURRENCY)
            service.top_up(wallet.id, Money.of(FUNDING, CURRENCY), method="card")
            ids.append(wallet.id)
        report = service.verify()
        _require(report.ok, f"library: verify() after the set-up: {report.problems[:3]}")
        return Side("library", url, tuple(ids), baseline=report.entries)
    finally:
        store.close()


def _expected(side: Side) -> dict[str, Decimal]:
    unit, funding = Decimal(AMOUNT), Decimal(FUNDING)
    expected = {a: funding + unit * side.moved.get(a, 0) for a in side.accounts}
    _require(all(v > 0 for v in expected.values()), f"{side.kind}: an account ran dry")
    return expected


def check_library(side: Side) -> None:
    """No lost or doubled transfer: balances, their sum, the entry count and ``verify()``."""
    from prepaid_wallet import WalletService, open_store

    expected = _expected(side)
    store = open_store(side.url, create=False)
    try:
        service = WalletService(store)
        balances = {a: service.balance(a).open.amount for a in side.accounts}
        report = service.verify()
    finally:
        store.close()
    total = sum(balances.values(), Decimal(0))
    _require(total == Decimal(FUNDING) * ACCOUNTS,
             f"library: the wallets hold {total} in all, not {Decimal(FUNDING) * ACCOUNTS}")
    for account, balance in balances.items():
        _require(balance == expected[account],
                 f"library: wallet {account} holds {balance}, the transfers reported for it "
                 f"make {expected[account]}")
    _require(report.ok, f"library: verify() found {len(report.problems)} problems: "
                        f"{report.problems[:3]}")
    _require(report.entries == side.baseline + side.transfers,
             f"library: {report.entries - side.baseline} transfer entries for "
             f"{side.transfers} transfers reported")
    side.check = {"sum_unchanged": True, "balances_match": True, "verify_ok": True,
                  "entries": report.entries, "transfers": side.transfers}


def check_pgledger(side: Side) -> None:
    """No lost or doubled transfer: balances, their sum, the transfer count, and every
    account's balance and version against its entries."""
    import psycopg

    expected = _expected(side)
    with psycopg.connect(side.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.id, a.balance, a.version, coalesce(sum(e.amount), 0), count(e.id),"
            " (SELECT account_current_balance FROM pgledger_entries l WHERE l.account_id = a.id"
            "  ORDER BY account_version DESC LIMIT 1)"
            " FROM pgledger_accounts a LEFT JOIN pgledger_entries e ON e.account_id = a.id"
            " WHERE a.id = ANY(%s) GROUP BY a.id", (list(side.accounts),)).fetchall()
        (transfers,) = conn.execute("SELECT count(*) FROM pgledger_transfers").fetchone() or (0,)
    _require(len(rows) == ACCOUNTS, f"pgledger: {len(rows)} accounts found, not {ACCOUNTS}")
    total = sum((row[1] for row in rows), Decimal(0))
    _require(total == Decimal(FUNDING) * ACCOUNTS,
             f"pgledger: the accounts hold {total} in all, not {Decimal(FUNDING) * ACCOUNTS}")
    for account, balance, version, entries_sum, entries, last in rows:
        _require(balance == expected[account],
                 f"pgledger: account {account} holds {balance}, the transfers reported for it "
                 f"make {expected[account]}")
        _require(entries_sum == balance and last == balance and entries == version,
                 f"pgledger: account {account}: balance {balance} version {version}, but its "
                 f"{entries} entries sum to {entries_sum} and end at {last}")
    _require(transfers == side.baseline + side.transfers,
             f"pgledger: {transfers - side.baseline} transfers stored for {side.transfers} "
             f"reported")
    side.check = {"sum_unchanged": True, "balances_match": True, "entries_match": True,
                  "transfers": side.transfers}


# -- measuring --------------------------------------------------------------------------------


def measure_once(workers: Workers, side: Side, count: int, round_no: int, plan: Plan,
                 latencies: list[float]) -> float:
    """Transfers per second of ``count`` workers transferring together for one window."""
    tasks = [Task(side.kind, side.url, side.accounts, 1000 * round_no + 10 * count + i,
                  plan.seconds, plan.warm_up) for i in range(count)]
    outcomes = workers.run(tasks, plan.start_delay)
    _require(len({o.pid for o in outcomes}) == count, "two tasks ran in one process")
    side.record(outcomes)
    for outcome in outcomes:
        latencies.extend(outcome.latencies)
    return sum(len(o.latencies) for o in outcomes) / max(o.elapsed for o in outcomes)


def measure(workers: Workers, sides: dict[str, Side], plan: Plan) -> list[Row]:
    rows = {n: Row(n) for n in WORKER_COUNTS}
    for r in range(plan.rounds):
        for n, row in rows.items():
            for kind in KINDS if r % 2 == 0 else tuple(reversed(KINDS)):
                if kind == "library":
                    row.library.append(measure_once(workers, sides[kind], n, r, plan,
                                                    row.library_latencies))
                else:
                    row.pgledger.append(measure_once(workers, sides[kind], n, r, plan,
                                                     row.pgledger_latencies))
    return list(rows.values())


def exit_status(rows: Sequence[Row], quick: bool) -> int:
    """0, or 1 in full mode when the target fails (quick mode is too short to judge)."""
    return 0 if quick or all(r.passed for r in rows) else 1


# -- reporting --------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def as_json(plan: Plan, rows: Sequence[Row], sides: dict[str, Side], skipped: str | None,
            commit: str | None, run_seconds: float) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in LOAD_BEFORE],
        "rounds": plan.rounds,
        "seconds_per_measurement": plan.seconds,
        "accounts": ACCOUNTS,
        "pgledger_commit": commit,
        "run_seconds": round(run_seconds, 3),
        "target": TARGET,
        "rows": [
            {
                "key": r.key,
                "workers": r.workers,
                "library_ops_per_sec": r.library_ops,
                "pgledger_ops_per_sec": r.pgledger_ops,
                "library_rounds": r.library,
                "pgledger_rounds": r.pgledger,
                "ratio": r.ratio,
                "target": TARGET,
                "passed": r.passed,
                "library_p50_ms": _ms(percentile(r.library_latencies, 0.50)),
                "library_p99_ms": _ms(percentile(r.library_latencies, 0.99)),
                "pgledger_p50_ms": _ms(percentile(r.pgledger_latencies, 0.50)),
                "pgledger_p99_ms": _ms(percentile(r.pgledger_latencies, 0.99)),
            }
            for r in rows
        ],
        "checks": {kind: side.check for kind, side in sides.items()},
        "skipped": skipped,
        "passed": all(r.passed for r in rows) if rows else None,  # None: nothing measured
    }


def as_table(plan: Plan, rows: Sequence[Row], sides: dict[str, Side], skipped: str | None,
             commit: str | None, run_seconds: float) -> str:
    load = ", ".join(f"{v:.2f}" for v in LOAD_BEFORE)
    lines = [
        f"prepaid_wallet peer benchmark (pgledger) -- {plan.mode} mode, PostgreSQL, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load} before the run, "
        f"{plan.rounds} rounds of {plan.seconds} s windows (run {run_seconds:.1f} s)",
        "",
    ]
    if skipped is not None:
        lines.append(f"peers: skipped ({skipped})")
        return "\n".join(lines)
    lines.append(
        f"{'workers':>7} {'library tx/s':>12} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'pgledger tx/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'target':>7}  result")
    for r in rows:
        lines.append(
            f"{r.workers:>7} {r.library_ops:>12,.0f} "
            f"{_ms(percentile(r.library_latencies, 0.50)):>7.2f} "
            f"{_ms(percentile(r.library_latencies, 0.99)):>7.2f} {r.pgledger_ops:>13,.0f} "
            f"{_ms(percentile(r.pgledger_latencies, 0.50)):>7.2f} "
            f"{_ms(percentile(r.pgledger_latencies, 0.99)):>7.2f} {r.ratio:>6.2f} "
            f"{'>= ' + format(TARGET, '.1f'):>7}  {'PASS' if r.passed else 'FAIL'}")
    lib, peer = sides["library"], sides["pgledger"]
    lines += [
        "",
        f"no lost updates: library {lib.transfers:,} transfers, sum of balances unchanged, every "
        f"wallet's balance as reported, {lib.check['entries']:,} entries, verify() clean;",
        f"                 pgledger {peer.transfers:,} transfers, sum of balances unchanged, every "
        "account's balance as reported and equal to its entries.",
        "",
        f"{ACCOUNTS} accounts, each transfer {AMOUNT} {CURRENCY} between two drawn at random; "
        f"pgledger {commit or '(commit unknown)'}.",
        "tx/s: transfers per second, median over the rounds; p50/p99: one transfer as its "
        "caller saw it, over every round;",
        "ratio: median over the rounds of library/pgledger measured side by side (the verdict).",
    ]
    if plan.mode == "quick":
        lines += ["", "quick mode: short windows; the verdicts are informational and the exit "
                      "status is always 0."]
    return "\n".join(lines)


def run(dsn: str, checkout: str, plan: Plan) -> tuple[list[Row], dict[str, Side]]:
    """Set up both scratch schemas, measure, check, drop the schemas."""
    tag = uuid.uuid4().hex[:12]
    schemas = {"library": f"bench_peers_lib_{tag}", "pgledger": f"bench_peers_pgl_{tag}"}
    workers: Workers | None = None
    try:
        sides = {"library": set_up_library(dsn, schemas["library"]),
                 "pgledger": set_up_pgledger(dsn, schemas["pgledger"], checkout)}
        workers = Workers(MAX_WORKERS)
        rows = measure(workers, sides, plan)
        workers.close()
        workers = None
        check_library(sides["library"])
        check_pgledger(sides["pgledger"])
        return rows, sides
    finally:
        if workers is not None:
            workers.close()
        for schema in schemas.values():
            _sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="short windows; always exits 0")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV) or None,
                        help=f"PostgreSQL DSN (default: ${DSN_ENV})")
    parser.add_argument("--pgledger", default=os.environ.get(PGLEDGER_ENV) or None,
                        metavar="PATH",
                        help=f"a checkout of {PGLEDGER_URL} (default: ${PGLEDGER_ENV})")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    LOAD_BEFORE[:] = os.getloadavg()
    start = time.perf_counter()
    rows: list[Row] = []
    sides: dict[str, Side] = {}
    commit = None
    skipped = skip_reason(args.dsn, args.pgledger)
    if skipped is None:
        commit = checkout_commit(args.pgledger)
        rows, sides = run(args.dsn, args.pgledger, plan)
    run_seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(as_json(plan, rows, sides, skipped, commit, run_seconds), indent=2))
    else:
        print(as_table(plan, rows, sides, skipped, commit, run_seconds))
    return 0 if skipped is not None else exit_status(rows, args.quick)


if __name__ == "__main__":
    sys.exit(main())
