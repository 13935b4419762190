"""Keep ``benchmarks/peer_cpu.py`` from rotting: its skip message, its budgets, its report.

No timing is asserted (the machine is shared and noisy). The case that measures needs a pgledger
checkout (``PGLEDGER_DIR``, else ``/tmp/pgledger``) and PostgreSQL and skips without the
checkout; the rest runs everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive, run, script
from tests.pg import postgres_dsn
from tests.test_peers_benchmark import _checkout


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("peer_cpu")


def test_without_a_checkout_it_says_what_to_pass_and_exits_0() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PGLEDGER_DIR"}
    done = subprocess.run([sys.executable, str(script("peer_cpu")), "--quick", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "--pgledger PATH" in report["skipped"]
    assert "sides" not in report


def _side(wall: float, client: float, server: float | None) -> dict[str, float | None]:
    return {"wall_ms": wall, "client_cpu_ms": client, "server_cpu_ms": server,
            "cpu_ms": None if server is None else client + server}


def test_the_budgets_halve_pgledgers_transfer(bench: ModuleType) -> None:
    sides = {"library": _side(1.2, 0.4, 0.6), "pgledger": _side(1.0, 0.1, 0.7)}
    found = bench.budgets(sides)
    assert found["one_worker_wall_ms"] == pytest.approx(0.5)
    assert found["cpu_bound_cpu_ms"] == pytest.approx(0.4)
    assert found["library_server_cpu_over_one_worker_budget"] is True
    assert found["library_server_cpu_over_cpu_bound_budget"] is True
    lean = bench.budgets({"library": _side(0.4, 0.1, 0.3), "pgledger": _side(1.0, 0.1, 0.7)})
    assert lean["library_server_cpu_over_one_worker_budget"] is False
    assert lean["library_server_cpu_over_cpu_bound_budget"] is False
    unknown = bench.budgets({"library": _side(1.2, 0.4, None),
                             "pgledger": _side(1.0, 0.1, None)})
    assert unknown["one_worker_wall_ms"] == pytest.approx(0.5)
    assert unknown["cpu_bound_cpu_ms"] is None
    assert unknown["library_server_cpu_over_one_worker_budget"] is None


def test_the_table_says_when_the_servers_cpu_was_not_read(bench: ModuleType) -> None:
    sides = {"library": _side(1.2, 0.4, None), "pgledger": _side(1.0, 0.1, None)}
    report: dict[str, Any] = {
        "mode": "quick", "python": "3.11", "cpus": 2, "load_average": [0.1, 0.2, 0.3],
        "transfers": 100, "rounds": 2, "skipped": None, "sides": sides,
        "budgets": bench.budgets(sides)}
    table = bench.as_table(report)
    assert "server CPU: not measured" in table
    assert "0.500 ms of wall time" in table
    assert table.splitlines()[3].split() == ["library", "1.200", "0.400", "n/a", "n/a"]


def test_the_servers_cpu_is_read_where_the_machine_shows_it(bench: ModuleType) -> None:
    found = bench.server_cpu_seconds()
    if not os.path.isfile("/proc/self/stat"):
        assert found is None
    else:
        assert found is not None
        assert found >= 0


def test_quick_json_with_a_checkout_reports_both_sides() -> None:
    checkout = _checkout()
    if checkout is None:
        pytest.skip("no pgledger checkout (set PGLEDGER_DIR)")
    done = run("peer_cpu", "--quick", "--json", "--pgledger", checkout, "--dsn", postgres_dsn())
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert (report["skipped"], report["transfers"], report["rounds"]) == (None, 100, 2)
    for kind in ("library", "pgledger"):
        side = report["sides"][kind]
        for name in ("wall_ms", "client_cpu_ms"):
            assert positive(side[name]), (kind, name)
        if side["server_cpu_ms"] is not None:  # a server on this machine
            assert side["server_cpu_ms"] >= 0
            assert side["cpu_ms"] == pytest.approx(side["client_cpu_ms"]
                                                   + side["server_cpu_ms"])
    assert report["budgets"]["one_worker_wall_ms"] == pytest.approx(
        report["sides"]["pgledger"]["wall_ms"] / 2)
