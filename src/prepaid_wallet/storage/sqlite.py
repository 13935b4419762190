"""The SQLite store: one durable file, the default backend for a single application server.

Built on the standard :mod:`sqlite3` module. Each thread gets its own connection to the file
(``isolation_level=None``: transactions are explicit), opened with ``journal_mode=WAL``,
``foreign_keys=ON``, a ``busy_timeout`` and the chosen ``synchronous`` level:

* ``"FULL"`` (the default) -- a commit survives a process crash and a power loss;
* ``"NORMAL"`` -- a commit survives a process crash, but the last commits may be lost on a power
  loss (faster: WAL is synced at checkpoints only).

A write unit of work runs ``BEGIN IMMEDIATE`` when entered, so write units are serialised over
the whole file (across threads and processes), like the memory store's one lock; a read-only unit
runs a deferred ``BEGIN`` and sees one snapshot without blocking writers. Writes are buffered in
the unit exactly as in :mod:`prepaid_wallet.storage.memory` and sent at :meth:`commit` in one
transaction (``executemany``); leaving without commit rolls back. "Database is busy" at
``BEGIN IMMEDIATE`` or ``COMMIT`` is retried a bounded number of times, then ``StorageError``.
The unit's life cycle, its reads and the row mappers are the ones every SQL store shares
(:mod:`prepaid_wallet.storage._sql`, :mod:`prepaid_wallet.storage._rows`).

Schema: the one logical schema of the SQL stores (:mod:`prepaid_wallet.storage._schema`), rendered
for SQLite: amounts are INTEGER minor units next to a currency TEXT column; instants are INTEGER
microseconds since the Unix epoch (UTC), read back as aware UTC datetimes; spend conditions are
JSON text, and so is each record (of every record type, in one table; a partial unique index
refuses two records of a kind with the same unique value). Events (the outbox) are appended in
commit order (``seq``, the rowid) and keep, once acknowledged, the instant they were. Each lot row
also keeps whether it is conditioned and when it falls due (its expiry or its condition group's
end, whichever is first), for the live and due indexes. The schema is created on open, in one
transaction, and its version recorded in ``meta``; a file written by a newer library raises
:class:`~prepaid_wallet.errors.SchemaVersionError`. What is SQLite's own (the dialect's hooks):
triggers, the database's second line of defence, keep ``entries``, ``postings`` and
``wallet_history`` append-only and refuse an entry whose postings are fewer than two or do not sum
to zero per currency; and version 2 stores postings, balance history, charges and idempotency
records clustered by the key they are read by.

Driver errors are translated in one place, :func:`_translated`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import prepaid_wallet.storage._schema as _schema
from prepaid_wallet.errors import (
    ConcurrencyError,
    ConflictError,
    DuplicateWalletError,
    IntegrityError,
    InvalidInputError,
    StorageError,
    StoreNotFoundError,
)
from prepaid_wallet.expiry import first_end
from prepaid_wallet.seals import Sealer, SealKey, check_seal_key
from prepaid_wallet.storage._buffer import balances_after
from prepaid_wallet.storage._dialect import SQLITE, micros
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._sealing import check_key, seal_all, set_key
from prepaid_wallet.storage._sql import SQLUnitOfWork
from prepaid_wallet.wallet import Lot

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "SQLiteUnitOfWork"]

#: The schema version this library writes and reads.
SCHEMA_VERSION = _schema.SCHEMA_VERSION
_TRIGGER = _schema.TRIGGER


def _opt_micros(at: datetime | None) -> int | None:
    """An instant as SQLite stores it (integer microseconds), or ``None``."""
    return None if at is None else micros(at)


# -- the dialect -----------------------------------------------------------------------------------

#: Hook ``journal`` (version 1): triggers keep the journal append-only and each entry balanced.
_JOURNAL = f"""CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (entries)'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (entries)'); END;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (postings)'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (postings)'); END;
CREATE TRIGGER wallet_history_no_update BEFORE UPDATE ON wallet_history
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (wallet_history)'); END;
CREATE TRIGGER wallet_history_no_delete BEFORE DELETE ON wallet_history
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (wallet_history)'); END;
CREATE TRIGGER entries_balanced BEFORE INSERT ON entries
BEGIN
    SELECT RAISE(ABORT, '{_TRIGGER} an entry needs at least two non-zero postings')
    WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
    SELECT RAISE(ABORT, '{_TRIGGER} unbalanced entry: postings must sum to zero per currency')
    WHERE EXISTS (
        SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(minor) != 0
    );
END;
"""

#: Hook ``write_path`` (version 2): fewer pages written per entry. Postings, balance history,
#: charges and idempotency records become clustered (WITHOUT ROWID) tables keyed the way they
#: are read; postings link to their entry by sequence number; the index of every posting by
#: account keeps only wallet accounts (the ones with a balance to look up at an instant).
_WRITE_PATH = f"""
DROP TRIGGER entries_balanced;
CREATE TABLE postings_v2 (
    entry_seq INTEGER NOT NULL REFERENCES entries (seq) DEFERRABLE INITIALLY DEFERRED,
    position INTEGER NOT NULL,
    account TEXT NOT NULL,
    minor INTEGER NOT NULL CHECK (minor != 0),
    currency TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    balance_after INTEGER,
    PRIMARY KEY (entry_seq, position)
) WITHOUT ROWID;
INSERT INTO postings_v2 (entry_seq, position, account, minor, currency, recorded_at,
                         balance_after)
    SELECT entry_seq, position, account, minor, currency, recorded_at, balance_after
    FROM postings;
DROP TABLE postings;
ALTER TABLE postings_v2 RENAME TO postings;
CREATE INDEX postings_as_of ON postings (account, recorded_at, entry_seq)
    WHERE balance_after IS NOT NULL;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (postings)'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (postings)'); END;
CREATE TRIGGER entries_balanced BEFORE INSERT ON entries
BEGIN
    SELECT RAISE(ABORT, '{_TRIGGER} an entry needs at least two non-zero postings')
    WHERE (SELECT count(*) FROM postings WHERE entry_seq = NEW.seq) < 2;
    SELECT RAISE(ABORT, '{_TRIGGER} unbalanced entry: postings must sum to zero per currency')
    WHERE EXISTS (
        SELECT 1 FROM postings WHERE entry_seq = NEW.seq GROUP BY currency HAVING sum(minor) != 0
    );
END;
CREATE TABLE wallet_history_v2 (
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    recorded_at INTEGER NOT NULL,
    entry_seq INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    open INTEGER NOT NULL,
    commerce INTEGER NOT NULL,
    held INTEGER NOT NULL,
    PRIMARY KEY (wallet_id, recorded_at, entry_seq)
) WITHOUT ROWID;
INSERT INTO wallet_history_v2 (wallet_id, recorded_at, entry_seq, entry_id, currency, open,
                               commerce, held)
    SELECT wallet_id, recorded_at, entry_seq, entry_id, currency, open, commerce, held
    FROM wallet_history;
DROP TABLE wallet_history;
ALTER TABLE wallet_history_v2 RENAME TO wallet_history;
CREATE TRIGGER wallet_history_no_update BEFORE UPDATE ON wallet_history
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (wallet_history)'); END;
CREATE TRIGGER wallet_history_no_delete BEFORE DELETE ON wallet_history
BEGIN SELECT RAISE(ABORT, '{_TRIGGER} the journal is append-only (wallet_history)'); END;
CREATE TABLE charges_v2 (
    entry_id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    allocation TEXT NOT NULL,
    refunded TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO charges_v2 SELECT entry_id, wallet_id, currency, amount, allocation, refunded
    FROM charges;
DROP TABLE charges;
ALTER TABLE charges_v2 RENAME TO charges;
CREATE TABLE idempotency_v2 (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    operation TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
INSERT INTO idempotency_v2 SELECT scope, key, operation, request, outcome, payload, created_at
    FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_v2 RENAME TO idempotency;
"""

_DIALECT = SQLITE
_ROWS = Rows(_DIALECT)

_SCRIPTS = _schema.render(
    _DIALECT,
    {"journal": _JOURNAL, "write_path": _WRITE_PATH, "write_unit_6": "", "write_unit_7": "",
     "write_unit_8": "", "write_unit_9": "", "write_unit": ""},
)
#: Version 1 of the schema, as first released. A new file gets it and then every migration, in
#: the same transaction, so a new file and a migrated one always have the same schema.
_SCHEMA_V1 = _SCRIPTS[1]
#: ``_MIGRATIONS[n]`` turns schema ``n - 1`` into ``n``; each runs inside the one transaction
#: that opens the file.
_MIGRATIONS: dict[int, str] = {v: script for v, script in _SCRIPTS.items() if v > 1}

#: What a lot write sends: the columns read, when it ends whatever its group does and when it
#: falls due.
_LOT_WRITE_COLS = _schema.LOT_COLS + ", ends_at, due_at"
#: When a lot of a group whose end moved to ``:until`` falls due.
_DUE_AT = _schema.first_end_sql(SQLITE, "ends_at", ":until")

_SYNCHRONOUS = ("FULL", "NORMAL")


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced: the store tracks its threads' connections
    without keeping a dead thread's connection open (it closes when its thread-local goes)."""


# -- the one choke point for driver errors ---------------------------------------------------------


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn any :mod:`sqlite3` error raised inside the block into a library error."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        message = str(exc)
        if _TRIGGER in message:
            raise IntegrityError(f"{action}: {message}") from exc
        if message.startswith("UNIQUE constraint failed"):
            raise ConflictError(f"{action}: {message}") from exc
        raise StorageError(f"{action}: {message}") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"{action}: {exc}") from exc


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (``executescript`` would commit first)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _lot_row(lot: Lot, group_ends: dict[str, int | None]) -> tuple[Any, ...]:
    """The lot's columns (:data:`_LOT_WRITE_COLS`); ``group_ends`` holds the end of validity
    (``valid_until``) of its group, if it has one: the lot falls due at its own end or its
    group's, whichever is first."""
    row = _ROWS.lot_row(lot)
    return (*row, row[-1] if lot.group_id is None else first_end(row[-1], group_ends[lot.group_id]))


def _read_only_uri(path: str) -> str:
    """A ``file:`` URI that opens ``path`` read-only (``%``, ``?`` and ``#`` escaped; built by
    hand so that opening a store does not import ``pathlib``)."""
    absolute = os.path.abspath(path)
    for char, escape in (("%", "%25"), ("?", "%3F"), ("#", "%23")):
        absolute = absolute.replace(char, escape)
    return f"file:{absolute}?mode=ro"


# -- the store -------------------------------------------------------------------------------------


class SQLiteStore:
    """A store in one SQLite file. ``open_store("sqlite:///path/to/wallets.db")`` makes one.

    ``synchronous`` is ``"FULL"`` (default: commits survive a power loss) or ``"NORMAL"``
    (commits survive a process crash; the last ones may be lost on a power loss).
    ``busy_timeout_ms`` is how long SQLite itself waits for another writer, and
    ``busy_retries`` how many more times ``BEGIN IMMEDIATE`` / ``COMMIT`` are tried after that
    (with a short backoff) before ``StorageError``. Creates the file and its schema if needed,
    or with ``create=False`` raises ``StoreNotFoundError`` (and creates nothing) when the file
    does not exist or holds no store; an older schema is migrated either way. Raises
    ``SchemaVersionError`` for a file written by a newer library, ``StorageError`` if the file
    cannot be opened, ``InvalidInputError`` for a bad argument.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        busy_retries: int = 10,
        create: bool = True,
        seal_key: SealKey | None = None,
    ) -> None:
        check_seal_key(seal_key)
        if not isinstance(path, str) or not path or path == ":memory:" or "\x00" in path:
            raise InvalidInputError("path", "must name a database file", path)
        level = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if level not in _SYNCHRONOUS:
            raise InvalidInputError("synchronous", "must be 'FULL' or 'NORMAL'", synchronous)
        for name, value in (("busy_timeout_ms", busy_timeout_ms), ("busy_retries", busy_retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(name, "must be an int >= 0", value)
        self.path = path
        self.synchronous = level
        self.busy_timeout_ms = busy_timeout_ms
        self.busy_retries = busy_retries
        self.sealer = Sealer(seal_key)
        self._local = threading.local()
        self._guard = threading.Lock()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._closed = False
        if not create:
            self._require_store()
        try:
            self._create_schema()
        except BaseException:
            self.close()
            raise

    def _require_store(self) -> None:
        """``StoreNotFoundError`` unless the file exists and holds the library's tables; it is
        read without being changed (read-only, no journal mode set)."""
        if not os.path.isfile(self.path):
            raise StoreNotFoundError(os.path.abspath(self.path), "there is no such file")
        with _translated(f"opening {self.path!r}"):
            conn = sqlite3.connect(_read_only_uri(self.path), uri=True)
            try:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
            finally:
                conn.close()
        if found is None:
            raise StoreNotFoundError(os.path.abspath(self.path), "the file holds no wallet store")

    # -- connections and transactions ------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StorageError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with _translated(f"opening {self.path!r}"):
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=self.busy_timeout_ms / 1000, factory=_Connection,
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
            except BaseException:
                conn.close()
                raise
        with self._guard:
            if self._closed:
                conn.close()
                raise StorageError("the store is closed")
            self._connections.add(conn)
        self._local.conn = conn
        return conn

    def _retrying(self, conn: sqlite3.Connection, sql: str) -> None:
        """Run ``BEGIN IMMEDIATE`` or ``COMMIT``, retrying while the database is busy."""
        for attempt in itertools.count():
            try:
                conn.execute(sql)
                return
            except sqlite3.Error as exc:
                if not _is_busy(exc) or attempt >= self.busy_retries:
                    with _translated(sql):
                        raise
                time.sleep(min(0.005 * 2**attempt, 0.2))

    def _create_schema(self) -> None:
        with self._immediate() as conn, _translated("creating the schema"):
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            if exists is None:
                for statement in _statements(_SCHEMA_V1):
                    conn.execute(statement)
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
                found = 1
            else:
                row = conn.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
                found = int(row[0]) if row is not None else 0
            for version in _schema.versions_to_run(found, _MIGRATIONS):
                for statement in _statements(_MIGRATIONS[version]):
                    conn.execute(statement)
            if found < _schema.SEAL_VERSION:
                seal_all(conn.execute, conn.executemany, _ROWS, self.sealer, _DIALECT.sql)
            check_key(conn.execute, self.sealer, sealed_now=found < _schema.SEAL_VERSION,
                      mark=_DIALECT.sql)
            if found < SCHEMA_VERSION:
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )

    def reseal(self, key: SealKey | None) -> int:
        """Seal every row again with ``key`` (``None``: without a key), in one transaction
        that holds off every writer, and use it from now on; returns the number of rows
        sealed. Check the store first (``WalletService.reseal`` does): a row changed before is
        sealed as it is. Other processes must open the store with the new key afterwards
        (``SealKeyError`` otherwise)."""
        sealer = Sealer(check_seal_key(key, "key"))
        with self._immediate() as conn, _translated("sealing"):
            done = seal_all(conn.execute, conn.executemany, _ROWS, sealer, _DIALECT.sql)
            set_key(conn.execute, sealer, _DIALECT.sql)
        self.sealer = sealer
        return done

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection inside ``BEGIN IMMEDIATE``: committed when the block ends,
        rolled back if it raises."""
        conn = self._connection()
        self._retrying(conn, "BEGIN IMMEDIATE")
        try:
            yield conn
            self._retrying(conn, "COMMIT")
        except BaseException:
            with _translated("rolling back"):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise

    def unit_of_work(self, *, read_only: bool = False) -> SQLiteUnitOfWork:
        """A new unit of work: ``BEGIN IMMEDIATE`` when entered (a deferred ``BEGIN`` if
        ``read_only``)."""
        if self._closed:
            raise StorageError("the store is closed")
        return SQLiteUnitOfWork(self, read_only=read_only)

    def close(self) -> None:
        """Close every connection this store opened; further units raise ``StorageError``.
        Harmless when called again."""
        with self._guard:
            self._closed = True
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):  # closing is best effort
                conn.close()

    # -- the dump --------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Canonical dump of everything stored: the same dict as
        :meth:`~prepaid_wallet.storage.memory.MemoryStore.export_state`."""
        conn = self._connection()
        if getattr(self._local, "active", False):  # inside this thread's own unit of work
            return self._export(conn)
        with _translated("exporting"):
            conn.execute("BEGIN")
        try:
            return self._export(conn)
        finally:
            with _translated("exporting"):
                conn.execute("ROLLBACK")

    def _export(self, conn: sqlite3.Connection) -> dict[str, Any]:
        with _translated("exporting"):
            return SQLiteUnitOfWork.export_tables(conn)


class SQLiteUnitOfWork(SQLUnitOfWork[sqlite3.Connection]):
    """A unit of work on a :class:`SQLiteStore` (see :mod:`prepaid_wallet.storage.base`)."""

    _DIALECT = _DIALECT
    _ROWS = _ROWS
    _LIVE_ORDER = _schema.live_order(_DIALECT)
    _store: SQLiteStore

    def __init__(self, store: SQLiteStore, *, read_only: bool = False) -> None:
        super().__init__(store, read_only=read_only)

    # -- the dialect's own ways -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection, inside ``BEGIN IMMEDIATE`` (a deferred ``BEGIN`` for a
        read-only unit)."""
        conn = self._store._connection()
        if self._read_only:
            with _translated("BEGIN"):
                conn.execute("BEGIN")
        else:
            self._store._retrying(conn, "BEGIN IMMEDIATE")
        return conn

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        return self._check_open().execute(sql, params)

    def _lazy(self, sql: str, params: Sequence[Any], batch: int) -> Iterator[Any]:
        """Rows of ``sql``, fetched ``batch`` at a time from one cursor."""
        conn = self._check_open()
        with _translated("reading"):
            cursor = conn.execute(sql, params)
        try:
            while True:
                with _translated("reading"):
                    rows = cursor.fetchmany(batch)
                if not rows:
                    return
                yield from rows
        finally:
            with contextlib.suppress(sqlite3.Error):  # its connection may be closed already
                cursor.close()

    def _must_roll_back(self, conn: sqlite3.Connection) -> bool:
        return not self._store._closed and conn.in_transaction

    def _translated(self, action: str) -> contextlib.AbstractContextManager[None]:
        return _translated(action)

    # -- commit ----------------------------------------------------------------------------

    def _send(self, conn: sqlite3.Connection) -> None:
        """Validate the buffered writes, send them (``executemany``) and commit."""
        if self._has_writes():
            group_ends = self._validate()
            self._write_terms()
            self._flush(conn, group_ends)
        self._store._retrying(conn, "COMMIT")

    def _validate(self) -> dict[str, int | None]:
        """The checks of the memory store, against the database, before anything is sent.
        Returns the end of validity of every group a buffered lot refers to (``IntegrityError``
        for a group neither stored nor buffered)."""
        for wallet in self._new_wallets:
            if self._one("SELECT 1 FROM wallets WHERE id = ?", (wallet.id,)) is not None:
                raise ConflictError(f"wallet id {wallet.id!r} already exists")
            key = (wallet.tenant_id, wallet.owner_id, wallet.currency)
            row = self._one(
                "SELECT id FROM wallets WHERE tenant_id = ? AND owner_id = ? AND currency = ?",
                key,
            )
            if row is not None:
                raise DuplicateWalletError(*key, row[0])
        # An entry id used twice in this unit is caught here; one already stored, by the
        # UNIQUE index on entries.id at insert (the write lock rules out any other writer, and
        # ``put_idempotency`` already looked its key up).
        self._check_changes()
        if self._records:
            self._check_wallets(self._record_wallets())
        return self._group_ends()

    def _group_ends(self) -> dict[str, int | None]:
        """``valid_until`` (microseconds) of each group the buffered lots refer to: from this
        unit's groups, else one read of the stored ones. Lots without a group read nothing."""
        ends: dict[str, int | None] = {}
        wanted: set[str] = set()
        for lot in self._lots.values():
            group_id = lot.group_id
            if group_id is None or group_id in ends:
                continue
            group = self._groups.get(group_id)
            if group is not None:
                ends[group_id] = _opt_micros(group.valid_until)
            else:
                wanted.add(group_id)
        if wanted:
            ids = sorted(wanted)
            rows = self._all(
                f"SELECT id, valid_until FROM condition_groups WHERE id IN"
                f" ({','.join('?' * len(ids))})",
                ids,
            )
            ends.update((row[0], row[1]) for row in rows)
            missing = [group_id for group_id in ids if group_id not in ends]
            if missing:
                lot = next(lot for lot in self._lots.values() if lot.group_id == missing[0])
                raise IntegrityError(
                    f"lot {lot.id!r} refers to unknown condition group {missing[0]!r}"
                )
        return ends

    def _flush_groups(self, conn: sqlite3.Connection) -> None:
        """Write this unit's groups; a group whose end of validity moved takes its live lots
        along (each falls due at its own expiry or the new end, whichever is first)."""
        for group_id in sorted(self._groups):
            group = self._groups[group_id]
            until = _opt_micros(group.valid_until)
            stored = conn.execute(
                "SELECT valid_until FROM condition_groups WHERE id = ?", (group_id,)
            ).fetchone()
            row = _ROWS.group_row(group)
            conn.execute(
                f"INSERT INTO condition_groups ({_schema.GROUP_COLS}, seal)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,"
                " name = excluded.name, version = excluded.version,"
                " condition = excluded.condition, valid_from = excluded.valid_from,"
                " valid_until = excluded.valid_until, seal = excluded.seal",
                (*row, self._seal("condition_groups", row)),
            )
            if stored is not None and stored[0] != until:
                conn.execute(
                    f"UPDATE lots SET due_at = {_DUE_AT}"
                    " WHERE group_id = :group AND remaining > 0",
                    {"until": until, "group": group_id},
                )

    def _flush(self, conn: sqlite3.Connection, group_ends: dict[str, int | None]) -> None:
        new_ids = {w.id for w in self._new_wallets}
        if self._groups:
            with _translated("writing condition groups"):
                self._flush_groups(conn)
        with _translated("writing wallets"):
            if self._new_wallets:
                conn.executemany(
                    f"INSERT INTO wallets ({_schema.WALLET_COLS}, seal)"
                    f" VALUES ({','.join('?' * 15)})",
                    [self._sealed("wallets", _ROWS.wallet_row(self._wallets[w.id]))
                     for w in self._new_wallets],
                )
            # A change moves balances, version, head and its instant only; the rest of a wallet
            # is fixed.
            updates = [
                (w.open.minor_units, w.commerce.minor_units, w.held.minor_units,
                 w.status.value, w.version, w.head, _ROWS.optional_instant(w.last_at),
                 self._seal("wallets", _ROWS.wallet_row(w)), w.id,
                 self._base_versions.get(w.id, 0))
                for w in self._wallets.values()
                if w.id not in new_ids
            ]
            if len(updates) > 1:  # a batch: one statement; each row by itself only on a miss
                cursor = conn.executemany(
                    "UPDATE wallets SET open = ?, commerce = ?, held = ?, status = ?,"
                    " version = ?, head = ?, last_at = ?, seal = ? WHERE id = ? AND version = ?",
                    updates,
                )
                if cursor.rowcount != len(updates):  # some update did not apply: which?
                    for row in updates:
                        found = conn.execute("SELECT version, head FROM wallets WHERE id = ?",
                                             (row[-2],)).fetchone()
                        if found is None or (found[0], found[1]) != (row[4], row[5]):
                            raise ConcurrencyError(str(row[-2]), int(row[-1]),
                                                   found[0] if found else 0)
                updates = []
            for row in updates:
                cursor = conn.execute(
                    "UPDATE wallets SET open = ?, commerce = ?, held = ?, status = ?,"
                    " version = ?, head = ?, last_at = ?, seal = ? WHERE id = ? AND version = ?",
                    row,
                )
                if cursor.rowcount != 1:  # this update did not apply: the version moved
                    wallet_id, base = row[-2], row[-1]
                    found = conn.execute("SELECT version FROM wallets WHERE id = ?", (wallet_id,))
                    current = found.fetchone()
                    raise ConcurrencyError(str(wallet_id), int(base), current[0] if current else 0)
        if self._records:  # after the wallets: a wallet opened in this unit may get records
            self._flush_records(conn)
        self._flush_journal(conn)
        if self._events or self._acks:
            self._flush_events(conn)
        with _translated("writing lots, holds and charges"):
            if self._lots:
                self._flush_lots(conn, group_ends)
            if self._holds:
                conn.executemany(
                    f"INSERT INTO holds ({_schema.HOLD_COLS}, seal) VALUES ({','.join('?' * 13)})"
                    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                    " captured = excluded.captured,"
                    " resolved_entry_id = excluded.resolved_entry_id,"
                    " resolved_at = excluded.resolved_at, seal = excluded.seal",
                    [self._sealed("holds", _ROWS.hold_row(h)) for h in self._holds.values()],
                )
            if self._charges:
                conn.executemany(
                    f"INSERT INTO charges ({_schema.CHARGE_COLS}, seal)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (entry_id) DO UPDATE SET refunded = excluded.refunded,"
                    " seal = excluded.seal",
                    [self._sealed("charges", _ROWS.charge_row(c))
                     for c in self._charges.values()],
                )
        if self._idempotency:
            with _translated("writing idempotency records"):
                conn.executemany(
                    f"INSERT INTO idempotency ({_schema.IDEMPOTENCY_COLS}, seal)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [self._sealed("idempotency", _ROWS.idempotency_row(r))
                     for r in self._idempotency.values()],
                )

    def _flush_lots(self, conn: sqlite3.Connection, group_ends: dict[str, int | None]) -> None:
        """Write this unit's lots. A lot's terms are fixed when it is granted; what moves is
        its remainder, its expiry entry, and when it falls due (its group's end may have moved
        while it was empty). A lot granted by an earlier unit (its granting entry is not one
        of this unit's) is updated in place; the others, and any such lot the update did not
        find, are upserted."""
        rows = [(*row, self._seal("lots", row[:-1]))
                for row in (_lot_row(lot, group_ends) for lot in self._lots.values())]
        granted_here = {change.entry.id for change in self._changes}
        stored = [row for row in rows if row[9] not in granted_here]  # 9: entry_id
        if stored:
            cursor = conn.executemany(
                "UPDATE lots SET remaining = ?, expired_entry_id = ?, due_at = ?, seal = ?"
                " WHERE id = ?",
                [(row[4], row[10], row[16], row[17], row[0]) for row in stored],
            )
            if cursor.rowcount == len(stored):
                rows = [row for row in rows if row[9] in granted_here]
        if rows:
            conn.executemany(
                f"INSERT INTO lots ({_LOT_WRITE_COLS}, seal) VALUES ({','.join('?' * 18)})"
                " ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,"
                " expired_entry_id = excluded.expired_entry_id, due_at = excluded.due_at,"
                " seal = excluded.seal",
                rows,
            )

    def _flush_records(self, conn: sqlite3.Connection) -> None:
        """Write this unit's records (:meth:`_record_statements`); a unique value another
        record holds violates the partial unique index (``ConflictError``)."""
        with _translated("writing records"):
            try:
                for sql, rows in self._record_statements():
                    conn.executemany(sql, rows)
            except sqlite3.IntegrityError as exc:
                if "records.uniq" in str(exc):
                    raise ConflictError(
                        f"writing records: a record's unique value is already taken ({exc})"
                    ) from exc
                raise

    def _flush_events(self, conn: sqlite3.Connection) -> None:
        """Append this unit's events in its order (an id already stored conflicts), then mark
        the events it acknowledged, if still pending, with the current instant."""
        with _translated("writing events"):
            if self._events:
                conn.executemany(
                    f"INSERT INTO events ({_schema.EVENT_COLS}, seal) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [self._sealed("events", _ROWS.event_row(e)) for e in self._events],
                )
            now = micros(datetime.now(UTC))
            for tenant_id, event_ids in sorted(self._acks.items()):
                ids = sorted(event_ids)
                conn.execute(
                    f"UPDATE events SET acked_at = ? WHERE id IN ({','.join('?' * len(ids))})"
                    " AND tenant_id = ? AND acked_at IS NULL",
                    (now, *ids, tenant_id),
                )

    def _flush_journal(self, conn: sqlite3.Connection) -> None:
        if not self._changes:
            return
        postings: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        with _translated("writing the journal"):
            (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM entries").fetchone()
            for seq, change in enumerate(self._changes, start=last + 1):
                entry = change.entry
                at = micros(entry.recorded_at)
                postings.extend(
                    (seq, position, posting.account, posting.amount.minor_units,
                     posting.amount.currency, at, balance)
                    for position, (posting, balance) in enumerate(
                        zip(entry.postings, balances_after(change), strict=True)
                    )
                )
                entries.append((seq, *_ROWS.entry_row(entry)))
                history.extend(
                    (w.id, at, seq, entry.id, w.currency, w.open.minor_units,
                     w.commerce.minor_units, w.held.minor_units)
                    for w in change.wallets
                )
            conn.executemany(
                "INSERT INTO postings (entry_seq, position, account, minor, currency,"
                " recorded_at, balance_after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                postings,
            )
            try:
                conn.executemany(
                    f"INSERT INTO entries ({_schema.ENTRY_COLS}) VALUES ({','.join('?' * 13)})",
                    entries,
                )
            except sqlite3.IntegrityError as exc:
                if "entries.id" in str(exc):
                    raise IntegrityError(f"an entry id is already used: {exc}") from exc
                raise
            conn.executemany(
                "INSERT INTO wallet_history (wallet_id, recorded_at, entry_seq, entry_id,"
                " currency, open, commerce, held) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                history,
            )
