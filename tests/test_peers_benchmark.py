"""Keep ``benchmarks/peers.py`` from rotting: its skip message, its quick report's shape.

No timing is asserted (the machine is shared and noisy). pgledger is not part of the project:
the cases that measure need a checkout (``PGLEDGER_DIR``, else ``/tmp/pgledger``) and
PostgreSQL, and skip without the checkout; the skip message, the pure pieces (paired ratio,
verdicts, exit status, table) and the library's post-run check run everywhere (the check with
PostgreSQL).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive
from tests.pg import postgres_dsn

SCRIPT = ROOT / "benchmarks" / "peers.py"
FILES = (
    "vendor/scoville-pgsql-ulid/ulid-to-uuid.sql",
    "vendor/scoville-pgsql-ulid/uuid-to-ulid.sql",
    "pgledger.sql",
)


def _checkout() -> str | None:
    """A pgledger checkout to measure against, if this machine has one."""
    for candidate in (os.environ.get("PGLEDGER_DIR"), "/tmp/pgledger"):
        if candidate and all((Path(candidate) / f).is_file() for f in FILES):
            return candidate
    return None


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("peers")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env, check=False)


def _env_without_checkout() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PGLEDGER_DIR"}


def test_without_a_checkout_it_says_what_to_pass_and_exits_0() -> None:
    done = _run("--quick", env=_env_without_checkout())
    assert done.returncode == 0, done.stderr
    assert ("peers: skipped (no pgledger checkout: pass --pgledger PATH (or set PGLEDGER_DIR) "
            "to a clone of https://github.com/pgr0ss/pgledger)") in done.stdout

    done = _run("--quick", "--json", env=_env_without_checkout())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["skipped"].startswith("no pgledger checkout: pass --pgledger PATH")
    assert report["rows"] == []
    assert report["passed"] is None  # nothing measured
    # Full mode skips the same way: nothing measured is nothing failed.
    assert _run(env=_env_without_checkout()).returncode == 0


def test_skip_reasons(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.skip_reason("postgresql:///x", None).startswith("no pgledger checkout")
    not_a_checkout = bench.skip_reason("postgresql:///x", str(tmp_path))
    assert not_a_checkout.startswith(f"{tmp_path} is not a pgledger checkout (no ")
    assert "pgledger.sql" in not_a_checkout
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("-- empty\n")
    assert bench.skip_reason(None, str(tmp_path)).startswith(
        "no PostgreSQL: pass --dsn postgresql://user@host/dbname (or set "
        "PREPAID_WALLET_TEST_DSN)")
    assert bench.skip_reason("postgresql:///x", str(tmp_path)) is None


def test_ratio_is_the_median_of_paired_rounds_and_the_verdict(bench: ModuleType) -> None:
    # Round by round the library does 1.0, 2.5 and 1.5 times pgledger: the verdict uses 1.5,
    # although the two medians alone (300 / 100 = 3.0) would pass.
    row = bench.Row(1, library=[100.0, 500.0, 300.0], pgledger=[100.0, 200.0, 200.0])
    assert row.library_ops == 300.0
    assert row.pgledger_ops == 200.0
    assert row.ratio == pytest.approx(1.5)
    assert not row.passed
    fast = bench.Row(4, library=[400.0, 500.0, 600.0], pgledger=[200.0, 200.0, 200.0])
    assert fast.passed  # 2.5 >= 2.0
    assert bench.exit_status([fast], quick=False) == 0
    assert bench.exit_status([row, fast], quick=False) == 1
    assert bench.exit_status([row, fast], quick=True) == 0

    values = [float(v) for v in range(100, 0, -1)]
    assert bench.percentile(values, 0.50) == 50.0
    assert bench.percentile(values, 0.99) == 99.0


def test_table_shows_each_row_and_its_verdict(bench: ModuleType) -> None:
    slow = bench.Row(1, library=[100.0], pgledger=[200.0],
                     library_latencies=[0.004], pgledger_latencies=[0.002])
    sides = {
        "library": bench.Side("library", "u", ("a", "b"), transfers=10,
                              check={"entries": 60}),
        "pgledger": bench.Side("pgledger", "u", ("a", "b"), transfers=12),
    }
    table = bench.as_table(bench.FULL, [slow], sides, None, "abc123", 1.0)
    line = next(x for x in table.splitlines() if x.lstrip().startswith("1 "))
    assert line.split() == ["1", "100", "4.00", "4.00", "200", "2.00", "2.00", "0.50", ">=",
                            "2.0", "FAIL"]
    assert "pgledger abc123." in table
    skipped = bench.as_table(bench.QUICK, [], {}, "why", None, 0.0)
    assert skipped.splitlines()[-1] == "peers: skipped (why)"


def test_the_library_check_passes_a_tiny_run_and_catches_a_lost_transfer(
        bench: ModuleType) -> None:
    dsn = postgres_dsn()
    schema = f"bench_peers_test_{os.getpid()}"
    try:
        side = bench.set_up_library(dsn, schema)
        task = bench.Task("library", side.url, side.accounts, 7, 0.05, 2)
        outcome = bench.run_task(task, lambda: 0.0)
        assert outcome.transfers > 2
        assert len(outcome.latencies) == outcome.transfers - 2
        assert sum(outcome.moved.values()) == 0
        side.record([outcome])
        bench.check_library(side)
        assert side.check["verify_ok"] is True
        assert side.check["entries"] == bench.ACCOUNTS + outcome.transfers

        moved = dict(side.moved)
        source = next(a for a, n in moved.items() if n != 0)
        side.moved[source] += 1  # one transfer out of it "not reported"
        with pytest.raises(bench.BenchmarkSetupError, match="library: wallet"):
            bench.check_library(side)
        side.moved = moved
        side.transfers += 1  # one more reported than the journal holds
        with pytest.raises(bench.BenchmarkSetupError, match="transfer entries"):
            bench.check_library(side)
    finally:
        bench.close_open()
        bench._sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_the_pgledger_check_passes_a_tiny_run_and_catches_a_lost_transfer(
        bench: ModuleType) -> None:
    checkout = _checkout()
    if checkout is None:
        pytest.skip("no pgledger checkout (set PGLEDGER_DIR)")
    dsn = postgres_dsn()
    schema = f"bench_peers_test_pgl_{os.getpid()}"
    try:
        side = bench.set_up_pgledger(dsn, schema, checkout)
        outcome = bench.run_task(bench.Task("pgledger", side.url, side.accounts, 7, 0.05, 2),
                                 lambda: 0.0)
        side.record([outcome])
        bench.check_pgledger(side)
        assert side.check["entries_match"] is True
        source = next(a for a, n in side.moved.items() if n != 0)
        side.moved[source] += 1
        with pytest.raises(bench.BenchmarkSetupError, match="pgledger: account"):
            bench.check_pgledger(side)
    finally:
        bench.close_open()
        bench._sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_quick_json_with_a_checkout_reports_both_worker_counts() -> None:
    checkout = _checkout()
    if checkout is None:
        pytest.skip("no pgledger checkout (set PGLEDGER_DIR)")
    dsn = postgres_dsn()
    done = _run("--quick", "--json", "--pgledger", checkout, "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["mode"] == "quick"
    assert report["skipped"] is None
    assert report["accounts"] == 50
    assert report["target"] == 2.0
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"1w", "4w"}
    for key, row in rows.items():
        assert row["key"] == f"{row['workers']}w"
        assert len(row["library_rounds"]) == len(row["pgledger_rounds"]) == report["rounds"]
        for name in ("library_ops_per_sec", "pgledger_ops_per_sec", "ratio"):
            assert positive(row[name]), (key, name)
        assert row["library_ops_per_sec"] == statistics.median(row["library_rounds"])
        assert row["pgledger_ops_per_sec"] == statistics.median(row["pgledger_rounds"])
        assert row["ratio"] == pytest.approx(statistics.median(
            lib / peer for lib, peer in zip(row["library_rounds"], row["pgledger_rounds"],
                                            strict=True)))
        assert row["passed"] is (row["ratio"] >= 2.0)
        for kind in ("library", "pgledger"):
            assert 0 < row[f"{kind}_p50_ms"] <= row[f"{kind}_p99_ms"], (key, kind)
    assert report["passed"] is all(row["passed"] for row in rows.values())
    library, pgledger = report["checks"]["library"], report["checks"]["pgledger"]
    assert library["verify_ok"] is library["balances_match"] is library["sum_unchanged"] is True
    assert library["entries"] == 50 + library["transfers"]  # the top-ups, then every transfer
    assert pgledger["entries_match"] is pgledger["balances_match"] is True
    assert pgledger["transfers"] > 0
