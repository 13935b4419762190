"""The export of a SQL store: every table read in one snapshot, as
:func:`~prepaid_wallet.storage.base.dump_state` returns it (what ``export_state`` of either SQL
store gives)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from prepaid_wallet.ledger import Entry
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._schema import (
    CHARGE_COLS,
    ENTRY_COLS,
    EVENT_COLS,
    GROUP_COLS,
    HISTORY_COLS,
    HOLD_COLS,
    IDEMPOTENCY_COLS,
    LOT_COLS,
    RECORD_COLS,
    WALLET_COLS,
)
from prepaid_wallet.storage.base import RecordRow, dump_state

__all__ = ["export_tables"]


def export_tables(
    conn: Any,
    rows_of: Rows,
    instant_of: Callable[[Any], datetime],
    fetch_entries: Callable[[Any, Sequence[Sequence[Any]]], list[Entry]],
    batch: int,
) -> dict[str, Any]:
    """Every table read through ``conn`` (whose ``execute(sql[, params])`` iterates rows): rows
    decoded by ``rows_of``, stored instants by ``instant_of``, entries with their postings by
    ``fetch_entries(conn.execute, rows)``, ``batch`` entries at a time."""

    def at_of(value: Any) -> datetime | None:
        return None if value is None else instant_of(value)

    def rows(sql: str) -> Any:
        return conn.execute(sql)

    entry_rows = list(rows(f"SELECT {ENTRY_COLS} FROM entries ORDER BY seq"))
    after: dict[int, list[int | None]] = {}
    for seq, balance in rows("SELECT entry_seq, balance_after FROM postings"
                             " ORDER BY entry_seq, position"):
        after.setdefault(seq, []).append(balance)
    return dump_state(
        wallets=[rows_of.wallet(r) for r in rows(f"SELECT {WALLET_COLS} FROM wallets")],
        lots=[rows_of.lot(r) for r in rows(f"SELECT {LOT_COLS} FROM lots")],
        lot_index=[(r[0], bool(r[1]), at_of(r[2]), at_of(r[3])) for r in rows(
            "SELECT id, conditioned, ends_at, CASE WHEN remaining > 0 THEN due_at END"
            " FROM lots")],
        holds=[rows_of.hold(r) for r in rows(f"SELECT {HOLD_COLS} FROM holds")],
        charges=[rows_of.charge(r) for r in rows(f"SELECT {CHARGE_COLS} FROM charges")],
        entries=[entry for i in range(0, len(entry_rows), batch)
                 for entry in fetch_entries(conn.execute, entry_rows[i : i + batch])],
        balances=[(row[1], after.get(row[0], [])) for row in entry_rows],
        history=[rows_of.snapshot(r) for r in rows(
            f"SELECT {HISTORY_COLS} FROM wallet_history"
            " ORDER BY wallet_id, recorded_at, entry_seq")],
        idempotency=[rows_of.idempotency(r)
                     for r in rows(f"SELECT {IDEMPOTENCY_COLS} FROM idempotency")],
        groups=[rows_of.group(r)
                for r in rows(f"SELECT {GROUP_COLS} FROM condition_groups")],
        events=[(rows_of.event(r[:6]), bool(r[6])) for r in rows(
            f"SELECT {EVENT_COLS}, acked_at IS NOT NULL FROM events ORDER BY seq")],
        records=[RecordRow(*r) for r in rows(f"SELECT {RECORD_COLS} FROM records")],
    )
