"""Keep ``benchmarks/batch_sql.py`` from rotting: run its quick mode, check the report's shape.

No timing is asserted (the machine is shared and noisy): every job must be reported with the
rows it booked, its SQL replayed (SQLite) or timed as sent (PostgreSQL, with ``--dsn``: needs
``PREPAID_WALLET_TEST_DSN``, see ``tests/pg.py``), and the derived numbers recomputed from the
measured ones.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.benchmark_scripts import load, positive, quick_report, run
from tests.pg import postgres_dsn

pytestmark = pytest.mark.xdist_group("batch_sql_benchmark")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("batch_sql")


def test_quick_report_holds_every_job(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert (report["rows"], report["batch_size"]) == (200, 50)
    assert report["target_rows_per_second"] == 20_000
    assert [job["job"] for job in report["jobs"]] == ["award", "expire", "fee"]


@pytest.fixture(scope="module")
def pg_report() -> dict[str, Any]:
    done = run("batch_sql", "--quick", "--json", "--dsn", postgres_dsn())
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_sqlite_report_names_its_backend(report: dict[str, Any]) -> None:
    assert (report["backend"], report["synchronous"]) == ("sqlite", "NORMAL")
    assert "server_version" not in report


def test_quick_postgres_report_holds_every_job(pg_report: dict[str, Any]) -> None:
    assert pg_report["backend"] == "postgresql"
    assert pg_report["server_version"].split(".")[0].isdigit()
    assert pg_report["mode"] == "quick"
    assert (pg_report["rows"], pg_report["batch_size"]) == (200, 50)
    assert pg_report["target_rows_per_second"] == 20_000
    assert [job["job"] for job in pg_report["jobs"]] == ["award", "expire", "fee"]


@pytest.mark.parametrize("index", range(3))
def test_quick_postgres_numbers_add_up(pg_report: dict[str, Any], index: int) -> None:
    job = pg_report["jobs"][index]
    _numbers_add_up(job)
    assert 0 < job["round_trips"] <= job["statements"]
    # Every unit that books rows commits with the store's one write query.
    assert "SELECT write_unit(...); COMMIT" in [s["sql"] for s in job["slowest"]]


def test_fold_cuts_literals_that_vary_from_unit_to_unit() -> None:
    fold = load("batch_sql").fold
    assert fold(b"SELECT  write_unit('{\"a\": [1]}'::jsonb);\n COMMIT") == (
        "SELECT write_unit(...); COMMIT")
    assert fold("BEGIN; EXECUTE prepaid_wallet_lock(ARRAY['w1','w]2']::text[])") == (
        "BEGIN; EXECUTE prepaid_wallet_lock(ARRAY[...]::text[])")
    assert fold("SELECT id\n   FROM lots WHERE id = ?") == "SELECT id FROM lots WHERE id = ?"


def test_the_table_names_postgresql_and_its_server(pg_report: dict[str, Any]) -> None:
    table = load("batch_sql").as_table(pg_report)
    assert f"PostgreSQL {pg_report['server_version']}, 200 rows per job" in table.splitlines()[0]
    assert "slowest statements (time per row of the job, as sent):" in table
    assert "SELECT write_unit(...); COMMIT" in table


@pytest.mark.parametrize("index", range(3))
def test_quick_numbers_add_up(report: dict[str, Any], index: int) -> None:
    _numbers_add_up(report["jobs"][index])


def _numbers_add_up(job: dict[str, Any]) -> None:
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


def test_the_replay_runs_with_sqlites_checkpoints_unless_told(report: dict[str, Any]) -> None:
    assert report["replay_wal_autocheckpoint"] == 1000
    done = run("batch_sql", "--quick", "--json", "--wal-autocheckpoint", "0")
    assert done.returncode == 0, done.stderr
    without: dict[str, Any] = json.loads(done.stdout)
    assert without["replay_wal_autocheckpoint"] == 0
    assert [job["rows"] for job in without["jobs"]] == [200, 200, 200]
    refused = run("batch_sql", "--quick", "--wal-autocheckpoint", "-1")
    assert refused.returncode == 2
    assert "--wal-autocheckpoint" in refused.stderr
