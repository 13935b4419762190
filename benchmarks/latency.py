"""Latency under load: per command p50 and p99 on PostgreSQL with 8 client processes.

Run from the project root::

    python benchmarks/latency.py              # full mode: a 20 s window
    python benchmarks/latency.py --quick      # a 1 s window; always exits 0
    python benchmarks/latency.py --json       # one JSON object instead of the table
    python benchmarks/latency.py --dsn postgresql://user@host/db

It needs PostgreSQL (``--dsn`` or the environment variable ``PREPAID_WALLET_TEST_DSN``);
without it it says so and exits 0. Everything runs in a scratch schema, dropped at the end.

``CLIENTS`` client processes (spawn), each with its own store (``open_store(url)``, the URL
putting the scratch schema first on the search path) and service, run a mix of commands for a
fixed window, each command drawn at random with the weights of ``MIX``:

* **top-up** of 5.00, **spend** of 1.00, **transfer** of 1.00 to another wallet, **hold +
  capture** (a hold of 2.00 for an hour, then its capture in full; timed as one), **balance**
  (a read of the current balance);
* each on a wallet drawn from ``SHARED`` wallets every client uses (half of the draws: the
  contention) and ``OWN`` wallets of the client's own.

Every client opens its store and runs each command once untimed, then waits at a barrier; all
start together and time every call. The report gives per command the count, p50, p99 and the
slowest call in ms, and the commands per second of all clients together.

After the run every acknowledged command is checked to be in the journal exactly once: each
wallet's open balance and held amount equal its funding plus the sum of what the clients
reported for it; the statements of all wallets hold exactly the set-up's entries and the
entries the clients reported (none missing, none extra, none twice); the store has that many
entries and ``verify()`` is clean. A failed check stops the script. No target is judged.
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
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

CURRENCY = "EUR"
TENANT = "bench-latency"
CLIENTS = 8
SHARED = 3
OWN = 2
#: Share of draws that go to a shared wallet (the rest to one of the client's own).
SHARED_SHARE = 0.5
FUNDING = "1000000.00"
TOP_UP = "5.00"
SPEND = "1.00"
TRANSFER = "1.00"
HOLD = "2.00"
#: Each command's weight in the mix, in report order.
MIX = {"top-up": 1, "spend": 3, "transfer": 2, "hold + capture": 1, "balance": 3}
DSN_ENV = "PREPAID_WALLET_TEST_DSN"
#: The machine's load average (1, 5, 15 min) when the run began, for the report.
LOAD_BEFORE: list[float] = list(os.getloadavg())


@dataclass(frozen=True)
class Plan:
    """The timed window (seconds) and how long clients may take to get ready."""

    mode: str
    seconds: float
    ready_timeout: float


FULL = Plan("full", seconds=20.0, ready_timeout=120.0)
QUICK = Plan("quick", seconds=1.0, ready_timeout=120.0)


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


# -- the clients (spawned processes) ----------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One client: its store URL, the shared wallets, its own, its seed and the window."""

    url: str
    shared: tuple[str, ...]
    own: tuple[str, ...]
    seed: int
    seconds: float


@dataclass
class Report:
    """What one client reports: latencies per command (timed calls only), the effect of every
    acknowledged command (untimed included) per wallet in minor units -- open balance and held
    amount -- the entry ids it was given, and the errors per command."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    open_moved: dict[str, int] = field(default_factory=dict)
    held_moved: dict[str, int] = field(default_factory=dict)
    entries: list[str] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)
    elapsed: float = 0.0

    def move(self, wallet_id: str, open_minor: int, held_minor: int = 0) -> None:
        self.open_moved[wallet_id] = self.open_moved.get(wallet_id, 0) + open_minor
        self.held_moved[wallet_id] = self.held_moved.get(wallet_id, 0) + held_minor


def _commands(service: Any, report: Report) -> dict[str, Callable[[str, str], None]]:
    """Each command of the mix: ``run(wallet, other_wallet)``, recording its effect."""
    from prepaid_wallet import Money, SpendRequest

    top_up, spend = Money.of(TOP_UP, CURRENCY), Money.of(SPEND, CURRENCY)
    transfer, hold = Money.of(TRANSFER, CURRENCY), Money.of(HOLD, CURRENCY)
    request = SpendRequest(spend)
    window = timedelta(hours=1)

    def do_top_up(wallet: str, _: str) -> None:
        report.entries.append(service.top_up(wallet, top_up, method="card").entry_id)
        report.move(wallet, top_up.minor_units)

    def do_spend(wallet: str, _: str) -> None:
        report.entries.append(service.spend(wallet, request).entry_id)
        report.move(wallet, -spend.minor_units)

    def do_transfer(wallet: str, other: str) -> None:
        report.entries.append(service.transfer(wallet, other, transfer).entry_id)
        report.move(wallet, -transfer.minor_units)
        report.move(other, transfer.minor_units)

    def do_hold_capture(wallet: str, _: str) -> None:
        placed = service.hold(wallet, hold, window=window)
        report.entries.append(placed.entry_id)
        report.move(wallet, -hold.minor_units, hold.minor_units)
        report.entries.append(service.capture(placed.id).entry_id)
        report.move(wallet, 0, -hold.minor_units)

    def do_balance(wallet: str, _: str) -> None:
        service.balance(wallet)

    return {"top-up": do_top_up, "spend": do_spend, "transfer": do_transfer,
            "hold + capture": do_hold_capture, "balance": do_balance}


def run_client(task: Task, ready: Callable[[], None]) -> Report:
    """Open the store, run every command once untimed, call ``ready()`` (which returns at the
    common start), then run the mix for ``task.seconds``."""
    from prepaid_wallet import WalletService, open_store
    from prepaid_wallet.errors import PrepaidWalletError

    store = open_store(task.url, create=False)
    report = Report()
    try:
        commands = _commands(WalletService(store), report)
        rng = random.Random(task.seed)
        names = list(MIX)
        weights = list(MIX.values())
        everyone = task.shared + task.own

        def pick() -> str:
            pool = task.shared if rng.random() < SHARED_SHARE else task.own
            return rng.choice(pool)

        for name in names:  # warm-up: every command once, untimed
            wallet = pick()
            commands[name](wallet, rng.choice([w for w in everyone if w != wallet]))
        ready()
        clock = time.perf_counter
        start = clock()
        elapsed = 0.0
        while elapsed < task.seconds:
            name = rng.choices(names, weights)[0]
            wallet = pick()
            other = rng.choice([w for w in everyone if w != wallet])
            began = clock()
            try:
                commands[name](wallet, other)
            except PrepaidWalletError as error:  # counted, reported; not acknowledged
                report.errors.setdefault(name, []).append(f"{type(error).__name__}: {error}")
                elapsed = clock() - start
                continue
            done = clock()
            report.latencies.setdefault(name, []).append(done - began)
            elapsed = done - start
        report.elapsed = elapsed
        return report
    finally:
        store.close()


def _client(task: Task, barrier: Any, conn: Any) -> None:
    """A client process: run, send the report (or the exception) back on ``conn``."""
    try:
        conn.send(run_client(task, lambda: barrier.wait()))
    except BaseException as error:  # reported to the parent
        barrier.abort()
        conn.send(error)


# -- set-up and checks (parent process) -------------------------------------------------------


def postgres_status(dsn: str | None) -> str | None:
    """``None`` when the benchmark can run, else why it is skipped."""
    if not dsn:
        return (f"no DSN: pass --dsn postgresql://user@host/dbname or set {DSN_ENV}")
    for module in ("psycopg", "prepaid_wallet.storage.postgres"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"cannot import {exc.name or module}: pip install 'prepaid_wallet[postgres]'"
    return None


def scratch_url(dsn: str, schema: str) -> str:
    """A connection URL putting ``schema`` first on the search path."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-c search_path={schema}', safe='')}"


def _sql(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


@dataclass
class Wallets:
    """The wallets of the run and the entries the set-up wrote."""

    shared: tuple[str, ...]
    own: tuple[tuple[str, ...], ...]  # per client
    setup_entries: frozenset[str]

    @property
    def all(self) -> tuple[str, ...]:
        return self.shared + tuple(w for own in self.own for w in own)


def set_up(url: str) -> Wallets:
    """``SHARED`` shared wallets and ``OWN`` per client, each topped up with ``FUNDING``."""
    from prepaid_wallet import Money, WalletService, open_store

    store = open_store(url)
    try:
        service = WalletService(store)
        entries = set()

        def wallet(owner: str) -> str:
            opened = service.open_wallet(owner_id=owner, tenant_id=TENANT, currency=CURRENCY)
            entries.add(service.top_up(opened.id, Money.of(FUNDING, CURRENCY),
                                       method="card").entry_id)
            return opened.id

        shared = tuple(wallet(f"shared-{i}") for i in range(SHARED))
        own = tuple(tuple(wallet(f"client-{c}-{i}") for i in range(OWN))
                    for c in range(CLIENTS))
        return Wallets(shared, own, frozenset(entries))
    finally:
        store.close()


def check(url: str, wallets: Wallets, reports: Sequence[Report]) -> dict[str, Any]:
    """Every acknowledged command is in the journal exactly once (see the module's doc)."""
    from prepaid_wallet import Money, WalletService, open_store

    reported = [e for r in reports for e in r.entries]
    _require(len(set(reported)) == len(reported), "a client was given one entry id twice")
    _require(not set(reported) & wallets.setup_entries, "a command reported a set-up entry")
    expected_entries = set(reported) | wallets.setup_entries
    funding = Money.of(FUNDING, CURRENCY).minor_units
    store = open_store(url, create=False)
    try:
        service = WalletService(store)
        seen: set[str] = set()
        for wallet_id in wallets.all:
            balance = service.balance(wallet_id)
            open_moved = sum(r.open_moved.get(wallet_id, 0) for r in reports)
            held_moved = sum(r.held_moved.get(wallet_id, 0) for r in reports)
            _require(balance.open == Money(funding + open_moved, CURRENCY)
                     and balance.held == Money(held_moved, CURRENCY),
                     f"wallet {wallet_id}: open {balance.open}, held {balance.held}; the "
                     f"commands reported for it make {Money(funding + open_moved, CURRENCY)} "
                     f"and {Money(held_moved, CURRENCY)}")
            lines = [line.entry_id for line in service.statement(wallet_id).lines]
            _require(len(set(lines)) == len(lines),
                     f"wallet {wallet_id}: an entry shows twice in its statement")
            seen.update(lines)
        report = service.verify()
    finally:
        store.close()
    _require(not expected_entries - seen,
             f"{len(expected_entries - seen)} acknowledged entries are not in the journal")
    _require(not seen - expected_entries,
             f"{len(seen - expected_entries)} entries in the journal no client reported")
    _require(report.entries == len(expected_entries),
             f"the store has {report.entries} entries, {len(expected_entries)} expected")
    _require(report.ok, f"verify() found {len(report.problems)} problems: "
                        f"{report.problems[:3]}")
    return {"entries": report.entries, "wallets": len(wallets.all), "balances_match": True,
            "journal_matches": True, "verify_ok": True}


# -- measuring and reporting ------------------------------------------------------------------


@dataclass
class Result:
    """The run: every client's report, the window, the check."""

    reports: list[Report]
    checked: dict[str, Any]

    def latencies(self, name: str) -> list[float]:
        return [t for r in self.reports for t in r.latencies.get(name, [])]

    def errors(self, name: str) -> list[str]:
        return [e for r in self.reports for e in r.errors.get(name, [])]

    @property
    def elapsed(self) -> float:
        return max(r.elapsed for r in self.reports)

    @property
    def commands_per_sec(self) -> float:
        return sum(len(self.latencies(n)) for n in MIX) / self.elapsed


def measure(url: str, wallets: Wallets, plan: Plan) -> list[Report]:
    """Run ``CLIENTS`` client processes together for one window; their reports."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(CLIENTS, timeout=plan.ready_timeout)
    pipes, processes = [], []
    for c in range(CLIENTS):
        parent, child = context.Pipe(duplex=False)
        task = Task(url, wallets.shared, wallets.own[c], seed=c, seconds=plan.seconds)
        process = context.Process(target=_client, args=(task, barrier, child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    answers = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join(60)
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:
        # The client whose error aborted the barrier first, not the ones that saw it broken.
        failed.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
        raise failed[0]
    return answers


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def command_rows(result: Result) -> list[dict[str, Any]]:
    rows = []
    for name in MIX:
        times = result.latencies(name)
        rows.append({
            "command": name,
            "count": len(times),
            "errors": len(result.errors(name)),
            "p50_ms": _ms(percentile(times, 0.50)) if times else None,
            "p99_ms": _ms(percentile(times, 0.99)) if times else None,
            "max_ms": _ms(max(times)) if times else None,
        })
    return rows


def as_json(plan: Plan, result: Result | None, skipped: str | None,
            run_seconds: float) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in LOAD_BEFORE],
        "clients": CLIENTS,
        "shared_wallets": SHARED,
        "own_wallets_per_client": OWN,
        "seconds": plan.seconds,
        "run_seconds": round(run_seconds, 3),
        "commands": command_rows(result) if result else [],
        "commands_per_sec": result.commands_per_sec if result else None,
        "errors": {n: result.errors(n)[:5] for n in MIX if result.errors(n)} if result else {},
        "checks": result.checked if result else {},
        "skipped": skipped,
    }


def as_table(plan: Plan, result: Result | None, skipped: str | None, run_seconds: float) -> str:
    load = ", ".join(f"{v:.2f}" for v in LOAD_BEFORE)
    lines = [
        f"prepaid_wallet latency under load -- {plan.mode} mode, PostgreSQL, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load} before the run, "
        f"{CLIENTS} client processes, a {plan.seconds} s window (run {run_seconds:.1f} s)",
        "",
    ]
    if skipped is not None or result is None:
        lines.append(f"latency: skipped ({skipped})")
        return "\n".join(lines)
    lines.append(f"{'command':<15} {'count':>7} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
                 f"{'max ms':>8}")
    for row in command_rows(result):
        if row["count"]:
            lines.append(f"{row['command']:<15} {row['count']:>7,} {row['errors']:>6} "
                         f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.2f}")
        else:
            lines.append(f"{row['command']:<15} {0:>7} {row['errors']:>6} {'-':>8} {'-':>8} "
                         f"{'-':>8}")
    checked = result.checked
    lines += [
        "",
        f"all commands: {result.commands_per_sec:,.0f}/s from {CLIENTS} clients; each command "
        f"on one of {SHARED} shared wallets (half the draws) or of {OWN} of the client's own.",
        f"no lost updates: {checked['wallets']} wallets' balances equal what the clients "
        f"reported; the journal holds exactly the {checked['entries']:,} entries set up and "
        "acknowledged, each once; verify() clean.",
        "p50/p99/max: one call as its client saw it (hold + capture: both calls).",
    ]
    for name in MIX:
        for error in result.errors(name)[:3]:
            lines.append(f"error in {name}: {error}")
    if plan.mode == "quick":
        lines += ["", "quick mode: a short window; the numbers are informational."]
    return "\n".join(lines)


def run(dsn: str, plan: Plan) -> Result:
    """Set up a scratch schema, measure, check, drop the schema."""
    schema = f"bench_latency_{uuid.uuid4().hex[:12]}"
    _sql(dsn, f'CREATE SCHEMA "{schema}"')
    url = scratch_url(dsn, schema)
    try:
        wallets = set_up(url)
        reports = measure(url, wallets, plan)
        return Result(reports, check(url, wallets, reports))
    finally:
        _sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short window; always exits 0")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV) or None,
                        help=f"PostgreSQL DSN (default: ${DSN_ENV})")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    LOAD_BEFORE[:] = os.getloadavg()
    start = time.perf_counter()
    result = None
    skipped = postgres_status(args.dsn)
    if skipped is None:
        result = run(args.dsn, plan)
    run_seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(as_json(plan, result, skipped, run_seconds), indent=2))
    else:
        print(as_table(plan, result, skipped, run_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
