"""Command-line start-up: what one ``prepaid-wallet`` call costs a host that shells out, next to
the interpreter's own start-up, and whether a balance read stays under its target.

Run from the project root, with the interpreter of the README's install (``.venv/bin/python``)::

    python benchmarks/cli_startup.py            # full mode: exit 1 when the target is missed
    python benchmarks/cli_startup.py --quick    # fewer rounds (a few seconds); always exits 0
    python benchmarks/cli_startup.py --json     # one JSON object instead of the table

What is measured: whole child processes, each started the way a host starts them, on a small
SQLite store this script writes first (one wallet with a few entries):

* ``floor`` -- ``python -c pass``: the interpreter's own start-up, the least any call can cost;
* ``import`` -- ``python -c "import prepaid_wallet"``;
* ``version`` -- ``prepaid-wallet --version``: argument parsing only (see :data:`CHEAP_ARGS`);
* ``balance`` -- ``prepaid-wallet --db sqlite:///FILE balance WALLET``, the read the target is
  about;
* ``wallet_show`` -- ``prepaid-wallet --db sqlite:///FILE wallet show WALLET``;
* ``statement`` -- ``prepaid-wallet --db sqlite:///FILE statement WALLET``.

``prepaid-wallet`` is the console script next to this interpreter (what ``pip install -e .``
puts in ``.venv/bin``); without one, ``python -m prepaid_wallet`` stands in (the report says
which). The children get a bytecode cache of their own (``PYTHONPYCACHEPREFIX`` in a temporary
directory, ``PYTHONDONTWRITEBYTECODE`` removed), filled by one warm-up run of every command: a
user's second call finds the compiled modules, whatever this shell's settings.

Method: one warm-up run of each command, then :attr:`Plan.rounds` rounds; a round runs every
command once, in an order that rotates from round to round and is reversed every other round.
Each run is started with :class:`subprocess.Popen` and collected with :func:`os.wait4`: its wall
time is taken with :func:`time.perf_counter` from the start to the collection, its CPU time
(user + system) comes from the child's resource usage. Every run is checked (exit status 0,
what it printed); a failed check stops the script.

Reported per command: the median and the best wall time, the median CPU time, and **x floor**:
the median over the rounds of the command's wall time over the floor's in the same round (the
commands of one round see the same machine speed, so this ratio moves less than the absolute
times on a shared machine). The verdict is absolute, because the target is: the balance read's
median wall time must be under :data:`TARGET_SECONDS` (0.2 s).

Exit status: in full mode 1 when the target is missed, else 0; in quick mode always 0 (too few
rounds to judge). ``tests/test_cli_startup_benchmark.py`` runs the quick mode and checks the
report's shape and arithmetic, never a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A balance read (``prepaid-wallet balance WALLET``) meets its target when its median wall time
#: is under this many seconds.
TARGET_SECONDS = 0.2

#: The cheapest call of the command line: it parses its arguments and prints the version.
CHEAP_ARGS: tuple[str, ...] = ("--version",)
CHEAP_LABEL = "prepaid-wallet --version"

CURRENCY = "EUR"
TENANT = "hub"
TOP_UPS = ("30.00", "12.50", "7.25")
SPEND = "4.75"


class BenchmarkError(RuntimeError):
    """A run failed or printed something else than expected."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


@dataclass(frozen=True)
class Plan:
    """The mode's name and its number of timed rounds."""

    mode: str
    rounds: int


FULL = Plan("full", 21)
QUICK = Plan("quick", 3)


# -- the store ------------------------------------------------------------------------------------


def write_store(path: str) -> str:
    """Write the benchmark's store at ``path`` through the public API: one wallet, three top-ups
    and a spend. Returns the wallet's id. Runs in a child process (see :func:`build`)."""
    from prepaid_wallet import Money, SpendRequest, WalletService, open_store

    store = open_store(f"sqlite:///{path}")
    try:
        service = WalletService(store)
        wallet = service.open_wallet(owner_id="ann", tenant_id=TENANT, currency=CURRENCY)
        for amount in TOP_UPS:
            service.top_up(wallet.id, Money.of(amount, CURRENCY), method="card")
        service.spend(wallet.id, SpendRequest(Money.of(SPEND, CURRENCY)))
    finally:
        store.close()
    return wallet.id


def build(path: str) -> str:
    """:func:`write_store` in a child process (this script with ``--write-store``), so that this
    process never imports the library: its own start-up is not what is measured."""
    command = [sys.executable, __file__, "--write-store", path]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    _require(done.returncode == 0, f"writing the store exited {done.returncode}")
    return str(json.loads(done.stdout)["wallet"])


# -- the commands ---------------------------------------------------------------------------------


def launcher() -> tuple[list[str], str]:
    """How ``prepaid-wallet`` is started: the console script next to this interpreter, else
    ``python -m prepaid_wallet``; and a short name for the report."""
    script = Path(sys.executable).with_name("prepaid-wallet")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], "console script"
    return [sys.executable, "-m", "prepaid_wallet"], "python -m prepaid_wallet"


@dataclass
class Command:
    """A command line timed as a child process, the check of what it printed, and its runs."""

    key: str
    label: str
    argv: list[str]
    check: Callable[[str], bool]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def best_wall(self) -> float:
        return min(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def commands(start: Sequence[str], url: str, wallet: str) -> list[Command]:
    """The timed commands, the floor first."""
    python = sys.executable
    return [
        Command("floor", "python -c pass", [python, "-c", "pass"], lambda out: out == ""),
        Command("import", "python -c 'import prepaid_wallet'",
                [python, "-c", "import prepaid_wallet"], lambda out: out == ""),
        Command("version", CHEAP_LABEL, [*start, *CHEAP_ARGS],
                lambda out: out.startswith("prepaid-wallet ") and "(Python " in out),
        Command("balance", "prepaid-wallet balance W", [*start, "--db", url, "balance", wallet],
                lambda out: out.startswith(f"wallet     {wallet}\n") and "available" in out),
        Command("wallet_show", "prepaid-wallet wallet show W",
                [*start, "--db", url, "wallet", "show", wallet],
                lambda out: out.startswith(f"wallet    {wallet}\n") and "total" in out),
        Command("statement", "prepaid-wallet statement W",
                [*start, "--db", url, "statement", wallet],
                lambda out: out.startswith(f"statement of {wallet}")
                and out.count("\n") == len(TOP_UPS) + 5),
    ]


def child_env(cache: str) -> dict[str, str]:
    """The children's environment: this one, with a bytecode cache of their own."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def run_once(command: Command, env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` once and check it: (wall seconds, CPU seconds)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command.argv, stdout=subprocess.PIPE, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env)
        stdout = child.stdout
        if stdout is None:
            raise BenchmarkError("no pipe to the child")
        out = stdout.read()
        stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace").strip()
            raise BenchmarkError(f"{command.label} exited {child.returncode}: {message}")
    text = out.decode()
    _require(command.check(text), f"{command.label} printed {text[:200]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def order(count: int, round_index: int) -> list[int]:
    """The order of ``count`` commands in round ``round_index``: rotated by one each round,
    reversed every other round."""
    shift = round_index % count
    indexes = [*range(shift, count), *range(shift)]
    return indexes[::-1] if round_index % 2 else indexes


def measure(timed: Sequence[Command], rounds: int, env: dict[str, str]) -> None:
    """One warm-up run of every command, then ``rounds`` rounds of one run each."""
    for command in timed:
        run_once(command, env)
    for index in range(rounds):
        for position in order(len(timed), index):
            command = timed[position]
            wall, cpu = run_once(command, env)
            command.wall.append(wall)
            command.cpu.append(cpu)


# -- the results ----------------------------------------------------------------------------------


def floor_ratio(command: Command, floor: Command) -> float:
    """The median over the rounds of ``command``'s wall time over the floor's in that round."""
    return statistics.median(a / b for a, b in zip(command.wall, floor.wall, strict=True))


def target_met(seconds: float) -> bool:
    return seconds < TARGET_SECONDS


def exit_status(met: bool, quick: bool) -> int:
    """0, or 1 in full mode when the target is missed (quick mode is too short to judge)."""
    return 0 if quick or met else 1


def _by_key(timed: Sequence[Command], key: str) -> Command:
    (found,) = [c for c in timed if c.key == key]
    return found


def as_json(plan: Plan, start: str, timed: Sequence[Command], run_seconds: float) -> dict[str, Any]:
    floor = _by_key(timed, "floor")
    balance = _by_key(timed, "balance").median_wall
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "rounds": plan.rounds,
        "launcher": start,
        "run_seconds": run_seconds,
        "target_seconds": TARGET_SECONDS,
        "commands": [
            {
                "key": c.key,
                "label": c.label,
                "wall_seconds": c.wall,
                "cpu_seconds": c.cpu,
                "median_wall_seconds": c.median_wall,
                "best_wall_seconds": c.best_wall,
                "median_cpu_seconds": c.median_cpu,
                "floor_ratio": floor_ratio(c, floor),
            }
            for c in timed
        ],
        "balance_seconds": balance,
        "target_met": target_met(balance),
    }


def as_table(plan: Plan, start: str, timed: Sequence[Command], run_seconds: float) -> str:
    floor = _by_key(timed, "floor")
    balance = _by_key(timed, "balance").median_wall
    lines = [
        f"prepaid_wallet command-line start-up -- {plan.mode} mode, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"{plan.rounds} rounds ({run_seconds:.1f} s), prepaid-wallet run as: {start}",
        "",
        f"{'command':<36} {'wall ms':>8} {'best':>7} {'cpu ms':>7} {'x floor':>8}",
    ]
    for c in timed:
        lines.append(
            f"{c.label:<36} {c.median_wall * 1e3:>8.1f} {c.best_wall * 1e3:>7.1f} "
            f"{c.median_cpu * 1e3:>7.1f} {floor_ratio(c, floor):>8.2f}"
        )
    verdict = "met" if target_met(balance) else "NOT MET"
    lines += [
        "",
        f"balance read: median {balance:.3f} s, target < {TARGET_SECONDS} s: {verdict}",
        "",
        "wall ms: median wall time of the child process (best: the fastest run); cpu ms: median",
        "user + system time; x floor: median over the rounds of the command's wall time over",
        "python -c pass's in the same round.",
    ]
    if plan.mode == "quick":
        lines += ["", "quick mode: few rounds; the verdict is informational and the exit status "
                      "is always 0."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK.rounds} rounds (for CI); always exits 0")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write-store", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_store:
        print(json.dumps({"wallet": write_store(args.write_store)}))
        return 0
    plan = QUICK if args.quick else FULL

    directory = tempfile.mkdtemp(prefix="prepaid-wallet-cli-startup-")
    try:
        path = os.path.join(directory, "wallets.db")
        wallet = build(path)
        start, start_name = launcher()
        timed = commands(start, f"sqlite:///{path}", wallet)
        began = time.perf_counter()
        measure(timed, plan.rounds, child_env(os.path.join(directory, "pycache")))
        run_seconds = time.perf_counter() - began
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    balance = _by_key(timed, "balance").median_wall
    if args.json:
        print(json.dumps(as_json(plan, start_name, timed, run_seconds), indent=2))
    else:
        print(as_table(plan, start_name, timed, run_seconds))
    return exit_status(target_met(balance), args.quick)


if __name__ == "__main__":
    sys.exit(main())
