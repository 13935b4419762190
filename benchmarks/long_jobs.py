"""Long jobs: the command line's expiry sweep, verify and statement export stream their rows in
bounded memory, at a time per row that does not grow with the store.

Run from the project root::

    python benchmarks/long_jobs.py                # full mode: N = 1,000,000 lots (25-30 min)
    python benchmarks/long_jobs.py --quick        # N = 2,000 (a few seconds); always exits 0
    python benchmarks/long_jobs.py --size 100000  # another N (a multiple of 100)
    python benchmarks/long_jobs.py --json         # one JSON object instead of the table
    python benchmarks/long_jobs.py --dsn URL      # the batch jobs on PostgreSQL too

What is measured: the three long jobs of ``prepaid-wallet``, each run as a user runs it -- a
child process ``python -m prepaid_wallet --db sqlite:///FILE JOB`` -- on a SQLite file at two
sizes, small (N/10 lots) and large (N lots), ten times apart:

* ``expire`` -- the expiry sweep (``WalletService.sweep_expired``): one row = one expired lot
  booked as breakage (it prints one line per lot and a summary line);
* ``verify`` -- ``WalletService.iter_verify``, a pass over the journal and then wallet by
  wallet: one row = one journal entry checked (it prints ``checked E entries and W wallets:
  ok``);
* ``statement WALLET --format csv`` -- ``WalletService.stream_statement`` of a wallet with N/2
  entries: one row = one CSV line (a header and N/2 lines).

A store of size n is built through the public API (``WalletService`` over
``SQLiteStore(path, synchronous="NORMAL")``, a :class:`~prepaid_wallet.FixedClock` set 30 days
before the real time): n/10 wallets of one tenant in EUR, each awarded ten lots of 1.00 EUR
expiring a day later; then the clock moves two days on (so every lot is due, for the child's
system clock too) and one more wallet receives n/2 top-ups of 0.01 EUR. After ``expire`` the
journal holds 2.5 n entries (n awards, n breakages, n/2 top-ups) in n/10 + 1 wallets. A third
store, *empty*, holds only the statement wallet without entries: each job's run there is its
fixed cost (interpreter start, imports, opening the store).

Method: build the three stores first (set-up time is reported), then run, job after job in the
order above, the small and the large store back to back. Each run is started with
:class:`subprocess.Popen`, its standard output read to the end through a pipe (lines counted,
first and last kept), and it is collected with :func:`os.wait4`, whose resource usage gives the
peak resident set size (``ru_maxrss``) of that child; its wall time is taken with
:func:`time.perf_counter` from the start to the collection. On Linux a child's ``ru_maxrss`` is
never below the peak RSS of the process that started it (the high-water mark survives the fork
and the ``exec``), so this script stays small: each store is written by a child process of its
own (this script with a hidden ``--write-store``), :mod:`prepaid_wallet` is never imported here,
and the script stops if a job's peak is not above its own high-water mark (``VmHWM``). Each job
first runs
:data:`FIXED_RUNS` times on the empty store; the fastest of those is its fixed cost. The script
checks every run: exit status 0, the number of lines, the summary line (expire, verify), the CSV
header and the last line's ``total_after`` (statement); a failed check stops the script.

Reported per job and size: rows, seconds, microseconds per row *net of the fixed cost*
((seconds - fixed) / rows; without it, the start-up alone would make small runs look slow per
row and hide a growing cost), and peak RSS in MiB. The targets compare the two sizes measured in
this one run (never absolute numbers: the machine is shared and noisy):

* memory ratio = peak RSS large / small <= :data:`MAX_MEMORY_RATIO` (1.25): memory is bounded,
  a job that kept its rows would need several times more;
* time ratio = microseconds per row large / small <= :data:`MAX_TIME_RATIO` (1.5): no step
  grows with the store (a quadratic step would give about 10).

Batch jobs (``benchmarks/batch_jobs.py``, run as a child process per backend after the jobs
above): rows per second of ``award_many``, ``expire_due`` and ``charge_periodic_fees`` booking
N/10 rows each in batches of 500, on SQLite (synchronous=NORMAL) and, with ``--dsn``, on
PostgreSQL; the target, 20,000 rows/s, is an absolute rate, so its verdict is printed but does
not change the exit status (the machine is shared and noisy).

Exit status: in full mode 1 when a target fails, else 0; in quick mode always 0 (at N = 2,000
the interpreter dominates the memory and the timings are too short to judge).
``tests/test_long_jobs_benchmark.py`` runs the quick mode and checks the report's shape.

Cost of the full mode, extrapolated from runs at N = 2,000 and N = 100,000 on a 2-CPU
development machine (at N = 100,000: set-up 52 s, jobs 102 s, every ratio between 0.89 and 1.14,
peak RSS 31-37 MiB throughout): the set-up takes about 0.45 ms per lot (with its share of the
top-ups), about 9 min for N = 10^6 and its small store; the jobs take about 0.7 ms per expired
lot, 60 us per entry verified and 60 us per statement line, about 17 min in all. So the full
mode runs for 25-30 min and needs about 2.5 GB of disk in the temporary directory (``TMPDIR``),
removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

#: Peak RSS of the large run over the small one passes at or below this.
MAX_MEMORY_RATIO = 1.25
#: Microseconds per row of the large run over the small one passes at or below this.
MAX_TIME_RATIO = 1.5
#: Runs of each job on the empty store; the fastest is the job's fixed cost.
FIXED_RUNS = 3

CURRENCY = "EUR"
TENANT = "hub"
LOTS_PER_WALLET = 10
LOT = "1.00"
TOP_UP = "0.01"
#: How far before the real time the set-up's clock starts (the child processes use the system
#: clock, so the lots must be due for it too).
PAST = timedelta(days=30)
LOT_LIFE = timedelta(days=1)
LATER = timedelta(days=2)


class BenchmarkError(RuntimeError):
    """A run failed or printed something else than expected."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


@dataclass(frozen=True)
class Plan:
    """The mode's name and N, the lots in the large store (the small one holds N/10)."""

    mode: str
    size: int

    @property
    def small(self) -> int:
        return self.size // 10


FULL = Plan("full", 1_000_000)
QUICK = Plan("quick", 2_000)


# -- the stores ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """A SQLite file of ``lots`` lots (all due) and a statement wallet of ``lots / 2`` entries."""

    name: str
    path: str
    lots: int
    statement_wallet: str
    setup_seconds: float

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    @property
    def top_ups(self) -> int:
        return self.lots // 2

    @property
    def wallets(self) -> int:
        return self.lots // LOTS_PER_WALLET + 1

    @property
    def entries(self) -> int:
        """Journal entries once the sweep has run: awards, breakages, top-ups."""
        return 2 * self.lots + self.top_ups


class _SetupProgress:
    """``done / total`` on stderr, at most twice a second, only when stderr is a terminal."""

    def __init__(self, name: str, total: int) -> None:
        self._name = name
        self._total = total
        self._on = sys.stderr.isatty() and total > 0
        self._next = 0.0

    def __call__(self, done: int) -> None:
        if not self._on:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 0.5
            sys.stderr.write(f"\rset-up {self._name}: {done:,} / {self._total:,}\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        if self._on:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def write_store(name: str, path: str, lots: int, start: datetime) -> tuple[str, float]:
    """Write the store of ``lots`` lots at ``path`` through the public API (see the module
    docstring); ``start`` is the set-up clock's first instant. Returns the statement wallet's
    id and the seconds taken. Runs in a child process of its own (see :func:`build`)."""
    from prepaid_wallet import FixedClock, Money, WalletService
    from prepaid_wallet.storage.sqlite import SQLiteStore

    _require(lots % LOTS_PER_WALLET == 0, f"lots must be a multiple of {LOTS_PER_WALLET}")
    began = time.perf_counter()
    clock = FixedClock(start)
    store = SQLiteStore(path, synchronous="NORMAL")
    progress = _SetupProgress(name, lots + lots // 2)
    lot, cent = Money.of(LOT, CURRENCY), Money.of(TOP_UP, CURRENCY)
    try:
        service = WalletService(store, clock=clock)
        open_wallet, award, top_up = service.open_wallet, service.award, service.top_up
        expires = start + LOT_LIFE
        for w in range(lots // LOTS_PER_WALLET):
            wallet_id = open_wallet(owner_id=f"owner-{w}", tenant_id=TENANT, currency=CURRENCY).id
            for _ in range(LOTS_PER_WALLET):
                award(wallet_id, lot, reason="promo", expires_at=expires)
            progress((w + 1) * LOTS_PER_WALLET)
        clock.advance(LATER)
        big = open_wallet(owner_id="statement", tenant_id=TENANT, currency=CURRENCY).id
        for i in range(lots // 2):
            top_up(big, cent, method="card")
            if i % 1000 == 0:
                progress(lots + i)
    finally:
        progress.close()
        store.close()
    return big, time.perf_counter() - began


def build(name: str, path: str, lots: int, start: datetime) -> Store:
    """:func:`write_store` in a child process (this script with ``--write-store``), so that
    this process never holds the set-up's memory: a child's ``ru_maxrss`` on Linux is at least
    the peak RSS of the process that started it (the high-water mark is carried over the fork
    and the ``exec``), so a large parent would hide the jobs' own peaks."""
    command = [sys.executable, __file__, "--write-store", name, path, str(lots), start.isoformat()]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    _require(done.returncode == 0, f"set-up of {name} exited {done.returncode}")
    made = json.loads(done.stdout)
    return Store(name, path, lots, str(made["statement_wallet"]), float(made["seconds"]))


# -- running a job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """What a run printed: its number of lines, the first and the last."""

    lines: int
    first: str
    last: str


@dataclass(frozen=True)
class Run:
    """One run of a job on a store: rows, wall seconds, peak RSS (KiB)."""

    job: str
    store: str
    lots: int
    rows: int
    seconds: float
    rss_kib: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024


def _rss_kib(maxrss: int) -> int:
    """``ru_maxrss`` in KiB (it is in bytes on macOS)."""
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


def run_cli(url: str, args: Sequence[str]) -> tuple[Output, float, int]:
    """Run ``python -m prepaid_wallet --db URL ARGS``; (its output, wall seconds, peak RSS in
    KiB). Raises :class:`BenchmarkError` when it exits with another status than 0."""
    command = [sys.executable, "-m", "prepaid_wallet", "--db", url, *args]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        stdout = child.stdout
        if stdout is None:
            raise BenchmarkError("no pipe to the child")
        lines, first, last = 0, b"", b""
        for line in stdout:
            if not lines:
                first = line
            last = line
            lines += 1
        stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise BenchmarkError(f"{' '.join(args)} exited {child.returncode}: {message}")
    output = Output(lines, first.decode().rstrip("\n"), last.decode().rstrip("\n"))
    return output, seconds, _rss_kib(usage.ru_maxrss)


def _check_expire(store: Store, out: Output) -> int:
    n = store.lots
    summary = (f"expired {n} lot(s), released 0 hold(s) in {n} entry(ies),"
               " 0 pending top-up(s) expired, 0 upgrade(s) expired")
    _require(out.lines == n + 1, f"expire on {store.name}: {out.lines} lines, not {n + 1}")
    _require(out.last == summary, f"expire on {store.name}: {out.last!r}, not {summary!r}")
    return n


def _check_verify(store: Store, out: Output) -> int:
    summary = f"checked {store.entries} entries and {store.wallets} wallets: ok"
    _require(out.lines == 1, f"verify on {store.name}: {out.lines} lines, not 1")
    _require(out.last == summary, f"verify on {store.name}: {out.last!r}, not {summary!r}")
    return store.entries


def _check_statement(store: Store, out: Output) -> int:
    n = store.top_ups
    _require(out.lines == n + 1, f"statement on {store.name}: {out.lines} lines, not {n + 1}")
    header = next(csv.reader([out.first]))
    _require("total_after" in header, f"statement on {store.name}: header {out.first!r}")
    if n:
        last = dict(zip(header, next(csv.reader([out.last])), strict=True))
        total = Decimal(TOP_UP) * n
        _require(
            Decimal(last["total_after"]) == total,
            f"statement on {store.name}: last total {last['total_after']}, not {total}",
        )
    return n


@dataclass(frozen=True)
class Job:
    """A command of the CLI, what one of its rows is, and the check of its output (which
    returns the rows)."""

    key: str
    row: str
    args: Callable[[Store], list[str]]
    check: Callable[[Store, Output], int]


JOBS = (
    Job("expire", "lot expired", lambda s: ["expire"], _check_expire),
    Job("verify", "entry checked", lambda s: ["verify"], _check_verify),
    Job(
        "statement",
        "CSV line",
        lambda s: ["statement", s.statement_wallet, "--format", "csv"],
        _check_statement,
    ),
)


def run_job(job: Job, store: Store) -> Run:
    """One checked run of ``job`` on ``store``."""
    output, seconds, rss_kib = run_cli(store.url, job.args(store))
    rows = job.check(store, output)
    return Run(job.key, store.name, store.lots, rows, seconds, rss_kib)


# -- the results -----------------------------------------------------------------------------------


def us_per_row(run: Run, fixed_seconds: float) -> float:
    """Microseconds per row of ``run``, net of the job's fixed cost."""
    return (run.seconds - fixed_seconds) / run.rows * 1e6


def ratio(large: float, small: float) -> float | None:
    """``large / small``, or None when ``small`` is not positive (nothing to compare with)."""
    return large / small if small > 0 else None


def passes(value: float | None, target: float) -> bool:
    return value is not None and value <= target


@dataclass(frozen=True)
class Result:
    """A job's runs: on the empty store (the fixed cost is the fastest), small and large."""

    job: Job
    empty: tuple[Run, ...]
    small: Run
    large: Run

    @property
    def fixed_seconds(self) -> float:
        return min(run.seconds for run in self.empty)

    @property
    def empty_rss_kib(self) -> int:
        return max(run.rss_kib for run in self.empty)

    def us_per_row(self, run: Run) -> float:
        return us_per_row(run, self.fixed_seconds)

    @property
    def memory_ratio(self) -> float:
        return self.large.rss_kib / self.small.rss_kib

    @property
    def time_ratio(self) -> float | None:
        return ratio(self.us_per_row(self.large), self.us_per_row(self.small))

    @property
    def memory_passed(self) -> bool:
        return passes(self.memory_ratio, MAX_MEMORY_RATIO)

    @property
    def time_passed(self) -> bool:
        return passes(self.time_ratio, MAX_TIME_RATIO)

    @property
    def passed(self) -> bool:
        return self.memory_passed and self.time_passed


def own_peak_kib() -> int:
    """The high-water RSS (KiB) of this process's memory image: the floor under every child's
    ``ru_maxrss``. On Linux it is ``VmHWM`` (``ru_maxrss`` of this process itself may be higher:
    it carries the floor inherited from *its* parent, which its children do not inherit)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return _rss_kib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(empty: Store, small: Store, large: Store) -> list[Result]:
    """Every job: its fixed cost on ``empty``, then ``small`` and ``large`` back to back. Stops
    when a child's peak RSS cannot be told from this process's own (see :func:`build`)."""
    results = []
    for job in JOBS:
        fixed = tuple(run_job(job, empty) for _ in range(FIXED_RUNS))
        results.append(Result(job, fixed, run_job(job, small), run_job(job, large)))
    floor = own_peak_kib()
    for result in results:
        for run in (*result.empty, result.small, result.large):
            _require(
                run.rss_kib > floor,
                f"{run.job} on {run.store}: peak RSS {run.rss_kib} KiB is not above this "
                f"process's own {floor} KiB, so it may be that, not the job's",
            )
    return results


def exit_status(results: Sequence[Result], quick: bool) -> int:
    """0, or 1 in full mode when a target fails (quick mode is too small to judge)."""
    if quick:
        return 0
    return 0 if all(r.passed for r in results) else 1


# -- batch jobs ------------------------------------------------------------------------------------


def batch_jobs(rows: int, dsn: str | None) -> list[dict[str, Any]]:
    """``benchmarks/batch_jobs.py`` on SQLite and, with a DSN, on PostgreSQL: one child each,
    its JSON report."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_jobs.py")
    reports = []
    for extra in ([], *([["--dsn", dsn]] if dsn else [])):
        command = [sys.executable, script, "--rows", str(rows), *extra]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        _require(done.returncode == 0, f"batch jobs {extra[:1]} exited {done.returncode}")
        reports.append(json.loads(done.stdout))
    return reports


def _batch_lines(reports: Sequence[dict[str, Any]]) -> list[str]:
    if not reports:
        return []
    names = {"award": "award_many", "expire": "expire_due", "fee": "charge_periodic_fees"}
    lines = ["", f"{'batch job':<20} {'backend':<10} {'rows':>9} {'seconds':>8} {'rows/s':>8} "
             f"{'target':>9}  result"]
    for report in reports:
        for job, measured in report["jobs"].items():
            lines.append(
                f"{names[job]:<20} {report['backend']:<10} {measured['rows']:>9,} "
                f"{measured['seconds']:>8.3f} {measured['rows_per_second']:>8,.0f} "
                f"{'>= ' + format(report['target_rows_per_second'], ','):>9}  "
                f"{_verdict(measured['passed'])}")
    lines.append("batch jobs: N/10 rows each in batches of 500 (benchmarks/batch_jobs.py); "
                 "informational verdicts")
    return lines


# -- reporting -------------------------------------------------------------------------------------


def _run_json(run: Run, per_row: float) -> dict[str, Any]:
    return {
        "lots": run.lots,
        "rows": run.rows,
        "seconds": run.seconds,
        "us_per_row": per_row,
        "rss_kib": run.rss_kib,
        "rss_mib": run.rss_mib,
    }


def as_json(
    plan: Plan, stores: Sequence[Store], results: Sequence[Result], run_seconds: float,
    batches: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "size": plan.size,
        "sizes": {"small": plan.small, "large": plan.size},
        "setup_seconds": {s.name: s.setup_seconds for s in stores},
        "run_seconds": run_seconds,
        "own_rss_kib": own_peak_kib(),
        "targets": {"memory_ratio": MAX_MEMORY_RATIO, "time_ratio": MAX_TIME_RATIO},
        "jobs": [
            {
                "job": r.job.key,
                "row": r.job.row,
                "empty": {
                    "rows": [run.rows for run in r.empty],
                    "seconds": [run.seconds for run in r.empty],
                    "rss_kib": [run.rss_kib for run in r.empty],
                },
                "fixed_seconds": r.fixed_seconds,
                "small": _run_json(r.small, r.us_per_row(r.small)),
                "large": _run_json(r.large, r.us_per_row(r.large)),
                "memory_ratio": r.memory_ratio,
                "time_ratio": r.time_ratio,
                "memory_passed": r.memory_passed,
                "time_passed": r.time_passed,
                "passed": r.passed,
            }
            for r in results
        ],
        "passed": all(r.passed for r in results),
        "batch_jobs": list(batches),
    }


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _ratio_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def as_table(
    plan: Plan, stores: Sequence[Store], results: Sequence[Result], run_seconds: float,
    batches: Sequence[dict[str, Any]] = (),
) -> str:
    setup = sum(s.setup_seconds for s in stores)
    parts = ", ".join(f"{s.name} {s.setup_seconds:.1f} s" for s in stores)
    lines = [
        f"prepaid_wallet long jobs -- {plan.mode} mode, N = {plan.size:,} lots, SQLite "
        f"{sqlite3.sqlite_version} (synchronous=NORMAL), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        f"set-up {setup:.1f} s ({parts}); jobs {run_seconds:.1f} s",
        "",
        f"{'job':<10} {'store':<6} {'lots':>10} {'rows':>10} {'seconds':>9} {'us/row':>9} "
        f"{'peak RSS MiB':>12}",
    ]
    for r in results:
        lines.append(
            f"{r.job.key:<10} {'empty':<6} {0:>10,} {0:>10,} {r.fixed_seconds:>9.3f} "
            f"{'-':>9} {r.empty_rss_kib / 1024:>12.1f}"
        )
        for run in (r.small, r.large):
            lines.append(
                f"{r.job.key:<10} {run.store:<6} {run.lots:>10,} {run.rows:>10,} "
                f"{run.seconds:>9.3f} {r.us_per_row(run):>9.1f} {run.rss_mib:>12.1f}"
            )
    lines += [
        "",
        f"{'large / small':<14} {'memory':>7} {'target':>8}  result  {'time/row':>8} "
        f"{'target':>7}  result",
    ]
    for r in results:
        lines.append(
            f"{r.job.key:<14} {r.memory_ratio:>7.2f} {'<= ' + str(MAX_MEMORY_RATIO):>8}  "
            f"{_verdict(r.memory_passed):<6}  {_ratio_text(r.time_ratio):>8} "
            f"{'<= ' + str(MAX_TIME_RATIO):>7}  {_verdict(r.time_passed)}"
        )
    lines += [
        "",
        "rows: expire, lots expired; verify, journal entries checked; statement, CSV lines.",
        "seconds: wall time of the child process; empty: the fastest of "
        f"{FIXED_RUNS} runs on a store",
        "without lots or entries (the job's fixed cost). us/row: (seconds - fixed) / rows.",
        "peak RSS: ru_maxrss of the child (os.wait4). memory: peak RSS large / small;",
        "time/row: us/row large / small.",
    ]
    lines += _batch_lines(batches)
    if plan.mode == "quick":
        lines += [
            "",
            "quick mode: small stores; the verdicts are informational and the exit status is "
            "always 0.",
        ]
    return "\n".join(lines)


def _size(text: str) -> int:
    value = int(text)
    if value < 100 or value % 100:
        raise argparse.ArgumentTypeError("must be a positive multiple of 100")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help=f"N = {QUICK.size:,} (for CI); always exits 0"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--size",
        type=_size,
        metavar="N",
        help=f"lots in the large store (default {FULL.size:,}, quick {QUICK.size:,})",
    )
    parser.add_argument("--dsn", help="a PostgreSQL URL: run the batch jobs there too")
    parser.add_argument(
        "--write-store", nargs=4, metavar=("NAME", "PATH", "LOTS", "START"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.write_store:
        name, path, lots, start = args.write_store
        wallet, seconds = write_store(name, path, int(lots), datetime.fromisoformat(start))
        print(json.dumps({"statement_wallet": wallet, "seconds": seconds}))
        return 0
    plan = QUICK if args.quick else FULL
    if args.size is not None:
        plan = Plan(plan.mode, args.size)

    # Whole seconds, so that the instants in the files do not depend on the sub-second.
    start = datetime.now(UTC).replace(microsecond=0) - PAST
    directory = tempfile.mkdtemp(prefix="prepaid-wallet-long-jobs-")
    try:
        stores = [
            build(name, os.path.join(directory, f"{name}.db"), lots, start)
            for name, lots in (("empty", 0), ("small", plan.small), ("large", plan.size))
        ]
        began = time.perf_counter()
        results = measure(*stores)
        run_seconds = time.perf_counter() - began
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    batches = batch_jobs(plan.size // 10, args.dsn)

    if args.json:
        print(json.dumps(as_json(plan, stores, results, run_seconds, batches), indent=2))
    else:
        print(as_table(plan, stores, results, run_seconds, batches))
    return exit_status(results, args.quick)


if __name__ == "__main__":
    sys.exit(main())
