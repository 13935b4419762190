"""Keep ``benchmarks/long_jobs.py`` from rotting: run its quick mode, check the report's numbers.

No timing or memory figure is asserted (the machine is shared and noisy, and the quick stores are
small): the report must hold every job at both sizes with the rows the stores imply, positive
times and peak RSS, and ratios and verdicts recomputed from the numbers it prints. The pure
pieces (time per row net of the fixed cost, ratios, exit status) and the output checks are tested
on made-up numbers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import load, positive, quick_report, run

# Under pytest-xdist the module's tests run on one worker, so that it runs the benchmark's quick
# mode once (module fixture).
pytestmark = pytest.mark.xdist_group("long_jobs_benchmark")

N = 2_000
JOBS = ("expire", "verify", "statement")


def _rows(job: str, lots: int) -> int:
    """Rows of a job on a store of ``lots`` lots (after the sweep: awards, breakages, top-ups)."""
    return {"expire": lots, "verify": 2 * lots + lots // 2, "statement": lots // 2}[job]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("long_jobs")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("long_jobs")


def test_quick_json_reports_every_job_at_both_sizes(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert report["size"] == N
    assert report["sizes"] == {"small": N // 10, "large": N}
    assert report["targets"] == {"memory_ratio": 1.25, "time_ratio": 1.5}
    assert set(report["setup_seconds"]) == {"empty", "small", "large"}
    assert all(positive(s) for s in report["setup_seconds"].values())
    assert positive(report["run_seconds"])
    assert [j["job"] for j in report["jobs"]] == list(JOBS)


@pytest.mark.parametrize("index", range(len(JOBS)))
def test_quick_json_numbers_add_up(report: dict[str, Any], index: int) -> None:
    job = report["jobs"][index]
    name = JOBS[index]
    empty = job["empty"]
    assert empty["rows"] == [0, 0, 0]
    assert all(positive(s) for s in empty["seconds"])
    assert job["fixed_seconds"] == min(empty["seconds"])
    # Every child's peak RSS is its own, above the benchmark process's (the floor it inherits).
    assert all(kib > report["own_rss_kib"] for kib in empty["rss_kib"])
    per_row = {}
    for size in ("small", "large"):
        measured = job[size]
        lots = report["sizes"][size]
        assert measured["lots"] == lots
        assert measured["rows"] == _rows(name, lots)
        assert positive(measured["seconds"])
        assert measured["rss_kib"] > report["own_rss_kib"]
        assert measured["rss_mib"] == pytest.approx(measured["rss_kib"] / 1024)
        assert positive(measured["rss_mib"])
        expected = (measured["seconds"] - job["fixed_seconds"]) / measured["rows"] * 1e6
        assert measured["us_per_row"] == pytest.approx(expected)
        per_row[size] = measured["us_per_row"]
    memory = job["large"]["rss_kib"] / job["small"]["rss_kib"]
    assert job["memory_ratio"] == pytest.approx(memory)
    assert job["memory_passed"] is (memory <= 1.25)
    if per_row["small"] > 0:
        assert job["time_ratio"] == pytest.approx(per_row["large"] / per_row["small"])
        assert job["time_passed"] is (job["time_ratio"] <= 1.5)
    else:  # the small run was no slower than the fixed cost: nothing to compare with
        assert job["time_ratio"] is None
        assert job["time_passed"] is False
    assert job["passed"] is (job["memory_passed"] and job["time_passed"])


def test_quick_json_verdict_is_every_jobs(report: dict[str, Any]) -> None:
    assert report["passed"] is all(j["passed"] for j in report["jobs"])


def test_quick_table_prints_every_job_and_both_ratios() -> None:
    done = run("long_jobs", "--quick", "--size", "200")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("prepaid_wallet long jobs -- quick mode, N = 200 lots")
    for name in JOBS:
        rows = [x.split() for x in lines if x.startswith(f"{name} ")]
        assert [r[1] for r in rows if "<=" not in r] == ["empty", "small", "large"]
        (ratios,) = [r for r in rows if "<=" in r]
        assert ratios.count("<=") == 2  # memory and time per row, each with its target


def test_size_must_be_a_multiple_of_100() -> None:
    done = run("long_jobs", "--quick", "--size", "150")
    assert done.returncode == 2
    assert "multiple of 100" in done.stderr


def test_time_per_row_is_net_of_the_fixed_cost(bench: ModuleType) -> None:
    made = bench.Run("expire", "small", 100, 100, 0.7, 40_000)
    assert bench.us_per_row(made, 0.2) == pytest.approx(5_000.0)
    assert bench.ratio(3.0, 2.0) == pytest.approx(1.5)
    assert bench.ratio(3.0, 0.0) is None
    assert bench.passes(1.5, 1.5)
    assert not bench.passes(1.51, 1.5)
    assert not bench.passes(None, 1.5)


def _result(bench: ModuleType, small_rss: int, large_rss: int, large_seconds: float) -> Any:
    empty = tuple(bench.Run("verify", "empty", 0, 0, s, 30_000) for s in (0.3, 0.2, 0.25))
    return bench.Result(
        bench.JOBS[1],
        empty,
        bench.Run("verify", "small", 100, 250, 1.2, small_rss),
        bench.Run("verify", "large", 1000, 2500, large_seconds, large_rss),
    )


def test_verdicts_and_exit_status(bench: ModuleType) -> None:
    flat = _result(bench, 40_000, 48_000, 10.2)  # 4,000 us/row at both sizes
    assert flat.fixed_seconds == 0.2
    assert flat.time_ratio == pytest.approx(1.0)
    assert flat.memory_ratio == pytest.approx(1.2)
    assert flat.passed
    grows = _result(bench, 40_000, 60_000, 10.2)
    assert not grows.memory_passed
    assert grows.time_passed
    slows = _result(bench, 40_000, 40_000, 20.2)  # twice the time per row
    assert slows.time_ratio == pytest.approx(2.0)
    assert not slows.time_passed
    assert bench.exit_status([flat], quick=False) == 0
    assert bench.exit_status([flat, slows], quick=False) == 1
    assert bench.exit_status([grows], quick=True) == 0
    table = bench.as_table(bench.QUICK, [], [flat, slows], 1.0)
    assert any(x.startswith("verify ") and x.endswith("FAIL") for x in table.splitlines())


def test_output_checks_catch_a_wrong_count(bench: ModuleType) -> None:
    store = bench.Store("small", "/nowhere.db", 20, "w_1", 0.1)
    summary = ("expired 20 lot(s), released 0 hold(s) in 20 entry(ies), 0 pending top-up(s)"
               " expired, 0 upgrade(s) expired")
    ok = bench.Output(21, "expired lot ...", summary)
    assert bench._check_expire(store, ok) == 20
    with pytest.raises(bench.BenchmarkError, match="lines"):
        bench._check_expire(store, bench.Output(20, ok.first, ok.last))
    verified = bench.Output(1, "", "checked 50 entries and 3 wallets: ok")
    assert bench._check_verify(store, verified) == 50
    with pytest.raises(bench.BenchmarkError):
        bench._check_verify(store, bench.Output(1, "", "checked 50 entries and 3 wallets: 1"))
    header = "recorded_at,entry_id,kind,description,change,total_after,currency"
    last = "2026-01-01T00:00:00+00:00,e_1,top_up,,0.01,0.10,EUR"
    assert bench._check_statement(store, bench.Output(11, header, last)) == 10
    with pytest.raises(bench.BenchmarkError, match="last total"):
        bench._check_statement(store, bench.Output(11, header, last.replace("0.10", "0.09")))


def test_quick_json_reports_the_batch_jobs_on_sqlite(report: dict[str, Any]) -> None:
    (batches,) = report["batch_jobs"]  # no DSN given: SQLite only
    assert (batches["backend"], batches["rows"], batches["batch_size"]) == ("sqlite", N // 10, 500)
    assert batches["target_rows_per_second"] == 20_000
    assert set(batches["jobs"]) == {"award", "expire", "fee"}
    for measured in batches["jobs"].values():
        assert measured["rows"] == N // 10
        assert positive(measured["seconds"])
        assert measured["rows_per_second"] == pytest.approx(measured["rows"] / measured["seconds"])
        assert measured["passed"] is (measured["rows_per_second"] >= 20_000)


def test_batch_jobs_runs_on_its_own_in_quick_mode() -> None:
    """``.ci/run`` runs every script with ``--quick``: batch_jobs.py books its small run and
    prints its JSON report."""
    import json

    done = run("batch_jobs", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "sqlite"
    assert report["rows"] == 200
    assert set(report["jobs"]) == {"award", "expire", "fee"}
    for job in report["jobs"].values():
        assert job["rows"] == 200
        assert positive(job["rows_per_second"])
