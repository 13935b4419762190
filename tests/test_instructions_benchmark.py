"""Keep ``benchmarks/instructions.py`` from rotting: every scenario's child runs, the report
is computed from the counts as documented, and without valgrind the script says why it skips.

No instruction count is asserted (they depend on the interpreter and the machine's libraries);
one real callgrind run, of the raw posting, checks the count is read from valgrind's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from types import ModuleType

import pytest

from tests.benchmark_scripts import ROOT, load, script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("instructions")


@pytest.mark.parametrize("scenario", ["spend_keyed", "spend", "top_up", "transfer",
                                      "spend_keyed_sqlite", "raw_posting"])
def test_every_scenario_runs_as_a_child(scenario: str) -> None:
    done = subprocess.run([sys.executable, str(script("instructions")), "--child", scenario, "3"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_without_valgrind_it_says_why_and_exits_0(tmp_path: object) -> None:
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no valgrind on this PATH
    done = subprocess.run([sys.executable, str(script("instructions")), "--quick", "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "quick"
    assert "valgrind is not installed" in report["skipped"]


def test_per_operation_is_the_difference_over_the_extra_operations(
        bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {20: 1_000_000, 70: 1_500_000}
    monkeypatch.setattr(bench, "count", lambda scenario, n, library: counts[n])
    assert bench.per_operation(bench.QUICK, "spend_keyed", None) == 10_000.0


def test_report_in_raw_postings_and_against_a_baseline(bench: ModuleType) -> None:
    rows = [bench.Row("spend_keyed", 500_000.0, 1_000_000.0),
            bench.Row("raw_posting", 10_000.0, 10_000.0)]
    report = bench.as_json(bench.FULL, rows, "/old/src")
    keyed = report["scenarios"][0]
    assert keyed["raw_postings"] == 50.0
    assert keyed["speedup"] == 2.0
    table = bench.as_table(bench.FULL, rows, "/old/src")
    line = next(row for row in table.splitlines() if row.startswith("spend_keyed"))
    assert line.split()[1:] == ["500,000", "50.0", "1,000,000", "2.00"]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_real_count_under_callgrind(bench: ModuleType) -> None:
    small = bench.count("raw_posting", 10, None)
    large = bench.count("raw_posting", 1_010, None)
    assert large > small > 0
