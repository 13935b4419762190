"""Reading every stored row of a store and loading them, as they are, into another (private):
what :func:`prepaid_wallet.storage.copy.copy_store` runs.

A store is read as a stream of batches ``(table, values)``, the tables in :data:`TABLES` order
(each table's rows only after the rows they refer to), each batch at most :data:`BATCH` rows:

* ``condition_groups``, ``wallets``, ``lots``, ``holds``, ``charges``, ``idempotency`` -- the
  stored values (:class:`~prepaid_wallet.conditions.ConditionGroup`, ``Wallet``, ...);
* ``records`` -- :class:`~prepaid_wallet.storage.base.RecordRow` s, as stored;
* ``entries`` -- :class:`JournalRow` s: each entry with its sequence number and the balance
  after each of its postings;
* ``wallet_history`` -- ``(seq, snapshot)``: a wallet's balances after the entry ``seq``;
* ``events`` -- ``(event, acked_at)`` in commit order (``acked_at`` None while pending).

The SQL stores are read in one read-only unit of work (one snapshot), page by page along each
table's primary key, so memory stays bounded whatever the store's size; the memory store is
read under its lock. Rows go through the row mappers of :mod:`prepaid_wallet.storage._rows`
and the column lists of :mod:`prepaid_wallet.storage._schema`, both ways, so a column added to
a value and its mapper is copied without a change here.

Loading writes everything in **one transaction** of the target (the memory store: under its
lock, applied at the end), after checking that it is empty: a load that fails or is killed
leaves the target exactly as empty as it was, so running it again starts over cleanly. The
SQL stores keep every sequence number of the journal (PostgreSQL's entry sequence is moved past
the last one); events are appended in their order and draw new numbers. Only inserts are
sent: the triggers that keep the journal append-only stay in force.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from prepaid_wallet.errors import StorageError, StoreNotEmptyError
from prepaid_wallet.expiry import first_end
from prepaid_wallet.ledger import Entry
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
    names,
)
from prepaid_wallet.storage._sealing import BY_NAME
from prepaid_wallet.storage.base import RecordRow, Store

if TYPE_CHECKING:
    from prepaid_wallet.storage._dialect import Dialect
    from prepaid_wallet.storage._rows import Rows
    from prepaid_wallet.storage._sql import SQLUnitOfWork
    from prepaid_wallet.storage.memory import MemoryStore

__all__ = ["BATCH", "TABLES", "Batch", "JournalRow", "is_store", "load", "read", "store_name"]

#: Rows per batch read and written.
BATCH = 500

#: The tables in the order they are read and loaded: a row after every row it refers to.
TABLES = (
    "condition_groups", "wallets", "lots", "holds", "charges", "records", "entries",
    "wallet_history", "idempotency", "events",
)

#: One batch of a table's rows: ``(table, values)``.
Batch = tuple[str, list[Any]]
#: Called with ``(table, rows so far)`` after every batch.
Progress = Callable[[str, int], None]


@attrs.frozen
class JournalRow:
    """An entry as stored: its sequence number, the entry, and the balance after each of its
    postings (``None`` for a tenant account)."""

    seq: int
    entry: Entry
    balances: tuple[int | None, ...]


def store_name(store: Store) -> str:
    """How messages name ``store``: its file, its PostgreSQL schema, or the memory store (a
    PostgreSQL URL may hold a password, so it is never shown)."""
    path = getattr(store, "path", None)
    if isinstance(path, str):
        return f"the SQLite store {path!r}"
    module = type(store).__module__
    if module.endswith(".postgres"):
        schema = getattr(store, "schema", None)
        return f"the PostgreSQL store (schema {schema or 'current'!r})"
    return "the memory store"


#: The backends' modules, by the backend's name.
_BACKENDS = {f"prepaid_wallet.storage.{kind}": kind for kind in ("memory", "sqlite", "postgres")}


def is_store(value: object) -> bool:
    """Whether ``value`` is a store of one of this library's backends."""
    return type(value).__module__ in _BACKENDS


def _kind(store: Store) -> str:
    kind = _BACKENDS.get(type(store).__module__)
    if kind is None:
        raise StorageError(f"cannot copy {type(store).__name__}: not a store of this library")
    return kind


# -- reading ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def read(store: Store) -> Iterator[Iterator[Batch]]:
    """Every stored row of ``store`` as batches (see the module docstring), read from one
    consistent snapshot that stays open until the block ends."""
    with store.unit_of_work(read_only=True) as uow:
        if _kind(store) == "memory":
            yield _memory_batches(uow._store)  # type: ignore[attr-defined]
        else:
            yield _sql_batches(uow)  # type: ignore[arg-type]


def _chunks(values: Sequence[Any], table: str) -> Iterator[Batch]:
    for start in range(0, len(values), BATCH):
        yield table, list(values[start : start + BATCH])


def _memory_batches(store: MemoryStore) -> Iterator[Batch]:
    yield from _chunks(sorted(store.groups.values(), key=lambda g: g.id), "condition_groups")
    yield from _chunks(sorted(store.wallets.values(), key=lambda w: w.id), "wallets")
    yield from _chunks(sorted(store.lots.values(), key=lambda x: x.id), "lots")
    yield from _chunks(sorted(store.holds.values(), key=lambda h: h.id), "holds")
    yield from _chunks(sorted(store.charges.values(), key=lambda c: c.entry_id), "charges")
    yield from _chunks(sorted(store.records.values(), key=lambda r: (r.kind, r.key)), "records")
    journal = [
        JournalRow(seq, entry, tuple(after))
        for seq, (entry, (_, after)) in enumerate(
            zip(store.entries, store.balances_after(), strict=True), start=1)
    ]
    yield from _chunks(journal, "entries")
    history = [(store.entry_seq[s.entry_id] + 1, s) for wallet_id in sorted(store.snapshots)
               for s in store.snapshots[wallet_id].values]
    yield from _chunks(history, "wallet_history")
    # Each record as the store reads it: a result kept as a value gets its text now.
    yield from _chunks([store.idempotency_record(key) for key in sorted(store.idempotency)],
                       "idempotency")
    events = [(e, None if e.id in store.pending.get(e.tenant_id, {})
               else store.acked_at.get(e.id, e.created_at)) for e in store.events]
    yield from _chunks(events, "events")


def _pages(uow: SQLUnitOfWork[Any], table: str, cols: str, key: Sequence[str]
           ) -> Iterator[list[Any]]:
    """The rows of ``table`` (its columns ``cols``, among which the columns of ``key``), a page
    at a time along its primary key ``key``: each page is read after the last key of the one
    before, so every page costs the same however far into the table it is."""
    col_names = names(cols)
    at = [col_names.index(k) for k in key]
    order = ", ".join(key)
    first = uow._q(f"SELECT {cols} FROM {table} ORDER BY {order} LIMIT ?")
    marks = ", ".join("?" * len(key))
    after = uow._q(f"SELECT {cols} FROM {table} WHERE ({order}) > ({marks})"
                   f" ORDER BY {order} LIMIT ?")
    rows = uow._all(first, (BATCH,))
    while rows:
        yield rows
        if len(rows) < BATCH:
            return
        last = rows[-1]
        rows = uow._all(after, (*(last[i] for i in at), BATCH))


def _sql_batches(uow: SQLUnitOfWork[Any]) -> Iterator[Batch]:
    m = uow._ROWS
    instant_of = uow._DIALECT.instant_of
    simple: tuple[tuple[str, str, tuple[str, ...], Callable[[Any], Any]], ...] = (
        ("condition_groups", GROUP_COLS, ("id",), m.group),
        ("wallets", WALLET_COLS, ("id",), m.wallet),
        ("lots", LOT_COLS, ("id",), m.lot),
        ("holds", HOLD_COLS, ("id",), m.hold),
        ("charges", CHARGE_COLS, ("entry_id",), m.charge),
        ("records", RECORD_COLS, ("kind", "key"), lambda r: RecordRow(*r)),
    )
    for table, cols, key, value in simple:
        for page in _pages(uow, table, cols, key):
            yield table, [value(row) for row in page]
    postings = uow._q("SELECT entry_seq, account, minor, currency, balance_after FROM postings"
                      " WHERE entry_seq >= ? AND entry_seq <= ? ORDER BY entry_seq, position")
    for page in _pages(uow, "entries", ENTRY_COLS, ("seq",)):
        found: dict[int, list[Any]] = {}
        for row in uow._all(postings, (page[0][0], page[-1][0])):
            found.setdefault(row[0], []).append(row[1:])
        yield "entries", [
            JournalRow(row[0], m.entry(row, [p[:3] for p in found.get(row[0], [])]),
                       tuple(p[3] for p in found.get(row[0], [])))
            for row in page
        ]
    history = f"entry_seq, {HISTORY_COLS}"
    for page in _pages(uow, "wallet_history", history, ("wallet_id", "recorded_at", "entry_seq")):
        yield "wallet_history", [(row[0], m.snapshot(row[1:])) for row in page]
    for page in _pages(uow, "idempotency", IDEMPOTENCY_COLS, ("scope", "key")):
        yield "idempotency", [m.idempotency(row) for row in page]
    for page in _pages(uow, "events", f"seq, acked_at, {EVENT_COLS}", ("seq",)):
        yield "events", [(m.event(row[2:]), None if row[1] is None else instant_of(row[1]))
                         for row in page]


# -- loading ---------------------------------------------------------------------------------------


def load(store: Store, batches: Iterator[Batch], *, progress: Progress | None = None
         ) -> dict[str, int]:
    """Write ``batches`` (as :func:`read` gives them) into the empty ``store`` in one
    transaction; the rows written per table. ``StoreNotEmptyError`` (nothing written) when it
    holds anything; any other failure rolls everything back."""
    counts = dict.fromkeys(TABLES, 0)

    def counted() -> Iterator[Batch]:
        for table, values in batches:
            yield table, values
            counts[table] += len(values)
            if progress is not None:
                progress(table, counts[table])

    kind = _kind(store)
    if kind == "memory":
        _load_memory(store, counted())  # type: ignore[arg-type]
    else:
        _SQLTarget.of(store, kind).load(counted())
    return counts


def _load_memory(store: MemoryStore, batches: Iterator[Batch]) -> None:
    """Everything applied under the store's lock once every batch is read (the memory store
    has no partial state to leave behind)."""
    if store._closed:
        raise StorageError("the store is closed")
    if store._owner == threading.get_ident():
        raise StorageError("this thread already has a unit of work open on this store")
    with store._lock:
        for table, found in (("wallets", store.wallets), ("entries", store.entries),
                             ("records", store.records), ("condition_groups", store.groups),
                             ("idempotency", store.idempotency), ("events", store.events)):
            if found:
                raise StoreNotEmptyError(store_name(store), f"is not empty: it holds {table}")
        read: dict[str, list[Any]] = {table: [] for table in TABLES}
        for table, values in batches:
            read[table].extend(values)
        for group in read["condition_groups"]:
            store._apply_group(group)
        for wallet in read["wallets"]:
            store.wallets[wallet.id] = wallet
            store.wallet_keys[(wallet.tenant_id, wallet.owner_id, wallet.currency)] = wallet.id
        for lot in read["lots"]:
            store._apply_lot(lot)
        for held in read["holds"]:
            store._apply_hold(held)
        store.charges.update((c.entry_id, c) for c in read["charges"])
        for row in read["records"]:
            store._apply_record(row.kind, row.key, row)
        for journal in read["entries"]:
            store._apply_entry(journal.entry, ())
        for _, snapshot in read["wallet_history"]:
            store._add_snapshot(snapshot)
        store.idempotency.update(((r.scope, r.key), r) for r in read["idempotency"])
        for event, acked_at in read["events"]:
            store.events.append(event)
            store.event_ids.add(event.id)
            if acked_at is None:
                store.pending.setdefault(event.tenant_id, {})[event.id] = event
            else:
                store.acked_at[event.id] = acked_at


class _SQLTarget:
    """A SQL store written by plain inserts in one transaction on a connection of its own."""

    def __init__(self, store: Any, dialect: Dialect, rows: Rows,
                 translated: Callable[[str], contextlib.AbstractContextManager[None]]) -> None:
        self.store = store
        self.dialect = dialect
        self.rows = rows
        self.translated = translated

    @staticmethod
    def of(store: Store, kind: str) -> _SQLTarget:
        if kind == "sqlite":
            import prepaid_wallet.storage.sqlite as sqlite

            return _SQLiteTarget(store, sqlite._DIALECT, sqlite._ROWS, sqlite._translated)
        import prepaid_wallet.storage.postgres as postgres
        from prepaid_wallet.storage._postgres_errors import translated

        return _PostgresTarget(store, postgres._DIALECT, postgres._ROWS, translated)

    # -- what a backend provides ------------------------------------------------------------

    def begin(self) -> None:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def finish(self) -> None:
        """What the journal needs after the load (nothing by default), then ``COMMIT``."""
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    # -- the load ---------------------------------------------------------------------------

    def load(self, batches: Iterator[Batch]) -> None:
        if getattr(self.store._local, "active", False):
            raise StorageError("this thread already has a unit of work open on this store")
        try:
            self.begin()
            with self.translated("copying into the store"):
                for table in sorted(TABLES, key=lambda name: name != "wallets"):
                    if self.execute(f"SELECT 1 FROM {table} LIMIT 1"):
                        raise StoreNotEmptyError(store_name(self.store),
                                                 f"is not empty: its {table} table has rows")
                self._insert_all(batches)
            self.finish()
        except BaseException:
            with contextlib.suppress(StorageError):
                self.abort()
            raise

    def _insert(self, table: str, cols: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            self.executemany(self.dialect.sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})"),
                             rows)

    def _sealed(self, table: str, cols: str, values: Sequence[Any],
                row_of: Callable[[Any], Sequence[Any]]) -> None:
        """Insert ``values`` into the sealed ``table``: each value's row, then its seal as the
        target seals it (with its own key, if it has one)."""
        sealer, canon = self.store.sealer, BY_NAME[table].canon
        self._insert(table, f"{cols}, seal",
                     [(*row_of(v), sealer.seal(table, canon(v))) for v in values])

    def _insert_all(self, batches: Iterator[Batch]) -> None:
        m = self.rows
        at = self.dialect.instant
        ends: dict[str, Any] = {}
        posting_cols = [c for c in self.columns("postings") if c in _POSTING_VALUES]
        for table, values in batches:
            if table == "condition_groups":
                ends.update((g.id, None if g.valid_until is None else at(g.valid_until))
                            for g in values)
                self._sealed(table, GROUP_COLS, values, m.group_row)
            elif table == "wallets":
                self._sealed(table, WALLET_COLS, values, m.wallet_row)
            elif table == "lots":
                def lot_row(lot: Any) -> tuple[Any, ...]:
                    row = m.lot_row(lot)  # LOT_COLS, then ends_at
                    group_end = None if lot.group_id is None else ends[lot.group_id]
                    return (*row, first_end(row[-1], group_end))

                self._sealed(table, f"{LOT_COLS}, ends_at, due_at", values, lot_row)
            elif table == "holds":
                self._sealed(table, HOLD_COLS, values, m.hold_row)
            elif table == "charges":
                self._sealed(table, CHARGE_COLS, values, m.charge_row)
            elif table == "records":
                self._sealed(table, RECORD_COLS, values, attrs.astuple)
            elif table == "entries":
                postings = []
                for journal in values:
                    entry = journal.entry
                    for position, (posting, balance) in enumerate(
                            zip(entry.postings, journal.balances, strict=True)):
                        by_name = {
                            "entry_seq": journal.seq, "entry_id": entry.id,
                            "position": position, "account": posting.account,
                            "minor": posting.amount.minor_units,
                            "currency": posting.amount.currency,
                            "recorded_at": at(entry.recorded_at), "balance_after": balance,
                        }
                        postings.append(tuple(by_name[c] for c in posting_cols))
                # Postings first: SQLite checks an entry's postings when it is inserted.
                self._insert("postings", ", ".join(posting_cols), postings)
                self._insert(table, ENTRY_COLS,
                             [(j.seq, *m.entry_row(j.entry)) for j in values])
            elif table == "wallet_history":
                self._insert(table, f"entry_seq, {HISTORY_COLS}", [
                    (seq, s.wallet_id, s.entry_id, at(s.recorded_at), s.open.currency,
                     s.open.minor_units, s.commerce.minor_units, s.held.minor_units)
                    for seq, s in values])
            elif table == "idempotency":
                self._sealed(table, IDEMPOTENCY_COLS, values, m.idempotency_row)
            elif table == "events":
                self._sealed(table, f"{EVENT_COLS}, acked_at", [e for e, _ in values],
                             _EventRow(m, at, {e.id: acked for e, acked in values}))
            else:  # pragma: no cover - read() gives only the tables above
                raise StorageError(f"unknown table {table!r}")


@attrs.frozen
class _EventRow:
    """An event's row as a load writes it: its columns, then when it was acknowledged."""

    rows: Rows
    at: Callable[[Any], Any]
    acked: dict[str, Any]

    def __call__(self, event: Any) -> tuple[Any, ...]:
        acked = self.acked[event.id]
        return (*self.rows.event_row(event), None if acked is None else self.at(acked))


#: The columns of a posting row this module knows how to fill.
_POSTING_VALUES = frozenset({
    "entry_seq", "entry_id", "position", "account", "minor", "currency", "recorded_at",
    "balance_after",
})


class _SQLiteTarget(_SQLTarget):
    def begin(self) -> None:
        self.conn = self.store._connection()
        self.store._retrying(self.conn, "BEGIN IMMEDIATE")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = self.conn.execute(sql, params).fetchall()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.execute(f"PRAGMA table_info({table})")]

    def finish(self) -> None:
        self.store._retrying(self.conn, "COMMIT")

    def abort(self) -> None:
        conn = getattr(self, "conn", None)
        with self.translated("ROLLBACK"):
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")


class _PostgresTarget(_SQLTarget):
    def begin(self) -> None:
        """``BEGIN``, then every table locked against writers (and other loads) until the
        load ends: a transaction still writing -- a killed copy whose ``COMMIT`` the server
        is still running -- is waited for, so that the check that the store is empty sees
        what it left."""
        self.conn = self.store._connection()
        with self.translated("BEGIN"):
            self.conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            self.conn.execute(f"LOCK TABLE {', '.join(TABLES)}, postings"
                              " IN SHARE ROW EXCLUSIVE MODE")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.conn.execute(sql, params)
        return [] if cursor.description is None else list(cursor.fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(sql, rows)

    def columns(self, table: str) -> list[str]:
        with self.conn.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table} LIMIT 0")
            return [column.name for column in cursor.description or ()]

    def finish(self) -> None:
        """Move the entry sequence past the last copied entry, then ``COMMIT`` (the balance
        of every entry is checked then, by the deferred constraint triggers)."""
        with self.translated("copying into the store"):
            self.execute("SELECT setval('entry_seq', m) FROM (SELECT max(seq) AS m FROM entries)"
                         " AS x WHERE m IS NOT NULL")
            self.execute("COMMIT")
        self.store._release(self.conn)

    def abort(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            self.store._release(conn)  # rolls back what is left open

