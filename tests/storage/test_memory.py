"""The memory store: the storage contract, plus what only the memory backend promises."""

from __future__ import annotations

import threading

import pytest

from prepaid_wallet import StorageError, open_store
from prepaid_wallet import wallet as _w
from prepaid_wallet.storage.base import Store
from prepaid_wallet.storage.memory import MemoryStore
from prepaid_wallet.wallet import Wallet
from tests.storage.contract import WAIT, StoreContract, Writer, eur, run_in_threads


class TestMemoryStore(StoreContract):
    """The whole contract against ``open_store("memory:")``."""

    def make_store(self) -> Store:
        return open_store("memory:")


class TestMemoryOnly:
    """What holds for the memory backend only: one lock serialises units of work."""

    def test_open_store_gives_a_new_empty_memory_store_each_time(self) -> None:
        first, second = open_store("memory:"), open_store("memory:")
        assert isinstance(first, MemoryStore)
        assert first is not second
        Writer(first).open("w1")
        with second.unit_of_work() as uow:
            assert list(uow.iter_wallets()) == []

    def test_a_unit_blocks_another_threads_unit_until_it_exits(self) -> None:
        store = open_store("memory:")
        writer = Writer(store)
        writer.open("w1")
        first_entered = threading.Event()
        release_first = threading.Event()
        second_trying = threading.Event()
        second_entered = threading.Event()

        def first() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w1"])["w1"]
                first_entered.set()
                assert release_first.wait(WAIT)
                uow.record(_w.top_up(wallet, eur("1.00"), "card", writer.info()))
                uow.commit()

        def second() -> Wallet:
            assert first_entered.wait(WAIT)
            second_trying.set()
            with store.unit_of_work() as uow:
                second_entered.set()
                return uow.get_wallet("w1")

        def conductor() -> bool:
            assert second_trying.wait(WAIT)
            blocked = not second_entered.wait(0.2)
            release_first.set()
            return blocked

        _, seen, blocked = run_in_threads([first, second, conductor])
        assert blocked, "the second unit entered while the first still held the lock"
        assert seen.version == 1  # and it saw the first unit's commit
        assert seen.open == eur("1.00")

    def test_export_state_waits_for_an_open_unit(self) -> None:
        """A dump never sees half a commit: it takes the same lock."""
        store = open_store("memory:")
        writer = Writer(store)
        writer.open("w1")
        entered = threading.Event()
        dumped = threading.Event()

        def hold_unit() -> bool:
            with store.unit_of_work():
                entered.set()
                return not dumped.wait(0.2)

        def dump() -> None:
            assert entered.wait(WAIT)
            store.export_state()
            dumped.set()

        waited, _ = run_in_threads([hold_unit, dump])
        assert waited
        assert dumped.is_set()

    def test_a_nested_unit_in_one_thread_is_refused_not_a_deadlock(self) -> None:
        store = open_store("memory:")
        Writer(store).open("w1")
        with store.unit_of_work():
            with pytest.raises(StorageError):
                store.unit_of_work().__enter__()
            # Exporting from inside the thread's own unit reads committed state.
            assert [w["id"] for w in store.export_state()["wallets"]] == ["w1"]
        with store.unit_of_work() as uow:  # the lock was released
            assert uow.get_wallet("w1").id == "w1"


def test_a_history_answers_by_instant_whatever_order_its_values_were_added_in() -> None:
    from datetime import UTC, datetime, timedelta

    from prepaid_wallet.storage.memory import _History

    start = datetime(2026, 1, 5, tzinfo=UTC)
    history = _History()
    for hours, value in [(2, "b"), (2, "b2"), (5, "d"), (1, "a"), (3, "c"), (2, "b3")]:
        history.add(start + timedelta(hours=hours), value)
    assert history.values == ["a", "b", "b2", "b3", "c", "d"]  # equal instants: added order
    assert history.instants == sorted(history.instants)
    assert history.at(start) is None
    assert history.at(start + timedelta(hours=2)) == "b3"
    assert history.at(start + timedelta(hours=4)) == "c"
    assert history.between(start + timedelta(hours=2), start + timedelta(hours=5)) == [
        "b", "b2", "b3", "c"]
