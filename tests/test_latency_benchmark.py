"""Keep ``benchmarks/latency.py`` from rotting: its quick report's shape, its skip message and
its post-run check.

No timing is asserted (the machine is shared and noisy). The quick mode needs PostgreSQL (it
says why it measured nothing otherwise); the check that every acknowledged command is in the
journal exactly once is run on a tiny in-process run and shown to catch a lost or doubled
command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive
from tests.pg import postgres_dsn

SCRIPT = ROOT / "benchmarks" / "latency.py"
COMMANDS = ["top-up", "spend", "transfer", "hold + capture", "balance"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("latency")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env, check=False)


def test_without_a_dsn_it_says_why_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_TEST_DSN"}
    done = _run("--quick", env=env)
    assert done.returncode == 0, done.stderr
    assert ("latency: skipped (no DSN: pass --dsn postgresql://user@host/dbname or set "
            "PREPAID_WALLET_TEST_DSN)") in done.stdout
    report = json.loads(_run("--quick", "--json", env=env).stdout)
    assert report["skipped"].startswith("no DSN")
    assert report["commands"] == []


def test_quick_json_reports_every_command_and_a_clean_check() -> None:
    dsn = postgres_dsn()
    done = _run("--quick", "--json", "--dsn", dsn)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["mode"] == "quick"
    assert report["skipped"] is None
    assert report["clients"] == 8
    assert [row["command"] for row in report["commands"]] == COMMANDS
    for row in report["commands"]:
        assert row["count"] > 0, row
        assert row["errors"] == 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"], row
    assert positive(report["commands_per_sec"])
    assert report["errors"] == {}
    checks = report["checks"]
    assert checks["wallets"] == 3 + 8 * 2
    assert checks["balances_match"] is checks["journal_matches"] is checks["verify_ok"] is True
    # At least the set-up's top-ups plus one entry per write command counted.
    writes = sum(row["count"] for row in report["commands"] if row["command"] != "balance")
    assert checks["entries"] >= checks["wallets"] + writes


def test_the_check_passes_a_tiny_run_and_catches_a_lost_or_doubled_command(
        bench: ModuleType) -> None:
    dsn = postgres_dsn()
    schema = f"bench_latency_test_{uuid.uuid4().hex[:8]}"
    bench._sql(dsn, f'CREATE SCHEMA "{schema}"')
    url = bench.scratch_url(dsn, schema)
    try:
        wallets = bench.set_up(url)
        reports = [
            bench.run_client(bench.Task(url, wallets.shared, wallets.own[c], c, 0.2),
                             lambda: None)
            for c in range(2)
        ]
        for report in reports:
            assert sum(len(times) for times in report.latencies.values()) > 0
            assert report.errors == {}
        checked = bench.check(url, wallets, reports)
        assert checked["entries"] == len(wallets.setup_entries) + sum(
            len(r.entries) for r in reports)
        assert checked["verify_ok"] is True

        first = reports[0]
        lost = first.entries.pop()  # an entry the journal holds that no client reported
        with pytest.raises(bench.BenchmarkSetupError, match="no client reported"):
            bench.check(url, wallets, reports)
        first.entries.append(lost)
        first.entries.append(lost)  # reported twice
        with pytest.raises(bench.BenchmarkSetupError, match="twice"):
            bench.check(url, wallets, reports)
        first.entries.pop()
        first.entries.append("not-an-entry")  # acknowledged but not in the journal
        with pytest.raises(bench.BenchmarkSetupError, match="not in the journal"):
            bench.check(url, wallets, reports)
        first.entries.pop()
        wallet = next(iter(first.open_moved))
        first.open_moved[wallet] += 100  # a balance that does not match what was reported
        with pytest.raises(bench.BenchmarkSetupError, match=f"wallet {wallet}"):
            bench.check(url, wallets, reports)
    finally:
        bench._sql(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_percentile(bench: ModuleType) -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert bench.percentile(values, 0.50) == 50.0
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile([3.0], 0.99) == 3.0
