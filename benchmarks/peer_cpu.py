"""CPU per transfer on PostgreSQL, the library next to pgledger: what a 2x target leaves.

Run from the project root::

    python benchmarks/peer_cpu.py --pgledger ~/src/pgledger    # 3,000 transfers a side a round
    python benchmarks/peer_cpu.py --quick --pgledger PATH      # 100 (CI)
    python benchmarks/peer_cpu.py --json --pgledger PATH       # one JSON object
    python benchmarks/peer_cpu.py --dsn postgresql://user@host/db --pgledger PATH

``benchmarks/peers.py`` measures transfers per second of the library and of pgledger, with 1 and
4 worker processes, against a target of twice pgledger's rate. This script says what that
target leaves a transfer: both sides are set up exactly as ``peers.py`` sets them up (pgledger
loaded from the checkout into a scratch schema, the library's wallets in another; the same
50 accounts, the same transfer of 1.00 between two drawn at random), then, in this one process,
each side makes its transfers one after the other on one connection (pgledger) or one store
(the library), after a warm-up, in two rounds (library, pgledger, then pgledger, library).

Per transfer it reports the wall time, the **client's CPU** (``time.process_time`` of this
process: for the library its Python and the driver, for pgledger the driver's call) and the
**server's CPU**: the CPU time of every process of the PostgreSQL server -- the backend, the
WAL writer, the checkpointer alike -- read from ``/proc`` before and after (every process whose
name starts with ``postgres``, with the CPU of children it waited for). That needs the server
on this machine and Linux; otherwise the server's CPU is not measured and the script says so.

What it prints beneath: a library at twice pgledger's rate

* with one worker, where each transfer waits for its own commit, must take at most half of
  pgledger's wall time per transfer;
* with many workers on a machine whose CPUs are all busy, must spend at most half of
  pgledger's CPU per transfer (client and server), if pgledger ran at its CPU-bound maximum
  (C CPUs / its CPU per transfer); ``peers.py`` measures what it reaches -- a 4-worker rate R
  leaves C / (2 R) of CPU per transfer.

and whether the library's server CPU alone -- the work its one statement per transfer asks of
the database -- already exceeds those budgets, before any of its own Python. It judges nothing
(exit status 0). Without a checkout or a DSN it says what to pass and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROUNDS = 2
FULL_TRANSFERS = 3_000
QUICK_TRANSFERS = 100
WARM_UP = 200


def _peers() -> ModuleType:
    """``benchmarks/peers.py``, whose set-up and transfers this script reuses."""
    path = Path(__file__).resolve().parent / "peers.py"
    spec = importlib.util.spec_from_file_location("_peers_for_cpu", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by every process of the PostgreSQL server on this machine
    (user and system, with the children each waited for); None without ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        return None
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if name.startswith("postgres"):
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_side(peers: ModuleType, kind: str, side: Any, transfers: int,
                 seed: int) -> dict[str, float | None]:
    """Milliseconds per transfer of ``transfers`` sequential transfers on ``side``: wall,
    client CPU, server CPU (None when it cannot be read)."""
    opener = peers._library_transferer if kind == "library" else peers._pgledger_transferer
    transfer, close = opener(side.url)
    try:
        rng = random.Random(seed)
        accounts = side.accounts
        for _ in range(WARM_UP):
            transfer(*rng.sample(accounts, 2))
        server = server_cpu_seconds()
        client = time.process_time()
        began = time.perf_counter()
        for _ in range(transfers):
            transfer(*rng.sample(accounts, 2))
        wall = time.perf_counter() - began
        client = time.process_time() - client
        after = server_cpu_seconds()
    finally:
        close()
    per = 1000 / transfers
    return {"wall_ms": wall * per, "client_cpu_ms": client * per,
            "server_cpu_ms": None if server is None or after is None else (after - server) * per}


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def measure(dsn: str, checkout: str, transfers: int) -> dict[str, Any]:
    """Both sides, ``ROUNDS`` rounds alternating which goes first; medians over the rounds."""
    peers = _peers()
    tag = uuid.uuid4().hex[:12]
    schemas = {"library": f"bench_cpu_lib_{tag}", "pgledger": f"bench_cpu_pgl_{tag}"}
    runs: dict[str, list[dict[str, float | None]]] = {"library": [], "pgledger": []}
    try:
        sides = {"library": peers.set_up_library(dsn, schemas["library"]),
                 "pgledger": peers.set_up_pgledger(dsn, schemas["pgledger"], checkout)}
        for round_no in range(ROUNDS):
            order = ("library", "pgledger") if round_no % 2 == 0 else ("pgledger", "library")
            for kind in order:
                runs[kind].append(measure_side(peers, kind, sides[kind], transfers, round_no))
    finally:
        for schema in schemas.values():
            peers._sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    result: dict[str, Any] = {}
    for kind, rows in runs.items():
        result[kind] = {name: _median([row[name] for row in rows])
                        for name in ("wall_ms", "client_cpu_ms", "server_cpu_ms")}
        server = result[kind]["server_cpu_ms"]
        result[kind]["cpu_ms"] = None if server is None else result[kind]["client_cpu_ms"] + server
    return result


def budgets(sides: dict[str, Any]) -> dict[str, Any]:
    """What twice pgledger's rate leaves a library transfer, and whether the library's server
    CPU alone exceeds it (None where the server's CPU was not read)."""
    peer, library = sides["pgledger"], sides["library"]
    wall = peer["wall_ms"] / 2
    cpu = None if peer["cpu_ms"] is None else peer["cpu_ms"] / 2
    server = library["server_cpu_ms"]
    return {
        "one_worker_wall_ms": wall,
        "cpu_bound_cpu_ms": cpu,
        "library_server_cpu_over_one_worker_budget": None if server is None else server > wall,
        "library_server_cpu_over_cpu_bound_budget": (
            None if server is None or cpu is None else server > cpu),
    }


def as_table(report: dict[str, Any]) -> str:
    lines = [
        f"prepaid_wallet CPU per transfer (library and pgledger) -- {report['mode']} mode, "
        f"PostgreSQL, Python {report['python']}, {report['cpus']} CPUs, load average "
        f"{', '.join(f'{x:.2f}' for x in report['load_average'])}, "
        f"{report['transfers']:,} sequential transfers a side, {ROUNDS} rounds",
        "",
    ]
    if report["skipped"] is not None:
        lines.append(f"peer_cpu: skipped ({report['skipped']})")
        return "\n".join(lines)

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines.append(f"{'side':<9}{'wall ms':>10}{'client CPU ms':>15}{'server CPU ms':>15}"
                 f"{'CPU ms':>9}")
    for kind in ("library", "pgledger"):
        row = report["sides"][kind]
        lines.append(f"{kind:<9}{ms(row['wall_ms']):>10}{ms(row['client_cpu_ms']):>15}"
                     f"{ms(row['server_cpu_ms']):>15}{ms(row['cpu_ms']):>9}")
    found = report["budgets"]
    server = report["sides"]["library"]["server_cpu_ms"]
    lines += [
        "",
        "twice pgledger's rate leaves a library transfer:",
        f"  one worker (each transfer waits for its commit): {ms(found['one_worker_wall_ms'])} ms"
        " of wall time",
        f"  CPU-bound (pgledger at its CPU maximum): {ms(found['cpu_bound_cpu_ms'])} ms of CPU,"
        " client and server (a measured rate R on C CPUs: C / (2 R))",
        f"the library's server CPU alone: {ms(server)} ms per transfer"
        + ("" if server is None else
           f" -- {'over' if found['library_server_cpu_over_one_worker_budget'] else 'within'} "
           f"the one-worker budget, "
           f"{'over' if found['library_server_cpu_over_cpu_bound_budget'] else 'within'} "
           "the CPU-bound one"),
    ]
    if server is None:
        lines.append("server CPU: not measured (the server is not on this machine, or no /proc)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TRANSFERS} transfers a side a round (as CI runs it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", default=os.environ.get("PREPAID_WALLET_TEST_DSN") or None,
                        help="PostgreSQL DSN (default: $PREPAID_WALLET_TEST_DSN)")
    parser.add_argument("--pgledger", default=os.environ.get("PGLEDGER_DIR") or None,
                        metavar="PATH", help="a pgledger checkout (default: $PGLEDGER_DIR)")
    args = parser.parse_args(argv)
    transfers = QUICK_TRANSFERS if args.quick else FULL_TRANSFERS
    load = list(os.getloadavg())
    skipped = _peers().skip_reason(args.dsn, args.pgledger)
    report: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_average": [round(v, 2) for v in load],
        "transfers": transfers, "rounds": ROUNDS, "skipped": skipped}
    if skipped is None:
        sides = measure(args.dsn, args.pgledger, transfers)
        report["sides"] = sides
        report["budgets"] = budgets(sides)
    print(json.dumps(report) if args.json else as_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
