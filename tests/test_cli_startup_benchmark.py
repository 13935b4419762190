"""Keep ``benchmarks/cli_startup.py`` from rotting: run its quick mode, check the report's numbers.

No timing is asserted (the machine is shared and noisy): the report must hold every command with
one positive time per round, and its medians, ratios and verdict must be the ones recomputed from
those times. The pure pieces (round order, ratios, verdict, exit status) and the output checks
are tested on made-up numbers.
"""

from __future__ import annotations

import statistics
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import load, positive, quick_report, run

# Under pytest-xdist the module's tests run on one worker, so that it runs the benchmark's quick
# mode once (module fixture).
pytestmark = pytest.mark.xdist_group("cli_startup_benchmark")

KEYS = ["floor", "import", "version", "balance", "wallet_show", "statement"]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("cli_startup")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("cli_startup")


def test_quick_json_reports_every_command(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert report["rounds"] == 3
    assert report["target_seconds"] == 0.2
    assert report["launcher"] in ("console script", "python -m prepaid_wallet")
    assert positive(report["run_seconds"])
    assert [c["key"] for c in report["commands"]] == KEYS


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_quick_json_numbers_add_up(report: dict[str, Any], index: int) -> None:
    command = report["commands"][index]
    floor = report["commands"][0]
    wall, cpu = command["wall_seconds"], command["cpu_seconds"]
    assert len(wall) == len(cpu) == report["rounds"]
    assert all(positive(s) for s in wall)
    assert all(isinstance(s, float) and s >= 0 for s in cpu)
    assert command["median_wall_seconds"] == pytest.approx(statistics.median(wall))
    assert command["best_wall_seconds"] == min(wall)
    assert command["median_cpu_seconds"] == pytest.approx(statistics.median(cpu))
    paired = statistics.median(a / b for a, b in zip(wall, floor["wall_seconds"], strict=True))
    assert command["floor_ratio"] == pytest.approx(paired)


def test_quick_json_verdict_is_the_balance_reads(report: dict[str, Any]) -> None:
    (balance,) = [c for c in report["commands"] if c["key"] == "balance"]
    assert report["balance_seconds"] == balance["median_wall_seconds"]
    assert report["target_met"] is (report["balance_seconds"] < 0.2)


def test_quick_table_prints_every_command_and_the_verdict() -> None:
    done = run("cli_startup", "--quick")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("prepaid_wallet command-line start-up -- quick mode")
    for label in ("python -c pass", "python -c 'import prepaid_wallet'", "prepaid-wallet --version",
                  "prepaid-wallet balance W", "prepaid-wallet wallet show W",
                  "prepaid-wallet statement W"):
        (row,) = [line for line in lines if line.startswith(f"{label} ")]
        assert len(row[len(label):].split()) == 4  # wall, best, cpu, x floor
    (verdict,) = [line for line in lines if line.startswith("balance read: median")]
    assert verdict.endswith(("target < 0.2 s: met", "target < 0.2 s: NOT MET"))


def test_target_constant_is_the_documented_one(bench: ModuleType) -> None:
    assert bench.TARGET_SECONDS == 0.2


def test_rounds_rotate_and_alternate_direction(bench: ModuleType) -> None:
    assert bench.order(4, 0) == [0, 1, 2, 3]
    assert bench.order(4, 1) == [0, 3, 2, 1]  # rotated by one, reversed
    assert bench.order(4, 2) == [2, 3, 0, 1]
    assert bench.order(4, 3) == [2, 1, 0, 3]
    for index in range(8):
        assert sorted(bench.order(6, index)) == list(range(6))  # every command once a round


def _command(bench: ModuleType, key: str, wall: list[float]) -> Any:
    return bench.Command(key, key, ["true"], lambda out: True, wall=wall, cpu=wall)


def test_floor_ratio_is_the_median_of_the_paired_rounds(bench: ModuleType) -> None:
    floor = _command(bench, "floor", [0.02, 0.04, 0.02])
    # 10x, 10x and 20x the floor round by round: the paired median is 10, while the ratio of
    # the median times (0.4 / 0.02) would say 20 -- the slow second round hit both commands.
    balance = _command(bench, "balance", [0.2, 0.4, 0.4])
    assert bench.floor_ratio(balance, floor) == pytest.approx(10.0)
    assert balance.median_wall == pytest.approx(0.4)
    assert balance.best_wall == pytest.approx(0.2)
    assert bench.floor_ratio(floor, floor) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("seconds", "quick", "met", "status"),
    [
        (0.15, False, True, 0),
        (0.2, False, False, 1),  # "under 0.2 s": at the target is a miss
        (0.35, False, False, 1),
        (0.35, True, False, 0),  # quick mode never fails the run
    ],
)
def test_verdict_and_exit_status(
    bench: ModuleType, seconds: float, quick: bool, met: bool, status: int
) -> None:
    assert bench.target_met(seconds) is met
    assert bench.exit_status(bench.target_met(seconds), quick) == status


def test_table_says_not_met_over_the_target(bench: ModuleType) -> None:
    timed = [_command(bench, key, [0.02 * (i + 1)] * 3) for i, key in enumerate(KEYS)]
    table = bench.as_table(bench.FULL, "console script", timed, 1.0)
    assert "balance read: median 0.080 s, target < 0.2 s: met" in table
    timed[3] = _command(bench, "balance", [0.25, 0.3, 0.21])
    table = bench.as_table(bench.FULL, "console script", timed, 1.0)
    assert "balance read: median 0.250 s, target < 0.2 s: NOT MET" in table
    assert bench.as_json(bench.FULL, "console script", timed, 1.0)["target_met"] is False


def test_output_checks_catch_a_wrong_answer(bench: ModuleType) -> None:
    checks = {c.key: c.check for c in bench.commands(["prepaid-wallet"], "sqlite:///x.db", "w_1")}
    assert checks["floor"]("")
    assert not checks["floor"]("Traceback")
    assert checks["version"]("prepaid-wallet 1.0 (Python 3.11.7)\n")
    assert not checks["version"]("usage: prepaid-wallet [-h] ...\n")
    assert checks["balance"]("wallet     w_1\nas of ...\navailable  €25.00\n")
    assert not checks["balance"]("wallet     w_2\navailable  €25.00\n")
    assert checks["wallet_show"]("wallet    w_1\ntenant ...\ntotal     €25.00\n")
    assert not checks["statement"]("statement of w_1 (EUR)\n")
