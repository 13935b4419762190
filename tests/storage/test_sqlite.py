"""The SQLite store: the storage contract, plus what only the SQLite backend promises."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from prepaid_wallet import (
    ConcurrencyError,
    ConflictError,
    FixedClock,
    IntegrityError,
    InvalidInputError,
    RandomIds,
    StorageError,
    WalletService,
    _codec,
    open_store,
)
from prepaid_wallet import wallet as _w
from prepaid_wallet.app.intents import (
    get_top_up_intent,
    pending_top_up_intent,
    pending_top_up_intents,
    put_top_up_intent,
)
from prepaid_wallet.app.settings import get_setting, put_setting
from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import NotFoundError, SchemaVersionError, StoreNotFoundError
from prepaid_wallet.rules.topup import TopUpIntent, TopUpReason
from prepaid_wallet.storage import sqlite as sqlite_module
from prepaid_wallet.storage._dialect import micros
from prepaid_wallet.storage.base import Event, Store
from prepaid_wallet.storage.sqlite import SCHEMA_VERSION, SQLiteStore, _translated
from tests.storage.contract import (
    DAY,
    HOUR,
    NOTES,
    T0,
    TENANT,
    Note,
    StoreContract,
    Writer,
    add_live_lots,
    add_settings_and_events,
    cents,
    check_latest_instants,
    check_settings_and_intent,
    eur,
    fill_for_version_8,
    lot_indexes,
    new_service,
    records_of,
    run_in_threads,
    run_reference_script,
    version_6_rows,
)

_names = itertools.count()


class TestSQLiteStore(StoreContract):
    """The whole contract against ``open_store("sqlite:///<tmp>/wallets-N.db")``."""

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def make_store(self) -> Store:
        return open_store(f"sqlite:///{self.tmp}/wallets-{next(_names)}.db")


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "wallets.db")


@pytest.fixture
def store(path: str) -> Iterator[SQLiteStore]:
    store = SQLiteStore(path)
    try:
        yield store
    finally:
        store.close()


def _intent(intent_id: str, wallet_id: str, minutes: int = 0) -> TopUpIntent:
    return TopUpIntent(id=intent_id, wallet_id=wallet_id, amount=eur("20.00"),
                       reason=TopUpReason.THRESHOLD,
                       created_at=T0 + minutes * timedelta(minutes=1))


def _raw(path: str) -> sqlite3.Connection:
    """A plain driver connection to the file, outside the library."""
    return sqlite3.connect(path, isolation_level=None)



class TestSQLiteOnly:
    """What holds for the SQLite backend only: durability, settings, the database's own
    defences, schema versions, URLs and two store objects on one file."""

    def test_data_survives_closing_and_reopening(self, path: str) -> None:
        first = SQLiteStore(path)
        expected = run_reference_script(first)
        first.close()
        again = SQLiteStore(path)
        try:
            assert again.export_state() == expected
            svc, _ = new_service(again, T0)
            ann = svc.find_wallet(tenant_id=TENANT, owner_id="ann", currency="EUR")
            assert ann is not None
            assert svc.balance(ann.id).open == ann.open
            report = svc.verify()
            assert report.ok, report.problems
            assert report.entries == len(expected["entries"])
        finally:
            again.close()

    @pytest.mark.parametrize(("level", "code"), [("FULL", 2), ("NORMAL", 1), ("normal", 1)])
    def test_wal_and_synchronous_are_applied(self, path: str, level: str, code: int) -> None:
        store = SQLiteStore(path, synchronous=level, busy_timeout_ms=1234)
        try:
            with store.unit_of_work(read_only=True) as uow:
                conn = uow._check_open()
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                assert conn.execute("PRAGMA synchronous").fetchone()[0] == code
                assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
                assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
        finally:
            store.close()

    @pytest.mark.parametrize(
        "kwargs",
        [{"synchronous": "OFF"}, {"busy_timeout_ms": -1}, {"busy_retries": True}],
    )
    def test_bad_settings_are_refused(self, path: str, kwargs: dict[str, object]) -> None:
        with pytest.raises(InvalidInputError):
            SQLiteStore(path, **kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE entries SET hash = 'forged'",
            "DELETE FROM entries",
            "UPDATE postings SET minor = minor * 2",
            "DELETE FROM postings",
            "DELETE FROM wallet_history",
        ],
    )
    def test_the_journal_is_append_only_in_the_database(
        self, store: SQLiteStore, path: str, sql: str
    ) -> None:
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "10.00")
        before = store.export_state()
        conn = _raw(path)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
        finally:
            conn.close()
        assert store.export_state() == before

    @pytest.mark.parametrize(
        "postings",
        [
            [("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -99)],  # off by a cent
            [("wallet:w1:open", 100)],  # one posting
            [],
        ],
    )
    def test_an_unbalanced_entry_is_refused_by_the_database(
        self, store: SQLiteStore, path: str, postings: list[tuple[str, int]]
    ) -> None:
        Writer(store).open("w1")
        before = store.export_state()
        conn = _raw(path)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO postings (entry_seq, position, account, minor, currency,"
                " recorded_at, balance_after) VALUES (1, ?, ?, ?, 'EUR', 0, NULL)",
                [(i, account, minor) for i, (account, minor) in enumerate(postings)],
            )
            with pytest.raises(sqlite3.IntegrityError, match="postings"):
                conn.execute(
                    "INSERT INTO entries (seq, id, kind, effective_at, recorded_at, wallet_ids,"
                    " prev_hashes, metadata, hash) VALUES (1, 'e-bad', 'top_up', 0, 0,"
                    " '[\"w1\"]', '[\"\"]', '[]', 'x')"
                )
            conn.execute("ROLLBACK")
        finally:
            conn.close()
        assert store.export_state() == before

    def test_a_balanced_raw_entry_passes_the_trigger(self, store: SQLiteStore, path: str) -> None:
        """The trigger is not a blanket refusal: the balanced twin of the case above goes in."""
        conn = _raw(path)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO postings (entry_seq, position, account, minor, currency,"
                " recorded_at, balance_after) VALUES (1, ?, ?, ?, 'EUR', 0, NULL)",
                [(0, "wallet:w1:open", 100), (1, "tenant:hub-a:funding:card", -100)],
            )
            conn.execute(
                "INSERT INTO entries (seq, id, kind, effective_at, recorded_at, wallet_ids,"
                " prev_hashes, metadata, hash) VALUES (1, 'e-ok', 'top_up', 0, 0,"
                " '[\"w1\"]', '[\"\"]', '[]', 'x')"
            )
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def test_a_trigger_refusal_through_the_choke_point_is_an_integrity_error(
        self, store: SQLiteStore
    ) -> None:
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "1.00")
        with store.unit_of_work() as uow:
            conn = uow._check_open()
            with pytest.raises(IntegrityError) as caught, _translated("test"):
                conn.execute("DELETE FROM postings")
            assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
            with pytest.raises(StorageError) as other, _translated("test"):
                conn.execute("SELECT * FROM no_such_table")
            assert isinstance(other.value.__cause__, sqlite3.OperationalError)

    def test_a_newer_schema_refuses_to_open(self, path: str) -> None:
        SQLiteStore(path).close()
        conn = _raw(path)
        try:
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION + 1),),
            )
        finally:
            conn.close()
        with pytest.raises(SchemaVersionError) as caught:
            SQLiteStore(path)
        assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1,
                                                                SCHEMA_VERSION)
        assert str(SCHEMA_VERSION + 1) in str(caught.value)
        assert str(SCHEMA_VERSION) in str(caught.value)
        assert isinstance(caught.value, StorageError)

    def test_a_file_that_is_not_a_database_is_a_storage_error(self, path: str) -> None:
        Path(path).write_bytes(b"this is not a database" * 100)
        with pytest.raises(StorageError) as caught:
            SQLiteStore(path)
        assert isinstance(caught.value.__cause__, sqlite3.Error)

    def test_open_store_accepts_sqlite_urls(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        absolute = open_store(f"sqlite:///{tmp_path}/abs.db")  # tmp_path starts with "/"
        try:
            assert isinstance(absolute, SQLiteStore)
            Writer(absolute).open("w1")
        finally:
            absolute.close()
        assert (tmp_path / "abs.db").exists()
        monkeypatch.chdir(tmp_path)
        relative = open_store("sqlite:///sub.db")
        try:
            assert isinstance(relative, SQLiteStore)
            with relative.unit_of_work() as uow:
                assert list(uow.iter_wallets()) == []
        finally:
            relative.close()
        assert (tmp_path / "sub.db").exists()

    @pytest.mark.parametrize(
        "url",
        ["sqlite:///", "sqlite://", "sqlite:wallets.db", "sqlite:///:memory:",
         "sqlite:///w.db?mode=ro", "postgres://x", "", 42],
    )
    def test_open_store_refuses_a_bad_url(self, url: object) -> None:
        with pytest.raises(InvalidInputError) as caught:
            open_store(url)  # type: ignore[arg-type]
        assert caught.value.field == "url"

    def test_a_closed_store_refuses_export_and_units(self, store: SQLiteStore) -> None:
        store.close()
        with pytest.raises(StorageError):
            store.unit_of_work()
        with pytest.raises(StorageError):
            store.export_state()
        store.close()

    def test_a_nested_unit_in_one_thread_is_refused(self, store: SQLiteStore) -> None:
        Writer(store).open("w1")
        with store.unit_of_work(read_only=True):
            with pytest.raises(StorageError):
                store.unit_of_work().__enter__()
            assert [w["id"] for w in store.export_state()["wallets"]] == ["w1"]
        with store.unit_of_work() as uow:
            assert uow.get_wallet("w1").id == "w1"

    def test_two_store_objects_on_one_file_lose_no_update(self, path: str) -> None:
        """Two services over two ``SQLiteStore`` objects on the same file race on one wallet:
        ``BEGIN IMMEDIATE`` serialises them across connections."""
        stores = [SQLiteStore(path), SQLiteStore(path)]
        try:
            svc, _ = new_service(stores[0])
            wallet_id = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
            rounds = 40

            def worker(n: int) -> Callable[[], int]:
                # Two processes would not share a counter: random ids, as by default.
                service = WalletService(stores[n], clock=FixedClock(T0), ids=RandomIds())

                def run() -> int:
                    total = 0
                    for i in range(rounds):
                        amount = cents(n * 1000 + i + 1)
                        service.top_up(wallet_id, amount, method="card",
                                       idempotency_key=f"t{n}-{i}")
                        total += amount.minor_units
                    return total

                return run

            totals = run_in_threads([worker(0), worker(1)])
            for store in stores:
                check, _ = new_service(store)
                wallet = check.get_wallet(wallet_id)
                assert wallet.open == cents(sum(totals))
                assert wallet.version == 2 * rounds
                report = check.verify()
                assert report.ok, report.problems
                assert report.entries == 2 * rounds
            assert stores[0].export_state() == stores[1].export_state()
        finally:
            for store in stores:
                store.close()

    def test_the_flush_rechecks_versions_in_the_database(self, store: SQLiteStore) -> None:
        """Second line of defence: if the stored version moved under a unit after ``record``
        (here a raw write inside the same transaction), the ``UPDATE ... WHERE version = ?``
        matches nothing and the commit fails with ``ConcurrencyError``, writing nothing."""
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "1.00")
        before = store.export_state()
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_w.top_up(wallet, eur("2.00"), "card", writer.info()))
            uow._check_open().execute("UPDATE wallets SET version = 7 WHERE id = 'w1'")
            with pytest.raises(ConcurrencyError) as caught:
                uow.commit()
            assert (caught.value.wallet_id, caught.value.expected, caught.value.actual) == (
                "w1", 1, 7)
        assert store.export_state() == before

    def test_time_and_live_indexes_are_index_searches(self, store: SQLiteStore) -> None:
        """The statements ``live_lots``, ``due_lots`` and ``due_holds`` actually run are
        answered from their indexes in order (no scan, no sort)."""
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "5.00")
        writer.award("w1", "l1", "1.00", expires_at=T0 + HOUR)
        writer.award("w1", "l2", "1.00")
        writer.hold("w1", "h1", [(None, "1.00")], expires_at=T0 + HOUR)
        writer.open("w2")
        group = writer.put_group(ConditionGroup("cg-1", TENANT, "Spring", SpendCondition(), 1,
                                                valid_until=T0 + 2 * DAY))
        writer.award("w2", "l3", "1.00", group=group)
        with store.unit_of_work(read_only=True) as uow:
            conn = uow._check_open()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                assert [lot.id for lot in uow.live_lots("w1")] == ["l1", "l2"]
                assert [lot.id for lot in uow.due_lots(T0 + DAY, 5)] == ["l1"]
                assert [lot.id for lot in uow.due_lots(T0 + DAY, 5, "w1")] == ["l1"]
                assert [h.id for h in uow.due_holds(T0 + DAY, 5)] == ["h1"]
            finally:
                conn.set_trace_callback(None)
            statements = [sql for sql in seen if sql.startswith("SELECT")]
            assert len(statements) == 4
            expected = ["lots_live", "lots_due", "lots_due_by_wallet", "holds_due"]
            for sql, index in zip(statements, expected, strict=True):
                plan = " | ".join(
                    str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert f"USING INDEX {index} " in plan, plan
                assert "TEMP B-TREE" not in plan, plan
            # what a change to a group's end of validity updates: its live lots
            plan = " | ".join(str(row[-1]) for row in conn.execute(
                "EXPLAIN QUERY PLAN UPDATE lots SET due_at = 0"
                " WHERE group_id = 'cg-1' AND remaining > 0"))
            assert "USING INDEX lots_by_group " in plan, plan

    def test_point_in_time_reads_are_index_searches(self, store: SQLiteStore) -> None:
        """``snapshot_at``, ``wallet_history`` and ``account_balance_at`` read their clustered
        key or index in order: a point-in-time balance never scans the journal."""
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "5.00")
        with store.unit_of_work(read_only=True) as uow:
            conn = uow._check_open()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                assert uow.snapshot_at("w1", T0 + DAY) is not None
                assert len(list(uow.wallet_history("w1"))) == 1
                assert uow.account_balance_at("wallet:w1:open", T0 + DAY) == eur("5.00")
            finally:
                conn.set_trace_callback(None)
            statements = [
                sql for sql in seen if sql.startswith("SELECT") and "entry_seq IN" not in sql
            ]
            assert len(statements) == 3
            for sql in statements:
                plan = " | ".join(
                    str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert "SEARCH" in plan, plan
                assert "SCAN" not in plan, plan
                assert "TEMP B-TREE" not in plan, plan

    def test_event_reads_and_writes_use_their_indexes(self, store: SQLiteStore) -> None:
        """``pending_events`` reads the pending index in order; ``ack_events`` and the commit's
        acknowledgement find the events by id: neither scans the outbox."""
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            for n in range(3):
                uow.add_event(_low_balance(f"ev-{n}", "w1"))
            uow.commit()
        with store.unit_of_work() as uow:
            conn = uow._check_open()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                assert [e.id for e in uow.pending_events(TENANT, 2)] == ["ev-0", "ev-1"]
                assert uow.ack_events(TENANT, ["ev-1", "ev-9"]) == 1
                uow.commit()
            finally:
                conn.set_trace_callback(None)
        statements = [sql for sql in seen if sql.startswith(("SELECT", "UPDATE"))]
        assert len(statements) == 3, statements
        conn = _raw(store.path)
        try:
            for sql, index in zip(statements, ("events_pending", "sqlite_autoindex_events_1",
                                               "sqlite_autoindex_events_1"), strict=True):
                plan = " | ".join(
                    str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert f"USING INDEX {index} " in plan, plan
                assert "TEMP B-TREE" not in plan, plan
        finally:
            conn.close()
        with store.unit_of_work(read_only=True) as uow:
            assert [e.id for e in uow.pending_events(TENANT, 5)] == ["ev-0", "ev-2"]
        assert [row[-1] for row in store.export_state()["events"]] == [False, True, False]

    def test_top_up_intent_reads_use_their_indexes(self, store: SQLiteStore) -> None:
        """The wallet's pending intent is found by the records' partial unique index, the
        intents in flight of every tenant are read in order from the index of the tag (those
        whose credit is due, then the pending ones), an intent by its key: no read scans the
        records."""
        writer = Writer(store)
        writer.open("w1")
        writer.open("w2")
        with store.unit_of_work() as uow:
            put_top_up_intent(uow, TENANT, _intent("tu-2", "w1", minutes=5))
            put_top_up_intent(uow, "hub-b", _intent("tu-1", "w2"))
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            conn = uow._check_open()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                assert pending_top_up_intent(uow, "w1") == _intent("tu-2", "w1", minutes=5)
                assert [(t, i.id) for t, i in pending_top_up_intents(uow, 5)] == [
                    ("hub-b", "tu-1"), (TENANT, "tu-2")]
                assert get_top_up_intent(uow, "tu-1") == _intent("tu-1", "w2")
            finally:
                conn.set_trace_callback(None)
        statements = [sql for sql in seen if sql.startswith("SELECT")]
        assert len(statements) == 4, statements
        conn = _raw(store.path)
        try:
            for sql, index in zip(statements, ("INDEX records_unique", "INDEX records_by_tag",
                                               "INDEX records_by_tag", "PRIMARY KEY"),
                                  strict=True):
                plan = " | ".join(
                    str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert f"USING {index} " in plan + " ", plan
                assert "TEMP B-TREE" not in plan, plan
        finally:
            conn.close()

    def test_record_reads_use_their_indexes(self, store: SQLiteStore) -> None:
        """A record is found by its key, the records of a kind by tenant, wallet or tag from
        the index each leads, in order: no read scans the records or sorts them."""
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-2", wallet_id="w1", status="open", rank="b"))
            uow.put_record(NOTES, Note("n-1", tenant_id="hub-b", status="open", rank="a"))
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            conn = uow._check_open()
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                assert uow.get_record(NOTES, "n-1") is not None
                assert [n.id for n in uow.find_records(NOTES, tenant_id=TENANT)] == ["n-2"]
                assert [n.id for n in uow.find_records(NOTES, wallet_id="w1")] == ["n-2"]
                assert [n.id for n in uow.find_records(NOTES, tag="open", limit=5)] == [
                    "n-1", "n-2"]
            finally:
                conn.set_trace_callback(None)
        statements = [sql for sql in seen if sql.startswith("SELECT")]
        assert len(statements) == 4, statements
        conn = _raw(store.path)
        try:
            for sql, index in zip(statements, ("PRIMARY KEY", "INDEX records_by_tenant",
                                               "INDEX records_by_wallet",
                                               "INDEX records_by_tag"), strict=True):
                plan = " | ".join(
                    str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
                )
                assert f"USING {index} " in plan + " ", plan
                assert "TEMP B-TREE" not in plan, plan
        finally:
            conn.close()

    def test_the_database_allows_one_pending_intent_per_wallet(
        self, store: SQLiteStore
    ) -> None:
        """A second pending intent of a wallet is refused by the database itself (its unique
        value, the wallet); a finished one may sit next to a pending one."""
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            put_top_up_intent(uow, TENANT, _intent("tu-1", "w1"))
            uow.commit()
        conn = _raw(store.path)
        try:
            insert = ("INSERT INTO records (kind, key, tenant_id, wallet_id, tag, uniq, sort, data)"
                      " VALUES ('top_up_intent', ?, ?, 'w1', ?, ?, '', '{}')")
            with pytest.raises(sqlite3.IntegrityError, match=r"records\.kind, records\.uniq"):
                conn.execute(insert, ("tu-2", TENANT, "pending", "w1"))
            conn.execute(insert, ("tu-3", TENANT, "failed", None))
            conn.execute("DELETE FROM records WHERE key = 'tu-3'")
        finally:
            conn.close()
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.record(_w.top_up(uow.get_wallet("w1"), eur("1.00"), "card", writer.info()))
            put_top_up_intent(uow, TENANT, _intent("tu-2", "w1"))
            with pytest.raises(ConflictError, match="unique value"):
                uow.commit()
        assert store.export_state() == before


# -- schema migrations -----------------------------------------------------------------------------


def _schema(path: str) -> list[tuple[str, str, str]]:
    conn = _raw(path)
    try:
        return sorted(conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall())
    finally:
        conn.close()


#: The columns of ``lots`` up to schema version 2 (version 3 adds conditions and ``due_at``).
_LOT_COLS_V1 = (
    "id, wallet_id, currency, amount, remaining, granted_at, expires_at, priority, reason,"
    " entry_id, expired_entry_id"
)


def _copy_lots(conn: sqlite3.Connection) -> None:
    """Copy the attached ``src`` file's lots into a file laid out before version 3 (they must
    carry no conditions: an older schema cannot hold them)."""
    conditioned = conn.execute(
        "SELECT count(*) FROM src.lots WHERE condition IS NOT NULL OR group_id IS NOT NULL"
    ).fetchone()[0]
    assert conditioned == 0
    conn.execute(
        f"INSERT INTO main.lots ({_LOT_COLS_V1}) SELECT {_LOT_COLS_V1} FROM src.lots"
    )


def _copy_table(conn: sqlite3.Connection, table: str) -> None:
    """Copy the attached ``src`` file's rows of ``table``: the columns the (older) layout of
    ``main`` has."""
    cols = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
    conn.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM src.{table}")


def _write_as_version_1(source: str, target: str) -> None:
    """Copy everything ``source`` (the current schema) holds into a new file laid out as schema
    version 1, the way a version-1 library would have stored it."""
    conn = _raw(target)
    try:
        conn.execute("BEGIN")
        for statement in sqlite_module._statements(sqlite_module._SCHEMA_V1):
            conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        for table in ("wallets", "holds", "charges", "idempotency"):
            _copy_table(conn, table)
        _copy_lots(conn)
        conn.execute(
            "INSERT INTO main.postings (entry_seq, entry_id, position, account, minor, currency,"
            " recorded_at, balance_after) SELECT p.entry_seq, e.id, p.position, p.account,"
            " p.minor, p.currency, p.recorded_at, p.balance_after"
            " FROM src.postings p JOIN src.entries e ON e.seq = p.entry_seq"
        )
        _copy_table(conn, "entries")
        conn.execute(
            "INSERT INTO main.wallet_history (wallet_id, entry_seq, entry_id, recorded_at,"
            " currency, open, commerce, held) SELECT wallet_id, entry_seq, entry_id,"
            " recorded_at, currency, open, commerce, held FROM src.wallet_history"
        )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()


class TestOpeningWithoutCreating:
    """``open_store(url, create=False)``: a missing or foreign file is not a store, and is left
    exactly as it was; an existing store opens (and an older one is migrated)."""

    def test_a_missing_file_is_not_created(self, tmp_path: Path) -> None:
        path = tmp_path / "typo.db"
        with pytest.raises(StoreNotFoundError) as info:
            open_store(f"sqlite:///{path}", create=False)
        assert isinstance(info.value, NotFoundError)
        assert str(path) in str(info.value)
        assert "no such file" in str(info.value)
        assert not list(tmp_path.iterdir())

    @pytest.mark.parametrize("content", ["empty", "other-app"])
    def test_a_file_without_the_tables_is_left_alone(self, tmp_path: Path,
                                                      content: str) -> None:
        path = tmp_path / "other.db"
        if content == "empty":
            path.write_bytes(b"")
        else:
            conn = sqlite3.connect(path)
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.commit()
            conn.close()
        before = path.read_bytes()
        with pytest.raises(StoreNotFoundError, match="holds no wallet store"):
            open_store(f"sqlite:///{path}", create=False)
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm

    def test_a_file_that_is_not_a_database_is_a_storage_error(self, tmp_path: Path) -> None:
        path = tmp_path / "README.md"
        path.write_text("# not a database, but long enough to have a header " * 20)
        with pytest.raises(StorageError):
            open_store(f"sqlite:///{path}", create=False)

    def test_a_path_with_uri_characters_opens(self, tmp_path: Path) -> None:
        folder = tmp_path / "hub 50% ?#1"
        folder.mkdir()
        path = str(folder / "w.db")
        SQLiteStore(path).close()
        SQLiteStore(path, create=False).close()
        with pytest.raises(StoreNotFoundError):
            SQLiteStore(str(folder / "w.db%3F"), create=False)

    def test_an_existing_store_opens(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'w.db'}"
        made = open_store(url)
        expected = run_reference_script(made)
        made.close()
        opened = open_store(url, create=False)
        try:
            assert opened.export_state() == expected
        finally:
            opened.close()


class TestSQLiteMigrations:
    """A file written with schema version 1 is migrated on open, in one transaction."""

    @pytest.fixture
    def version_1(self, tmp_path: Path) -> tuple[str, dict[str, object]]:
        """A version-1 file holding the reference script's wallets and journal, and the state
        the library exported before it was laid out as version 1."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            run_reference_script(store)
            state = store.export_state()
        finally:
            store.close()
        target = str(tmp_path / "v1.db")
        _write_as_version_1(source, target)
        return target, state

    def test_a_version_1_file_is_migrated_with_everything_kept(
        self, version_1: tuple[str, dict[str, object]], tmp_path: Path
    ) -> None:
        path, state = version_1
        source = str(tmp_path / "source.db")
        assert _schema(path) != _schema(source)
        instants = [T0 - DAY, T0, T0 + HOUR, T0 + 3 * DAY, T0 + 30 * DAY]

        def balances(store: Store) -> list[object]:
            service, _ = new_service(store, T0 + 30 * DAY)
            return [
                (service.balance(w.id, as_of=at), service.statement(w.id).lines)
                for w in service.wallets() for at in instants
            ]

        reference = SQLiteStore(source)
        try:
            expected = balances(reference)
        finally:
            reference.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            assert balances(store) == expected  # point-in-time reads answer as before
        finally:
            store.close()
        conn = _raw(path)
        try:
            (version,) = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
        assert version == str(SCHEMA_VERSION)
        assert _schema(path) == _schema(str(tmp_path / "source.db"))

    def test_a_failing_migration_leaves_the_file_as_it_was(
        self, version_1: tuple[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _ = version_1
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[2] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 2, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        finally:
            conn.close()


def _write_as_version_2(source: str, target: str) -> None:
    """Copy everything ``source`` (the current schema) holds into a new file laid out as schema
    version 2 (version 1 and the step to 2, as a version-2 library created its files)."""
    conn = _raw(target)
    try:
        conn.execute("BEGIN")
        for script in (sqlite_module._SCHEMA_V1, sqlite_module._MIGRATIONS[2]):
            for statement in sqlite_module._statements(script):
                conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        for table in ("wallets", "holds", "charges", "idempotency", "postings", "entries",
                      "wallet_history"):
            _copy_table(conn, table)
        _copy_lots(conn)
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()


#: The tables of schema version 3 (the copy order keeps foreign keys happy); version 5 adds
#: ``events``. Wallet settings (version 4) and top-up intents (version 6) are records of the
#: source, written back as rows of their old tables.
_TABLES_V3 = ("wallets", "condition_groups", "lots", "holds", "charges", "idempotency",
              "postings", "entries", "wallet_history")


def _write_as_version(source: str, target: str, version: int) -> None:
    """Copy everything ``source`` (the current schema) holds into a new file laid out as schema
    ``version`` (3 to 7: version 1 and the steps up to it, as that library created its
    files). What the older version cannot hold the source must not hold either: events before
    version 5, settings before 4, intents before 6, other records before 7."""
    conn = _raw(target)
    try:
        conn.execute("BEGIN")
        scripts = (sqlite_module._SCHEMA_V1,
                   *(sqlite_module._MIGRATIONS[v] for v in range(2, version + 1)))
        for script in scripts:
            for statement in sqlite_module._statements(script):
                conn.execute(statement)
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        tables = _TABLES_V3 if version < 5 else (*_TABLES_V3, "events")
        if version < 5:
            assert conn.execute("SELECT count(*) FROM src.events").fetchone() == (0,)
        for table in tables:
            _copy_table(conn, table)
        settings, intents = version_6_rows(conn.execute("SELECT * FROM src.records").fetchall())
        assert version >= 4 or not settings
        assert version >= 6 or not intents
        if settings:
            conn.executemany("INSERT INTO main.wallet_settings VALUES (?, ?, ?)", settings)
        if intents:
            conn.executemany(
                "INSERT INTO main.top_up_intents VALUES (?, ?, ?, ?, ?, ?)",
                [(*row[:4], micros(row[4]), row[5]) for row in intents],
            )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    finally:
        conn.close()


class TestSQLiteMigrationTo3:
    """A file written with schema version 2 gains condition groups and the lots' new columns;
    its lots keep their order and fall due when they did."""

    @pytest.fixture
    def version_2(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-2 file holding the reference script's data and more live lots, the
        current-schema file it was copied from, and the state the library exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            run_reference_script(store)
            add_live_lots(store)
            state = store.export_state()
        finally:
            store.close()
        target = str(tmp_path / "v2.db")
        _write_as_version_2(source, target)
        return target, source, state

    def test_a_version_2_file_is_migrated_with_everything_kept(
        self, version_2: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_2
        assert _schema(path) != _schema(source)
        assert state["condition_groups"] == []
        reference = SQLiteStore(source)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        live = [lot for lots in expected[0] for lot in lots]
        assert any(lot.expires_at is None for lot in live)
        assert any(lot.expires_at is not None for lot in live)
        assert expected[1][-1]  # some lots fall due
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
        finally:
            store.close()
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
                    str(SCHEMA_VERSION),)
            # existing lots: unconditioned, due at their own expiry
            assert conn.execute(
                "SELECT count(*) FROM lots WHERE conditioned != 0 OR due_at IS NOT expires_at"
            ).fetchone() == (0,)
        finally:
            conn.close()
        assert _schema(path) == _schema(source)

    def test_a_failing_migration_leaves_the_version_2_file_as_it_was(
        self, version_2: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_2
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[3] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 3, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()




def _add_grouped_lot(store: Store) -> None:
    """A wallet with a lot of a condition group, next to what the reference script left."""
    service = WalletService(store, clock=FixedClock(T0 + 11 * DAY), ids=RandomIds())
    carol = service.open_wallet(owner_id="carol", tenant_id=TENANT, currency="EUR")
    group = service.define_condition_group(
        tenant_id=TENANT, name="Spring", condition=SpendCondition(),
        valid_until=T0 + 20 * DAY, group_id="cg-spring",
    )
    service.award(carol.id, eur("2.00"), reason="spring", group_id=group.id)


class TestSQLiteMigrationTo4:
    """A file written with schema version 3 gains wallet settings; everything it held stays."""

    @pytest.fixture
    def version_3(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-3 file holding the reference script's data, more live lots and a lot of a
        condition group, the current-schema file it was copied from, and the state the library
        exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            run_reference_script(store)
            add_live_lots(store)
            _add_grouped_lot(store)
            state = store.export_state()
        finally:
            store.close()
        target = str(tmp_path / "v3.db")
        _write_as_version(source, target, 3)
        return target, source, state

    def test_a_version_3_file_is_migrated_with_everything_kept(
        self, version_3: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_3
        assert _schema(path) != _schema(source)
        assert records_of(state, "wallet_setting") == []
        assert state["condition_groups"] != []
        reference = SQLiteStore(source)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            # and it takes settings
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            with store.unit_of_work() as uow:
                uow.lock_wallets([carol.id])
                put_setting(uow, carol, "limits", '{"daily":500}')
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert get_setting(uow, carol.id, "limits") == '{"daily":500}'
        finally:
            store.close()
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
                    str(SCHEMA_VERSION),)
        finally:
            conn.close()
        assert _schema(path) == _schema(source)

    def test_a_failing_migration_leaves_the_version_3_file_as_it_was(
        self, version_3: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_3
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[4] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 4, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        assert "wallet_settings" not in {name for _, name, _ in before}
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()




def _low_balance(event_id: str, wallet_id: str) -> Event:
    return Event(event_id, TENANT, wallet_id, "low_balance", T0 + DAY, '{"thresholds":["warn"]}')



def _fill_with_events(store: Store, *, top_ups: bool) -> dict[str, object]:
    """Fill ``store`` with the reference script's data, more live lots, a lot of a condition
    group and :func:`add_settings_and_events`; the state it exports."""
    run_reference_script(store)
    add_live_lots(store)
    _add_grouped_lot(store)
    add_settings_and_events(store, top_ups=top_ups)
    return store.export_state()


class TestSQLiteMigrationTo5:
    """A file written with schema version 4 gains the events outbox; everything it held stays."""

    @pytest.fixture
    def version_4(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-4 file holding the reference script's data, more live lots, a lot of a
        condition group and a wallet setting, the current-schema file it was copied from, and
        the state the library exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            run_reference_script(store)
            add_live_lots(store)
            _add_grouped_lot(store)
            service, _ = new_service(store)
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            with store.unit_of_work() as uow:
                uow.lock_wallets([carol.id])
                put_setting(uow, carol, "limits", '{"daily":500}')
                uow.commit()
            state = store.export_state()
        finally:
            store.close()
        target = str(tmp_path / "v4.db")
        _write_as_version(source, target, 4)
        return target, source, state

    def test_a_version_4_file_is_migrated_with_everything_kept(
        self, version_4: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_4
        assert _schema(path) != _schema(source)
        assert state["events"] == []
        assert records_of(state, "wallet_setting") != []
        assert state["condition_groups"] != []
        reference = SQLiteStore(source)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            # and it takes events
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            with store.unit_of_work() as uow:
                uow.add_event(_low_balance("ev-1", carol.id))
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert uow.pending_events(TENANT, 5) == [_low_balance("ev-1", carol.id)]
            assert store.export_state()["events"] == [
                ["ev-1", TENANT, carol.id, "low_balance", _codec.to_data(T0 + DAY),
                 '{"thresholds":["warn"]}', False]
            ]
        finally:
            store.close()
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
                    str(SCHEMA_VERSION),)
        finally:
            conn.close()
        assert _schema(path) == _schema(source)

    def test_a_failing_migration_leaves_the_version_4_file_as_it_was(
        self, version_4: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_4
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[5] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 5, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        assert "events" not in {name for _, name, _ in before}
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()




class TestSQLiteMigrationTo6:
    """A file written with schema version 5 gains automatic top-up intents; everything it held
    stays."""

    @pytest.fixture
    def version_5(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-5 file holding the reference script's data, more live lots, a lot of a
        condition group, a wallet setting and events (one acknowledged), the current-schema
        file it was copied from, and the state the library exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            state = _fill_with_events(store, top_ups=False)
        finally:
            store.close()
        target = str(tmp_path / "v5.db")
        _write_as_version(source, target, 5)
        return target, source, state

    def test_a_version_5_file_is_migrated_with_everything_kept(
        self, version_5: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_5
        assert _schema(path) != _schema(source)
        assert records_of(state, "top_up_intent") == []
        assert state["events"] != []
        assert records_of(state, "wallet_setting") != []
        assert state["condition_groups"] != []
        reference = SQLiteStore(source)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            with store.unit_of_work(read_only=True) as uow:
                assert [e.id for e in uow.pending_events(TENANT, 5)] == ["ev-2"]
            # and it takes top-up intents
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            intent = _intent("tu-1", carol.id)
            with store.unit_of_work() as uow:
                uow.lock_wallets([carol.id])
                put_top_up_intent(uow, TENANT, intent)
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert pending_top_up_intent(uow, carol.id) == intent
                assert pending_top_up_intents(uow, 5) == [(TENANT, intent)]
            assert records_of(store.export_state(), "top_up_intent")[0][7] == {
                "intent": intent.to_data(), "tenant_id": TENANT}
        finally:
            store.close()
        conn = _raw(path)
        try:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),)
        finally:
            conn.close()
        assert _schema(path) == _schema(source)

    def test_a_failing_migration_leaves_the_version_5_file_as_it_was(
        self, version_5: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_5
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[6] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 6, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        assert "top_up_intents" not in {name for _, name, _ in before}
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestSQLiteMigrationTo7:
    """A file written with schema version 6 gains records; its wallet settings and top-up
    intents become records (the same data) and their tables go; everything else it held
    stays, and it behaves as before."""

    @pytest.fixture
    def version_6(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-6 file holding the reference script's data, more live lots, a lot of a
        condition group, events (one acknowledged), wallet settings and a pending top-up
        intent (:func:`add_settings_and_intent`), the current-schema file it was copied from,
        and the state the library exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            state = _fill_with_events(store, top_ups=True)
        finally:
            store.close()
        target = str(tmp_path / "v6.db")
        _write_as_version(source, target, 6)
        return target, source, state

    def test_a_version_6_file_is_migrated_with_everything_kept(
        self, version_6: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_6
        assert _schema(path) != _schema(source)
        assert state["events"] != []
        assert state["condition_groups"] != []
        assert len(records_of(state, "wallet_setting")) == 2  # limits and top-up rule
        assert len(records_of(state, "top_up_intent")) == 1
        conn = _raw(path)
        try:  # really laid out as version 6, with the settings and the intent in its tables
            assert conn.execute("SELECT count(*) FROM wallet_settings").fetchone() == (2,)
            assert conn.execute("SELECT status FROM top_up_intents").fetchall() == [("pending",)]
        finally:
            conn.close()
        reference = SQLiteStore(source)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            with store.unit_of_work(read_only=True) as uow:
                assert [e.id for e in uow.pending_events(TENANT, 5)] == ["ev-2"]
            check_settings_and_intent(store)  # it behaves as before
            # and it takes records of other kinds
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            with store.unit_of_work() as uow:
                uow.put_record(NOTES, Note("n-1", wallet_id=carol.id, slot="s"))
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert uow.find_records(NOTES, wallet_id=carol.id) == [
                    Note("n-1", wallet_id=carol.id, slot="s")]
        finally:
            store.close()
        conn = _raw(path)
        try:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),)
        finally:
            conn.close()
        assert _schema(path) == _schema(source)
        names = {name for _, name, _ in _schema(path)}
        assert "wallet_settings" not in names
        assert "top_up_intents" not in names

    def test_a_failing_migration_leaves_the_version_6_file_as_it_was(
        self, version_6: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_6
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[7] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 7, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        assert "records" not in {name for _, name, _ in before}
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("6",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestSQLiteMigrationTo8:
    """A file written with schema version 7 gains each wallet's latest recorded instant, taken
    from its balance history (none for a wallet without entries); everything else stays."""

    @pytest.fixture
    def version_7(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        """A version-7 file holding :func:`fill_for_version_8`'s data, the current-schema file
        it was copied from, and the state the library exported."""
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            state = fill_for_version_8(store)
        finally:
            store.close()
        target = str(tmp_path / "v7.db")
        _write_as_version(source, target, 7)
        return target, source, state

    def test_a_version_7_file_is_migrated_with_everything_kept(
        self, version_7: tuple[str, str, dict[str, object]]
    ) -> None:
        path, source, state = version_7
        assert _schema(path) != _schema(source)
        conn = _raw(path)
        try:  # really laid out as version 7: no latest instants
            columns = [row[1] for row in conn.execute("PRAGMA table_info(wallets)")]
            assert "last_at" not in columns
        finally:
            conn.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state  # the instants the library wrote, rebuilt
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            check_latest_instants(store)
        finally:
            store.close()
        assert _schema(path) == _schema(source)
        conn = _raw(path)
        try:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),)
        finally:
            conn.close()

    def test_a_failing_migration_leaves_the_version_7_file_as_it_was(
        self, version_7: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_7
        before = _schema(path)
        broken = sqlite_module._MIGRATIONS[8] + "\nINSERT INTO no_such_table VALUES (1);\n"
        monkeypatch.setitem(sqlite_module._MIGRATIONS, 8, broken)
        with pytest.raises(StorageError, match="no_such_table"):
            SQLiteStore(path)
        assert _schema(path) == before
        conn = _raw(path)
        try:
            assert conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("7",)
        finally:
            conn.close()
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestSQLiteMigrationTo9:
    """A file written with schema version 8 gains a seal on every row that is not the journal,
    each sealed by the migration itself, in its transaction; everything else stays."""

    @pytest.fixture
    def version_8(self, tmp_path: Path) -> tuple[str, str, dict[str, object]]:
        source = str(tmp_path / "source.db")
        store = SQLiteStore(source)
        try:
            state = fill_for_version_8(store)
        finally:
            store.close()
        target = str(tmp_path / "v8.db")
        _write_as_version(source, target, 8)
        return target, source, state

    def test_a_version_8_file_is_sealed_by_its_migration(
        self, version_8: tuple[str, str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage._sealing import TABLES

        path, source, state = version_8
        conn = _raw(path)
        try:  # really laid out as version 8: no seals
            assert "seal" not in [row[1] for row in conn.execute("PRAGMA table_info(wallets)")]
        finally:
            conn.close()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
            report = new_service(store)[0].verify()
            assert report.ok, report.problems
        finally:
            store.close()
        assert _schema(path) == _schema(source)
        conn = _raw(path)
        try:
            for table in TABLES:
                unsealed = conn.execute(
                    f"SELECT count(*) FROM {table.name} WHERE seal NOT LIKE 'sha256:%'"
                    " OR seal IS NULL").fetchone()
                assert unsealed == (0,), table.name
            rows = conn.execute("SELECT count(*) FROM wallets").fetchone()
            assert rows[0] > 0
        finally:
            conn.close()

    def test_a_failing_migration_leaves_the_version_8_file_as_it_was(
        self, version_8: tuple[str, str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path, _, state = version_8
        before = _schema(path)

        def failing(*args: object, **kwargs: object) -> int:
            raise StorageError("sealing failed half-way")

        monkeypatch.setattr(sqlite_module, "seal_all", failing)
        with pytest.raises(StorageError, match="half-way"):
            SQLiteStore(path)
        assert _schema(path) == before
        monkeypatch.undo()
        store = SQLiteStore(path)
        try:
            assert store.export_state() == state
        finally:
            store.close()
