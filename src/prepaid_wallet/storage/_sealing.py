"""The sealed tables of the SQL stores: sealing rows as they are written, sealing every row of
a store at once, and checking every stored row (private; see
:mod:`prepaid_wallet.seals` for what a seal is).

Each sealed table is described once, as a :class:`Table`: the columns it is read by, its
primary key, how a row becomes the value the library stores (wallet, lot, …) and back. A row is
*as the library wrote it* when it reads back as a value that maps to exactly the stored row,
and its seal is the seal of that value's canonical row: so a changed column is caught whether
the value it reads as is different (the seal) or the same (the round trip: a column the value
does not read, such as a lot's ``conditioned`` flag, its ``ends_at`` or ``due_at``).

The journal's own rows are checked here too, for what the entries' hashes do not cover: each
posting's instant and balance after (what as-of balances read) must be its entry's instant and
its account's running balance in journal order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from prepaid_wallet.errors import SealKeyError
from prepaid_wallet.expiry import first_end
from prepaid_wallet.results import Problem
from prepaid_wallet.seals import Sealer
from prepaid_wallet.storage._dialect import SQLITE
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._schema import (
    CHARGE_COLS,
    EVENT_COLS,
    GROUP_COLS,
    HOLD_COLS,
    IDEMPOTENCY_COLS,
    LOT_COLS,
    RECORD_COLS,
    WALLET_COLS,
    names,
)
from prepaid_wallet.storage.base import RecordRow

__all__ = [
    "CANON",
    "TABLES",
    "Table",
    "check_key",
    "posting_problems",
    "row_problems",
    "seal_all",
    "set_key",
]

#: The canonical row mappers: every seal is made over a value's row as SQLite stores it.
CANON = Rows(SQLITE)

_Execute = Callable[..., Any]
#: How every account of a wallet (its open, held and lot accounts) begins: the accounts whose
#: postings carry the balance after them.
WALLET_ACCOUNT = "wallet:"


@attrs.frozen
class Table:
    """One sealed table: its name, the noun a problem calls a row, the columns it is read by
    (its key's columns first), how many columns make the key, and the row mappers (``read``:
    a row into the stored value; ``write``: the value into the row the dialect writes;
    ``canon``: the value into its canonical row)."""

    name: str
    noun: str
    cols: str
    key_width: int
    read: Callable[[Rows, Sequence[Any]], Any]
    write: Callable[[Rows, Any], tuple[Any, ...]]
    canon: Callable[[Any], tuple[Any, ...]]

    @property
    def columns(self) -> tuple[str, ...]:
        """The names of the columns it is read by, its key's first."""
        return names(self.cols)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The names of its key's columns."""
        return self.columns[: self.key_width]

    def key(self, row: Sequence[Any]) -> str:
        """The row's key as a problem names it (``"scope/key"`` for a two-column key)."""
        return "/".join(str(v) for v in row[: self.key_width])


def _record(rows: Rows, row: Sequence[Any]) -> RecordRow:
    return RecordRow(*row)


def _record_row(rows: Rows, record: RecordRow) -> tuple[Any, ...]:
    return attrs.astuple(record)


#: Every sealed table, groups before lots (a lot falls due by its group). A lot's row is read
#: with its ``ends_at`` (written from the lot); its ``due_at`` is checked on its own.
TABLES: tuple[Table, ...] = (
    Table("wallets", "wallet", WALLET_COLS, 1, Rows.wallet, Rows.wallet_row, CANON.wallet_row),
    Table("holds", "hold", HOLD_COLS, 1, Rows.hold, Rows.hold_row, CANON.hold_row),
    Table("charges", "charge", CHARGE_COLS, 1, lambda r, row: Rows.charge(row),
          lambda r, c: Rows.charge_row(c), Rows.charge_row),
    Table("idempotency", "idempotency record", IDEMPOTENCY_COLS, 2, Rows.idempotency,
          Rows.idempotency_row, CANON.idempotency_row),
    Table("condition_groups", "condition group", GROUP_COLS, 1, Rows.group, Rows.group_row,
          CANON.group_row),
    Table("lots", "lot", LOT_COLS + ", ends_at", 1, Rows.lot, Rows.lot_row,
          CANON.lot_row),
    Table("events", "event", EVENT_COLS, 1, Rows.event, Rows.event_row, CANON.event_row),
    Table("records", "record", RECORD_COLS, 2, _record, _record_row, attrs.astuple),
)
BY_NAME = {table.name: table for table in TABLES}


def seal_all(execute: _Execute, executemany: _Execute, rows: Rows, sealer: Sealer,
             mark: Callable[[str], str]) -> int:
    """Seal every row of every sealed table with ``sealer`` (a new store's migration, or a
    store given a key): each row is read as the value it holds and sealed over it. Returns the
    number of rows sealed. Runs inside the caller's transaction."""
    done = 0
    for table in TABLES:
        where = " AND ".join(f"{c} = ?" for c in table.key_columns)
        found = list(execute(f"SELECT {table.cols} FROM {table.name}"))
        updates = [
            (sealer.seal(table.name, table.canon(table.read(rows, row))),
             *row[: table.key_width])
            for row in found
        ]
        if updates:
            executemany(mark(f"UPDATE {table.name} SET seal = ? WHERE {where}"), updates)
        done += len(updates)
    return done


def check_key(execute: _Execute, sealer: Sealer, *, sealed_now: bool,
              mark: Callable[[str], str], prefix: str = "") -> None:
    """Check that the store's rows are sealed with ``sealer``'s key (``meta``'s
    ``seal_key``: the key id, absent for no key), in the transaction that opens it:
    ``SealKeyError`` otherwise. A store whose rows were sealed in this transaction
    (``sealed_now``: new, or migrated to seals) records the key instead."""
    found = list(execute(mark(f"SELECT value FROM {prefix}meta WHERE key = 'seal_key'")))
    stored = None if not found else str(found[0][0])
    if sealed_now:
        set_key(execute, sealer, mark, prefix)
    elif stored != sealer.key_id:
        raise SealKeyError(stored, sealer.key_id)


def set_key(execute: _Execute, sealer: Sealer, mark: Callable[[str], str],
            prefix: str = "") -> None:
    """Record in ``meta`` that the rows are sealed with ``sealer``'s key."""
    execute(mark(f"DELETE FROM {prefix}meta WHERE key = 'seal_key'"))
    if sealer.key_id is not None:
        execute(mark(f"INSERT INTO {prefix}meta (key, value) VALUES ('seal_key', ?)"),
                (sealer.key_id,))


def row_problems(execute: _Execute, rows: Rows, sealer: Sealer) -> Iterator[Problem]:
    """Every stored row of the sealed tables that is not as the library wrote it: a row that
    does not read back as what the library stores, or whose seal does not match."""
    ends: dict[str, Any] = {}
    for table in TABLES:
        extra = ", due_at" if table.name == "lots" else ""
        width = len(table.columns)
        order = ", ".join(table.key_columns)
        for row in execute(
                f"SELECT {table.cols}{extra}, seal FROM {table.name} ORDER BY {order}"):
            stored = tuple(row[:width])
            subject = table.key(stored)
            try:
                value = table.read(rows, stored)
                written = table.write(rows, value)
                canon = table.canon(value)
            except Exception as exc:  # a value no stored row of the library can hold
                yield Problem("seal", subject,
                              f"the {table.noun} row cannot be read ({type(exc).__name__})")
                continue
            if tuple(written) != stored:
                changed = ", ".join(name for name, a, b in zip(table.columns, written, stored,
                                                               strict=True) if a != b)
                yield Problem("seal", subject,
                              f"the {table.noun} row holds what the library never writes"
                              f" ({changed})")
                continue
            wrong = sealer.check(table.name, canon, row[-1])
            if wrong is not None:
                yield Problem("seal", subject, f"the {table.noun} row {wrong}")
            if table.name == "condition_groups":
                ends[value.id] = value.valid_until
            elif table.name == "lots":
                due = row[width]
                group_end = None if value.group_id is None else ends.get(value.group_id)
                expected = first_end(written[-1], None if group_end is None
                                     else rows.instant(group_end))
                if value.is_live and due != expected:
                    yield Problem("seal", subject, "the lot falls due at a changed instant")


def posting_problems(execute: _Execute, rows: Rows) -> Iterator[Problem]:
    """Every posting whose stored instant or balance after (what as-of balances and the
    account's history read) is not its entry's instant or its wallet account's balance in
    journal order, and every posting of no entry."""
    account = None
    running = 0
    for row in execute(
        "SELECT p.account, p.minor, p.recorded_at, p.balance_after, p.entry_seq, e.id,"
        " e.recorded_at FROM postings p LEFT JOIN entries e ON e.seq = p.entry_seq"
        " ORDER BY p.account, p.entry_seq, p.position"
    ):
        name, minor, at, after, seq, entry_id, entry_at = row
        if name != account:
            account, running = name, 0
        running += minor
        if entry_id is None:
            yield Problem("posting", f"#{seq}",
                          f"a posting to {name} belongs to no entry (number {seq})")
            continue
        if at != entry_at:
            yield Problem("posting", entry_id,
                          f"the posting to {name} is dated {rows.instant_of(at).isoformat()},"
                          f" not its entry's instant")
        expected = running if name.startswith(WALLET_ACCOUNT) else None
        if after != expected:
            yield Problem("posting", entry_id,
                          f"the balance of {name} after it is stored as {after},"
                          f" the journal gives {expected}")
