"""The PostgreSQL store: the storage contract, plus what only the PostgreSQL backend promises.

Needs a server: ``PREPAID_WALLET_TEST_DSN`` (see ``tests/pg.py`` and ``.ci/postgres.sh``). Every
store lives in a schema of its own, dropped when the test is done.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from prepaid_wallet import (
    ConcurrencyError,
    ConflictError,
    FixedClock,
    IntegrityError,
    InvalidInputError,
    RandomIds,
    SpendRequest,
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
from prepaid_wallet.errors import (
    IdempotencyConflictError,
    NotFoundError,
    RefusedError,
    SchemaVersionError,
    StoreNotFoundError,
    WalletNotFoundError,
)
from prepaid_wallet.rules.topup import TopUpIntent, TopUpReason
from prepaid_wallet.storage.base import Event, Store
from tests.pg import (
    close_and_drop,
    drop_schema,
    fresh_postgres_dsn,
    fresh_schema,
    fresh_store,
    postgres_dsn,
    raw_connection,
    sent_messages,
)
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


class TestPostgresStore(StoreContract):
    """The whole contract against a ``PostgresStore`` in a fresh schema per store."""

    def make_store(self) -> Store:
        return fresh_store()

    def close_store(self, store: Store) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        assert isinstance(store, PostgresStore)
        close_and_drop(store)


def test_open_store_without_the_driver_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No server needed: the driver import fails before any connection is tried."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes ``import psycopg`` raise
    monkeypatch.delitem(sys.modules, "prepaid_wallet.storage.postgres", raising=False)
    with pytest.raises(StorageError, match=r"pip install 'prepaid_wallet\[postgres\]'") as caught:
        open_store("postgresql://localhost/wallets")
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.parametrize(
    "url", ["postgres://x", "postgresql://", "postgresql://host/", "postgresql:///?host=/tmp"]
)
def test_open_store_refuses_a_postgres_url_without_a_database(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_store(url)
    assert caught.value.field == "url"


@pytest.fixture
def dsn() -> str:
    return postgres_dsn()


@pytest.fixture
def schema(dsn: str) -> Iterator[str]:
    name = fresh_schema()
    try:
        yield name
    finally:
        drop_schema(name)


@pytest.fixture
def store(dsn: str, schema: str) -> Iterator[object]:
    from prepaid_wallet.storage.postgres import PostgresStore

    store = PostgresStore(dsn, schema=schema)
    try:
        yield store
    finally:
        store.close()



class TestPostgresOnly:
    """What holds for the PostgreSQL backend only: durability, the database's own defences,
    schema versions, URLs, isolation levels and several pools on one database."""

    def test_data_survives_closing_and_reopening(self, dsn: str, schema: str) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        first = PostgresStore(dsn, schema=schema)
        expected = run_reference_script(first)
        first.close()
        again = PostgresStore(dsn, schema=schema)
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

    def test_without_create_a_schema_without_the_tables_is_not_a_store(
        self, dsn: str, schema: str
    ) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        def exists() -> bool:
            with raw_connection() as conn:
                return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                    (schema,)).fetchone() is not None

        assert not exists()
        with pytest.raises(StoreNotFoundError) as info:
            PostgresStore(dsn, schema=schema, create=False)
        assert isinstance(info.value, NotFoundError)
        assert repr(schema) in str(info.value)
        assert not exists()  # the missing schema was not created
        PostgresStore(dsn, schema=schema).close()  # created now
        opened = PostgresStore(dsn, schema=schema, create=False)
        try:
            assert opened.export_state()["entries"] == []
        finally:
            opened.close()

    def test_open_store_accepts_postgres_urls(self) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        # A URL without a schema: the tables go in the connection's current schema, a fresh one
        # first on its search path (the server's default schema is shared by every test run).
        dsn = fresh_postgres_dsn()
        for url in (dsn, "postgres://" + dsn.split("://", 1)[1]):
            store = open_store(url)
            try:
                assert isinstance(store, PostgresStore)
                assert store.schema is None
                with store.unit_of_work(read_only=True) as uow:
                    list(uow.iter_wallets())
            finally:
                store.close()

    @pytest.mark.parametrize(
        "kwargs",
        [{"schema": "Bad-Name"}, {"schema": "x" * 64}, {"min_size": -1}, {"max_size": 0},
         {"retries": True}, {"timeout": 0}],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, object]) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        with pytest.raises(InvalidInputError):
            PostgresStore("postgresql:///never-used", **kwargs)  # type: ignore[arg-type]

    def test_an_unreachable_server_is_a_storage_error(self, tmp_path: object) -> None:
        import psycopg

        from prepaid_wallet.storage.postgres import PostgresStore

        with pytest.raises(StorageError) as caught:
            PostgresStore(f"postgresql:///wallets?host={tmp_path}&connect_timeout=2")
        assert isinstance(caught.value.__cause__, psycopg.Error)

    def test_isolation_levels(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            conn = uow._transaction()  # type: ignore[attr-defined]
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "read committed"
            assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "off"
            assert conn.execute("SHOW TimeZone").fetchone()[0] == "UTC"
        with store.unit_of_work(read_only=True) as uow:
            conn = uow._transaction()  # type: ignore[attr-defined]
            assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"
            assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"

    def test_a_read_only_unit_sees_one_snapshot(self, store: Store) -> None:
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "1.00")
        with store.unit_of_work(read_only=True) as uow:
            assert uow.get_wallet("w1").open == eur("1.00")
            # committed by another thread (another connection) meanwhile
            run_in_threads([lambda: writer.top_up("w1", "2.00")])
            assert uow.get_wallet("w1").open == eur("1.00")
            assert len(list(uow.iter_entries())) == 1
        assert writer.wallet("w1").open == eur("3.00")

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE entries SET hash = 'forged'",
            "DELETE FROM entries",
            "UPDATE postings SET minor = minor * 2",
            "DELETE FROM postings",
            "DELETE FROM wallet_history",
            "UPDATE wallet_history SET open = 0",
            "TRUNCATE postings",
        ],
    )
    def test_the_journal_is_append_only_in_the_database(
        self, store: Store, schema: str, sql: str
    ) -> None:
        import psycopg

        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "10.00")
        before = store.export_state()
        with raw_connection(schema) as conn, pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(sql)
        assert store.export_state() == before

    @pytest.mark.parametrize(
        "postings",
        [
            [("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -99)],  # off by a cent
            [("wallet:w1:open", 100)],  # one posting
            [],
            # zero in total, not per currency
            [("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -100, "USD")],
            [("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -100),
             ("tenant:hub-a:fx", 5, "USD"), ("tenant:hub-a:fx2", -4, "USD")],
        ],
    )
    def test_an_unbalanced_entry_is_refused_by_the_database_at_commit(
        self, store: Store, schema: str, postings: list[tuple[Any, ...]]
    ) -> None:
        import psycopg

        Writer(store).open("w1")
        before = store.export_state()
        with raw_connection(schema) as conn:
            conn.execute("BEGIN")
            self._raw_entry(conn, "e-bad", postings)  # accepted until commit (deferred)
            with pytest.raises(psycopg.Error, match="postings"):
                conn.execute("COMMIT")
        assert store.export_state() == before

    def test_a_balanced_raw_entry_passes_the_trigger(self, store: Store, schema: str) -> None:
        """The trigger is not a blanket refusal: the balanced twin of the case above commits."""
        Writer(store).open("w1")
        with raw_connection(schema) as conn:
            conn.execute("BEGIN")
            self._raw_entry(
                conn, "e-ok", [("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -100)]
            )
            conn.execute("COMMIT")
        with store.unit_of_work(read_only=True) as uow:
            assert [p.amount for p in uow.get_entry("e-ok").postings] == [cents(100), cents(-100)]

    def test_an_entry_balanced_in_each_of_two_currencies_passes_the_trigger(
        self, store: Store, schema: str
    ) -> None:
        """Several currencies are summed per currency, not refused as such."""
        Writer(store).open("w1")
        with raw_connection(schema) as conn:
            conn.execute("BEGIN")
            self._raw_entry(conn, "e-two", [
                ("wallet:w1:open", 100), ("tenant:hub-a:funding:card", -100),
                ("tenant:hub-a:fx", 5, "USD"), ("tenant:hub-a:fx2", -5, "USD")])
            conn.execute("COMMIT")
        with store.unit_of_work(read_only=True) as uow:
            assert len(uow.get_entry("e-two").postings) == 4

    @staticmethod
    def _raw_entry(conn: object, entry_id: str, postings: list[tuple[Any, ...]]) -> None:
        """An entry and its postings by hand: ``(account, minor)`` in EUR, or ``(account,
        minor, currency)``."""
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO entries (seq, id, kind, effective_at, recorded_at, wallet_ids,"
            " prev_hashes, metadata, hash) VALUES (1000, %s, 'top_up', now(), now(),"
            " '[\"w1\"]', '[\"\"]', '[]', 'x')",
            (entry_id,),
        )
        for i, (account, minor, *currency) in enumerate(postings):
            conn.execute(  # type: ignore[attr-defined]
                "INSERT INTO postings (entry_seq, entry_id, position, account, minor, currency,"
                " recorded_at, balance_after) VALUES (1000, %s, %s, %s, %s, %s, now(), NULL)",
                (entry_id, i, account, minor, currency[0] if currency else "EUR"),
            )

    def test_errors_through_the_choke_point_are_typed(self, store: Store) -> None:
        import psycopg

        from prepaid_wallet.storage._postgres_errors import translated as _translated

        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "1.00")
        cases: list[tuple[str, type[Exception]]] = [
            ("DELETE FROM postings", IntegrityError),
            ("INSERT INTO meta (key, value) VALUES ('schema_version', 'x')", ConflictError),
            ("SELECT * FROM no_such_table", StorageError),
            ("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$", StorageError),
        ]
        for sql, expected in cases:
            with store.unit_of_work() as uow:
                conn = uow._transaction()  # type: ignore[attr-defined]
                with pytest.raises(expected) as caught, _translated("test"):
                    conn.execute(sql)
                assert isinstance(caught.value.__cause__, psycopg.Error)
                if expected is StorageError:
                    assert not isinstance(caught.value, IntegrityError | ConflictError)

    def test_a_newer_schema_refuses_to_open(self, dsn: str, schema: str) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        PostgresStore(dsn, schema=schema).close()
        with raw_connection(schema) as conn:
            conn.execute(
                "UPDATE meta SET value = %s WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION + 1),),
            )
        with pytest.raises(SchemaVersionError) as caught:
            PostgresStore(dsn, schema=schema)
        assert (caught.value.found, caught.value.supported) == (SCHEMA_VERSION + 1,
                                                                SCHEMA_VERSION)
        assert isinstance(caught.value, StorageError)

    def test_two_processes_creating_the_schema_at_once_do_not_race(
        self, dsn: str, schema: str
    ) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        def start() -> PostgresStore:
            return PostgresStore(dsn, schema=schema)

        stores = run_in_threads([start, start, start])
        try:
            Writer(stores[0]).open("w1")
            for store in stores:
                assert [w["id"] for w in store.export_state()["wallets"]] == ["w1"]
        finally:
            for store in stores:
                store.close()

    def test_a_closed_store_refuses_export_and_units(self, store: Store) -> None:
        store.close()
        with pytest.raises(StorageError):
            store.unit_of_work()
        with pytest.raises(StorageError):
            store.export_state()
        store.close()

    def test_a_nested_unit_in_one_thread_is_refused(self, store: Store) -> None:
        Writer(store).open("w1")
        with store.unit_of_work():
            with pytest.raises(StorageError):
                store.unit_of_work().__enter__()
            assert [w["id"] for w in store.export_state()["wallets"]] == ["w1"]
        with store.unit_of_work() as uow:
            assert uow.get_wallet("w1").id == "w1"

    def test_the_flush_rechecks_versions_in_the_database(self, store: Store) -> None:
        """Second line of defence: if the stored version moved under a unit after ``record``,
        the ``UPDATE ... WHERE version = %s`` matches nothing and the commit fails with
        ``ConcurrencyError``, writing nothing."""
        writer = Writer(store)
        writer.open("w1")
        writer.top_up("w1", "1.00")
        before = store.export_state()
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_w.top_up(wallet, eur("2.00"), "card", writer.info()))
            uow._transaction().execute(  # type: ignore[attr-defined]
                "UPDATE wallets SET version = 7 WHERE id = 'w1'"
            )
            with pytest.raises(ConcurrencyError) as caught:
                uow.commit()
            assert (caught.value.wallet_id, caught.value.expected, caught.value.actual) == (
                "w1", 1, 7)
        assert store.export_state() == before

    def test_lock_wallets_blocks_a_second_pool_until_commit(self, dsn: str, schema: str) -> None:
        """``SELECT ... FOR UPDATE``: a unit on another pool waits for the lock, then reads the
        committed version."""
        import threading

        from prepaid_wallet.storage.postgres import PostgresStore

        stores = [PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)]
        try:
            writer = Writer(stores[0])
            writer.open("w1")
            locked, release = threading.Event(), threading.Event()

            def first() -> None:
                with stores[0].unit_of_work() as uow:
                    wallet = uow.lock_wallets(["w1"])["w1"]
                    locked.set()
                    assert release.wait(10)
                    uow.record(_w.top_up(wallet, eur("1.00"), "card", writer.info()))
                    uow.commit()

            def second() -> tuple[bool, int]:
                assert locked.wait(10)
                done = threading.Event()

                def lock() -> int:
                    with stores[1].unit_of_work() as uow:
                        version = uow.lock_wallets(["w1"])["w1"].version
                        done.set()
                        return version

                timer = threading.Timer(0.3, release.set)
                timer.start()
                version = lock()
                timer.join()
                return (done.is_set(), version)

            _, (done, version) = run_in_threads([first, second])
            assert done
            assert version == 1  # it waited for the first unit's commit
        finally:
            for store in stores:
                store.close()

    def test_two_pools_lose_no_update_and_never_overdraw(self, dsn: str, schema: str) -> None:
        """Two services over two ``PostgresStore`` objects (two pools, as on two application
        servers) race on one wallet: top-ups all land, spends never go below the floor."""
        from prepaid_wallet.storage.postgres import PostgresStore

        stores = [PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)]
        try:
            svc, _ = new_service(stores[0])
            wallet_id = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                                        floor=eur("-1.00")).id
            rounds = 25

            def worker(n: int) -> Callable[[], tuple[int, int]]:
                service = WalletService(stores[n], clock=FixedClock(T0), ids=RandomIds())

                def run() -> tuple[int, int]:
                    topped = spent = 0
                    for i in range(rounds):
                        amount = cents(n * 100 + i + 1)
                        service.top_up(wallet_id, amount, method="card",
                                       idempotency_key=f"t{n}-{i}")
                        topped += amount.minor_units
                        try:
                            service.spend(wallet_id, SpendRequest(cents(150)))
                            spent += 150
                        except RefusedError:  # not enough credit left: refused, not overdrawn
                            pass
                    return topped, spent

                return run

            results = run_in_threads([worker(0), worker(1)])
            topped = sum(r[0] for r in results)
            spent = sum(r[1] for r in results)
            for store in stores:
                check, _ = new_service(store)
                wallet = check.get_wallet(wallet_id)
                assert wallet.open == cents(topped - spent)
                assert wallet.open >= eur("-1.00")
                report = check.verify()
                assert report.ok, report.problems
            assert spent > 0
            assert stores[0].export_state() == stores[1].export_state()
        finally:
            for store in stores:
                store.close()

    def test_opposite_transfers_do_not_deadlock(self, dsn: str, schema: str) -> None:
        """Transfers a -> b and b -> a at once on two pools: sorted ``FOR UPDATE`` order means
        neither waits on the other in a cycle, so no deadlock error reaches the caller."""
        from prepaid_wallet.storage.postgres import PostgresStore

        stores = [PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)]
        try:
            svc, _ = new_service(stores[0])
            a = svc.open_wallet(owner_id="a", tenant_id=TENANT, currency="EUR").id
            b = svc.open_wallet(owner_id="b", tenant_id=TENANT, currency="EUR").id
            svc.top_up(a, eur("100.00"), method="card")
            svc.top_up(b, eur("100.00"), method="card")
            rounds = 30

            def worker(n: int, source: str, target: str) -> Callable[[], None]:
                service = WalletService(stores[n], clock=FixedClock(T0), ids=RandomIds())

                def run() -> None:
                    for _ in range(rounds):
                        service.transfer(source, target, eur("1.00"))

                return run

            run_in_threads([worker(0, a, b), worker(1, b, a)])
            check, _ = new_service(stores[1])
            assert check.get_wallet(a).open == eur("100.00")
            assert check.get_wallet(b).open == eur("100.00")
            assert check.get_wallet(a).version == check.get_wallet(b).version == 1 + 2 * rounds
            report = check.verify()
            assert report.ok, report.problems
        finally:
            for store in stores:
                store.close()

    def test_a_lot_written_while_its_group_changes_follows_the_change(self, store: Store) -> None:
        """A unit holding a group's lock changes its end; a unit granting a lot of that group
        meanwhile waits at commit for the change, then falls due at the new end."""
        import threading

        writer = Writer(store)
        writer.open("w1")
        group = writer.put_group(ConditionGroup("cg-1", TENANT, "Spring", SpendCondition(), 1,
                                                valid_until=T0 + 5 * DAY))
        locked, release = threading.Event(), threading.Event()

        def change() -> None:
            with store.unit_of_work() as uow:
                uow.lock_condition_group("cg-1")
                locked.set()
                assert release.wait(10)
                uow.put_condition_group(attrs.evolve(group, valid_until=T0 + 2 * DAY))
                uow.commit()

        def grant() -> None:
            assert locked.wait(10)
            timer = threading.Timer(0.3, release.set)
            timer.start()
            writer.award("w1", "l1", "1.00", group=group)  # built on the old end
            timer.join()

        run_in_threads([change, grant])
        with store.unit_of_work(read_only=True) as uow:
            assert [lot.id for lot in uow.due_lots(T0 + 3 * DAY, 10)] == ["l1"]
            assert uow.get_condition_group("cg-1").valid_until == T0 + 2 * DAY

    def test_live_and_due_reads_use_their_indexes(self, store: Store) -> None:
        """With sequential scans priced out, the live, due-lot and due-hold reads are answered
        from their partial indexes, in order (no Sort node)."""
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
        from prepaid_wallet.storage._schema import LOT_COLS as _LOT_COLS
        from prepaid_wallet.storage.postgres import _LIVE_ORDER

        queries = {
            "lots_live": (f"SELECT {_LOT_COLS} FROM lots WHERE wallet_id = 'w1'"
                          f" AND remaining > 0 ORDER BY wallet_id, {_LIVE_ORDER} LIMIT 256"),
            "lots_due": ("SELECT id FROM lots WHERE remaining > 0 AND due_at IS NOT NULL"
                         " AND due_at <= now() + interval '1000 days'"
                         " ORDER BY due_at, id LIMIT 256"),
            "lots_due_by_wallet": ("SELECT id FROM lots WHERE wallet_id = 'w1'"
                                   " AND remaining > 0 AND due_at IS NOT NULL"
                                   " AND due_at <= now() + interval '1000 days'"
                                   " ORDER BY wallet_id, due_at, id LIMIT 256"),
            "lots_by_group": ("SELECT id FROM lots WHERE group_id = 'cg-1' AND remaining > 0"
                              " ORDER BY group_id, id"),
            "holds_due": ("SELECT id FROM holds WHERE status = 'active'"
                          " AND expires_at <= now() + interval '1000 days'"
                          " ORDER BY expires_at, id LIMIT 256"),
        }
        with store.unit_of_work(read_only=True) as uow:
            assert [lot.id for lot in uow.live_lots("w1")] == ["l1", "l2"]
            assert [lot.id for lot in uow.due_lots(T0 + DAY, 5)] == ["l1"]
            assert [h.id for h in uow.due_holds(T0 + DAY, 5)] == ["h1"]
            conn = uow._transaction()  # type: ignore[attr-defined]
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            for index, sql in queries.items():
                plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))
                assert f"using {index} " in plan.lower(), plan
                assert "Sort" not in plan, plan


# -- round trips -----------------------------------------------------------------------------------


def get_setting_of(store: Store, wallet_id: str, name: str) -> str | None:
    """A wallet's setting, read in a unit of its own."""
    with store.unit_of_work(read_only=True) as uow:
        return get_setting(uow, wallet_id, name)


def _round_trips(store: Store, action: Callable[[], object]) -> list[str]:
    """The messages the client sent to the server while ``action`` ran on a one-connection
    pool: one ``Query`` (simple protocol) or ``Sync`` (extended protocol, a pipeline) per round
    trip, read from libpq's protocol trace."""
    return [f[3] for f in sent_messages(store, action) if f[3] in ("Query", "Sync")]


class TestPostgresRoundTrips:
    """A simple write command is one round trip when the store saw its wallets last (BEGIN,
    every write with the check of what it decided on, COMMIT); an ordinary unit is two: lock
    (with BEGIN), then every write with COMMIT."""

    def test_a_spend_is_one_round_trip(self, dsn: str, schema: str) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema, min_size=1, max_size=1)
        try:
            svc, _ = new_service(store)
            wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
            svc.top_up(wallet.id, eur("10.00"), method="card")
            for _ in range(6):  # past the driver's prepare threshold: the steady state
                svc.spend(wallet.id, SpendRequest(eur("0.10")))
            trips = _round_trips(store, lambda: svc.spend(wallet.id, SpendRequest(eur("1.00"))))
            assert trips == ["Query"], trips
            trips = _round_trips(
                store, lambda: svc.top_up(wallet.id, eur("1.00"), method="card")
            )
            assert trips == ["Query"], trips

            def put_intent() -> None:
                with store.unit_of_work() as uow:
                    uow.lock_wallets([wallet.id])
                    put_top_up_intent(uow, TENANT, _intent("tu-1", wallet.id))
                    uow.commit()

            trips = _round_trips(store, put_intent)
            assert len(trips) == 2, trips
            assert svc.get_wallet(wallet.id).open == eur("9.40")
            report = svc.verify()
            assert report.ok, report.problems
        finally:
            store.close()

    def test_the_tenants_stored_rules_are_read_with_the_lock(self, dsn: str, schema: str
                                                               ) -> None:
        # Fees and low-balance thresholds stored for the tenant (rules that need no other
        # read): a spend and a top-up still take one round trip, the rules the store read with
        # the wallet's last lock checked with the writes.
        from prepaid_wallet.rules.fees import FeeRule
        from prepaid_wallet.rules.operations import Operation
        from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
        from prepaid_wallet.rules.tenant import TenantRules
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema, min_size=1, max_size=1)
        try:
            svc, _ = new_service(store)
            svc.set_tenant_rules(TENANT, TenantRules(
                fees=(FeeRule(name="card", operations={Operation.TOP_UP, Operation.SPEND},
                              fixed=eur("0.01")),),
                low_balance=LowBalanceRule((Threshold(eur("1.00"), "low"),))))
            wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
            svc.top_up(wallet.id, eur("10.00"), method="card")
            for _ in range(6):  # past the driver's prepare threshold: the steady state
                svc.spend(wallet.id, SpendRequest(eur("0.10")))
            spent = _round_trips(store, lambda: svc.spend(wallet.id, SpendRequest(eur("1.00"))))
            topped = _round_trips(store, lambda: svc.top_up(wallet.id, eur("1.00"),
                                                            method="card"))
            assert (len(spent), len(topped)) == (1, 1), (spent, topped)
            assert svc.get_wallet(wallet.id).open == eur("9.31")  # the fees were charged
        finally:
            store.close()


class TestPostgresOptimisticUnits:
    """A command whose wallets (and tenant records) the store saw last decides on them without
    locking first; when another store moved them meanwhile, the database refuses the guess
    (nothing is written) and the command runs again from the lock."""

    @pytest.fixture
    def two(self, dsn: str, schema: str) -> Iterator[tuple[Store, Store]]:
        from prepaid_wallet.storage.postgres import PostgresStore

        first = PostgresStore(dsn, schema=schema, min_size=1, max_size=1)
        second = PostgresStore(dsn, schema=schema, min_size=1, max_size=1)
        try:
            yield first, second
        finally:
            first.close()
            second.close()

    @staticmethod
    def _services(two: tuple[Store, Store]) -> tuple[WalletService, WalletService, str]:
        clock = FixedClock(T0)
        ours = WalletService(two[0], clock=clock, ids=RandomIds())
        theirs = WalletService(two[1], clock=clock, ids=RandomIds())
        wallet = ours.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
        ours.top_up(wallet.id, eur("10.00"), method="card")
        return ours, theirs, wallet.id

    def test_a_moved_wallet_fails_the_guess_and_the_command_runs_again(
            self, two: tuple[Store, Store]) -> None:
        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))  # our store saw it last
        theirs.spend(wallet_id, SpendRequest(eur("2.00")))
        trips = _round_trips(two[0], lambda: ours.spend(wallet_id, SpendRequest(eur("3.00"))))
        # the guess (refused by write_unit), then the lock and the writes
        assert trips == ["Query", "Query", "Query"], trips
        assert ours.get_wallet(wallet_id).open == eur("4.00")
        trips = _round_trips(two[0], lambda: ours.spend(wallet_id, SpendRequest(eur("1.00"))))
        assert trips == ["Query"], trips  # seen again
        assert theirs.get_wallet(wallet_id).open == eur("3.00")
        report = ours.verify()
        assert report.ok, report.problems

    def test_a_refusal_decided_on_a_moved_wallet_is_decided_again(
            self, two: tuple[Store, Store]) -> None:
        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("9.00")))  # 1.00 left, as our store saw it
        theirs.top_up(wallet_id, eur("10.00"), method="card")
        ours.spend(wallet_id, SpendRequest(eur("5.00")))  # not refused: there are 11.00
        assert ours.get_wallet(wallet_id).open == eur("6.00")
        theirs.spend(wallet_id, SpendRequest(eur("5.50")))
        with pytest.raises(RefusedError):  # 0.50 left, whatever our store last saw
            ours.spend(wallet_id, SpendRequest(eur("1.00")))
        assert theirs.get_wallet(wallet_id).open == eur("0.50")

    def test_a_tenant_scoped_service_guesses_too(self, two: tuple[Store, Store]) -> None:
        # A scoped service reads the wallet (is it the tenant's?) before it locks it: the read
        # is answered from what the store saw, and checked with the rest.
        ours, theirs, wallet_id = self._services(two)
        scoped = WalletService(two[0], clock=FixedClock(T0), ids=RandomIds(), tenant_id=TENANT)
        scoped.spend(wallet_id, SpendRequest(eur("1.00")))
        trips = _round_trips(two[0], lambda: scoped.spend(wallet_id, SpendRequest(eur("1.00"))))
        assert trips == ["Query"], trips
        theirs.spend(wallet_id, SpendRequest(eur("1.00")))
        trips = _round_trips(two[0], lambda: scoped.spend(wallet_id, SpendRequest(eur("1.00"))))
        # the refused guess, then a scoped unit as before: read, lock, write
        assert trips == ["Query", "Sync", "Sync", "Query"], trips
        assert ours.get_wallet(wallet_id).open == eur("6.00")

    def test_a_floor_another_store_changed_is_not_decided_on(
            self, two: tuple[Store, Store]) -> None:
        # A floor moves without the wallet's version: the guess compares it too.
        ours, theirs, wallet_id = self._services(two)
        theirs.set_floor(wallet_id, eur("-5.00"), actor="ops", reason=None)
        ours.spend(wallet_id, SpendRequest(eur("12.00")))  # seen at -5.00: -2.00 left
        theirs.set_floor(wallet_id, eur("-2.00"), actor="ops", reason=None)
        with pytest.raises(RefusedError):  # decided again on the floor of -2.00
            ours.spend(wallet_id, SpendRequest(eur("1.00")))
        theirs.set_floor(wallet_id, eur("-4.00"), actor="ops", reason=None)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))  # a write: checked by write_unit
        assert ours.get_wallet(wallet_id).open == eur("-3.00")
        theirs.set_floor(wallet_id, eur("-3.00"), actor="ops", reason=None)
        with pytest.raises(RefusedError):
            ours.spend(wallet_id, SpendRequest(eur("0.50")))

    def test_an_idempotency_key_stays_exactly_once(self, two: tuple[Store, Store]) -> None:
        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))
        first = theirs.spend(wallet_id, SpendRequest(eur("2.00")), idempotency_key="k-1")
        again = ours.spend(wallet_id, SpendRequest(eur("2.00")), idempotency_key="k-1")
        assert again == first
        assert ours.get_wallet(wallet_id).open == eur("7.00")

    def test_a_command_with_a_key_is_one_round_trip_and_replays(
            self, two: tuple[Store, Store]) -> None:
        # The key is taken to be new without a lookup; the commit's insert proves it. A key
        # already stored fails that insert (nothing written) and the command runs again the
        # ordinary way, which replays the stored outcome.
        ours, _, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))  # our store saw it last
        first: list[Any] = []
        trips = _round_trips(two[0], lambda: first.append(
            ours.spend(wallet_id, SpendRequest(eur("8.00")), idempotency_key="order-1")))
        assert trips == ["Query"], trips
        trips = _round_trips(two[0], lambda: first.append(
            ours.spend(wallet_id, SpendRequest(eur("8.00")), idempotency_key="order-1")))
        assert len(trips) > 1, trips  # the insert refused, then the lookup and the replay
        assert first[1] == first[0]
        # Decided again on the state as it is now, the retry would be refused (1.00 left):
        # the stored outcome is replayed instead, and nothing more is spent.
        assert ours.get_wallet(wallet_id).open == eur("1.00")
        with pytest.raises(IdempotencyConflictError):
            ours.spend(wallet_id, SpendRequest(eur("0.50")), idempotency_key="order-1")
        report = ours.verify()
        assert report.ok, report.problems

    def test_a_unit_that_took_a_stored_key_to_be_new_and_fails_is_stale(
            self, two: tuple[Store, Store]) -> None:
        # A unit that ends on an error without writing, under a key it took to be new, checks
        # the key first: stored, the error gives way to StaleStateError (the command is run
        # again and replays the stored outcome instead of the error).
        from prepaid_wallet.errors import InvalidInputError, StaleStateError

        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")), idempotency_key="k-stored")

        def fail_under(key: str) -> None:
            with two[0].optimistic_unit_of_work() as uow:  # type: ignore[attr-defined]
                uow.lock_wallets([wallet_id])
                assert uow.get_idempotency(TENANT, key) is None  # taken to be new
                raise InvalidInputError("amount", "made up for the test", None)

        with pytest.raises(StaleStateError):
            fail_under("k-stored")
        with pytest.raises(InvalidInputError):  # a key that is new: the error stands
            fail_under("k-new")
        assert theirs.get_wallet(wallet_id).open == eur("9.00")

    def test_tenant_rules_set_by_another_store_are_applied(
            self, two: tuple[Store, Store]) -> None:
        from prepaid_wallet.rules.fees import FeeRule
        from prepaid_wallet.rules.operations import Operation
        from prepaid_wallet.rules.tenant import TenantRules

        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))  # seen: no rules at the tenant
        theirs.set_tenant_rules(TENANT, TenantRules(fees=(
            FeeRule(name="card", operations={Operation.SPEND}, fixed=eur("0.10")),)))
        trips = _round_trips(two[0], lambda: ours.spend(wallet_id, SpendRequest(eur("1.00"))))
        assert len(trips) == 3, trips  # the guess failed on the record
        assert ours.get_wallet(wallet_id).open == eur("7.90")  # the fee was charged

    def test_a_unit_that_guessed_writes_nothing_when_the_wallet_moved(
            self, two: tuple[Store, Store]) -> None:
        from prepaid_wallet.errors import StaleStateError

        ours, theirs, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))
        with two[0].optimistic_unit_of_work() as uow:  # type: ignore[attr-defined]
            seen = uow.lock_wallets([wallet_id])[wallet_id]
            assert seen.open == eur("9.00")  # what the store saw, nothing asked of the server
            theirs.spend(wallet_id, SpendRequest(eur("2.00")))  # committed meanwhile
            put_setting(uow, seen, "note", "x")  # a write that reads nothing
            with pytest.raises(StaleStateError) as caught:
                uow.commit()
        assert isinstance(caught.value, ConcurrencyError)
        assert (caught.value.wallet_id, caught.value.expected) == (wallet_id, seen.version)
        assert caught.value.actual == seen.version + 1
        with two[1].unit_of_work(read_only=True) as uow:
            assert get_setting(uow, wallet_id, "note") is None
        # a unit that guessed and then reads: the lock goes first, and finds the move
        ours.spend(wallet_id, SpendRequest(eur("1.00")))  # seen again
        with two[0].optimistic_unit_of_work() as uow:  # type: ignore[attr-defined]
            uow.lock_wallets([wallet_id])  # guessed: nothing locked
            theirs.spend(wallet_id, SpendRequest(eur("1.00")))
            with pytest.raises(StaleStateError):
                get_setting(uow, wallet_id, "note")
            with pytest.raises(StaleStateError):
                uow.commit()

    def test_a_guess_that_holds_at_the_first_read_goes_on_locked(
            self, two: tuple[Store, Store]) -> None:
        ours, _, wallet_id = self._services(two)
        ours.spend(wallet_id, SpendRequest(eur("1.00")))

        def read_then_write() -> None:
            # a unit that reads after it guessed: the lock goes first, then the read, and the
            # guess holds; the writes then go as an ordinary unit's
            with two[0].optimistic_unit_of_work() as uow:  # type: ignore[attr-defined]
                wallet = uow.lock_wallets([wallet_id])[wallet_id]
                assert get_setting(uow, wallet_id, "note") is None
                put_setting(uow, wallet, "note", "x")
                uow.commit()

        trips = _round_trips(two[0], read_then_write)
        assert trips == ["Query", "Sync", "Query"], trips
        assert get_setting_of(two[0], wallet_id, "note") == "x"
        # with a key, the key is taken to be new: still one round trip
        trips = _round_trips(two[0], lambda: ours.spend(
            wallet_id, SpendRequest(eur("1.00")), idempotency_key="k-4"))
        assert trips == ["Query"], trips
        assert ours.get_wallet(wallet_id).open == eur("8.00")

    def test_concurrent_stores_on_the_same_wallets_lose_nothing(
            self, dsn: str, schema: str) -> None:
        from prepaid_wallet.storage.postgres import PostgresStore

        stores = [PostgresStore(dsn, schema=schema, min_size=1, max_size=2) for _ in range(4)]
        try:
            services = [WalletService(store, ids=RandomIds()) for store in stores]
            ids = []
            for owner in ("a", "b", "c"):
                wallet = services[0].open_wallet(owner_id=owner, tenant_id=TENANT,
                                                 currency="EUR")
                services[0].top_up(wallet.id, eur("5.00"), method="card")
                ids.append(wallet.id)

            def work(n: int) -> Callable[[], int]:
                def run() -> int:
                    service, spent = services[n], 0
                    for i in range(40):
                        source, target = ids[(n + i) % 3], ids[(n + i + 1) % 3]
                        with contextlib.suppress(RefusedError):
                            service.transfer(source, target, eur("0.50"))
                        with contextlib.suppress(RefusedError):
                            service.spend(source, SpendRequest(eur("0.10")))
                            spent += 10
                    return spent
                return run

            spent = sum(run_in_threads([work(n) for n in range(4)]))
            total = sum(services[0].get_wallet(w).open.minor_units for w in ids)
            assert total == 1500 - spent
            assert all(services[0].get_wallet(w).open.minor_units >= 0 for w in ids)
            report = services[0].verify()
            assert report.ok, report.problems
        finally:
            for store in stores:
                store.close()


def test_guessing_stops_while_guesses_keep_failing() -> None:
    from prepaid_wallet.storage._postgres_seen import PROBE, Seen

    seen = Seen()
    assert all(seen.worth_trying() for _ in range(10))
    for _ in range(20):
        seen.outcome(False)
    tries = sum(seen.worth_trying() for _ in range(PROBE * 4))
    assert tries == 4  # only probes
    for _ in range(20):
        seen.outcome(True)
    assert all(seen.worth_trying() for _ in range(10))


# -- schema migrations -----------------------------------------------------------------------------

_TABLES = (
    "wallets", "lots", "holds", "charges", "entries", "postings", "wallet_history", "idempotency",
)


def _catalog(schema: str) -> dict[str, list[tuple[object, ...]]]:
    """What defines a schema -- columns, constraints, indexes, functions, triggers, sequences --
    with the schema's own name written as ``S``."""

    def named(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return sorted(
            tuple(v.replace(schema, "S") if isinstance(v, str) else v for v in row)
            for row in rows
        )

    with raw_connection() as conn:
        return {
            "columns": named(conn.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, collation_name,"
                " is_nullable, column_default FROM information_schema.columns"
                " WHERE table_schema = %s", (schema,)).fetchall()),
            "constraints": named(conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),"
                " condeferrable, condeferred FROM pg_constraint"
                " WHERE connamespace = %s::regnamespace",
                (schema,)).fetchall()),
            "indexes": named(conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                (schema,)).fetchall()),
            "functions": named(conn.execute(
                "SELECT proname, pg_get_function_arguments(oid), prorettype::regtype::text,"
                " prosrc, provolatile FROM pg_proc WHERE pronamespace = %s::regnamespace",
                (schema,)).fetchall()),
            "triggers": named(conn.execute(
                "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal",
                (schema,)).fetchall()),
            "sequences": named(conn.execute(
                "SELECT sequencename, data_type::text FROM pg_sequences WHERE schemaname = %s",
                (schema,)).fetchall()),
        }


def _rows(schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of ``schema`` (and ``meta``), in a fixed order."""
    with raw_connection(schema) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} t ORDER BY t::text").fetchall()
            for table in (*_TABLES, "meta")
        }


def _copy_table(conn: Any, source: str, target: str, table: str, how: str = "") -> None:
    """Copy the rows of ``table`` from schema ``source`` into ``target``: the columns
    ``target``'s (older) layout has."""
    cols = ", ".join(row[0] for row in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = %s ORDER BY ordinal_position", (target, table)).fetchall())
    conn.execute(f'INSERT INTO "{target}".{table} ({cols}){how}'
                 f' SELECT {cols} FROM "{source}".{table}')


def _write_as_version(source: str, target: str, version: int) -> None:
    """Lay out everything ``source`` (the current schema) holds in a new schema ``target``
    built by the DDL of ``version`` (1 to 7: version 1 and the steps up to it), the way a
    library of that version would have stored it. Before version 3 the lots must carry no
    conditions, no version before 4 holds wallet settings, none before 5 holds events, none
    before 6 holds top-up intents and none before 7 holds records: an older schema cannot hold
    them."""
    from prepaid_wallet.storage.postgres import _MIGRATIONS, _SCHEMA

    quoted = f'"{target}"'
    with raw_connection() as conn:
        conn.execute("BEGIN")
        conn.execute(f"CREATE SCHEMA {quoted}")
        conn.execute(_SCHEMA.format(s=quoted))
        for step in range(2, version + 1):
            conn.execute(_MIGRATIONS[step].format(s=quoted))
        conn.execute(
            f"INSERT INTO {quoted}.meta (key, value) VALUES ('schema_version', %s)",
            (str(version),),
        )
        settings, intents = ([], []) if version >= 7 else version_6_rows(
            conn.execute(f'SELECT * FROM "{source}".records').fetchall())
        assert version >= 4 or not settings
        assert version >= 6 or not intents
        if version < 5:
            row = conn.execute(f'SELECT count(*) FROM "{source}".events').fetchone()
            assert row == (0,)
        if version >= 3:
            _copy_table(conn, source, target, "condition_groups")
        else:
            row = conn.execute(
                f'SELECT count(*) FROM "{source}".lots'
                " WHERE condition IS NOT NULL OR group_id IS NOT NULL"
            ).fetchone()
            assert row == (0,)
        for table in _TABLES:
            _copy_table(conn, source, target, table)
        if settings:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {quoted}.wallet_settings VALUES (%s, %s, %s)", settings)
        if version >= 5:
            _copy_table(conn, source, target, "events", " OVERRIDING SYSTEM VALUE")
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{quoted}.events', 'seq'),"
                f" (SELECT max(seq) FROM {quoted}.events))"
            )
        if version >= 7:
            _copy_table(conn, source, target, "records")
        if intents:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {quoted}.top_up_intents VALUES (%s, %s, %s, %s, %s, %s)",
                    intents)
        conn.execute(
            f"SELECT setval('{quoted}.entry_seq', (SELECT max(seq) FROM {quoted}.entries))"
        )
        conn.execute("COMMIT")


def _write_as_version_1(source: str, target: str) -> None:
    """Lay out everything ``source`` holds as schema version 1."""
    _write_as_version(source, target, 1)


class TestPostgresMigrations:
    """A schema written with version 1 is migrated on open, in one transaction."""

    @pytest.fixture
    def version_1(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-1 schema holding the reference script's wallets and journal, and the
        state the library exported before it was laid out as version 1. ``schema`` (the
        source) stays as the library created it, for comparison."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            state = run_reference_script(store)
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version_1(schema, target)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_1_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_1: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_1
        assert SCHEMA_VERSION == 10
        assert _catalog(target) != _catalog(schema)  # really laid out as version 1
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            # the same catalog as a schema created new by this library
            assert _catalog(target) == _catalog(schema)
            assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]
            # and it takes writes: the journal goes on where version 1 left it
            service = WalletService(store, clock=FixedClock(T0 + 30 * DAY), ids=RandomIds())
            ann = service.find_wallet(tenant_id=TENANT, owner_id="ann", currency="EUR")
            assert ann is not None
            service.top_up(ann.id, eur("1.00"), method="card")
            service.spend(ann.id, SpendRequest(eur("0.50")))
            report = service.verify()
            assert report.ok, report.problems
            assert report.entries == len(state["entries"]) + 2  # type: ignore[arg-type]
        finally:
            store.close()
        again = PostgresStore(dsn, schema=target)  # opening a current schema changes nothing
        again.close()
        assert _catalog(target) == _catalog(schema)

    def test_a_failing_migration_leaves_version_1_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_1: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_1
        catalog, rows = _catalog(target), _rows(target)
        # The real step, then a failure: what the step did must not stay.
        monkeypatch.setitem(
            module._MIGRATIONS, 2, module._MIGRATIONS[2] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "1")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()



class TestPostgresMigrationTo3:
    """A schema written with version 2 gains condition groups and the lots' new columns; its
    lots keep their order and fall due when they did."""

    @pytest.fixture
    def version_2(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-2 schema holding the reference script's data and more live lots, and the
        state the library exported. ``schema`` (the source) stays as the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            run_reference_script(store)
            add_live_lots(store)
            state = store.export_state()
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 2)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_2_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_2: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_2
        assert state["condition_groups"] == []
        assert _catalog(target) != _catalog(schema)  # really laid out as version 2
        reference = PostgresStore(dsn, schema=schema)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        live = [lot for lots in expected[0] for lot in lots]
        assert any(lot.expires_at is None for lot in live)
        assert any(lot.expires_at is not None for lot in live)
        assert expected[1][-1]  # some lots fall due
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
        finally:
            store.close()
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]
        with raw_connection(target) as conn:
            row = conn.execute(
                "SELECT count(*) FROM lots WHERE conditioned OR due_at IS DISTINCT FROM expires_at"
            ).fetchone()
        assert row == (0,)

    def test_a_failing_migration_leaves_version_2_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_2: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_2
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 3, module._MIGRATIONS[3] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "2")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
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


class TestPostgresMigrationTo4:
    """A schema written with version 3 gains wallet settings (and the ``write_unit`` that
    writes them); everything it held stays."""

    @pytest.fixture
    def version_3(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-3 schema holding the reference script's data, more live lots and a lot of
        a condition group, and the state the library exported. ``schema`` (the source) stays as
        the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            run_reference_script(store)
            add_live_lots(store)
            _add_grouped_lot(store)
            state = store.export_state()
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 3)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_3_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_3: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_3
        assert records_of(state, "wallet_setting") == []
        assert state["condition_groups"] != []
        assert _catalog(target) != _catalog(schema)  # really laid out as version 3
        reference = PostgresStore(dsn, schema=schema)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            # and it takes settings, written by the new write_unit
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
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]

    def test_a_failing_migration_leaves_version_3_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_3: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_3
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 4, module._MIGRATIONS[4] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert not any(row[0] == "wallet_settings" for row in catalog["columns"])
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "3")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestPostgresSettings:
    """Settings (records) go with the unit's one ``write_unit`` call; an unknown wallet is
    refused by the database and reported as ``WalletNotFoundError``, with nothing written."""

    def test_a_setting_of_an_unknown_wallet_is_refused_in_the_database(
        self, store: Store
    ) -> None:
        writer = Writer(store)
        w1 = writer.open("w1")
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.record(_w.top_up(uow.get_wallet("w1"), eur("1.00"), "card", writer.info()))
            put_setting(uow, w1, "limits", "x")
            put_setting(uow, Writer.new_wallet("w-missing"), "limits", "y")
            with pytest.raises(WalletNotFoundError) as caught:
                uow.commit()
        assert caught.value.id == "w-missing"
        assert store.export_state() == before


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


class TestPostgresMigrationTo5:
    """A schema written with version 4 gains the events outbox (and the ``write_unit`` that
    writes it); everything it held stays."""

    @pytest.fixture
    def version_4(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-4 schema holding the reference script's data, more live lots, a lot of a
        condition group and a wallet setting, and the state the library exported. ``schema``
        (the source) stays as the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
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
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 4)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_4_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_4: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_4
        assert state["events"] == []
        assert records_of(state, "wallet_setting") != []
        assert state["condition_groups"] != []
        assert _catalog(target) != _catalog(schema)  # really laid out as version 4
        reference = PostgresStore(dsn, schema=schema)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            # and it takes events, written by the new write_unit
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
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]

    def test_a_failing_migration_leaves_version_4_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_4: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_4
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 5, module._MIGRATIONS[5] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert not any(row[0] == "events" for row in catalog["columns"])
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "4")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestPostgresEvents:
    """Events go with the unit's one ``write_unit`` call; an id already stored is refused by
    the database and reported as ``ConflictError``, with nothing written; the pending read and
    the acknowledgement use their indexes."""

    def test_an_event_id_already_stored_is_a_conflict_and_nothing_is_written(
        self, store: Store
    ) -> None:
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            uow.add_event(_low_balance("ev-1", "w1"))
            uow.commit()
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.record(_w.top_up(uow.get_wallet("w1"), eur("1.00"), "card", writer.info()))
            uow.add_event(_low_balance("ev-2", "w1"))
            uow.add_event(_low_balance("ev-1", "w1"))
            with pytest.raises(ConflictError, match="event id"):
                uow.commit()
        assert store.export_state() == before

    def test_event_reads_use_their_indexes(self, store: Store) -> None:
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            for n in range(3):
                uow.add_event(_low_balance(f"ev-{n}", "w1"))
            uow.commit()
        from prepaid_wallet.storage._schema import EVENT_COLS as _EVENT_COLS

        queries = {
            "events_pending": (f"SELECT {_EVENT_COLS} FROM events WHERE tenant_id = 'hub-a'"
                               " AND acked_at IS NULL ORDER BY tenant_id, seq LIMIT 10"),
            "events_id_key": ("SELECT id, tenant_id, acked_at IS NULL FROM events"
                              " WHERE id IN ('ev-1', 'ev-9')"),
        }
        with store.unit_of_work() as uow:
            assert [e.id for e in uow.pending_events(TENANT, 2)] == ["ev-0", "ev-1"]
            assert uow.ack_events(TENANT, ["ev-1", "ev-9"]) == 1
            conn = uow._transaction()  # type: ignore[attr-defined]
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            for index, sql in queries.items():
                plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))
                assert f"using {index} " in plan.lower(), plan
                assert "Sort" not in plan, plan
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert [e.id for e in uow.pending_events(TENANT, 5)] == ["ev-0", "ev-2"]
        assert [row[-1] for row in store.export_state()["events"]] == [False, True, False]


def _intent(intent_id: str, wallet_id: str, minutes: int = 0) -> TopUpIntent:
    return TopUpIntent(id=intent_id, wallet_id=wallet_id, amount=eur("20.00"),
                       reason=TopUpReason.THRESHOLD,
                       created_at=T0 + minutes * timedelta(minutes=1))


class TestPostgresTopUpIntents:
    """Intents (records) go with the unit's one ``write_unit`` call; a second pending intent of
    a wallet is refused by the database (the records' partial unique index) and an intent of an
    unknown wallet by ``write_unit``, each with nothing written; the reads use the records'
    indexes."""

    def test_a_second_pending_intent_is_refused_by_the_database(self, store: Store) -> None:
        writer = Writer(store)
        writer.open("w1")
        with store.unit_of_work() as uow:
            put_top_up_intent(uow, TENANT, _intent("tu-1", "w1"))
            uow.commit()
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.record(_w.top_up(uow.get_wallet("w1"), eur("1.00"), "card", writer.info()))
            put_top_up_intent(uow, TENANT, _intent("tu-2", "w1"))
            with pytest.raises(ConflictError, match="unique value") as caught:
                uow.commit()
        cause = caught.value.__cause__
        assert getattr(getattr(cause, "diag", None), "constraint_name", None) == (
            "records_unique")
        assert store.export_state() == before

    def test_an_intent_of_an_unknown_wallet_is_refused_in_the_database(
        self, store: Store
    ) -> None:
        writer = Writer(store)
        writer.open("w1")
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.record(_w.top_up(uow.get_wallet("w1"), eur("1.00"), "card", writer.info()))
            put_top_up_intent(uow, TENANT, _intent("tu-1", "w1"))
            put_top_up_intent(uow, TENANT, _intent("tu-2", "w-missing"))
            with pytest.raises(WalletNotFoundError) as caught:
                uow.commit()
        assert caught.value.id == "w-missing"
        assert store.export_state() == before

    def test_record_reads_use_their_indexes(self, store: Store) -> None:
        """A wallet's pending intent is its unique value's holder, the pending intents are read
        in order from the index of the tag, an intent by its key; and records of any kind by
        tenant or wallet from theirs, in order."""
        from prepaid_wallet.storage.postgres import PostgresStore

        writer = Writer(store)
        writer.open("w1")
        writer.open("w2")
        with store.unit_of_work() as uow:
            put_top_up_intent(uow, TENANT, _intent("tu-2", "w1", minutes=5))
            put_top_up_intent(uow, "hub-b", _intent("tu-1", "w2"))
            uow.commit()
        assert isinstance(store, PostgresStore)
        with raw_connection(store.schema) as conn:  # finished intents aplenty, then statistics
            conn.execute(
                "INSERT INTO records SELECT 'top_up_intent', 'tu-old-' || g, 'hub-z', NULL,"
                " 'failed', NULL, lpad(g::text, 6, '0'), '{}' FROM generate_series(1, 500) g")
            conn.execute("ANALYZE records")
        select = "SELECT sort, key, data FROM records WHERE kind = "
        queries = {
            "records_unique": f"{select}'top_up_intent' AND uniq = 'w1'",
            "records_by_tag": (f"{select}'top_up_intent' AND tag = 'pending'"
                               " ORDER BY sort, key LIMIT 10"),
            "records_pkey": f"{select}'top_up_intent' AND key = 'tu-1'",
            "records_by_tenant": f"{select}'test_note' AND tenant_id = 'hub-a' ORDER BY sort, key",
            "records_by_wallet": f"{select}'test_note' AND wallet_id = 'w1' ORDER BY sort, key",
        }
        with store.unit_of_work(read_only=True) as uow:
            assert pending_top_up_intent(uow, "w1") == _intent("tu-2", "w1", minutes=5)
            assert [(t, i.id) for t, i in pending_top_up_intents(uow, 5)] == [
                ("hub-b", "tu-1"), (TENANT, "tu-2")]
            assert get_top_up_intent(uow, "tu-1") == _intent("tu-1", "w2")
            conn = uow._transaction()  # type: ignore[attr-defined]
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            for index, sql in queries.items():
                plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}"))
                assert f"using {index} " in plan.lower(), plan
                assert "Sort" not in plan, plan


class TestPostgresMigrationTo6:
    """A schema written with version 5 gains automatic top-up intents (and the ``write_unit``
    that writes them); everything it held stays."""

    @pytest.fixture
    def version_5(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-5 schema holding the reference script's data, more live lots, a lot of a
        condition group, a wallet setting and events (one acknowledged), and the state the
        library exported. ``schema`` (the source) stays as the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            state = _fill_with_events(store, top_ups=False)
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 5)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_5_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_5: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_5
        assert records_of(state, "top_up_intent") == []
        assert state["events"] != []
        assert records_of(state, "wallet_setting") != []
        assert state["condition_groups"] != []
        assert _catalog(target) != _catalog(schema)  # really laid out as version 5
        reference = PostgresStore(dsn, schema=schema)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            # the events keep their order, and new ones follow
            with store.unit_of_work() as uow:
                uow.add_event(_low_balance("ev-3", carol.id))
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert [e.id for e in uow.pending_events(TENANT, 5)] == ["ev-2", "ev-3"]
            # and it takes top-up intents, written by the new write_unit
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
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]

    def test_a_failing_migration_leaves_version_5_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_5: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_5
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 6, module._MIGRATIONS[6] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert not any(row[0] == "top_up_intents" for row in catalog["columns"])
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "5")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestPostgresMigrationTo7:
    """A schema written with version 6 gains records (and the ``write_unit`` that writes
    them); its wallet settings and top-up intents become records (the same data) and their
    tables go; everything else it held stays, and it behaves as before."""

    @pytest.fixture
    def version_6(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-6 schema holding the reference script's data, more live lots, a lot of a
        condition group, events (one acknowledged), wallet settings and a pending top-up intent
        (:func:`add_settings_and_intent`), and the state the library exported. ``schema`` (the
        source) stays as the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            state = _fill_with_events(store, top_ups=True)
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 6)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_6_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_6: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_6
        assert state["events"] != []
        assert state["condition_groups"] != []
        assert len(records_of(state, "wallet_setting")) == 2  # limits and top-up rule
        assert len(records_of(state, "top_up_intent")) == 1
        assert _catalog(target) != _catalog(schema)  # really laid out as version 6
        with raw_connection(target) as conn:  # with the settings and the intent in its tables
            assert conn.execute("SELECT count(*) FROM wallet_settings").fetchone() == (2,)
            assert conn.execute("SELECT status FROM top_up_intents").fetchall() == [("pending",)]
        reference = PostgresStore(dsn, schema=schema)
        try:
            expected = lot_indexes(reference)
        finally:
            reference.close()
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            assert lot_indexes(store) == expected
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            check_settings_and_intent(store)  # it behaves as before
            carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
            assert carol is not None
            # and it takes records of other kinds, written by the new write_unit
            with store.unit_of_work() as uow:
                uow.put_record(NOTES, Note("n-1", wallet_id=carol.id, slot="s"))
                uow.commit()
            with store.unit_of_work(read_only=True) as uow:
                assert uow.find_records(NOTES, wallet_id=carol.id) == [
                    Note("n-1", wallet_id=carol.id, slot="s")]
        finally:
            store.close()
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]

    def test_a_failing_migration_leaves_version_6_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_6: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_6
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 7, module._MIGRATIONS[7] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert not any(row[0] == "records" for row in catalog["columns"])
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "6")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestPostgresMigrationTo8:
    """A schema written with version 7 gains each wallet's latest recorded instant, taken from
    its balance history (none for a wallet without entries), and the ``write_unit`` that
    keeps it; everything else stays."""

    @pytest.fixture
    def version_7(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        """A version-7 schema holding :func:`fill_for_version_8`'s data and the state the
        library exported. ``schema`` (the source) stays as the library created it."""
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            state = fill_for_version_8(store)
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 7)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_7_schema_is_migrated_with_everything_kept(
        self, dsn: str, schema: str, version_7: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage.postgres import SCHEMA_VERSION, PostgresStore

        target, state = version_7
        assert _catalog(target) != _catalog(schema)  # really laid out as version 7
        assert not any(row[:2] == ("wallets", "last_at") for row in _catalog(target)["columns"])
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state  # the instants the library wrote, rebuilt
            service, _ = new_service(store)
            report = service.verify()
            assert report.ok, report.problems
            check_latest_instants(store)  # written by the new write_unit
        finally:
            store.close()
        assert _catalog(target) == _catalog(schema)
        assert _rows(target)["meta"] == [("schema_version", str(SCHEMA_VERSION))]

    def test_a_failing_migration_leaves_version_7_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_7: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_7
        catalog, rows = _catalog(target), _rows(target)
        monkeypatch.setitem(
            module._MIGRATIONS, 8, module._MIGRATIONS[8] + "\nSELECT 1 / 0;\n"
        )
        with pytest.raises(StorageError):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "7")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()


class TestPostgresMigrationTo9:
    """A schema written with version 8 gains a seal on every row that is not the journal, each
    sealed by the migration itself, in its transaction; everything else stays."""

    @pytest.fixture
    def version_8(self, dsn: str, schema: str) -> Iterator[tuple[str, dict[str, object]]]:
        from prepaid_wallet.storage.postgres import PostgresStore

        store = PostgresStore(dsn, schema=schema)
        try:
            state = fill_for_version_8(store)
        finally:
            store.close()
        target = fresh_schema()
        try:
            _write_as_version(schema, target, 8)
            yield target, state
        finally:
            drop_schema(target)

    def test_a_version_8_schema_is_sealed_by_its_migration(
        self, dsn: str, schema: str, version_8: tuple[str, dict[str, object]]
    ) -> None:
        from prepaid_wallet.storage._sealing import TABLES
        from prepaid_wallet.storage.postgres import PostgresStore

        target, state = version_8
        assert not any(row[:2] == ("wallets", "seal") for row in _catalog(target)["columns"])
        store = PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
            report = new_service(store)[0].verify()
            assert report.ok, report.problems
        finally:
            store.close()
        assert _catalog(target) == _catalog(schema)
        with raw_connection(target) as conn:
            for table in TABLES:
                unsealed = conn.execute(
                    f"SELECT count(*) FROM {table.name} WHERE seal IS NULL"
                    " OR seal NOT LIKE 'sha256:%'").fetchone()
                assert unsealed == (0,), table.name

    def test_a_failing_migration_leaves_version_8_unchanged(
        self, dsn: str, monkeypatch: pytest.MonkeyPatch,
        version_8: tuple[str, dict[str, object]],
    ) -> None:
        from prepaid_wallet.storage import postgres as module

        target, state = version_8
        catalog, rows = _catalog(target), _rows(target)

        def failing(*args: object, **kwargs: object) -> int:
            raise StorageError("sealing failed half-way")

        monkeypatch.setattr(module, "seal_all", failing)
        with pytest.raises(StorageError, match="half-way"):
            module.PostgresStore(dsn, schema=target)
        assert _catalog(target) == catalog
        assert _rows(target) == rows
        assert rows["meta"] == [("schema_version", "8")]
        monkeypatch.undo()
        store = module.PostgresStore(dsn, schema=target)
        try:
            assert store.export_state() == state
        finally:
            store.close()
