"""``export_state`` exports what the journal stores besides the entries -- the balance after each
posting and every wallet's balance history -- and what each lot is found by. Editing one such
row behind the library's back (an append-only trigger dropped first) changes the export, on
every backend."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest

from prepaid_wallet import demo, open_store
from prepaid_wallet.money import Money
from prepaid_wallet.storage.memory import MemoryStore
from tests import pg


def _filled(store: Any) -> Any:
    demo.run(store, io.StringIO(), json=False, locale="en_US", db="test")
    return store


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(key for key in before if before[key] != after[key])


def test_export_has_balances_after_and_history() -> None:
    state = _filled(open_store("memory:")).export_state()
    assert len(state["balances_after"]) == len(state["entries"])
    assert [entry_id for entry_id, _ in state["balances_after"]] == [
        e["id"] for e in state["entries"]]
    assert all(len(after) == len(e["postings"])
               for (_, after), e in zip(state["balances_after"], state["entries"], strict=True))
    assert any(b is None for _, after in state["balances_after"] for b in after)  # tenant side
    assert len(state["wallet_history"]) >= len(state["entries"])
    wallet_ids = [row[0] for row in state["wallet_history"]]
    assert wallet_ids == sorted(wallet_ids)


def test_memory_history_edit_changes_the_export() -> None:
    store = _filled(MemoryStore())
    before = store.export_state()
    history = store.snapshots[sorted(store.snapshots)[0]]
    first = history.values[0]
    history.values[0] = attrs.evolve(first, open=first.open + Money.from_minor_units(1, "EUR"))
    assert _changed(before, store.export_state()) == ["wallet_history"]


# -- SQLite ----------------------------------------------------------------------------------------


def _sqlite_edit(path: Path, sql: str, trigger: str | None) -> None:
    conn = sqlite3.connect(path)
    try:
        if trigger is not None:
            conn.execute(f"DROP TRIGGER {trigger}")
        assert conn.execute(sql).rowcount == 1
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(("sql", "trigger", "key"), [
    ("UPDATE wallet_history SET held = held + 1 WHERE entry_seq = 3 AND wallet_id ="
     " (SELECT min(wallet_id) FROM wallet_history WHERE entry_seq = 3)",
     "wallet_history_no_update", "wallet_history"),
    ("UPDATE postings SET balance_after = balance_after + 1 WHERE (entry_seq, position) ="
     " (SELECT entry_seq, position FROM postings WHERE balance_after IS NOT NULL"
     " ORDER BY entry_seq, position LIMIT 1)", "postings_no_update", "balances_after"),
    ("UPDATE lots SET conditioned = 1 - conditioned WHERE id = (SELECT min(id) FROM lots)",
     None, "lot_index"),
])
def test_sqlite_edit_changes_the_export(tmp_path: Path, sql: str, trigger: str | None,
                                        key: str) -> None:
    path = tmp_path / "w.db"
    store = _filled(open_store(f"sqlite:///{path}"))
    before = store.export_state()
    store.close()
    _sqlite_edit(path, sql, trigger)
    store = open_store(f"sqlite:///{path}", create=False)
    try:
        assert _changed(before, store.export_state()) == [key]
    finally:
        store.close()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "trigger", "key"), [
    ("UPDATE wallet_history SET held = held + 1 WHERE (wallet_id, entry_seq) ="
     " (SELECT wallet_id, entry_seq FROM wallet_history ORDER BY entry_seq, wallet_id LIMIT 1)",
     "wallet_history_append_only", "wallet_history"),
    ("UPDATE postings SET balance_after = balance_after + 1 WHERE (entry_seq, position) ="
     " (SELECT entry_seq, position FROM postings WHERE balance_after IS NOT NULL"
     " ORDER BY entry_seq, position LIMIT 1)", "postings_append_only", "balances_after"),
])
def test_postgres_edit_changes_the_export(sql: str, trigger: str, key: str) -> None:
    store = _filled(pg.fresh_store())
    try:
        before = store.export_state()
        table = trigger.rsplit("_append_only", 1)[0]
        assert store.schema is not None
        with pg.raw_connection(store.schema) as conn:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            assert conn.execute(sql).rowcount == 1
        assert _changed(before, store.export_state()) == [key]
    finally:
        pg.close_and_drop(store)
