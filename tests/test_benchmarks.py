"""Keep ``benchmarks/core.py`` from rotting: run its quick mode, check the report's shape.

No timing is asserted here (the machine is shared and noisy); the targets are judged by the
script's full mode, run by hand. The pure pieces (verdicts, exit status, table) are checked
in-process on made-up numbers.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import load, positive, run

OPERATIONS = {
    "top_up",
    "spend_lots_small",
    "spend_lots_medium",
    "spend_lots_large",
    "spend_keyed",
    "raw_posting",
    "hold_capture",
    "balance_entries_short",
    "balance_entries_long",
}
RATIOS = {"spend_cost_ratio", "balance_cost_ratio", "keyed_spend_per_raw"}
#: Printed for information (the keyed spend's cost in raw dict postings), never judged.
INFORMATIONAL = {"keyed_spend_per_raw"}






@pytest.fixture(scope="module")
def core() -> ModuleType:
    return load("core")




def test_quick_json_reports_every_operation_and_ratio() -> None:
    done = run("core", "--quick", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert report["mode"] == "quick"
    ops = {op["key"]: op for op in report["operations"]}
    assert set(ops) == OPERATIONS
    assert len(report["operations"]) == len(OPERATIONS)
    for key, op in ops.items():
        assert positive(op["ops_per_sec"]), key
        assert positive(op["median_ops_per_sec"]), key
        assert op["ops_per_sec"] >= op["median_ops_per_sec"], key  # best is never below median
        assert op["batch"] > 0, key

    ratios = {r["key"]: r for r in report["ratios"]}
    assert set(ratios) == RATIOS
    for key, ratio in ratios.items():
        assert positive(ratio["value"]), key
        assert positive(ratio["best_value"]), key
        if key in INFORMATIONAL:
            assert ratio["target"] is None, key
            assert ratio["passed"] is True, key
        else:
            assert ratio["target"] == 2.0, key
            assert ratio["passed"] is (ratio["value"] <= ratio["target"]), key
    assert report["passed"] is all(r["passed"] for r in ratios.values())

    # best_value is the cost (time per op) of the big case's best batch over the small one's.
    spend = ops["spend_lots_large"]["ops_per_sec"], ops["spend_lots_small"]["ops_per_sec"]
    assert ratios["spend_cost_ratio"]["best_value"] == pytest.approx(spend[1] / spend[0])
    reads = ops["balance_entries_long"]["ops_per_sec"], ops["balance_entries_short"]["ops_per_sec"]
    assert ratios["balance_cost_ratio"]["best_value"] == pytest.approx(reads[1] / reads[0])
    keyed = ops["spend_keyed"]["ops_per_sec"], ops["raw_posting"]["ops_per_sec"]
    assert ratios["keyed_spend_per_raw"]["best_value"] == pytest.approx(keyed[1] / keyed[0])
    assert ratios["keyed_spend_per_raw"]["value"] > 1  # the library does more than the floor


def test_quick_table_names_every_row_and_verdict() -> None:
    done = run("core", "--quick")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for label in (
        "top-up",
        "hold + capture",
        "1 live lot",
        "1,000 live lots",
        "spend + key",
        "raw dict posting",
        "100 entries",
        "10,000 entries",
    ):
        assert label in out, label
    ratio_lines = [line for line in out.splitlines() if " / " in line]
    assert len(ratio_lines) == 3
    assert ratio_lines[0].startswith("spend(1,000 lots) / spend(1 lot)")
    assert ratio_lines[1].startswith("balance(10,000 entries) / balance(100 entries)")
    assert ratio_lines[2].startswith("spend + key / raw dict posting")
    for line in ratio_lines[:2]:
        assert line.endswith(("PASS", "FAIL")), line
    assert ratio_lines[2].endswith("info")


def test_target_constant_is_the_documented_one(core: ModuleType) -> None:
    assert core.MAX_COST_RATIO == 2.0


@pytest.mark.parametrize(
    ("values", "quick", "expected"),
    [
        ((1.0, 1.0), False, 0),
        ((2.0, 1.9), False, 0),  # at the target passes
        ((2.01, 1.0), False, 1),
        ((1.0, 7.5), False, 1),
        ((2.01, 7.5), True, 0),  # quick mode never fails the run
    ],
)
def test_exit_status(
    core: ModuleType, values: tuple[float, float], quick: bool, expected: int
) -> None:
    results = [core.Ratio(f"r{i}", f"ratio {i}", v, v) for i, v in enumerate(values)]
    assert core.exit_status(results, quick) == expected


def test_table_shows_fail_for_a_ratio_over_target(core: ModuleType) -> None:
    op = core.Operation(
        "top_up", "top-up", "fresh wallet", 1, lambda n: None, times=[0.001, 0.002, 0.004]
    )
    failing = core.Ratio("spend_cost_ratio", "spend(big) / spend(small)", 3.0, 2.5)
    passing = core.Ratio("balance_cost_ratio", "balance(big) / balance(small)", 1.0, 1.1)
    table = core.as_table(core.FULL, [op], [failing, passing], 1.0, 2.0)
    rows = table.splitlines()
    op_row = next(r for r in rows if r.startswith("top-up"))
    assert "1,000" in op_row  # best: 1 ms/op
    assert "500" in op_row  # median: 2 ms/op
    assert next(r for r in rows if r.startswith("spend(big)")).endswith("FAIL")
    assert next(r for r in rows if r.startswith("balance(big)")).endswith("PASS")


def _fake(core: ModuleType, key: str, times: list[float], group: str = "") -> Any:
    return core.Operation(key, key, "setup", 1, lambda n: None, times=times, group=group)


def test_ratio_verdict_uses_the_median_of_paired_rounds(core: ModuleType) -> None:
    # Round by round the big case costs 2x, 4x and 6x the small one: the paired ratio is 4.0,
    # although the two best times alone (2 / 1) would pass.
    ops = [
        _fake(core, "spend_lots_small", [1.0, 1.0, 1.0]),
        _fake(core, "spend_lots_large", [2.0, 4.0, 6.0]),
        _fake(core, "balance_entries_short", [3.0, 1.0, 2.0]),
        _fake(core, "balance_entries_long", [3.0, 1.0, 2.0]),
    ]
    spend, balance = core.ratios(core.FULL, ops)
    assert spend.key == "spend_cost_ratio"
    assert spend.label == "spend(10,000 lots) / spend(1 lot)"
    assert spend.value == 4.0
    assert spend.best_value == 2.0
    assert not spend.passed
    assert balance.label == "balance(100,000 entries) / balance(100 entries)"
    assert balance.value == 1.0
    assert balance.passed


def test_measure_times_a_group_back_to_back_alternating_order(core: ModuleType) -> None:
    calls: list[str] = []

    def op(key: str, group: str = "") -> Any:
        return core.Operation(key, key, "setup", 1, lambda n: calls.append(key), group=group)

    ops = [op("a"), op("s1", "g"), op("s2", "g"), op("b")]
    assert [[o.key for o in g] for g in core.groups(ops)] == [["a"], ["s1", "s2"], ["b"]]
    core.measure(ops, rounds=3)
    warm_up, timed = calls[:4], calls[4:]
    assert warm_up == ["a", "s1", "s2", "b"]
    round_0 = ["a", "s1", "s2", "b"]
    round_1 = ["s2", "s1", "b", "a"]  # one group further along; the group reversed
    round_2 = ["b", "a", "s1", "s2"]
    assert timed == round_0 + round_1 + round_2
    assert all(len(o.times) == 3 for o in ops)
