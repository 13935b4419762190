"""Keep ``benchmarks/storage.py`` from rotting: run its quick mode, check the report's shape.

No timing is asserted (the machine is shared and noisy); the targets are judged by the script's
full mode, run by hand. The pure pieces (paired ratios, scaling, verdicts, exit status, table) and
the post-run balance checks are exercised in-process on made-up numbers and a tiny run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive, quick_report

# Under pytest-xdist the module's tests run on one worker, so that it runs the benchmark's quick
# mode once (module fixture).
pytestmark = pytest.mark.xdist_group("storage_benchmark")

SCRIPT = ROOT / "benchmarks" / "storage.py"
DSN = os.environ.get("PREPAID_WALLET_TEST_DSN")

SCENARIOS = {"1w_shared", "1w_separate", "4w_shared", "4w_separate"}
SQLITE_TARGETS = {"sqlite_full": ("FULL", 0.70), "sqlite_normal": ("NORMAL", 0.40)}




@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("storage")




@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("storage")


def _check_rows(report: dict[str, Any], backend_key: str, sync: str, target: float) -> None:
    rows = {r["key"]: r for r in report["rows"] if r["key"].startswith(backend_key + "_")}
    assert set(rows) == {f"{backend_key}_{s}" for s in SCENARIOS}
    for key, row in rows.items():
        assert row["sync"] == sync, key
        assert positive(row["library_ops_per_sec"]), key
        assert positive(row["raw_ops_per_sec"]), key
        assert positive(row["ratio"]), key
        assert row["target"] == target, key
        assert row["passed"] is (row["ratio"] >= row["target"]), key
        assert f"{row['workers']}w_{row['wallets']}" == key.removeprefix(backend_key + "_")
    scaling = {s["key"]: s for s in report["scaling"]}
    assert backend_key in scaling
    assert positive(scaling[backend_key]["library"])
    assert positive(scaling[backend_key]["raw"])
    if backend_key == "postgres":
        assert scaling[backend_key]["target"] == 1.0
        assert scaling[backend_key]["passed"] is (scaling[backend_key]["library"] > 1.0)
    else:  # one writer at a time per SQLite file: reported, not judged
        assert scaling[backend_key]["target"] is None
        assert scaling[backend_key]["passed"] is True
    # Scaling is the ratio of the medians printed in the rows.
    by = {(r["workers"], r["wallets"]): r for r in rows.values()}
    assert scaling[backend_key]["library"] == pytest.approx(
        by[(4, "separate")]["library_ops_per_sec"] / by[(1, "separate")]["library_ops_per_sec"]
    )


def test_quick_json_reports_every_sqlite_row_ratio_and_scaling(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    for key, (sync, target) in SQLITE_TARGETS.items():
        _check_rows(report, key, sync, target)
    assert report["passed"] is (
        all(r["passed"] for r in report["rows"]) and all(s["passed"] for s in report["scaling"])
    )


def test_quick_json_includes_postgres_exactly_when_a_dsn_is_set(report: dict[str, Any]) -> None:
    keys = {r["key"] for r in report["rows"]}
    if DSN:
        _check_rows(report, "postgres", "-", 0.50)
        assert "postgres" not in report["skipped"]
    else:
        assert not any(k.startswith("postgres") for k in keys)
        assert report["skipped"] == {"postgres": "no DSN"}
        assert len(keys) == 2 * len(SCENARIOS)


def test_postgres_is_skipped_without_a_dsn(bench: ModuleType) -> None:
    assert bench.postgres_status(None) == "no DSN"
    assert bench.postgres_status("") == "no DSN"


def _row(
    bench: ModuleType, backend: Any, workers: int, shared: bool, lib: list[float], raw: list[float]
) -> Any:
    return bench.Row(backend, bench.Scenario(workers, shared), library=lib, raw=raw)


def test_ratio_is_the_median_of_paired_rounds(bench: ModuleType) -> None:
    # Round by round the library does 0.5, 0.9 and 0.6 of raw: the verdict uses 0.6, although
    # the two medians alone (400 / 500 = 0.8) would pass.
    row = _row(bench, bench.SQLITE_FULL, 1, True, [500.0, 450.0, 300.0], [1000.0, 500.0, 500.0])
    assert row.library_ops == 450.0
    assert row.raw_ops == 500.0
    assert row.ratio == pytest.approx(0.6)
    assert not row.passed
    normal = _row(
        bench, bench.SQLITE_NORMAL, 1, True, [500.0, 450.0, 300.0], [1000.0, 500.0, 500.0]
    )
    assert normal.passed  # 0.6 >= 0.40


def test_scaling_exit_status_and_table(bench: ModuleType) -> None:
    b = bench.POSTGRES
    rows = [
        _row(bench, b, 1, True, [100.0], [100.0]),
        _row(bench, b, 1, False, [100.0], [100.0]),
        _row(bench, b, 4, True, [100.0], [100.0]),
        _row(bench, b, 4, False, [250.0], [300.0]),
    ]
    (scaling,) = bench.scalings(rows)
    assert scaling.library == 2.5
    assert scaling.raw == 3.0
    assert scaling.passed
    assert bench.exit_status(rows, [scaling], quick=False) == 0

    flat = [*rows[:3], _row(bench, b, 4, False, [100.0], [100.0])]
    flat_scaling = bench.scalings(flat)
    assert not flat_scaling[0].passed  # 1.0 does not grow
    assert bench.exit_status(flat, flat_scaling, quick=False) == 1
    assert bench.exit_status(flat, flat_scaling, quick=True) == 0

    slow = [_row(bench, b, 1, True, [49.0], [100.0]), *rows[1:]]
    assert bench.exit_status(slow, [scaling], quick=False) == 1

    table = bench.as_table(bench.FULL, slow, [scaling], {}, 1.0)
    lines = table.splitlines()
    first = next(line for line in lines if line.startswith("postgres  -             1 shared"))
    assert first.endswith("FAIL")
    assert "0.49" in first
    assert next(line for line in lines if line.startswith("scaling postgres")).endswith("PASS")


def test_sqlite_scaling_is_reported_not_judged(bench: ModuleType) -> None:
    b = bench.SQLITE_FULL
    rows = [
        _row(bench, b, 1, True, [100.0], [100.0]),
        _row(bench, b, 1, False, [100.0], [100.0]),
        _row(bench, b, 4, True, [100.0], [100.0]),
        _row(bench, b, 4, False, [90.0], [95.0]),
    ]
    (scaling,) = bench.scalings(rows)
    assert scaling.target is None
    assert scaling.passed
    assert bench.exit_status(rows, [scaling], quick=False) == 0
    table = bench.as_table(bench.FULL, rows, [scaling], {"postgres": "no DSN"}, 1.0)
    lines = table.splitlines()
    assert "postgres: skipped (no DSN)" in lines
    line = next(line for line in lines if line.startswith("scaling sqlite FULL"))
    assert "informational" in line
    assert "0.90" in line


def test_a_tiny_sqlite_run_passes_its_balance_checks_and_a_lost_spend_is_caught(
    bench: ModuleType, tmp_path: Path
) -> None:
    target = bench.sqlite_target(bench.SQLITE_NORMAL, str(tmp_path))
    for kind, account in (
        ("library", target.separate_wallets[0]),
        ("raw", target.separate_accounts[0]),
    ):
        task = bench.Task(kind, getattr(target, kind), account, time.time(), 0.05, 2)
        got, spends, elapsed = bench.run_task(task)
        assert got == account
        assert spends > 2
        assert elapsed >= 0.05
        target.spent[account] = spends
    target.check(target.spent)  # balances and postings match the spends reported

    for account in (target.separate_wallets[0], target.separate_accounts[0]):
        wrong = {**target.spent, account: target.spent[account] - 1}
        with pytest.raises(bench.BenchmarkSetupError):
            target.check(wrong)
