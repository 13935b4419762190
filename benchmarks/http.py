"""HTTP benchmark: spends per second through the HTTP API, next to the same spends in process.

Run from the project root::

    python benchmarks/http.py              # full mode: 5 rounds of 2 s windows
    python benchmarks/http.py --quick      # 1 round of 0.3 s windows; always exits 0
    python benchmarks/http.py --json       # one JSON object instead of the table
    python benchmarks/http.py --dsn postgresql://user@host/db

It needs PostgreSQL (``--dsn`` or the environment variable ``PREPAID_WALLET_TEST_DSN``) and the
``server`` extra (Litestar, uvicorn) with httpx; without them it says why and measures nothing
(exit 0). Everything runs in a scratch schema of that database, dropped at the end.

What is measured, for a server with 1 and with 4 worker processes (``SERVER_WORKERS``):

* **http** -- ``POST /v1/wallets/{id}/spend`` of 1.00 EUR, each request with an API key
  (``Authorization: Bearer``) and an ``Idempotency-Key`` of its own, to ``prepaid-wallet serve
  --workers N`` (its default JSON access log on, written to ``/dev/null``). The load comes from
  ``CLIENT_PROCESSES`` client processes of ``CLIENT_THREADS`` threads each, every thread with a
  keep-alive :class:`httpx.Client` of its own spending from a wallet of its own: ``CONCURRENCY``
  requests in flight at all times.
* **in process** -- the same spends (same amount, an idempotency key each, run as the same API
  key's actor, on a service scoped to the same tenant) called on ``WalletService`` over
  ``open_store(url)`` of the same store URL, with the same shape as the server: N processes and
  ``CONCURRENCY`` threads in all among them, each thread on a wallet of its own. So the two
  differ only by what HTTP adds: the client, the connection, authenticating the key (one
  read-only unit of work per request), decoding the request and encoding the answer, the access
  log.

Method: a pool of client processes (spawn) is started once, and both servers are started once
and kept running. A measurement hands its processes a task each; every thread makes a few
untimed warm-up spends, waits for a common start instant, then spends in a loop for a fixed
window, timing each call. Throughput = all timed spends / the longest thread's time; latency =
the time of one call as its caller saw it, p50 and p99 over every timed call of every round. A
round measures each setting, http and in process back to back (in reverse order every other
round); the **ratio** http / in process of a setting is the median over the rounds of the
ratio of the two measurements taken side by side (as in ``benchmarks/core.py``); ops/s are
medians over the rounds. After the run every wallet's balance is checked against the spends
reported for it. No target is judged: the numbers are reported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

# Run as a script, this file's directory comes first on sys.path, where this file would hide
# the standard library's ``http`` package, which httpx and the server import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

CURRENCY = "EUR"
TENANT = "bench-http"
SPEND = "1.00"
#: Each wallet's opening balance: far more than a run spends (checked after the run).
BIG = "10000000.00"
SERVER_WORKERS = (1, 4)
CLIENT_PROCESSES = 2
CLIENT_THREADS = 4
CONCURRENCY = CLIENT_PROCESSES * CLIENT_THREADS
POOL_SIZE = max(CLIENT_PROCESSES, *SERVER_WORKERS)
DSN_ENV = "PREPAID_WALLET_TEST_DSN"
KINDS = ("http", "inprocess")


@dataclass(frozen=True)
class Plan:
    """Rounds, the timed window of one measurement (seconds) and untimed warm-up spends."""

    mode: str
    rounds: int
    seconds: float
    warm_up: int
    start_delay: float  # seconds between handing out the tasks and their common start


FULL = Plan("full", rounds=5, seconds=2.0, warm_up=10, start_delay=0.5)
QUICK = Plan("quick", rounds=1, seconds=0.3, warm_up=2, start_delay=0.3)


@dataclass
class Row:
    """One setting (server workers): throughput of each kind per round, and every latency."""

    workers: int
    http: list[float] = field(default_factory=list)
    inprocess: list[float] = field(default_factory=list)
    http_latencies: list[float] = field(default_factory=list)
    inprocess_latencies: list[float] = field(default_factory=list)

    @property
    def http_ops(self) -> float:
        return statistics.median(self.http)

    @property
    def inprocess_ops(self) -> float:
        return statistics.median(self.inprocess)

    @property
    def ratio(self) -> float:
        """http / in process: the median of the rounds' side-by-side ratios."""
        return statistics.median(h / i for h, i in zip(self.http, self.inprocess, strict=True))


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in (0, 1]) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- the work (client processes) --------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What one client process does in one measurement: ``kind`` spends from ``wallets`` (one
    thread each) for ``seconds`` after ``start_at`` (``time.time()``)."""

    kind: str
    url: str  # the store URL (in process) or the server's base URL (http)
    secret: str
    wallets: tuple[str, ...]
    start_at: float
    seconds: float
    warm_up: int


_SERVICES: dict[tuple[str, str], Any] = {}


def _in_process_spender(url: str, secret: str) -> Callable[[str], None]:
    from prepaid_wallet import Money, SpendRequest, WalletService, open_store

    found = _SERVICES.get((url, secret))
    if found is None:
        store = open_store(url)
        actor = WalletService(store).authenticate(secret).actor()
        found = _SERVICES[(url, secret)] = (WalletService(store, tenant_id=TENANT), actor)
    service, actor = found
    request = SpendRequest(Money.of(SPEND, CURRENCY))

    def spend(wallet_id: str) -> None:
        service.spend(wallet_id, request, idempotency_key=uuid.uuid4().hex, actor=actor)

    return spend


def _http_spender(base: str, secret: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    import httpx

    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"},
                          timeout=60)
    body = {"request": {"amount": {"amount": SPEND, "currency": CURRENCY}}}

    def spend(wallet_id: str) -> None:
        answer = client.post(f"/v1/wallets/{wallet_id}/spend", json=body,
                             headers={"Idempotency-Key": uuid.uuid4().hex})
        if answer.status_code != 200:
            raise RuntimeError(f"spend answered {answer.status_code}: {answer.text}")

    return spend, client.close


def _thread(task: Task, wallet_id: str, out: list[Any]) -> None:
    close: Callable[[], None] = lambda: None  # noqa: E731
    try:
        if task.kind == "http":
            spend, close = _http_spender(task.url, task.secret)
        else:
            spend = _in_process_spender(task.url, task.secret)
        for _ in range(task.warm_up):
            spend(wallet_id)
        delay = task.start_at - time.time()
        if delay > 0:
            time.sleep(delay)
        latencies = []
        start = time.perf_counter()
        elapsed = 0.0
        while elapsed < task.seconds:
            began = time.perf_counter()
            spend(wallet_id)
            done = time.perf_counter()
            latencies.append(done - began)
            elapsed = done - start
        out.append((wallet_id, task.warm_up + len(latencies), elapsed, latencies))
    except BaseException as error:  # reported to the parent
        out.append(error)
    finally:
        close()


def run_task(task: Task) -> list[tuple[str, int, float, list[float]]]:
    """Run ``task``'s threads: per wallet ``(wallet, spends including warm-up, timed seconds,
    latency of each timed spend)``."""
    if task.kind == "inprocess":
        _in_process_spender(task.url, task.secret)  # open the store before the threads
    out: list[Any] = []
    threads = [threading.Thread(target=_thread, args=(task, w, out)) for w in task.wallets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for item in out:
        if isinstance(item, BaseException):
            raise item
    return out


# -- set-up (parent process) ------------------------------------------------------------------


def postgres_status(dsn: str | None) -> str | None:
    """``None`` when the benchmark can run, else why it is skipped."""
    if not dsn:
        return "no DSN"
    for module in ("psycopg", "prepaid_wallet.storage.postgres", "httpx", "uvicorn",
                   "litestar"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"cannot import {exc.name or module}"
    return None


def _scratch_url(dsn: str, schema: str) -> str:
    """A store URL naming ``schema`` (first on the search path), which any process can open."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-c search_path={schema}', safe='')}"


def _sql(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _set_up(url: str, wallets: int) -> tuple[str, list[str]]:
    """An API key of the tenant (its secret) and ``wallets`` wallets holding ``BIG`` each."""
    from prepaid_wallet import Money, WalletService, open_store

    store = open_store(url)
    try:
        service = WalletService(store)
        _, secret = service.create_api_key(TENANT, ["clerk"], name="benchmark")
        ids = []
        for i in range(wallets):
            wallet = service.open_wallet(owner_id=f"owner-{i}", tenant_id=TENANT,
                                         currency=CURRENCY)
            service.top_up(wallet.id, Money.of(BIG, CURRENCY), method="card")
            ids.append(wallet.id)
        return secret, ids
    finally:
        store.close()


def _check(url: str, spent: dict[str, int]) -> None:
    """Every wallet shows exactly the spends reported for it (no lost or doubled spend)."""
    from prepaid_wallet import Money, WalletService, open_store

    store = open_store(url)
    try:
        service = WalletService(store)
        for wallet_id, count in spent.items():
            expected = Money.of(BIG, CURRENCY) - Money.of(SPEND, CURRENCY) * count
            shown = service.balance(wallet_id).open
            if shown != expected:
                raise SystemExit(f"wallet {wallet_id} holds {shown}, but {count} spends of "
                                 f"{SPEND} {CURRENCY} were reported: {expected} expected")
    finally:
        store.close()


class Server:
    """``prepaid-wallet serve --workers N`` on a free port."""

    def __init__(self, url: str, workers: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prepaid_wallet", "--db", url, "serve", "--port",
             str(self.port), "--workers", str(workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited {self.process.returncode}")
            try:
                if httpx.get(f"{self.base}/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit("the server did not get ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- measuring --------------------------------------------------------------------------------


def _split(wallets: Sequence[str], parts: int) -> list[tuple[str, ...]]:
    return [tuple(wallets[i::parts]) for i in range(parts)]


def measure_once(pool: Any, task_of: Callable[[tuple[str, ...], float], Task], processes: int,
                 wallets: Sequence[str], plan: Plan, spent: dict[str, int],
                 latencies: list[float]) -> float:
    """Spends per second of ``wallets`` spending together (one thread each, in ``processes``
    processes) for one window."""
    start_at = time.time() + plan.start_delay
    tasks = [task_of(part, start_at) for part in _split(wallets, processes)]
    results = [item for items in pool.map(run_task, tasks, chunksize=1) for item in items]
    for wallet_id, spends, _, times in results:
        spent[wallet_id] = spent.get(wallet_id, 0) + spends
        latencies.extend(times)
    total = sum(len(times) for _, _, _, times in results)
    return total / max(elapsed for _, _, elapsed, _ in results)


def measure(pool: Any, url: str, servers: dict[int, Server], secret: str,
            wallets: dict[tuple[str, int], list[str]], plan: Plan,
            spent: dict[str, int]) -> list[Row]:
    rows = {n: Row(n) for n in SERVER_WORKERS}
    for r in range(plan.rounds):
        for n, row in rows.items():
            for kind in KINDS if r % 2 == 0 else tuple(reversed(KINDS)):
                if kind == "http":
                    base = servers[n].base

                    def http_task(part: tuple[str, ...], start_at: float,
                                  base: str = base) -> Task:
                        return Task("http", base, secret, part, start_at, plan.seconds,
                                    plan.warm_up)

                    row.http.append(measure_once(pool, http_task, CLIENT_PROCESSES,
                                                 wallets[(kind, n)], plan, spent,
                                                 row.http_latencies))
                else:

                    def local_task(part: tuple[str, ...], start_at: float) -> Task:
                        return Task("inprocess", url, secret, part, start_at, plan.seconds,
                                    plan.warm_up)

                    row.inprocess.append(measure_once(pool, local_task, n,
                                                      wallets[(kind, n)], plan, spent,
                                                      row.inprocess_latencies))
    return list(rows.values())


# -- reporting --------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def as_json(plan: Plan, rows: Sequence[Row], skipped: str | None,
            run_seconds: float) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "rounds": plan.rounds,
        "seconds_per_measurement": plan.seconds,
        "concurrency": CONCURRENCY,
        "client_processes": CLIENT_PROCESSES,
        "run_seconds": round(run_seconds, 3),
        "rows": [
            {
                "key": f"{r.workers}w",
                "workers": r.workers,
                "http_ops_per_sec": r.http_ops,
                "inprocess_ops_per_sec": r.inprocess_ops,
                "ratio": r.ratio,
                "http_p50_ms": _ms(percentile(r.http_latencies, 0.50)),
                "http_p99_ms": _ms(percentile(r.http_latencies, 0.99)),
                "inprocess_p50_ms": _ms(percentile(r.inprocess_latencies, 0.50)),
                "inprocess_p99_ms": _ms(percentile(r.inprocess_latencies, 0.99)),
            }
            for r in rows
        ],
        "skipped": skipped,
    }


def as_table(plan: Plan, rows: Sequence[Row], skipped: str | None, run_seconds: float) -> str:
    lines = [
        f"prepaid_wallet HTTP benchmark -- {plan.mode} mode, PostgreSQL, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {plan.rounds} rounds of "
        f"{plan.seconds} s windows, {CONCURRENCY} concurrent callers (run {run_seconds:.1f} s)",
        "",
    ]
    if skipped is not None:
        lines.append(f"http: skipped ({skipped})")
        return "\n".join(lines)
    lines.append(f"{'server workers':>14} {'http ops/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
                 f"{'in-process ops/s':>16} {'p50 ms':>7} {'p99 ms':>7} {'http/in-process':>15}")
    for r in rows:
        lines.append(
            f"{r.workers:>14} {r.http_ops:>10,.0f} "
            f"{_ms(percentile(r.http_latencies, 0.50)):>7.1f} "
            f"{_ms(percentile(r.http_latencies, 0.99)):>7.1f} {r.inprocess_ops:>16,.0f} "
            f"{_ms(percentile(r.inprocess_latencies, 0.50)):>7.1f} "
            f"{_ms(percentile(r.inprocess_latencies, 0.99)):>7.1f} {r.ratio:>15.2f}"
        )
    lines += [
        "",
        f"http: {CLIENT_PROCESSES} client processes x {CLIENT_THREADS} threads, keep-alive, to "
        "`prepaid-wallet serve --workers N`; in process: N processes, "
        f"{CONCURRENCY} threads in all;",
        "every caller spends 1.00 EUR from a wallet of its own, each spend under its own "
        "idempotency key.",
        "ops/s: median over the rounds; p50/p99: latency of one call as its caller saw it, over "
        "every round;",
        "http/in-process: median over the rounds of the two measured side by side.",
    ]
    if plan.mode == "quick":
        lines += ["", "quick mode: short windows and one round; the numbers are informational."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="short windows, one round; always exits 0")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV) or None,
                        help=f"PostgreSQL DSN (default: ${DSN_ENV})")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    start = time.perf_counter()
    rows: list[Row] = []
    skipped = postgres_status(args.dsn)
    if skipped is None:
        rows = run(args.dsn, plan)
    run_seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(as_json(plan, rows, skipped, run_seconds), indent=2))
    else:
        print(as_table(plan, rows, skipped, run_seconds))
    return 0


def run(dsn: str, plan: Plan) -> list[Row]:
    """Set up a scratch schema, measure, check, clean up."""
    schema = f"bench_http_{uuid.uuid4().hex[:12]}"
    _sql(dsn, f'CREATE SCHEMA "{schema}"')
    url = _scratch_url(dsn, schema)
    servers: dict[int, Server] = {}
    try:
        settings = [(kind, n) for kind in KINDS for n in SERVER_WORKERS]
        secret, ids = _set_up(url, CONCURRENCY * len(settings))
        wallets = {s: ids[i * CONCURRENCY:(i + 1) * CONCURRENCY]
                   for i, s in enumerate(settings)}
        servers = {n: Server(url, n) for n in SERVER_WORKERS}
        for server in servers.values():
            server.wait_ready()
        spent: dict[str, int] = {}
        context = multiprocessing.get_context("spawn")
        with context.Pool(POOL_SIZE) as pool:
            rows = measure(pool, url, servers, secret, wallets, plan, spent)
        _check(url, spent)
        return rows
    finally:
        for server in servers.values():
            server.stop()
        _sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
