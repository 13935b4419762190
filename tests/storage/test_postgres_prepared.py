"""The PostgreSQL store's prepared first reads: every pooled connection prepares the lock of the
wallets and the read of their tenants' records, a unit's first statement executes them, and a
connection that lost them prepares them again.

Needs a server: ``PREPAID_WALLET_TEST_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from prepaid_wallet import SpendRequest
from prepaid_wallet.storage.base import Store
from tests.pg import one_connection_store, sent_messages
from tests.storage.contract import TENANT, eur, new_service
from tests.storage.test_postgres import _round_trips

_NAMES = {"prepaid_wallet_read", "prepaid_wallet_lock", "prepaid_wallet_records"}


@pytest.fixture
def store() -> Iterator[Store]:
    with one_connection_store() as made:
        yield made


def _prepared(store: Store) -> set[str]:
    with store._pool.connection() as conn:  # type: ignore[attr-defined]
        rows = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
    return {row[0] for row in rows}


def _sent(store: Store, action: object) -> list[str]:
    """The simple queries the client sent while ``action`` ran (libpq's protocol trace)."""
    return [f[4] for f in sent_messages(store, action) if len(f) > 4 and f[3] == "Query"]


def test_every_pooled_connection_prepares_the_first_reads(store: Store) -> None:
    assert _prepared(store) >= _NAMES


def test_the_lock_of_an_ordinary_unit_executes_the_prepared_statements(store: Store) -> None:
    svc, _ = new_service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.top_up(wallet.id, eur("10.00"), method="card")

    def lock() -> None:
        with store.unit_of_work() as uow:
            assert uow.lock_wallets([wallet.id])[wallet.id].open == eur("10.00")
            uow.commit()

    queries = _sent(store, lock)
    assert "EXECUTE prepaid_wallet_lock(ARRAY[" in queries[0], queries
    assert "FROM wallets" not in queries[0], queries


def test_a_connection_that_lost_them_prepares_them_again(store: Store) -> None:
    svc, _ = new_service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.top_up(wallet.id, eur("10.00"), method="card")
    with store._pool.connection() as conn:  # type: ignore[attr-defined]
        conn.execute("DEALLOCATE ALL")
    assert not _NAMES & _prepared(store)
    with store.unit_of_work() as uow:  # a lock as a unit's first statement
        assert uow.lock_wallets([wallet.id])[wallet.id].open == eur("10.00")
        uow.commit()
    assert _prepared(store) >= _NAMES
    with store._pool.connection() as conn:  # type: ignore[attr-defined]
        conn.execute("DEALLOCATE prepaid_wallet_lock")  # only one of them missing
    svc.spend(wallet.id, SpendRequest(eur("1.00")))
    with store.unit_of_work() as uow:
        assert uow.lock_wallets([wallet.id])[wallet.id].open == eur("9.00")
        uow.commit()
    assert _prepared(store) >= _NAMES
    assert len(_round_trips(store, lambda: svc.spend(wallet.id, SpendRequest(eur("1.00"))))) == 1
    assert svc.verify().ok


def test_a_rolled_back_unit_leaves_every_prepared_statement_in_place(store: Store) -> None:
    # The driver drops its statement cache and deallocates everything (ours too) when it sees a
    # ROLLBACK go through its execute; a unit's ROLLBACK goes past it.
    svc, _ = new_service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    for _ in range(6):  # past the driver's prepare threshold
        with store.unit_of_work() as uow:
            uow.lock_wallets([wallet.id])
            assert uow.get_idempotency("scope", "key") is None
            uow.commit()
    before = _prepared(store)
    assert any(name.startswith("_pg3_") for name in before), before

    def give_up() -> None:
        with store.unit_of_work() as uow:
            uow.lock_wallets([wallet.id])
            raise RuntimeError("the caller gives up")

    with pytest.raises(RuntimeError):
        give_up()
    assert _prepared(store) == before


def test_a_connection_where_prepared_statements_do_not_stay_runs_them_written_out(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # As behind a pooler that gives each transaction a server connection of its own: the
    # statements are missing, and preparing them again does not bring them back.
    from prepaid_wallet.storage import _postgres_prepared

    svc, _ = new_service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
    svc.top_up(wallet.id, eur("10.00"), method="card")
    with store._pool.connection() as conn:  # type: ignore[attr-defined]
        conn.execute("DEALLOCATE ALL")
    monkeypatch.setattr(_postgres_prepared, "_PREPARES", [b"SELECT 1"])

    def lock() -> None:
        with store.unit_of_work() as uow:
            assert uow.lock_wallets([wallet.id])[wallet.id].open == eur("10.00")
            uow.commit()

    lock()
    queries = _sent(store, lock)  # from then on, without trying the prepared ones
    assert "EXECUTE" not in queries[0], queries
    assert "FOR UPDATE" in queries[0], queries
    svc.spend(wallet.id, SpendRequest(eur("1.00")))
    assert svc.get_wallet(wallet.id).open == eur("9.00")
