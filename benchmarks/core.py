"""Core benchmarks: operations per second of the hot paths, and the cost ratios that must hold.

Run from the project root::

    python benchmarks/core.py            # full mode: exit 1 when a target fails
    python benchmarks/core.py --quick    # smaller set-up, fewer rounds; always exits 0
    python benchmarks/core.py --json     # one JSON object instead of the table

What is measured, each through the public API on an in-memory store (``open_store("memory:")``)
with a :class:`~prepaid_wallet.FixedClock` and :class:`~prepaid_wallet.SequentialIds`:

* a top-up on a fresh wallet;
* a spend on a wallet holding 1, 100 and 10,000 live lots (1, 10 and 1,000 in quick mode); every
  lot is big enough that each spend is paid by the first lot alone, and the script checks
  afterwards that no other lot was touched;
* a spend with an idempotency key (a new key each time) from a wallet's open balance, next to
  the **raw dict posting**: the least any in-memory ledger must do for it, by hand (check the
  balance, move it between two accounts in a dict, append two postings to a list); their ratio
  is the library's cost per keyed spend in units of that floor, comparable between machines
  and commits (informational: printed, not judged);
* a hold followed by its capture (one operation = both calls);
* a balance read of a wallet whose journal has 100 and 100,000 entries (100 and 10,000 in quick
  mode); each scenario lives in its own store, so the whole journal has that length too.

The targets compare costs measured in the same run (never absolute times: the machine is shared
and noisy): a spend's cost must not grow with the lots it does not touch, and a balance read must
cost the same at any journal length. Each ratio is the time per operation of the big case over
the small one; it passes at or below :data:`MAX_COST_RATIO`.

Method: set everything up first, then ``gc.collect()`` and ``gc.freeze()`` so the set-up's objects
are never scanned again; then run ``rounds`` timed rounds. A round times one batch of every
operation; the operations a ratio compares (the spends, the balance reads) form a group that runs
back to back, in alternating order from round to round, and the groups' order rotates. The
garbage collector is off inside a timed batch, as in :mod:`timeit`. Reported per operation: the
best and the median time per operation over the rounds. A ratio is taken in each round from the
two batches timed side by side, and the verdict uses the median of those per-round ratios: on a
shared machine whole seconds can run at half speed, and a pair timed together sees the same speed
(the ratio of the two best times is printed too, for comparison).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prepaid_wallet import (
    FixedClock,
    Money,
    SequentialIds,
    SpendRequest,
    WalletService,
    open_store,
)

#: A ratio of costs (time per operation, big case over small case) passes at or below this.
MAX_COST_RATIO = 2.0

CURRENCY = "EUR"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOP_UP = Money.of("1.00", CURRENCY)
SPEND = Money.of("1.00", CURRENCY)
HOLD = Money.of("1.00", CURRENCY)
#: Each lot and the hold wallet's open balance: far more than a run spends (checked up front).
BIG = Money.of("1000000.00", CURRENCY)
HOLD_WINDOW = timedelta(hours=4)


@dataclass(frozen=True)
class Plan:
    """Sizes, rounds and batch lengths (operations per timed batch) of one mode."""

    mode: str
    lot_counts: tuple[int, int, int]
    entry_counts: tuple[int, int]
    rounds: int
    batch_top_up: int
    batch_spend: int
    batch_hold_capture: int
    batch_balance: int


FULL = Plan(
    "full",
    (1, 100, 10_000),
    (100, 100_000),
    rounds=25,
    batch_top_up=1_000,
    batch_spend=500,
    batch_hold_capture=250,
    batch_balance=10_000,
)
QUICK = Plan(
    "quick",
    (1, 10, 1_000),
    (100, 10_000),
    rounds=5,
    batch_top_up=200,
    batch_spend=100,
    batch_hold_capture=50,
    batch_balance=2_000,
)


@dataclass
class Operation:
    """One benchmarked operation: ``run(n)`` performs it ``n`` times."""

    key: str
    label: str
    setup: str
    batch: int
    run: Callable[[int], None]
    check: Callable[[], None] = lambda: None
    group: str = ""  # operations of one group are timed back to back; "" = a group of its own
    times: list[float] = field(default_factory=list)  # seconds per operation, one per round

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass(frozen=True)
class Ratio:
    """A cost ratio with its target: ``value`` is the median of the per-round ratios (what the
    verdict uses), ``best_value`` the ratio of the two best times."""

    key: str
    label: str
    value: float
    best_value: float
    target: float | None = MAX_COST_RATIO  # None: informational, never fails

    @property
    def passed(self) -> bool:
        return self.target is None or self.value <= self.target


class BenchmarkSetupError(RuntimeError):
    """The set-up or a post-run check found the scenario is not what it claims to be."""


def _service() -> WalletService:
    return WalletService(open_store("memory:"), clock=FixedClock(START), ids=SequentialIds())


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkSetupError(message)


def _total_runs(plan: Plan, batch: int) -> int:
    """How many times an operation runs: one warm-up batch plus ``rounds`` timed batches."""
    return batch * (plan.rounds + 1)


# -- scenarios ------------------------------------------------------------------------------


def top_up_operation(plan: Plan) -> Operation:
    svc = _service()
    wallet_id = svc.open_wallet(owner_id="topper", tenant_id="hub", currency=CURRENCY).id

    def run(n: int) -> None:
        for _ in range(n):
            svc.top_up(wallet_id, TOP_UP, method="card")

    def check() -> None:
        expected = TOP_UP.minor_units * _total_runs(plan, plan.batch_top_up)
        _require(
            svc.balance(wallet_id).open.minor_units == expected,
            "top-up: the open balance is not the sum of the top-ups",
        )

    return Operation("top_up", "top-up", "fresh wallet", plan.batch_top_up, run, check)


def spend_operation(plan: Plan, lots: int, key: str, group: str = "") -> Operation:
    """A spend on a wallet with ``lots`` live lots; every spend is paid by the first lot."""
    spent = SPEND.minor_units * _total_runs(plan, plan.batch_spend)
    _require(spent < BIG.minor_units, "spend: the plan would exhaust the first lot")
    svc = _service()
    wallet_id = svc.open_wallet(owner_id=f"lots-{lots}", tenant_id="hub", currency=CURRENCY).id
    for _ in range(lots):
        svc.award(wallet_id, BIG, reason="benchmark")
    _require(len(svc.lots(wallet_id)) == lots, f"spend: expected {lots} live lots")
    request = SpendRequest(SPEND)
    allocation = svc.check_spend(wallet_id, request).allocation
    first = allocation[0].lot_id if len(allocation) == 1 else None
    if first is None:
        raise BenchmarkSetupError("spend: a spend must be paid by one lot")

    def run(n: int) -> None:
        for _ in range(n):
            svc.spend(wallet_id, request)

    def check() -> None:
        after = {lot.id: lot.remaining for lot in svc.lots(wallet_id)}
        _require(len(after) == lots, "spend: a lot ran out during the run")
        _require(
            after[first] == BIG - Money(spent, CURRENCY),
            "spend: the first lot did not pay every spend",
        )
        _require(
            all(left == BIG for lot_id, left in after.items() if lot_id != first),
            "spend: a lot other than the first was touched",
        )

    noun = "lot" if lots == 1 else "lots"
    return Operation(key, "spend", f"{lots:,} live {noun}", plan.batch_spend, run, check, group)


def keyed_spend_operation(plan: Plan) -> Operation:
    """A spend of 1.00 from a wallet's open balance, each with a new idempotency key."""
    spent = SPEND.minor_units * _total_runs(plan, plan.batch_spend)
    svc = _service()
    wallet_id = svc.open_wallet(owner_id="keyed", tenant_id="hub", currency=CURRENCY).id
    svc.top_up(wallet_id, BIG, method="card")
    _require(spent < BIG.minor_units, "keyed spend: the plan would exhaust the balance")
    request = SpendRequest(SPEND)
    keys = (f"order-{i}" for i in range(_total_runs(plan, plan.batch_spend)))

    def run(n: int) -> None:
        for _ in range(n):
            svc.spend(wallet_id, request, idempotency_key=next(keys))

    def check() -> None:
        _require(svc.balance(wallet_id).open == BIG - Money(spent, CURRENCY),
                 "keyed spend: the open balance is not the top-up less the spends")

    return Operation("spend_keyed", "spend + key", "open balance", plan.batch_spend, run,
                     check, group="keyed")


def raw_posting_operation(plan: Plan) -> Operation:
    """The raw dict posting: what any in-memory ledger must do for a spend, by hand."""
    runs = _total_runs(plan, plan.batch_spend)
    balances = {"wallet": BIG.minor_units, "revenue": 0}
    postings: list[tuple[int, str, int]] = []
    amount = SPEND.minor_units

    def run(n: int) -> None:
        for _ in range(n):
            if balances["wallet"] < amount:
                raise BenchmarkSetupError("raw posting: overdraft")
            balances["wallet"] -= amount
            balances["revenue"] += amount
            seq = len(postings)
            postings.append((seq, "wallet", -amount))
            postings.append((seq, "revenue", amount))

    def check() -> None:
        _require(balances["revenue"] == amount * runs and len(postings) == 2 * runs,
                 "raw posting: the postings do not add up")

    return Operation("raw_posting", "raw dict posting", "two accounts", plan.batch_spend, run,
                     check, group="keyed")


def hold_capture_operation(plan: Plan) -> Operation:
    held = HOLD.minor_units * _total_runs(plan, plan.batch_hold_capture)
    _require(held < BIG.minor_units, "hold + capture: the plan would exhaust the wallet")
    svc = _service()
    wallet_id = svc.open_wallet(owner_id="holder", tenant_id="hub", currency=CURRENCY).id
    svc.top_up(wallet_id, BIG, method="card")

    def run(n: int) -> None:
        for _ in range(n):
            hold = svc.hold(wallet_id, HOLD, window=HOLD_WINDOW)
            svc.capture(hold.id)

    def check() -> None:
        balance = svc.balance(wallet_id)
        _require(
            balance.held.is_zero() and balance.open == BIG - Money(held, CURRENCY),
            "hold + capture: every hold should have been captured in full",
        )

    return Operation(
        "hold_capture", "hold + capture", "open balance", plan.batch_hold_capture, run, check
    )


def balance_operation(entries: int, key: str, plan: Plan, group: str = "") -> Operation:
    """A balance read of a wallet whose journal (and the store's) has ``entries`` entries."""
    svc = _service()
    wallet_id = svc.open_wallet(
        owner_id=f"entries-{entries}", tenant_id="hub", currency=CURRENCY
    ).id
    for _ in range(entries):
        svc.top_up(wallet_id, TOP_UP, method="card")
    _require(
        svc.get_wallet(wallet_id).version == entries, f"balance: expected {entries} journal entries"
    )
    expected_open = Money(TOP_UP.minor_units * entries, CURRENCY)

    def run(n: int) -> None:
        for _ in range(n):
            svc.balance(wallet_id)

    def check() -> None:
        _require(
            svc.balance(wallet_id).open == expected_open,
            "balance: the read does not match the top-ups",
        )

    setup = f"{entries:,} entries"
    return Operation(key, "balance read", setup, plan.batch_balance, run, check, group)


def build(plan: Plan) -> list[Operation]:
    """Set up every scenario (the slow part), in table order."""
    small, medium, large = plan.lot_counts
    short, long = plan.entry_counts
    return [
        top_up_operation(plan),
        spend_operation(plan, small, "spend_lots_small", group="spend"),
        spend_operation(plan, medium, "spend_lots_medium", group="spend"),
        spend_operation(plan, large, "spend_lots_large", group="spend"),
        keyed_spend_operation(plan),
        raw_posting_operation(plan),
        hold_capture_operation(plan),
        balance_operation(short, "balance_entries_short", plan, group="balance"),
        balance_operation(long, "balance_entries_long", plan, group="balance"),
    ]


# -- measuring -----------------------------------------------------------------------------


def time_batch(op: Operation) -> float:
    """Seconds per operation for one batch, with the garbage collector off (as timeit does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        op.run(op.batch)
        elapsed = time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()
    return elapsed / op.batch


def groups(ops: Sequence[Operation]) -> list[list[Operation]]:
    """The operations in timing groups, in first-seen order."""
    found: dict[str, list[Operation]] = {}
    for op in ops:
        found.setdefault(op.group or op.key, []).append(op)
    return list(found.values())


def measure(ops: Sequence[Operation], rounds: int) -> None:
    """One warm-up batch each, then ``rounds`` rounds timing one batch of every operation:
    group by group, starting one group further along each round, each group's operations back
    to back and in reverse order every other round."""
    grouped = groups(ops)
    gc.collect()
    gc.freeze()
    try:
        for op in ops:
            time_batch(op)
        for r in range(rounds):
            for i in range(len(grouped)):
                group = grouped[(r + i) % len(grouped)]
                for op in group if r % 2 == 0 else reversed(group):
                    op.times.append(time_batch(op))
    finally:
        gc.unfreeze()
    for op in ops:
        op.check()


def ratios(plan: Plan, ops: Sequence[Operation]) -> list[Ratio]:
    """Cost ratios (time per operation) of the big case over the small one."""
    by_key = {op.key: op for op in ops}

    def ratio(key: str, label: str, big: str, small: str,
              target: float | None = MAX_COST_RATIO) -> Ratio:
        b, s = by_key[big], by_key[small]
        paired = statistics.median(tb / ts for tb, ts in zip(b.times, s.times, strict=True))
        return Ratio(key, label, paired, b.best / s.best, target)

    small, _, large = plan.lot_counts
    short, long = plan.entry_counts
    return [
        ratio(
            "spend_cost_ratio",
            f"spend({large:,} lots) / spend({small:,} lot{'s' if small != 1 else ''})",
            "spend_lots_large",
            "spend_lots_small",
        ),
        ratio(
            "balance_cost_ratio",
            f"balance({long:,} entries) / balance({short:,} entries)",
            "balance_entries_long",
            "balance_entries_short",
        ),
        *([ratio("keyed_spend_per_raw", "spend + key / raw dict posting", "spend_keyed",
                 "raw_posting", target=None)] if "spend_keyed" in by_key else []),
    ]


def exit_status(results: Sequence[Ratio], quick: bool) -> int:
    """0, or 1 in full mode when a target fails (quick mode is too noisy to judge)."""
    if quick:
        return 0
    return 0 if all(r.passed for r in results) else 1


# -- reporting -----------------------------------------------------------------------------


def as_json(
    plan: Plan,
    ops: Sequence[Operation],
    results: Sequence[Ratio],
    setup_seconds: float,
    run_seconds: float,
) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "store": "memory:",
        "rounds": plan.rounds,
        "setup_seconds": round(setup_seconds, 3),
        "run_seconds": round(run_seconds, 3),
        "operations": [
            {
                "key": op.key,
                "operation": op.label,
                "setup": op.setup,
                "batch": op.batch,
                "ops_per_sec": 1.0 / op.best,
                "median_ops_per_sec": 1.0 / op.median,
                "best_us_per_op": op.best * 1e6,
            }
            for op in ops
        ],
        "ratios": [
            {
                "key": r.key,
                "ratio": r.label,
                "value": r.value,
                "best_value": r.best_value,
                "target": r.target,
                "passed": r.passed,
            }
            for r in results
        ],
        "passed": all(r.passed for r in results),
    }


def as_table(
    plan: Plan,
    ops: Sequence[Operation],
    results: Sequence[Ratio],
    setup_seconds: float,
    run_seconds: float,
) -> str:
    lines = [
        f"prepaid_wallet core benchmarks -- {plan.mode} mode, memory store, "
        f"Python {platform.python_version()}, {plan.rounds} rounds "
        f"(set-up {setup_seconds:.1f} s, timing {run_seconds:.1f} s)",
        "",
        f"{'operation':<16} {'setup':<18} {'ops/s best':>12} {'ops/s median':>13} "
        f"{'us/op best':>11}",
    ]
    for op in ops:
        lines.append(
            f"{op.label:<16} {op.setup:<18} {1 / op.best:>12,.0f} {1 / op.median:>13,.0f} "
            f"{op.best * 1e6:>11.1f}"
        )
    lines += [
        "",
        f"{'cost ratio (time per op)':<48} {'paired':>7} {'best':>6} {'target':>8}  result",
    ]
    for r in results:
        verdict = "info" if r.target is None else "PASS" if r.passed else "FAIL"
        target = "-" if r.target is None else f"<= {r.target}"
        lines.append(
            f"{r.label:<48} {r.value:>7.2f} {r.best_value:>6.2f} {target:>8}  {verdict}"
        )
    lines += [
        "",
        "paired: median over the rounds of the ratio of two batches timed side by side (the "
        "verdict);",
        "best: ratio of the two best times. Both compare time per operation, big over small.",
    ]
    if plan.mode == "quick":
        lines += [
            "",
            "quick mode: smaller set-up and few rounds; the verdicts are informational "
            "and the exit status is always 0.",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller set-up and fewer rounds (for CI); always exits 0",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    start = time.perf_counter()
    ops = build(plan)
    setup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    measure(ops, plan.rounds)
    run_seconds = time.perf_counter() - start
    results = ratios(plan, ops)

    if args.json:
        print(json.dumps(as_json(plan, ops, results, setup_seconds, run_seconds), indent=2))
    else:
        print(as_table(plan, ops, results, setup_seconds, run_seconds))
    return exit_status(results, args.quick)


if __name__ == "__main__":
    sys.exit(main())
