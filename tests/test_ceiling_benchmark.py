"""Keep ``benchmarks/ceiling.py`` from rotting: run its quick mode, check the report's numbers.

No timing is asserted (the machine is shared and noisy). The report's derived numbers are
recomputed from the per-round times it prints; the pure pieces (paired medians, the ceiling, the
verdict) are checked on made-up numbers; the SQLite floor is checked to enforce what it claims
(the balance trigger, an append-only journal, exact balance moves); and the post-run check is
shown to catch a lost spend.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.benchmark_scripts import ROOT, load, positive, quick_report

# Under pytest-xdist the module's tests run on one worker, so that it runs the benchmark's quick
# mode once (module fixture).
pytestmark = pytest.mark.xdist_group("ceiling_benchmark")

SCRIPT = ROOT / "benchmarks" / "ceiling.py"
DSN = os.environ.get("PREPAID_WALLET_TEST_DSN")

KINDS = ("raw", "floor", "service", "library")
SQLITE_TARGETS = {"sqlite_full": ("FULL", 0.70), "sqlite_normal": ("NORMAL", 0.40)}




@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load("ceiling")




@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return quick_report("ceiling")


def _check_row(report: dict[str, Any], key: str, sync: str, target: float) -> None:
    (row,) = [r for r in report["rows"] if r["key"] == key]
    assert row["sync"] == sync
    assert row["target"] == target
    rounds = {kind: row[f"rounds_{kind}"] for kind in KINDS}
    for kind, times in rounds.items():
        assert len(times) == report["rounds"], kind
        assert all(positive(t) for t in times), kind
        assert row[f"{kind}_us"] == pytest.approx(statistics.median(times)), kind
    per_round = [
        raw / (floor + service)
        for raw, floor, service in zip(
            rounds["raw"], rounds["floor"], rounds["service"], strict=True
        )
    ]
    assert row["ceiling"] == pytest.approx(statistics.median(per_round))
    assert row["ratio"] == pytest.approx(
        statistics.median(r / lib for r, lib in zip(rounds["raw"], rounds["library"], strict=True))
    )
    assert row["target_within_ceiling"] is (target <= row["ceiling"])


def test_quick_json_reports_every_sqlite_row_and_its_ceiling(report: dict[str, Any]) -> None:
    assert report["mode"] == "quick"
    assert report["rounds"] == 2
    assert report["window_seconds"] == 0.05
    for key, (sync, target) in SQLITE_TARGETS.items():
        _check_row(report, key, sync, target)


def test_quick_json_includes_postgres_exactly_when_a_dsn_is_set(report: dict[str, Any]) -> None:
    keys = [r["key"] for r in report["rows"]]
    if DSN:
        assert keys == ["sqlite_full", "sqlite_normal", "postgres"]
        _check_row(report, "postgres", "-", 0.50)
        assert report["skipped"] == {}
    else:
        assert keys == ["sqlite_full", "sqlite_normal"]
        assert report["skipped"] == {"postgres": "no DSN"}


def test_backend_option_measures_only_that_backend(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--quick", "--json", "--backend", "sqlite_normal"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in parsed["rows"]] == ["sqlite_normal"]
    assert parsed["skipped"] == {"postgres": "not selected"}


def test_ceiling_and_ratio_are_medians_of_paired_rounds(bench: ModuleType) -> None:
    # Per round: ceilings 100/(40+10) = 2.0, 60/(50+10) = 1.0, 90/(80+10) = 1.0 -> median 1.0,
    # although the medians alone would give 90 / (50 + 10) = 1.5.
    row = bench.Row(
        bench.storage.SQLITE_FULL,
        raw=[100.0, 60.0, 90.0],
        floor=[40.0, 50.0, 80.0],
        service=[10.0, 10.0, 10.0],
        library=[400.0, 100.0, 100.0],
    )
    assert row.ceilings == pytest.approx([2.0, 1.0, 1.0])
    assert row.ceiling == pytest.approx(1.0)
    assert row.median("raw") == 90.0
    assert row.ratios == pytest.approx([0.25, 0.6, 0.9])
    assert row.ratio == pytest.approx(0.6)
    assert row.target == 0.70
    assert row.target_within_ceiling


def test_verdict_compares_the_target_with_the_ceiling(bench: ModuleType) -> None:
    assert bench.ceiling(30.0, 60.0, 90.0) == pytest.approx(0.2)
    assert bench.within(0.40, 0.40)
    assert not bench.within(0.40, 0.39)
    low = bench.Row(
        bench.storage.SQLITE_NORMAL,
        raw=[30.0, 30.0],
        floor=[60.0, 50.0],
        service=[90.0, 100.0],
        library=[300.0, 250.0],
    )
    assert low.ceiling == pytest.approx(0.2)
    assert not low.target_within_ceiling  # 0.40 > 0.20
    table = bench.as_table(bench.QUICK, [low], {"postgres": "no DSN"}, 1.0)
    line = next(x for x in table.splitlines() if x.startswith("sqlite    NORMAL"))
    assert line.endswith("target above ceiling")
    assert " 0.20 " in line
    assert "postgres: skipped (no DSN)" in table.splitlines()
    parsed = bench.as_json(bench.QUICK, [low], {}, 1.0)
    assert parsed["rows"][0]["target_within_ceiling"] is False
    assert parsed["rows"][0]["rounds_floor"] == [60.0, 50.0]


# -- the SQLite floor ------------------------------------------------------------------------------


@pytest.fixture
def floor_db(bench: ModuleType, tmp_path: Path) -> Iterator[tuple[str, sqlite3.Connection]]:
    path = str(tmp_path / "floor.db")
    bench.create_floor_sqlite(path, 10_000)
    conn = sqlite3.connect(path, isolation_level=None)
    yield path, conn
    conn.close()


def _post(conn: sqlite3.Connection, seq: int, *minors: int, currency: str = "EUR") -> None:
    conn.executemany(
        "INSERT INTO postings (entry_seq, position, account, minor, currency, balance_after)"
        " VALUES (?, ?, ?, ?, ?, NULL)",
        [(seq, i, f"acct-{i}", minor, currency) for i, minor in enumerate(minors)],
    )


def _entry(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute(
        "INSERT INTO entries (seq, id, kind, recorded_at, hash) VALUES (?, ?, 'spend', 0, ?)",
        (seq, f"e_{seq:032x}", "0" * 64),
    )


def test_floor_rejects_an_entry_with_one_posting_or_unbalanced_postings(
    floor_db: tuple[str, sqlite3.Connection],
) -> None:
    _, conn = floor_db
    with pytest.raises(sqlite3.IntegrityError, match="at least two postings"):
        _entry(conn, 1)  # no postings
    _post(conn, 1, 100)
    with pytest.raises(sqlite3.IntegrityError, match="at least two postings"):
        _entry(conn, 1)
    _post(conn, 2, -100, 99)
    with pytest.raises(sqlite3.IntegrityError, match="unbalanced"):
        _entry(conn, 2)
    conn.executemany(
        "INSERT INTO postings (entry_seq, position, account, minor, currency)"
        " VALUES (?, ?, ?, ?, ?)",
        [(3, 0, "a", -100, "EUR"), (3, 1, "b", 100, "USD")],
    )
    with pytest.raises(sqlite3.IntegrityError, match="unbalanced"):
        _entry(conn, 3)  # sums to zero, but not per currency
    _post(conn, 4, -100, 60, 40)
    _entry(conn, 4)  # balanced: accepted
    assert conn.execute("SELECT count(*) FROM entries").fetchone() == (1,)


def test_floor_journal_is_append_only(floor_db: tuple[str, sqlite3.Connection]) -> None:
    _, conn = floor_db
    _post(conn, 1, -100, 100)
    _entry(conn, 1)
    for statement in (
        "UPDATE postings SET minor = 0",
        "DELETE FROM postings",
        "UPDATE entries SET kind = 'top_up'",
        "DELETE FROM entries",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM postings").fetchone() == (2,)


def test_a_floor_spend_moves_the_balance_by_exactly_the_amount(
    bench: ModuleType, floor_db: tuple[str, sqlite3.Connection]
) -> None:
    path, conn = floor_db
    amount = bench.SPEND.minor_units
    spend = bench.floor_sqlite_spender(path, "NORMAL")
    spend(bench.FLOOR_WALLET)
    balance, version, head = conn.execute(
        "SELECT balance, version, head FROM wallets WHERE id = ?", (bench.FLOOR_WALLET,)
    ).fetchone()
    assert (balance, version) == (10_000 - amount, 1)
    entries = conn.execute("SELECT seq, id, kind, hash FROM entries").fetchall()
    assert len(entries) == 1
    seq, entry_id, kind, digest = entries[0]
    assert kind == "spend"
    assert digest == head
    assert len(digest) == 64
    assert entry_id.startswith("e_")
    assert len(entry_id) == 34
    assert int(entry_id[2:], 16) >= 0
    assert entry_id[2:] == entry_id[2:].lower()
    postings = conn.execute(
        "SELECT entry_seq, position, account, minor, currency, balance_after FROM postings"
        " ORDER BY position"
    ).fetchall()
    assert postings == [
        (seq, 0, bench.FLOOR_WALLET, -amount, "EUR", 10_000 - amount),
        (seq, 1, bench.FLOOR_REVENUE, amount, "EUR", None),
    ]
    spend(bench.FLOOR_WALLET)
    ids = [row[0] for row in conn.execute("SELECT id FROM entries ORDER BY seq")]
    assert ids == sorted(ids)
    assert len(set(ids)) == 2


def test_a_floor_spend_refuses_to_overdraw(bench: ModuleType, tmp_path: Path) -> None:
    path = str(tmp_path / "poor.db")
    amount = bench.SPEND.minor_units
    bench.create_floor_sqlite(path, amount - 1)
    spend = bench.floor_sqlite_spender(path, "FULL")
    with pytest.raises(bench.BenchmarkSetupError, match="cannot pay"):
        spend(bench.FLOOR_WALLET)
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT balance, version FROM wallets").fetchone() == (amount - 1, 0)
        assert db.execute("SELECT count(*) FROM postings").fetchone() == (0,)
    finally:
        db.close()


# -- the post-run check ----------------------------------------------------------------------------

TINY = {"mode": "test", "rounds": 1, "seconds": 0.01, "warm_up": 2}


def _check_catches_a_lost_spend(bench: ModuleType, made: Any) -> None:
    plan = bench.Plan(**TINY)
    (row,) = bench.measure([made], plan)
    assert all(positive(row.median(kind)) for kind in KINDS)
    spent = made.spent()
    assert set(spent) == set(KINDS)
    assert all(n > TINY["warm_up"] for n in spent.values())
    made.check(spent)  # every account shows exactly the spends made
    for kind in KINDS:
        with pytest.raises(bench.BenchmarkSetupError):
            made.check({**spent, kind: spent[kind] - 1})


def test_the_post_run_check_catches_a_lost_spend_sqlite(bench: ModuleType, tmp_path: Path) -> None:
    made = bench.sqlite_bench(bench.storage.SQLITE_NORMAL, str(tmp_path))
    _check_catches_a_lost_spend(bench, made)


@pytest.mark.skipif(not DSN, reason="PREPAID_WALLET_TEST_DSN not set")
def test_the_post_run_check_catches_a_lost_spend_postgres_and_cleans_up(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    import psycopg

    assert DSN is not None
    # The scratch schemas are named after uuid4()s: note every one the bench draws, so that its
    # own schemas are told apart from those other tests on the same server make meanwhile.
    drawn: list[str] = []
    real_uuid4 = uuid.uuid4

    def noted_uuid4() -> uuid.UUID:
        made = real_uuid4()
        drawn.append(made.hex[:12])
        return made

    def its_schemas() -> set[str]:
        with psycopg.connect(DSN, autocommit=True) as db:
            names = [r[0] for r in db.execute("SELECT nspname FROM pg_namespace")]
        return {name for name in names if any(run in name for run in drawn)}

    monkeypatch.setattr(uuid, "uuid4", noted_uuid4)
    made = bench.postgres_bench(DSN)
    try:
        # The floor's schema, and the library's and the raw spend's (benchmarks/storage.py).
        assert len(its_schemas()) == 3
        _check_catches_a_lost_spend(bench, made)
    finally:
        made.cleanup()
    assert its_schemas() == set()


@pytest.mark.skipif(not DSN, reason="PREPAID_WALLET_TEST_DSN not set")
def test_postgres_floor_writes_one_spend_and_checks_the_version(bench: ModuleType) -> None:
    import uuid

    import psycopg

    assert DSN is not None
    schema = f"bench_floor_test_{uuid.uuid4().hex[:12]}"
    amount = bench.SPEND.minor_units
    with psycopg.connect(DSN, autocommit=True) as db:
        try:
            for statement in bench.floor_postgres_sql(schema):
                db.execute(statement)
            spend = bench.floor_postgres_spender(DSN, schema)
            spend(bench.FLOOR_WALLET)
            assert db.execute(f"SELECT balance, version FROM {schema}.wallets").fetchone() == (
                bench.BIG.minor_units - amount,
                1,
            )
            assert db.execute(
                f"SELECT account, minor, balance_after FROM {schema}.postings ORDER BY position"
            ).fetchall() == [
                (bench.FLOOR_WALLET, -amount, bench.BIG.minor_units - amount),
                (bench.FLOOR_REVENUE, amount, None),
            ]
            with pytest.raises(psycopg.errors.RaiseException, match="changed or cannot pay"):
                db.execute(  # version 0 is stale now
                    f"SELECT {schema}.floor_write(%s, %s, %s, 'e_x', 'h', 0)",
                    (bench.FLOOR_WALLET, bench.FLOOR_REVENUE, amount),
                )
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                db.execute(f"DELETE FROM {schema}.postings")
            assert db.execute(f"SELECT count(*) FROM {schema}.entries").fetchone() == (1,)
        finally:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
