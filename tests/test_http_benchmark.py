"""Keep ``benchmarks/http.py`` from rotting: run its quick mode, check the report's shape.

No timing is asserted (the machine is shared and noisy). The quick mode measures when a
PostgreSQL DSN is set, and says why it measured nothing otherwise; the pure pieces (paired
ratio, percentiles, table) are checked in-process on made-up numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive, quick_report

# Under pytest-xdist the module's tests run on one worker, so that it runs the benchmark's quick
# mode once (module fixture).
pytestmark = pytest.mark.xdist_group("http_benchmark")

DSN = os.environ.get("PREPAID_WALLET_TEST_DSN")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("http")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("http")


def test_quick_json_reports_both_settings_exactly_when_a_dsn_is_set(
        report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert report["concurrency"] == 8
    if not DSN:
        assert report["skipped"] == "no DSN"
        assert report["rows"] == []
        return
    assert report["skipped"] is None
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == {"1w", "4w"}
    for key, row in rows.items():
        assert row["key"] == f"{row['workers']}w"
        for name in ("http_ops_per_sec", "inprocess_ops_per_sec", "ratio"):
            assert positive(row[name]), (key, name)
        for kind in ("http", "inprocess"):
            assert 0 < row[f"{kind}_p50_ms"] <= row[f"{kind}_p99_ms"], (key, kind)
        # One round: the paired ratio is that round's ratio of the two medians printed.
        assert row["ratio"] == pytest.approx(
            row["http_ops_per_sec"] / row["inprocess_ops_per_sec"])


def test_without_a_dsn_it_says_why_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_TEST_DSN"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "http.py"), "--quick"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "http: skipped (no DSN)" in done.stdout


def test_skip_reasons(bench: ModuleType) -> None:
    assert bench.postgres_status(None) == "no DSN"
    assert bench.postgres_status("") == "no DSN"
    assert bench.postgres_status("postgresql:///x") is None  # every module imports here


def test_ratio_is_the_median_of_paired_rounds_and_percentiles(bench: ModuleType) -> None:
    # Round by round http does 0.2, 0.5 and 0.3 of in process: the verdict is 0.3, although
    # the medians alone (200 / 500 = 0.4) say otherwise.
    row = bench.Row(1, http=[200.0, 250.0, 150.0], inprocess=[1000.0, 500.0, 500.0])
    assert row.http_ops == 200.0
    assert row.inprocess_ops == 500.0
    assert row.ratio == pytest.approx(0.3)

    values = [float(v) for v in range(100, 0, -1)]  # 1 .. 100, unsorted
    assert bench.percentile(values, 0.50) == 50.0
    assert bench.percentile(values, 0.99) == 99.0
    assert bench.percentile(values, 1.0) == 100.0
    assert bench.percentile([7.0], 0.99) == 7.0


def test_table(bench: ModuleType) -> None:
    rows = [
        bench.Row(1, http=[300.0], inprocess=[600.0], http_latencies=[0.010, 0.030],
                  inprocess_latencies=[0.005, 0.006]),
        bench.Row(4, http=[500.0], inprocess=[1000.0], http_latencies=[0.020],
                  inprocess_latencies=[0.004]),
    ]
    lines = bench.as_table(bench.FULL, rows, None, 1.0).splitlines()
    one = next(line for line in lines if line.split()[:1] == ["1"])
    assert one.split() == ["1", "300", "10.0", "30.0", "600", "5.0", "6.0", "0.50"]
    four = next(line for line in lines if line.split()[:1] == ["4"])
    assert four.split()[-1] == "0.50"
    skipped = bench.as_table(bench.QUICK, [], "no DSN", 0.0)
    assert skipped.splitlines()[-1] == "http: skipped (no DSN)"
