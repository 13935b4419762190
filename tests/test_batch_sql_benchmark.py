"""Keep ``benchmarks/batch_sql.py`` from rotting: run its quick mode, check the report's shape.

No timing is asserted (the machine is shared and noisy): every job must be reported with the
rows it booked, its SQL replayed, and the derived numbers recomputed from the measured ones.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.benchmark_scripts import positive, quick_report

pytestmark = pytest.mark.xdist_group("batch_sql_benchmark")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("batch_sql")


def test_quick_report_holds_every_job(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert (report["rows"], report["batch_size"]) == (200, 50)
    assert report["target_rows_per_second"] == 20_000
    assert [job["job"] for job in report["jobs"]] == ["award", "expire", "fee"]


@pytest.mark.parametrize("index", range(3))
def test_quick_numbers_add_up(report: dict[str, Any], index: int) -> None:
    job = report["jobs"][index]
    assert job["rows"] == 200
    assert positive(job["seconds"])
    assert positive(job["sql_us_per_row"])
    assert job["statements"] > 0
    assert math.isclose(job["rows_per_second"], job["rows"] / job["seconds"])
    assert math.isclose(job["us_per_row"], job["seconds"] / job["rows"] * 1e6)
    sql_seconds = job["sql_us_per_row"] * job["rows"] / 1e6
    assert math.isclose(job["sql_ceiling_rows_per_second"], job["rows"] / sql_seconds)
    assert math.isclose(job["rest_us_per_row"],
                        max(job["us_per_row"] - job["sql_us_per_row"], 0.0), abs_tol=1e-6)
    assert 0 < job["sql_share"] <= 1
    assert job["slowest"]
    assert all(positive(s["us_per_row"]) and s["sql"] for s in job["slowest"])
    assert sum(s["us_per_row"] for s in job["slowest"]) <= job["sql_us_per_row"] * 1.000001
