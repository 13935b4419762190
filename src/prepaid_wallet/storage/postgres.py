"""The PostgreSQL store: one database shared by many application servers.

Built on psycopg 3 and :class:`psycopg_pool.ConnectionPool` (install them with
``pip install 'prepaid_wallet[postgres]'``). ``open_store("postgresql://...")`` imports this
module, so a host that never opens a PostgreSQL URL never imports the driver.

Transactions (the connections run in autocommit mode; every unit sends its own ``BEGIN``
together with its first statement, so it costs no round trip of its own):

* a write unit runs ``BEGIN ISOLATION LEVEL READ COMMITTED``;
  :meth:`PostgresUnitOfWork.lock_wallets` runs ``SELECT ... FOR UPDATE`` on the wallets in
  sorted id order, and every write command locks its wallets before it reads what it changes, so
  lots, holds and charges are read with plain ``SELECT``: the wallet lock covers them;
* a read-only unit runs ``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY``: one consistent
  snapshot, no row locks.

When the lock is a unit's first statement, ``BEGIN`` and the ``SELECT`` go as one simple query
(the ids written as escaped literals), the ``SELECT`` a statement every pooled connection
prepared when it was made (``EXECUTE``, :mod:`prepaid_wallet.storage._postgres_prepared`): it
is not parsed and planned anew each time. Any other first statement goes in one pipeline with
``BEGIN``. Wallets read by a unit are kept for the rest of it: reading one again costs nothing.

Writes are buffered in the unit exactly as in :mod:`prepaid_wallet.storage.sqlite` and sent at
:meth:`PostgresUnitOfWork.commit` as one simple query,
``SELECT write_unit('<the writes as JSON>'); COMMIT``, so a simple write command (lock, decide,
write) is two round trips (one in an optimistic unit, below). When the call is the unit's only
statement it goes alone: one implicit transaction, READ COMMITTED (every pooled connection's
default, set once when it is made rather than by a ``SET TRANSACTION`` in every such query),
committed at the end of the query or rolled back by its error, so a failed commit sends no
``ROLLBACK`` after. ``write_unit`` (a PL/pgSQL function of the schema) applies the writes set
by set. Nothing it needs is read first:

* the balance after each posting comes from the state the change carries
  (:func:`~prepaid_wallet.storage._buffer.balances_after`);
* entries draw their sequence numbers with ``nextval`` as they are inserted, in the unit's
  order, after the wallets are locked; their postings and history rows take them from the
  insert's ``RETURNING``;
* an entry id or an idempotency key already stored is refused by the database (the unique
  index on ``entries.id``, the key of ``idempotency``) and translated by constraint name; an
  entry id used twice in the unit is caught before sending. Only a unit that opens wallets reads
  first (one pipeline: ids and owner keys already taken);
* each changed wallet is updated with ``... WHERE id = ... AND version = <the version the unit
  built on>``; when no row matched, ``wallet_moved()`` raises (SQLSTATE ``PW001``, the wallet,
  expected and found versions in the detail), which ends the query before its ``COMMIT`` and
  becomes :class:`~prepaid_wallet.errors.ConcurrencyError`;
* condition groups are written first (each row locked); a group whose end of validity moved
  moves ``due_at`` of its live lots. Then the groups the unit's lots refer to are share-locked
  (a concurrent change of one waits for this unit, or this unit for it) and ``due_at`` of each
  lot is computed from its group's end; a lot of an unknown group raises, which becomes
  :class:`~prepaid_wallet.errors.IntegrityError`;
* records (of every record type) are written after the wallets: removals, then upserts by kind
  and key; a record of a wallet that is not stored raises (SQLSTATE ``PW002``), which becomes
  :class:`~prepaid_wallet.errors.WalletNotFoundError`, and a unique value another record of the
  kind holds violates the partial unique index ``records_unique`` and becomes
  :class:`~prepaid_wallet.errors.ConflictError`. A unit without records sends none.
* events (the outbox) are appended after the journal, in the unit's order (an event id already
  stored violates ``events_id_key`` and becomes :class:`~prepaid_wallet.errors.ConflictError`),
  then the events the unit acknowledged are marked with the database's current time if still
  pending. A unit without events or acknowledgements sends none.

A failed commit rolls the whole transaction back and ends the unit.

Optimistic units (:meth:`PostgresStore.optimistic_unit_of_work`, what the command pipeline runs a
command in first). The store keeps what it last saw committed
(:mod:`prepaid_wallet.storage._postgres_seen`): the wallets its units locked or committed, and
the tenant records read with a lock. ``lock_wallets`` (and a wallet read, as a tenant-scoped
service makes before it locks) of an optimistic unit that has sent and buffered nothing answers
from there when every wallet and record is known, sending nothing and locking nothing (a
*guess*); the unit is decided on it. Nothing is trusted:

* at commit, ``write_unit`` receives the guess (each wallet's version and floor; each record's
  kind, key and JSON): a guessed wallet it changes is updated only ``WHERE version = ... AND
  floor = ...`` as guessed (if the unit guessed wallets it does not change, every guessed
  wallet is first locked ``FOR UPDATE`` in id order and compared), and the records are
  compared; all of it in the one transaction of the commit. A wallet's version moves with every
  change of its balances, status or chain and its floor is compared as well, so equal means the
  wallet is exactly as decided on, and stays so until the commit (the row lock). A mismatch
  raises ``PW001`` (a wallet) or ``PW003`` (a record) and nothing is written;
* before any other statement (a read of lots, of an idempotency key, a second lock...) the
  unit first locks the guessed wallets and reads the records with ``BEGIN``, as an ordinary
  unit's first statement, and compares; from then on it is an ordinary unit;
* a unit that ends without writing -- a refusal decided on the guess, or nothing to write --
  compares the guess with one ``REPEATABLE READ`` snapshot before it ends;
* any mismatch (or a deadlock in the guessed commit) raises
  :class:`~prepaid_wallet.errors.StaleStateError` (a ``ConcurrencyError``): nothing was
  written, and the pipeline runs the command again in an ordinary unit, which locks first.

Wallet versions only grow, so a wallet found equal to the guess was so from the moment it was
seen to the check; every row a command reads besides the wallets and the tenant records is
read after the lock (above), as in an ordinary unit. A command on wallets the store saw last is
one round trip; a failed guess costs one more than locking first, so the store follows the
odds that a guess holds and stops guessing below even odds but for a probe now and then.

Retries. The body of a unit belongs to the caller (the service), so a unit cannot be replayed
from inside the library once it has read and decided something. The library retries, up to
``retries`` times with a short backoff, only what it can replay on its own: the first statement
of a unit on a broken pooled connection (discarded and replaced), the first
``lock_wallets`` of a unit that holds no lock and has buffered nothing (a deadlock or
serialization failure there is replayed in a new transaction, which READ COMMITTED makes
indistinguishable from waiting), the schema creation and :meth:`PostgresStore.export_state`.
Anywhere else a deadlock (``40P01``) or serialization failure (``40001``) rolls the unit back and
raises :class:`~prepaid_wallet.errors.StorageError` saying the command may be retried. With
sorted-order locking and one ``lock_wallets`` call per command this does not happen between
library users.

The unit's life cycle, its reads and the row mappers are the ones every SQL store shares
(:mod:`prepaid_wallet.storage._sql`, :mod:`prepaid_wallet.storage._rows`).

Schema: the one logical schema of the SQL stores (:mod:`prepaid_wallet.storage._schema`), rendered
for PostgreSQL: amounts are BIGINT minor units next to a currency column; instants are
``timestamptz`` (the session time zone is UTC); ids and other ordered text use ``COLLATE "C"`` so
the database sorts exactly like Python. The schema is created (or checked, or migrated) on open in
one transaction under an advisory lock, so two processes starting at once do not race, and its
version is recorded in ``meta``: a new schema is created as version 1 plus every migration, so a
new and a migrated schema are the same; a database written by a newer library raises
:class:`~prepaid_wallet.errors.SchemaVersionError`. What is PostgreSQL's own (the dialect's hooks,
declared in :mod:`prepaid_wallet.storage._postgres_ddl`): the entry sequence, the functions
``write_unit`` and ``wallet_moved``, and the database's second line of defence: triggers keep
``entries``, ``postings`` and ``wallet_history`` append-only, and a deferred constraint trigger
refuses, at commit, an entry whose postings are fewer than two or do not sum to zero per currency.
``schema=`` puts every table in that PostgreSQL schema (created if missing; ``search_path`` is set
on each pooled connection).

Driver errors are translated in one place, :func:`_translated`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

import prepaid_wallet.storage._schema as _schema
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import (
    ConditionGroupNotFoundError,
    ConflictError,
    DuplicateWalletError,
    InvalidInputError,
    StorageError,
    StoreNotFoundError,
    WalletNotFoundError,
)
from prepaid_wallet.seals import Sealer, SealKey, check_seal_key
from prepaid_wallet.storage._buffer import balances_after
from prepaid_wallet.storage._dialect import POSTGRES
from prepaid_wallet.storage._postgres_ddl import HOOKS
from prepaid_wallet.storage._postgres_errors import RETRYABLE as _RETRYABLE
from prepaid_wallet.storage._postgres_errors import library_error as _library_error
from prepaid_wallet.storage._postgres_errors import translated as _translated
from prepaid_wallet.storage._postgres_guess import (
    BEGIN_READ,
    GuessingUnit,
    key_stale_error,
    records_read,
    stale_error,
)
from prepaid_wallet.storage._postgres_prepared import (
    LOCK,
    PREPARE,
    READ,
    rollback,
    run_reads,
)
from prepaid_wallet.storage._postgres_prepared import TENANT_RECORDS as _TENANT_RECORDS
from prepaid_wallet.storage._postgres_seen import Seen
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._sealing import BY_NAME, CANON, TABLES, check_key, seal_all, set_key
from prepaid_wallet.storage._sql import SQLUnitOfWork
from prepaid_wallet.storage.base import IdempotencyRecord, RecordType
from prepaid_wallet.wallet import Wallet

__all__ = ["SCHEMA_VERSION", "PostgresStore", "PostgresUnitOfWork"]

#: The schema version this library writes and reads.
SCHEMA_VERSION = _schema.SCHEMA_VERSION

_Conn = psycopg.Connection[TupleRow]

_IDLE = psycopg.pq.TransactionStatus.IDLE
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED"
_BEGIN_READ = BEGIN_READ



_WALLET_NAMES = _schema.names(_schema.WALLET_COLS)
#: What a lot write sends: its columns, and when it ends whatever its group does.
_LOT_WRITE_NAMES = (*_schema.names(_schema.LOT_COLS), "ends_at")
_GROUP_COLS = _schema.GROUP_COLS
_GROUP_NAMES = _schema.names(_GROUP_COLS)
_HOLD_NAMES = _schema.names(_schema.HOLD_COLS)
_CHARGE_NAMES = _schema.names(_schema.CHARGE_COLS)
_ENTRY_NAMES = _schema.names(_schema.ENTRY_COLS)[1:]  # but seq, drawn by write_unit
_IDEMPOTENCY_NAMES = _schema.names(_schema.IDEMPOTENCY_COLS)
_EVENT_NAMES = _schema.names(_schema.EVENT_COLS)

_DIALECT = POSTGRES
_ROWS = Rows(_DIALECT)

_SCRIPTS = _schema.render(_DIALECT, HOOKS)
#: Schema version 1. A new schema is this followed by every migration.
_SCHEMA = _SCRIPTS[1]
#: Upgrade steps: ``_MIGRATIONS[n]`` turns schema ``n - 1`` into ``n``.
_MIGRATIONS: dict[int, str] = {v: script for v, script in _SCRIPTS.items() if v > 1}

_LIVE_ORDER = _schema.live_order(_DIALECT)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _json_default(value: object) -> str:
    """Instants in the JSON handed to ``write_unit``: ISO 8601 with their offset."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(name, f"must be an int >= {low}", value)
    return value


# -- the store -------------------------------------------------------------------------------------


class PostgresStore:
    """A store in a PostgreSQL database. ``open_store("postgresql://host/dbname")`` makes one.

    ``dsn`` is a libpq connection string or URL. ``schema`` (a lower-case identifier) puts the
    tables in that PostgreSQL schema, created if missing; by default they go in the
    connection's current schema. ``min_size`` / ``max_size`` bound the connection pool;
    ``retries`` is how many more times the library replays what it can replay on its own (see
    the module docstring) after a broken connection, a deadlock or a serialization failure.
    Creates the schema if needed, or with ``create=False`` raises ``StoreNotFoundError`` (and
    creates nothing) when the tables are not there; an older schema is migrated either way.
    Raises ``SchemaVersionError`` for a database written by a newer library, ``StorageError``
    if the database cannot be reached, ``InvalidInputError`` for a bad argument.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        retries: int = 5,
        timeout: float = 30.0,
        create: bool = True,
        seal_key: SealKey | None = None,
    ) -> None:
        check_seal_key(seal_key)
        if not isinstance(dsn, str) or "\x00" in dsn:
            raise InvalidInputError("dsn", "must be a libpq connection string or URL", dsn)
        if schema is not None and (
            not isinstance(schema, str) or _SCHEMA_NAME.fullmatch(schema) is None
        ):
            raise InvalidInputError(
                "schema", "must be a lower-case identifier ([a-z_][a-z0-9_]*)", schema
            )
        _check_int("min_size", min_size, 0)
        _check_int("max_size", max_size, max(1, min_size))
        _check_int("retries", retries, 0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InvalidInputError("timeout", "must be a number of seconds > 0", timeout)
        self.dsn = dsn
        self.schema = schema
        self.retries = retries
        self.sealer = Sealer(seal_key)
        self._local = threading.local()
        self._closed = False
        self._create = create
        #: What the store last saw committed, for optimistic units.
        self._seen = Seen()
        self._create_schema()
        self._pool: ConnectionPool[_Conn] = ConnectionPool(
            dsn, min_size=min_size, max_size=max_size, open=False, configure=self._configure_pooled,
            kwargs={"autocommit": True}, timeout=float(timeout),
            name=f"prepaid_wallet:{schema or ''}",
        )
        with _translated("opening the connection pool"):
            self._pool.open()

    # -- connections and transactions ------------------------------------------------------

    def _configure(self, conn: _Conn) -> None:
        """Every new connection: UTC, and the store's schema first on the search path."""
        conn.execute("SET TIME ZONE 'UTC'")
        if self.schema is not None:
            conn.execute(f"SET search_path TO {_quote(self.schema)}")

    def _configure_pooled(self, conn: _Conn) -> None:
        """Every new pooled connection: :meth:`_configure`; its transactions default to READ
        COMMITTED (what a unit's commit runs in when it is the unit's only statement), and the
        reads a unit's first statement runs are prepared
        (:mod:`prepaid_wallet.storage._postgres_prepared`)."""
        self._configure(conn)
        conn.execute(b"SET default_transaction_isolation TO 'read committed'; " + PREPARE)

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(0.005 * 2**attempt, 0.2))

    def _create_schema(self) -> None:
        """Create, check or migrate the schema, in one transaction under an advisory lock."""
        for attempt in itertools.count():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    self._configure(conn)
                    conn.execute("BEGIN")
                    self._create_schema_in(conn)
                    conn.execute("COMMIT")
                return
            except psycopg.Error as exc:
                if exc.sqlstate not in _RETRYABLE or attempt >= self.retries:
                    raise _library_error("creating the schema", exc) from exc
                self._backoff(attempt)

    def _create_schema_in(self, conn: _Conn) -> None:
        if self.schema is not None:
            name = self.schema
        else:
            row = conn.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                raise StorageError("creating the schema: the connection has no current schema")
            name = str(row[0])
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"prepaid_wallet:{name}",))
        quoted = _quote(name)
        if self.schema is not None and self._create:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        row = conn.execute("SELECT to_regclass(%s)", (f"{quoted}.meta",)).fetchone()
        if (row is None or row[0] is None) and not self._create:
            raise StoreNotFoundError(f"database {conn.info.dbname!r}, schema {name!r}",
                                     "the tables of a wallet store are not there")
        if row is None or row[0] is None:
            # Version 1, then every migration: a new schema is exactly a migrated one.
            conn.execute(_SCHEMA.format(s=quoted))
            conn.execute(
                f"INSERT INTO {quoted}.meta (key, value) VALUES ('schema_version', '1')"
            )
            found = 1
        else:
            row = conn.execute(
                f"SELECT value FROM {quoted}.meta WHERE key = 'schema_version'"
            ).fetchone()
            found = int(row[0]) if row is not None else 0
        for version in _schema.versions_to_run(found, _MIGRATIONS):
            conn.execute(_MIGRATIONS[version].format(s=quoted))
        if found < _schema.SEAL_VERSION:
            with conn.cursor() as cursor:
                conn.execute(f"SET LOCAL search_path TO {quoted}")
                seal_all(conn.execute, cursor.executemany, _ROWS, self.sealer, _DIALECT.sql)
        check_key(conn.execute, self.sealer, sealed_now=found < _schema.SEAL_VERSION,
                  mark=_DIALECT.sql, prefix=f"{quoted}.")
        if found < SCHEMA_VERSION:
            conn.execute(
                f"UPDATE {quoted}.meta SET value = %s WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION),),
            )

    def reseal(self, key: SealKey | None) -> int:
        """Seal every row again with ``key`` (``None``: without a key), in one transaction
        that locks the sealed tables against every writer, and use it from now on; returns the
        number of rows sealed. Check the store first (``WalletService.reseal`` does): a row
        changed before is sealed as it is. Other processes must open the store with the new
        key afterwards (``SealKeyError`` otherwise)."""
        sealer = Sealer(check_seal_key(key, "key"))
        tables = ", ".join(table.name for table in TABLES)
        with _translated("sealing"), self._pool.connection() as conn:
            conn.execute("BEGIN")
            try:
                conn.execute(f"LOCK TABLE {tables}, meta IN EXCLUSIVE MODE")
                with conn.cursor() as cursor:
                    done = seal_all(conn.execute, cursor.executemany, _ROWS, sealer,
                                    _DIALECT.sql)
                set_key(conn.execute, sealer, _DIALECT.sql)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.sealer = sealer
        return done

    def _connection(self) -> _Conn:
        """A pooled connection, outside any transaction (a unit sends ``BEGIN`` with its first
        statement)."""
        if self._closed:
            raise StorageError("the store is closed")
        with _translated("getting a connection"):
            return self._pool.getconn()

    def _replace(self, conn: _Conn, attempt: int) -> _Conn:
        """Give back a broken connection and take another, after a short backoff."""
        self._pool.putconn(conn)
        self._backoff(attempt)
        return self._connection()

    def _begin(self, read_only: bool) -> _Conn:
        """A pooled connection inside a new transaction (a broken connection is replaced)."""
        conn = self._connection()
        for attempt in itertools.count():
            try:
                conn.execute(_BEGIN_READ if read_only else _BEGIN_WRITE)
                return conn
            except psycopg.Error as exc:
                broken = conn.broken or conn.closed
                if not broken or attempt >= self.retries:
                    self._pool.putconn(conn)
                    raise _library_error("BEGIN", exc) from exc
                conn = self._replace(conn, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _release(self, conn: _Conn) -> None:
        """End any transaction left open and give the connection back to the pool."""
        try:
            if not conn.closed and conn.info.transaction_status != _IDLE:
                rollback(conn)
        except psycopg.Error:  # the pool discards a broken connection
            pass
        finally:
            self._pool.putconn(conn)

    def unit_of_work(self, *, read_only: bool = False) -> PostgresUnitOfWork:
        """A new unit of work: ``BEGIN ... READ COMMITTED`` (``REPEATABLE READ READ ONLY`` if
        ``read_only``) sent with its first statement."""
        if self._closed:
            raise StorageError("the store is closed")
        return PostgresUnitOfWork(self, read_only=read_only)

    def optimistic_unit_of_work(self) -> PostgresUnitOfWork:
        """A write unit that may decide on what the store last saw, without locking first
        (:class:`~prepaid_wallet.app.ports.OptimisticStore`; the protocol is in the module
        docstring): ``StaleStateError`` at its commit, its first read or its end on an error
        when that had moved, and then nothing was written. Only for work that can be run
        again; the command pipeline uses it."""
        if self._closed:
            raise StorageError("the store is closed")
        return PostgresUnitOfWork(self, optimistic=self._seen.worth_trying())

    def close(self) -> None:
        """Close the pool; further units raise ``StorageError``. Harmless when called again."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(psycopg.Error):  # closing is best effort
            self._pool.close()

    # -- the dump --------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Canonical dump of everything committed, read in one REPEATABLE READ snapshot: the
        same dict as :meth:`~prepaid_wallet.storage.memory.MemoryStore.export_state`."""
        for attempt in itertools.count():
            conn = self._begin(read_only=True)
            try:
                return self._export(conn)
            except psycopg.Error as exc:
                if exc.sqlstate not in _RETRYABLE or attempt >= self.retries:
                    raise _library_error("exporting", exc) from exc
            finally:
                self._release(conn)
            self._backoff(attempt)  # pragma: no cover - a read-only snapshot rarely fails
        raise AssertionError("unreachable")  # pragma: no cover

    def _export(self, conn: _Conn) -> dict[str, Any]:
        return PostgresUnitOfWork.export_tables(conn)

class PostgresUnitOfWork(GuessingUnit, SQLUnitOfWork[_Conn]):
    """A unit of work on a :class:`PostgresStore` (see :mod:`prepaid_wallet.storage.base`)."""

    _DIALECT = _DIALECT
    _ROWS = _ROWS
    _LIVE_ORDER = _LIVE_ORDER
    _store: PostgresStore

    def __init__(self, store: PostgresStore, *, read_only: bool = False,
                 optimistic: bool = False) -> None:
        super().__init__(store, read_only=read_only)
        self._init_guess(optimistic and not read_only)
        self._begin_sql = _BEGIN_READ if read_only else _BEGIN_WRITE
        #: Wallets this write unit locked, as stored when locked (they cannot change after);
        #: ``_stored`` keeps the wallets it read without locking them, as first read.
        self._locked: dict[str, Wallet] = {}
        #: Whether this write unit locked a condition group (``lock_condition_group``).
        self._group_locked = False

    # -- the dialect's own ways -------------------------------------------------------------

    def _connect(self) -> _Conn:
        """A pooled connection, outside any transaction (``BEGIN`` goes with the first
        statement)."""
        return self._store._connection()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._store._release(conn)

    def _send_rollback(self, conn: _Conn) -> None:
        """``ROLLBACK`` past the driver's statement cache, which keeps every prepared statement
        (:func:`~prepaid_wallet.storage._postgres_prepared.rollback`)."""
        rollback(conn)

    def _must_roll_back(self, conn: _Conn) -> bool:
        return not conn.closed and self._in_transaction(conn)

    def _translated(self, action: str) -> contextlib.AbstractContextManager[None]:
        return _translated(action)

    @staticmethod
    def _in_transaction(conn: _Conn) -> bool:
        return conn.info.transaction_status != _IDLE

    def _transaction(self) -> _Conn:
        """The connection inside this unit's transaction (``BEGIN`` is sent now if no statement
        has been sent yet)."""
        self._confirm()
        conn = self._check_open()
        if not self._in_transaction(conn):
            self._start(lambda c: c.execute(self._begin_sql))
        return self._check_open()

    def _start(self, send: Callable[[_Conn], psycopg.Cursor[Any]]) -> psycopg.Cursor[Any]:
        """Send the unit's first statement, ``BEGIN`` included, with ``send``. If the pooled
        connection turns out to be broken, nothing has happened in the transaction yet: the
        connection is replaced and the statement sent again. Driver errors are raised as they
        are (callers translate)."""
        conn = self._check_open()
        for attempt in itertools.count():
            try:
                return send(conn)
            except psycopg.Error:
                if not (conn.broken or conn.closed) or attempt >= self._store.retries:
                    raise
            self._conn = None  # given back to the pool by _replace
            self._conn = conn = self._store._replace(conn, attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _cursor(self, query: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        """Run ``query`` in this unit's transaction; the unit's first statement goes in one
        pipeline with ``BEGIN`` (one round trip)."""
        self._confirm()
        conn = self._check_open()
        if self._in_transaction(conn):
            return conn.execute(query, params)

        def send(conn: _Conn) -> psycopg.Cursor[Any]:
            with conn.pipeline():
                conn.execute(self._begin_sql)
                cursor = conn.execute(query, params)
            return cursor

        return self._start(send)

    def _settle_journal(self) -> None:
        """``LOCK TABLE entries IN SHARE MODE``: granted once every unit that inserted entries
        has ended (an insert holds ``ROW EXCLUSIVE`` to its end), and no unit inserts until
        this one ends; every sequence number drawn so far is then settled."""
        with _translated("waiting for the journal to settle"):
            self._cursor("LOCK TABLE entries IN SHARE MODE", ())

    def _lazy(self, query: str, params: Sequence[Any], batch: int) -> Iterator[Any]:
        """Rows of ``query`` (which has an ``ORDER BY``), fetched ``batch`` at a time with
        ``LIMIT``/``OFFSET``: no server-side cursor outlives a page, so an abandoned iterator
        leaves nothing open. A write unit holds the wallet's lock and a read-only unit reads
        one snapshot, so the pages are consistent."""
        offset = 0
        while True:
            rows = self._all(f"{query} LIMIT %s OFFSET %s", (*params, batch, offset))
            yield from rows
            if len(rows) < batch:
                return
            offset += batch

    # -- commit ----------------------------------------------------------------------------

    def _send(self, conn: _Conn) -> None:
        """The buffered writes and ``COMMIT`` in one query (:meth:`_flush`); a unit that wrote
        nothing commits what it began, if anything; an optimistic unit that guessed and wrote
        nothing checks its guess (:meth:`_check_guess`)."""
        if self._stale is not None:
            raise self._stale
        if self._has_writes():
            if self._terms:
                self._write_terms()
                conn = self._check_open()
            self._flush(conn)
        elif self._guess is not None:
            self._check_guess()
        elif self._in_transaction(conn):
            with _translated("COMMIT"):
                conn.execute("COMMIT")

    def _check_new_wallets(self) -> None:
        """One pipeline: is a new wallet's id, or its owner's key, already taken?"""
        new_ids = [w.id for w in self._new_wallets]
        with _translated("checking the new wallets"):
            conn = self._transaction()
            with conn.pipeline():
                taken = conn.execute(
                    "SELECT id FROM wallets WHERE id = ANY(%s::text[])", (new_ids,)
                )
                keys = [
                    conn.execute(
                        "SELECT id FROM wallets WHERE tenant_id = %s AND owner_id = %s"
                        " AND currency = %s",
                        (w.tenant_id, w.owner_id, w.currency),
                    )
                    for w in self._new_wallets
                ]
            taken_ids = {row[0] for row in taken.fetchall()}
            for wallet, cursor in zip(self._new_wallets, keys, strict=True):
                if wallet.id in taken_ids:
                    raise ConflictError(f"wallet id {wallet.id!r} already exists")
                row = cursor.fetchone()
                if row is not None:
                    raise DuplicateWalletError(
                        wallet.tenant_id, wallet.owner_id, wallet.currency, row[0]
                    )

    def _flush(self, conn: _Conn) -> None:
        """Every write and ``COMMIT`` in one simple query (``BEGIN`` first if the unit has sent
        nothing yet): ``SELECT write_unit('<the writes as JSON>'); COMMIT``. An error in
        ``write_unit`` ends the query there: ``COMMIT`` does not run."""
        self._check_changes()
        if self._new_wallets:
            self._check_new_wallets()
            conn = self._check_open()
        payload: dict[str, list[Any]] = {}
        new_ids = {w.id for w in self._new_wallets}
        if self._new_wallets:
            payload["new_wallets"] = [
                {**dict(zip(_WALLET_NAMES, _ROWS.wallet_row(wallet), strict=True)),
                 "seal": self._seal("wallets", CANON.wallet_row(wallet))}
                for wallet in (self._wallets[w.id] for w in self._new_wallets)
            ]
        # A change moves balances, status, version, head and its instant only; the rest of a
        # wallet is fixed. Sorted by id, like the locks: an update of a wallet this unit did
        # not lock waits in the same order as everyone else.
        # A wallet the unit guessed is updated only if still at the floor it saw (the version
        # is checked in any case); if it guessed one it did not change, every guessed wallet
        # is locked and compared before anything is written.
        guess = self._guess or {}
        moved = [
            {"id": w.id, "base": self._base_versions.get(w.id, 0),
             "floor": guess[w.id].floor.minor_units if w.id in guess else None,
             "open": w.open.minor_units, "commerce": w.commerce.minor_units,
             "held": w.held.minor_units, "status": w.status.value, "version": w.version,
             "head": w.head, "last_at": w.last_at,
             "seal": self._seal("wallets", CANON.wallet_row(w))}
            for wallet_id, w in sorted(self._wallets.items())
            if wallet_id not in new_ids
        ]
        if moved:
            payload["wallets"] = moved
        if any(wallet_id not in self._wallets for wallet_id in guess):
            # Locked and compared first, all of them in id order (so as in every other unit).
            payload["guess"] = [
                {"id": w.id, "version": w.version, "floor": w.floor.minor_units}
                for _, w in sorted(guess.items())
            ]
        if self._guess is not None and self._guess_records:
            payload["guess_records"] = [
                {"kind": kind, "key": key, "data": data}
                for (kind, key), data in sorted(self._guess_records.items())
            ]
        payload.update(self._record_payload())
        if self._changes:
            entries: list[dict[str, Any]] = []
            postings: list[dict[str, Any]] = []
            history: list[dict[str, Any]] = []
            for change in self._changes:
                entry = change.entry
                at = entry.recorded_at
                entries.append(dict(zip(_ENTRY_NAMES, _ROWS.entry_row(entry), strict=True)))
                postings.extend(
                    {"entry_id": entry.id, "position": position, "account": posting.account,
                     "minor": posting.amount.minor_units, "currency": posting.amount.currency,
                     "recorded_at": at, "balance_after": balance}
                    for position, (posting, balance) in enumerate(
                        zip(entry.postings, balances_after(change), strict=True)
                    )
                )
                history.extend(
                    {"wallet_id": w.id, "entry_id": entry.id, "recorded_at": at,
                     "currency": w.currency, "open": w.open.minor_units,
                     "commerce": w.commerce.minor_units, "held": w.held.minor_units}
                    for w in change.wallets
                )
            payload["entries"] = entries
            payload["postings"] = postings
            payload["history"] = history
        if self._events:
            payload["events"] = [
                {**dict(zip(_EVENT_NAMES, _ROWS.event_row(e), strict=True)),
                 "seal": self._seal("events", CANON.event_row(e))} for e in self._events
            ]
        if self._acks:
            # Sorted: two units acknowledging the same events update their rows in one order.
            payload["acks"] = [
                {"tenant_id": tenant_id, "id": event_id}
                for tenant_id, event_ids in sorted(self._acks.items())
                for event_id in sorted(event_ids)
            ]
        if self._groups:
            # Sorted by id: two units changing the same groups lock them in the same order.
            payload["groups"] = [
                {**dict(zip(_GROUP_NAMES, _ROWS.group_row(group), strict=True)),
                 "seal": self._seal("condition_groups", CANON.group_row(group))}
                for group in (self._groups[group_id] for group_id in sorted(self._groups))
            ]
        lot_groups = {lot.group_id for lot in self._lots.values() if lot.group_id is not None}
        if lot_groups:
            payload["lot_groups"] = sorted(lot_groups)
        for key, names, table, values in (
            ("lots", _LOT_WRITE_NAMES, "lots", self._lots.values()),
            ("holds", _HOLD_NAMES, "holds", self._holds.values()),
            ("charges", _CHARGE_NAMES, "charges", self._charges.values()),
            ("idempotency", _IDEMPOTENCY_NAMES, "idempotency", self._idempotency.values()),
        ):
            if values:
                sealed = BY_NAME[table]
                payload[key] = [
                    {**dict(zip(names, sealed.write(_ROWS, value), strict=True)),
                     "seal": self._seal(table, sealed.canon(value))}
                    for value in values
                ]
        data = json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, default=_json_default
        )
        literal = psycopg.pq.Escaping(conn.pgconn).escape_literal(
            data.encode(conn.info.encoding)
        )
        call = b"SELECT write_unit(" + literal + b"::jsonb)"
        seen = self._store._seen
        try:
            if self._in_transaction(conn):
                conn.execute(call + b"; COMMIT")
            else:
                # The unit's only statement: one implicit transaction (READ COMMITTED, the
                # pooled connection's default), committed at the end of the query or rolled
                # back by its error (no ROLLBACK to send after).
                self._start(lambda c: c.execute(call))
        except psycopg.Error as exc:
            seen.forget([*self._wallets, *(self._guess or ())])
            if self._guess is not None:
                stale = stale_error(exc)
            else:  # confirmed (or never guessed): only a key it took to be new may be stale
                stale = key_stale_error(exc) if self._assumed_keys else None
            if stale is not None:
                seen.outcome(False)
                raise stale from exc
            raise _library_error("writing", exc) from exc
        if self._guess is not None:
            seen.outcome(True)
        seen.saw(self._wallets.values())
        seen.forget((), self._records)

    # -- idempotency ------------------------------------------------------------------------

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored record for the key. A unit that decided on a guess and has sent nothing
        takes the key to be new (None, nothing sent): its commit stores the key, which fails
        on the primary key if it was stored after all (``StaleStateError``, and the command
        runs again the ordinary way and replays it), and a unit that ends on an error without
        writing checks the key first (:meth:`_check_assumed_keys`). So a command with a key
        is one round trip too."""
        self._check_open()
        if (scope, key) not in self._idempotency and self._assume_new_key(scope, key):
            self._absent_keys.add((scope, key))
            return None
        return super().get_idempotency(scope, key)

    # -- wallets ---------------------------------------------------------------------------

    def lock_wallets(
        self, wallet_ids: Sequence[str], *, tenant_records: Sequence[RecordType[Any]] = ()
    ) -> dict[str, Wallet]:
        """Lock the wallets (``SELECT ... FOR UPDATE`` in sorted id order; a read-only unit
        takes no lock) and return them as this unit sees them; the records of the
        ``tenant_records`` kinds stored under their tenants' ids are read in the same round
        trip."""
        self._check_open()
        ids = sorted(set(wallet_ids))
        kinds = sorted({rtype.kind for rtype in tenant_records})
        if self._may_guess:
            guessed = self._guessed(ids, kinds)
            if guessed is not None:
                return guessed
        query = LOCK if not self._read_only else READ
        for attempt in itertools.count():
            try:
                rows, records = self._lock_rows(query, ids, kinds)
                break
            except psycopg.Error as exc:
                replayable = (
                    not self._locked and not self._group_locked and not self._has_writes()
                )
                retry = replayable and attempt < self._store.retries
                if exc.sqlstate not in _RETRYABLE or not retry:
                    raise _library_error("locking wallets", exc) from exc
            # Nothing is locked or buffered yet: a new transaction is as good as this one
            # (the next statement sends BEGIN again).
            with _translated("locking wallets"):
                self._restart()
            self._store._backoff(attempt)
        stored = {row[0]: _ROWS.wallet(row) for row in rows}
        read = records_read(stored.values(), kinds, records)
        self._read_ahead.update(read)
        if self._read_only:
            self._stored.update(stored)
        else:
            # Locked until the unit ends: nobody else can change these rows meanwhile.
            self._locked.update(stored)
            self._store._seen.saw(stored.values(), read)
        found: dict[str, Wallet] = {}
        for wallet_id in ids:
            wallet = self._wallets.get(wallet_id) or stored.get(wallet_id)
            if wallet is None:
                raise WalletNotFoundError(wallet_id)
            found[wallet_id] = wallet
        return found

    def lock_condition_group(self, group_id: str) -> ConditionGroup:
        """Lock the group (``SELECT ... FOR UPDATE``; a read-only unit takes no lock) and
        return it as this unit sees it."""
        if self._read_only:
            return self.get_condition_group(group_id)
        self._check_open()
        row = self._one(
            f"SELECT {_GROUP_COLS} FROM condition_groups WHERE id = %s FOR UPDATE", (group_id,)
        )
        if row is not None:
            self._group_locked = True
        group = self._groups.get(group_id)
        if group is not None:
            return group
        if row is None:
            raise ConditionGroupNotFoundError(group_id)
        return _ROWS.group(row)

    def _lock_rows(self, query: str, ids: list[str], kinds: list[str]
                   ) -> tuple[list[Any], list[Any]]:
        """The rows of the lock query, and the ``(kind, key, data)`` of the records of
        ``kinds`` stored under the wallets' tenants (none without kinds). As a unit's first
        statement they go with ``BEGIN`` in one simple query (one message, one round trip),
        the ids written as literals; later, in one pipeline."""
        self._confirm()
        conn = self._check_open()
        if self._in_transaction(conn):
            if not kinds:
                return self._cursor(query, (ids,)).fetchall(), []
            with conn.pipeline():
                locked = conn.execute(query, (ids,))
                read = conn.execute(_TENANT_RECORDS, (kinds, ids))
            return locked.fetchall(), read.fetchall()

        def send(conn: _Conn) -> psycopg.Cursor[Any]:
            return run_reads(conn, self._begin_sql.encode() + b"; ", query, ids, kinds)

        cursor = self._start(send)
        cursor.nextset()  # past BEGIN's result
        rows = cursor.fetchall()
        if not kinds:
            return rows, []
        cursor.nextset()
        return rows, cursor.fetchall()

    def _restart(self) -> None:
        """Roll back the transaction but keep the unit open: its next statement begins a new
        one."""
        conn = self._check_open()
        if self._in_transaction(conn):
            rollback(conn)

    def _known_wallet(self, wallet_id: str) -> Wallet | None:
        known = self._locked.get(wallet_id) or self._stored.get(wallet_id)
        if known is None and self._may_guess:  # a scoped service's look before the lock
            guessed = self._guessed([wallet_id], [])
            known = None if guessed is None else guessed[wallet_id]
        return known

