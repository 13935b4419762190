"""Instructions per operation under callgrind: the library's CPU cost, repeatable on a busy machine.

Run from the project root::

    python benchmarks/instructions.py                      # full mode
    python benchmarks/instructions.py --quick              # fewer operations, two scenarios
    python benchmarks/instructions.py --baseline ../old/src  # the same, side by side with
                                                           # another checkout's library
    python benchmarks/instructions.py --json               # one JSON object

Timings on a shared machine move by tens of percent from one second to the next; the number of
machine instructions a process executes does not. Each scenario runs in a child process under
``valgrind --tool=callgrind`` twice, with ``small`` and ``large`` operations after the same
set-up and warm-up, and the difference of the two instruction counts divided by the difference
of the operation counts is the cost of one operation: set-up, imports and interpreter start-up
cancel out. A change of a few percent in a hot path shows up reliably, which no timing can
promise here. (Callgrind counts the instructions of the process, the library's Python and the C
of CPython, ``hashlib`` and SQLite; the time a disk takes to flush is not an instruction.)

Scenarios, each on ``open_store("memory:")`` unless named otherwise:

* ``spend_keyed`` -- a spend of 1.00 from a wallet's open balance with a new idempotency key;
* ``spend`` -- the same without a key;
* ``top_up`` -- a top-up of 1.00;
* ``transfer`` -- a transfer of 1.00 between two wallets;
* ``spend_keyed_sqlite`` -- the keyed spend on a SQLite file at ``synchronous=NORMAL``;
* ``raw_posting`` -- the raw dict posting of ``benchmarks/core.py`` (check the balance, move it
  between two accounts in a dict, append two postings), the floor under any in-memory ledger:
  each scenario's cost is also printed in raw postings.

With ``--baseline PATH`` (a directory holding another version's ``prepaid_wallet`` package,
e.g. a checkout's ``src``), every scenario is also measured with that library (the child's
``PYTHONPATH``), and the ratio baseline / this is printed: how many times fewer instructions
an operation takes now. Without valgrind the script says so and exits 0. It judges nothing
(exit status 0): the targets are judged with ``benchmarks/core.py`` and
``benchmarks/storage.py``; this script is how small changes are weighed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCENARIOS = ("spend_keyed", "spend", "top_up", "transfer", "spend_keyed_sqlite", "raw_posting")
QUICK_SCENARIOS = ("spend_keyed", "raw_posting")
#: Operations before the measured ones in every child (imports, caches, first-use paths).
WARM_UP = 100
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """Operation counts of one mode: the two runs differ by ``large - small`` operations."""

    mode: str
    small: int
    large: int
    scenarios: tuple[str, ...]


FULL = Plan("full", 100, 600, SCENARIOS)
QUICK = Plan("quick", 20, 70, QUICK_SCENARIOS)


@dataclass(frozen=True)
class Row:
    """Instructions per operation of one scenario (and of the baseline's library, if any)."""

    scenario: str
    instructions: float
    baseline: float | None = None

    @property
    def speedup(self) -> float | None:
        """Baseline instructions over this library's (above 1: fewer now)."""
        return None if self.baseline is None else self.baseline / self.instructions


# -- the child: one scenario, n operations -------------------------------------------------------


def child(scenario: str, n: int) -> None:
    """Set up ``scenario``, warm it up, then run ``n`` operations (measured by the parent)."""
    if scenario == "raw_posting":
        balances = {"wallet": 10**12, "revenue": 0}
        postings: list[tuple[int, str, int]] = []

        def raw() -> None:
            if balances["wallet"] < 100:
                raise RuntimeError("overdraft")
            balances["wallet"] -= 100
            balances["revenue"] += 100
            seq = len(postings)
            postings.append((seq, "wallet", -100))
            postings.append((seq, "revenue", 100))

        for _ in range(WARM_UP):
            raw()
        for _ in range(n):
            raw()
        return

    from datetime import UTC, datetime

    from prepaid_wallet import (
        FixedClock,
        Money,
        SequentialIds,
        SpendRequest,
        WalletService,
        open_store,
    )

    if scenario == "spend_keyed_sqlite":
        from prepaid_wallet.storage.sqlite import SQLiteStore

        folder = tempfile.mkdtemp()
        store: Any = SQLiteStore(os.path.join(folder, "wallets.db"), synchronous="NORMAL")
    else:
        store = open_store("memory:")
    svc = WalletService(store, clock=FixedClock(datetime(2026, 1, 5, 9, tzinfo=UTC)),
                        ids=SequentialIds())
    one = Money.of("1.00", "EUR")
    wallet = svc.open_wallet(owner_id="a", tenant_id="hub", currency="EUR").id
    other = svc.open_wallet(owner_id="b", tenant_id="hub", currency="EUR").id
    svc.top_up(wallet, Money.of("1000000.00", "EUR"), method="card")
    request = SpendRequest(one)
    counter = iter(range(10**9))

    def op() -> None:
        if scenario in ("spend_keyed", "spend_keyed_sqlite"):
            svc.spend(wallet, request, idempotency_key=f"order-{next(counter)}")
        elif scenario == "spend":
            svc.spend(wallet, request)
        elif scenario == "top_up":
            svc.top_up(other, one, method="card")
        elif scenario == "transfer":
            svc.transfer(wallet, other, one)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")

    for _ in range(WARM_UP):
        op()
    for _ in range(n):
        op()


# -- the parent: two runs under callgrind per scenario ------------------------------------------

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(scenario: str, n: int, library: str | None) -> int:
    """Instructions of a child running ``n`` operations of ``scenario`` under callgrind, with
    the library found first in ``library`` (None: this checkout's, as installed)."""
    env = dict(os.environ)
    if library is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [library, env.get("PYTHONPATH")]))
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(Path(__file__).resolve()), "--child", scenario, str(n)],
        capture_output=True, text=True, env=env, check=False, timeout=1800,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{scenario} under callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_operation(plan: Plan, scenario: str, library: str | None) -> float:
    """Instructions per operation: the difference of two runs over their operation counts."""
    small = count(scenario, plan.small, library)
    large = count(scenario, plan.large, library)
    return (large - small) / (plan.large - plan.small)


def measure(plan: Plan, baseline: str | None) -> list[Row]:
    """Every scenario of the plan, with this library and (if given) the baseline's."""
    rows = []
    for scenario in plan.scenarios:
        mine = per_operation(plan, scenario, None)
        theirs = None
        if baseline is not None:
            theirs = mine if scenario == "raw_posting" else per_operation(plan, scenario,
                                                                          baseline)
        rows.append(Row(scenario, mine, theirs))
    return rows


# -- reporting -----------------------------------------------------------------------------


def _raw(rows: Sequence[Row]) -> float | None:
    return next((r.instructions for r in rows if r.scenario == "raw_posting"), None)


def as_json(plan: Plan, rows: Sequence[Row], baseline: str | None) -> dict[str, Any]:
    raw = _raw(rows)
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "operations": [plan.small, plan.large],
        "baseline": baseline,
        "scenarios": [
            {
                "scenario": r.scenario,
                "instructions": r.instructions,
                "raw_postings": None if raw is None else r.instructions / raw,
                "baseline_instructions": r.baseline,
                "speedup": r.speedup,
            }
            for r in rows
        ],
    }


def as_table(plan: Plan, rows: Sequence[Row], baseline: str | None) -> str:
    raw = _raw(rows)
    lines = [
        f"prepaid_wallet instructions per operation -- {plan.mode} mode, Python "
        f"{platform.python_version()}, callgrind, {plan.large - plan.small} operations "
        f"({plan.small} vs {plan.large} after {WARM_UP} warm-up)",
        "",
        f"{'scenario':<20} {'instructions':>13} {'raw postings':>13}"
        + (f" {'baseline':>13} {'baseline/now':>13}" if baseline else ""),
    ]
    for r in rows:
        line = (f"{r.scenario:<20} {r.instructions:>13,.0f} "
                f"{'-' if raw is None else f'{r.instructions / raw:,.1f}':>13}")
        if baseline:
            line += (f" {r.baseline:>13,.0f} {r.speedup:>13.2f}" if r.baseline is not None
                     else f" {'-':>13} {'-':>13}")
        lines.append(line)
    lines += ["", "instructions: per operation, (count with large - count with small) / "
              "(large - small); raw postings: the same over the raw dict posting's."]
    if baseline:
        lines.append(f"baseline: the library in {baseline}; baseline/now above 1 means fewer "
                     "instructions now.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer operations, two scenarios")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--baseline", metavar="PATH",
                        help="a directory holding another version's prepaid_wallet package")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="measure only this scenario (repeatable)")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    plan = QUICK if args.quick else FULL
    if args.scenario:
        plan = Plan(plan.mode, plan.small, plan.large, tuple(args.scenario))
    if shutil.which("valgrind") is None:
        message = ("instructions: skipped (valgrind is not installed; e.g. apt-get install "
                   "valgrind)")
        print(json.dumps({"mode": plan.mode, "skipped": message}) if args.json else message)
        return 0
    baseline = None if args.baseline is None else str(Path(args.baseline).resolve())
    rows = measure(plan, baseline)
    if args.json:
        print(json.dumps(as_json(plan, rows, baseline), indent=2))
    else:
        print(as_table(plan, rows, baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
