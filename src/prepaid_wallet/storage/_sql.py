"""The unit of work every SQL backend shares (private): its life cycle, its reads and the
export of a whole store.

A SQL unit of work answers a lookup from what it buffered first, then from the committed row; a
listing merges the two. Pending events (the outbox) are read from committed rows only, less the
ones the unit acknowledged. The statements, the merging, the row mappers
(:mod:`prepaid_wallet.storage._rows`) and the unit's life cycle (used once, inside ``with``;
rolled back unless committed; a failed commit keeps nothing) live here once. Statements are
written with ``?`` placeholders and converted once per dialect
(:class:`~prepaid_wallet.storage._dialect.Dialect`).

A backend supplies its dialect and row mappers (``_DIALECT``, ``_ROWS``) and the few things it
does its own way: getting a connection when a unit is entered and giving it back
(``_connect``, ``_release``), running a statement in the unit's transaction (``_cursor``),
reading a long result in batches (``_lazy``), sending the buffered writes and ``COMMIT``
(``_send``), whether a transaction is left to roll back (``_must_roll_back``), translating its
driver's errors (``_translated``), and, where its write units are not exclusive, locking rows
(``lock_wallets``, ``lock_condition_group``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import attrs

from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import (
    ConditionGroupNotFoundError,
    EntryNotFoundError,
    HoldNotFoundError,
    IntegrityError,
    LotNotFoundError,
    StorageError,
    WalletNotFoundError,
)
from prepaid_wallet.ledger import Entry, check_postings
from prepaid_wallet.money import Money
from prepaid_wallet.policies import default_lot_key
from prepaid_wallet.results import Problem
from prepaid_wallet.seals import Sealer
from prepaid_wallet.storage._buffer import record_filter
from prepaid_wallet.storage._dialect import Dialect
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
    names,
)
from prepaid_wallet.storage._sealing import CANON, posting_problems, row_problems
from prepaid_wallet.storage._sql_export import export_tables
from prepaid_wallet.storage._sql_many import ManyReads
from prepaid_wallet.storage.base import (
    Event,
    IdempotencyRecord,
    RecordType,
    WalletSnapshot,
)
from prepaid_wallet.wallet import Charge, Hold, HoldStatus, Lot, Wallet

__all__ = ["SQLUnitOfWork"]

_RECORD_NAMES = names(RECORD_COLS)

#: Rows per page when a listing is read by key (``iter_wallets``).
_PAGE = 500
#: Rows read per query (or per fetch) when a long result is read a batch at a time: entries
#: with their postings, a wallet's history, live and due lots, due holds.
_BATCH = 256


class _Connection(Protocol):
    """What the shared code runs on a driver connection itself: a statement without
    parameters."""

    def execute(self, sql: str, /) -> Any: ...


_Conn = TypeVar("_Conn", bound=_Connection)
T = TypeVar("T")

#: Runs a statement with its parameters and gives its rows.
_Execute = Callable[[str, Sequence[Any]], Iterable[Sequence[Any]]]


class _Store(Protocol):
    """What the unit needs of its store: the per-thread state (whether a unit is open) and
    what it seals rows with."""

    _local: threading.local
    sealer: Sealer


class SQLUnitOfWork(ManyReads, Generic[_Conn]):
    """A unit of work on a SQL store (see :mod:`prepaid_wallet.storage.base`), over a driver
    connection of type ``_Conn``: the life cycle, every read overlaid with the unit's buffer,
    and the export."""

    _DIALECT: ClassVar[Dialect]
    _ROWS: ClassVar[Rows]
    #: The ``ORDER BY`` of live lots in spend order, in the dialect.
    _LIVE_ORDER: ClassVar[str]
    _store: _Store

    def __init__(self, store: _Store, *, read_only: bool) -> None:
        super().__init__(read_only=read_only)
        self._store = store
        self._conn: _Conn | None = None
        self._entered = False
        self._done = False
        #: Wallets as stored, read by this unit: a write unit holds their lock (or the file's)
        #: and a read unit reads one snapshot, so what was read stays true until the unit ends.
        self._stored: dict[str, Wallet] = {}
        #: Records read along with locked wallets (``lock_wallets(tenant_records=...)``):
        #: ``(kind, key)`` -> the stored JSON, or None when none is stored.
        self._read_ahead: dict[tuple[str, str], str | None] = {}

    # -- what a backend provides ------------------------------------------------------------

    def _connect(self) -> _Conn:
        """The unit's connection, taken when it is entered."""
        raise NotImplementedError

    def _release(self) -> None:
        """Give the connection back once the unit has ended (nothing by default)."""

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        """Run ``sql`` in the unit's transaction: a cursor over its rows (driver errors are
        raised as they are)."""
        raise NotImplementedError

    def _lazy(self, sql: str, params: Sequence[Any], batch: int) -> Iterator[Any]:
        """The rows of ``sql`` (which has an ``ORDER BY``), read ``batch`` at a time."""
        raise NotImplementedError

    def _send(self, conn: _Conn) -> None:
        """Validate and send the buffered writes, then ``COMMIT``."""
        raise NotImplementedError

    def _must_roll_back(self, conn: _Conn) -> bool:
        """Whether ``conn`` still has a transaction of this unit to roll back."""
        raise NotImplementedError

    def _translated(self, action: str) -> contextlib.AbstractContextManager[None]:
        """A block in which a driver error becomes the library error for ``action``."""
        raise NotImplementedError

    def _known_wallet(self, wallet_id: str) -> Wallet | None:
        """The committed wallet if this unit already read it."""
        return self._stored.get(wallet_id)

    # -- the life cycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._entered:
            raise StorageError("a unit of work is used once")
        local = self._store._local
        if getattr(local, "active", False):
            raise StorageError("this thread already has a unit of work open on this store")
        self._conn = self._connect()
        local.active = True
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._done:
                self.rollback()
        finally:
            self._store._local.active = False
            self._release()

    def _check_open(self) -> _Conn:
        if not self._entered or self._done or self._conn is None:
            raise StorageError("the unit of work is not active (use it once, inside 'with')")
        return self._conn

    def commit(self) -> None:
        """Send the buffered writes and commit them in one transaction. On any failure the
        whole transaction is rolled back and the unit ends: nothing of it is kept."""
        conn = self._check_open()
        try:
            self._send(conn)
        except BaseException:
            # The original error is the one that matters: a connection too broken to roll back
            # is discarded (or closed) by its store.
            with contextlib.suppress(StorageError):
                self.rollback()
            raise
        self._done = True

    def rollback(self) -> None:
        """Discard the buffered writes and end the transaction."""
        self._clear_buffer()
        self._done = True
        conn = self._conn
        if conn is not None:
            with self._translated("ROLLBACK"):
                if self._must_roll_back(conn):
                    self._send_rollback(conn)

    def _send_rollback(self, conn: _Conn) -> None:
        """End the open transaction on ``conn`` (a backend may go past its driver)."""
        conn.execute("ROLLBACK")

    def _check_changes(self) -> None:
        """What the database does not check before the journal is written: each entry's
        postings, and an entry id used twice in this unit (one already stored is refused by the
        unique index on ``entries.id``)."""
        seen: set[str] = set()
        for change in self._changes:
            check_postings(change.entry.postings)
            entry_id = change.entry.id
            if entry_id in seen:
                raise IntegrityError(f"entry id {entry_id!r} already used")
            seen.add(entry_id)

    # -- running statements -----------------------------------------------------------------

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        with self._translated("reading"):
            return self._cursor(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._translated("reading"):
            rows: list[Any] = self._cursor(sql, params).fetchall()
            return rows

    def _q(self, sql: str) -> str:
        return self._DIALECT.sql(sql)

    @classmethod
    def _fetch_entries(cls, execute: _Execute, rows: Sequence[Sequence[Any]]) -> list[Entry]:
        """The entries of ``rows`` (``ENTRY_COLS`` rows) with their postings, read in one
        query through ``execute``."""
        if not rows:
            return []
        where, params = cls._DIALECT.any_of("entry_seq", [row[0] for row in rows], "bigint")
        postings: dict[int, list[tuple[Any, ...]]] = {}
        for seq, account, minor, currency in execute(
            "SELECT entry_seq, account, minor, currency FROM postings"
            f" WHERE {where} ORDER BY entry_seq, position",
            params,
        ):
            postings.setdefault(seq, []).append((account, minor, currency))
        entry = cls._ROWS.entry
        return [entry(row, postings.get(row[0], [])) for row in rows]

    def _entries(self, rows: Sequence[Sequence[Any]]) -> list[Entry]:
        return self._fetch_entries(self._all, rows)

    # -- the export -------------------------------------------------------------------------

    @classmethod
    def export_tables(cls, conn: Any) -> dict[str, Any]:
        """Every table read through ``conn`` (a connection inside one snapshot whose
        ``execute(sql[, params])`` iterates rows), as
        :func:`~prepaid_wallet.storage.base.dump_state` returns it: what ``export_state`` of
        either SQL store gives (:func:`~prepaid_wallet.storage._sql_export.export_tables`)."""
        return export_tables(conn, cls._ROWS, cls._DIALECT.instant_of, cls._fetch_entries,
                             _BATCH)

    # -- seals ------------------------------------------------------------------------------

    def _seal(self, table: str, canon: Sequence[Any]) -> str:
        """The seal of a row of ``table`` whose canonical values are ``canon``."""
        return self._store.sealer.seal(table, canon)

    def _sealed(self, table: str, row: Sequence[Any]) -> tuple[Any, ...]:
        """``row`` (canonical as it is: SQLite's) followed by its seal."""
        return (*row, self._store.sealer.seal(table, row))

    def iter_row_problems(self) -> Iterator[Problem]:
        """Every stored row that is not as the library wrote it (its seal, its round trip, a
        lot's due instant, a posting's instant and balance after): see
        :mod:`prepaid_wallet.storage._sealing`."""
        def rows(sql: str) -> Iterator[Sequence[Any]]:
            return self._lazy(sql, (), _BATCH)

        yield from row_problems(rows, self._ROWS, self._store.sealer)
        yield from posting_problems(rows, self._ROWS)

    # -- wallets ----------------------------------------------------------------------------

    def _stored_version(self, wallet_id: str) -> int:
        known = self._known_wallet(wallet_id)
        if known is not None:
            return known.version
        row = self._one(self._q("SELECT version FROM wallets WHERE id = ?"), (wallet_id,))
        return int(row[0]) if row is not None else 0

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet as this unit sees it (read once per unit)."""
        self._check_open()
        wallet = self._wallets.get(wallet_id) or self._known_wallet(wallet_id)
        if wallet is not None:
            return wallet
        row = self._one(
            self._q(f"SELECT {WALLET_COLS} FROM wallets WHERE id = ?"), (wallet_id,)
        )
        if row is None:
            raise WalletNotFoundError(wallet_id)
        wallet = self._stored[wallet_id] = self._ROWS.wallet(row)
        return wallet

    def find_wallet(self, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, if any."""
        self._check_open()
        buffered = self._new_wallet_for(tenant_id, owner_id, currency)
        if buffered is not None:
            return buffered
        row = self._one(
            self._q("SELECT id FROM wallets WHERE tenant_id = ? AND owner_id = ? AND currency = ?"),
            (tenant_id, owner_id, currency),
        )
        return None if row is None else self.get_wallet(row[0])

    def iter_wallets(self, tenant_id: str | None = None, *, after: str | None = None
                     ) -> Iterator[Wallet]:
        """All wallets (of one tenant), by id (after ``after``, if given): committed ones read
        a page at a time after the last id seen (bounded memory however many there are),
        merged with this unit's own."""
        self._check_open()
        where = "id > ?" if tenant_id is None else "tenant_id = ? AND id > ?"
        page = self._q(
            f"SELECT {WALLET_COLS} FROM wallets WHERE {where} ORDER BY id LIMIT ?"
        )
        start = "" if after is None else after
        own = sorted(
            (w.id, w) for w in self._wallets.values()
            if tenant_id in (None, w.tenant_id) and w.id > start
        )

        def committed() -> Iterator[tuple[str, Wallet]]:
            last = start
            while True:
                params = (last, _PAGE) if tenant_id is None else (tenant_id, last, _PAGE)
                rows = self._all(page, params)
                for row in rows:
                    yield row[0], self._ROWS.wallet(row)
                if len(rows) < _PAGE:
                    return
                last = rows[-1][0]
                del rows  # one page in memory at a time, not two

        previous = None
        for wallet_id, wallet in heapq.merge(own, committed(), key=lambda pair: pair[0]):
            if wallet_id != previous:  # the unit's own copy comes first and wins
                previous = wallet_id
                yield self._wallets.get(wallet_id, wallet)

    def get_lot(self, lot_id: str) -> Lot:
        """The lot as this unit sees it."""
        self._check_open()
        lot = self._lots.get(lot_id)
        if lot is not None:
            return lot
        row = self._one(self._q(f"SELECT {LOT_COLS} FROM lots WHERE id = ?"), (lot_id,))
        if row is None:
            raise LotNotFoundError(lot_id)
        return self._ROWS.lot(row)

    def live_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Live lots in default spend order: the live index read lazily, merged with this
        unit's own changes (one query finds which of those are already in the index)."""
        self._check_open()
        own = [lot for lot in self._lots.values() if lot.wallet_id == wallet_id]
        committed_live: set[str] = set()
        if own:
            marks = ",".join("?" * len(own))
            rows = self._all(
                self._q(f"SELECT id FROM lots WHERE id IN ({marks}) AND remaining > 0"),
                [lot.id for lot in own],
            )
            committed_live = {row[0] for row in rows}
        extra = sorted(
            (default_lot_key(lot), lot)
            for lot in own
            if lot.is_live and lot.id not in committed_live
        )
        rows_iter = self._lazy(
            self._q(
                f"SELECT {LOT_COLS} FROM lots WHERE wallet_id = ? AND remaining > 0"
                f" ORDER BY wallet_id, {self._LIVE_ORDER}"
            ),
            (wallet_id,),
            _BATCH,
        )
        committed = ((self._ROWS.live_key(row), self._ROWS.lot(row)) for row in rows_iter)
        for _, stored in heapq.merge(committed, extra, key=lambda pair: pair[0]):
            lot = self._lots.get(stored.id, stored)
            if lot.is_live:
                yield lot

    def wallet_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Every lot of the wallet, by grant instant then id."""
        self._check_open()
        rows = self._all(
            self._q(f"SELECT {LOT_COLS} FROM lots WHERE wallet_id = ?"), (wallet_id,)
        )
        lots = {row[0]: self._ROWS.lot(row) for row in rows}
        lots.update((lot.id, lot) for lot in self._lots.values() if lot.wallet_id == wallet_id)
        yield from sorted(lots.values(), key=lambda lot: (lot.granted_at, lot.id))

    def due_lots(self, at: datetime, limit: int, wallet_id: str | None = None) -> list[Lot]:
        """Committed live lots (of one wallet) falling due at or before ``at`` (``due_at``: the
        lot's own expiry, its conditions' end or its group's end, whichever is first), soonest
        first."""
        self._check_open()
        if limit <= 0:
            return []
        where = "remaining > 0 AND due_at IS NOT NULL AND due_at <= ?"
        if wallet_id is None:
            rows = self._lazy(
                self._q(f"SELECT {LOT_COLS} FROM lots WHERE {where} ORDER BY due_at, id"),
                (self._DIALECT.instant(at),),
                _BATCH,
            )
        else:
            rows = self._lazy(
                self._q(
                    f"SELECT {LOT_COLS} FROM lots WHERE wallet_id = ? AND {where}"
                    " ORDER BY wallet_id, due_at, id"
                ),
                (wallet_id, self._DIALECT.instant(at)),
                _BATCH,
            )
        lots = (self._lots.get(row[0]) or self._ROWS.lot(row) for row in rows)
        return list(itertools.islice((lot for lot in lots if lot.is_live), limit))

    def due_lot_rows(self, at: datetime, limit: int) -> list[tuple[str, str]]:
        """``(lot id, wallet id)`` of the lots :meth:`due_lots` lists (without a wallet), in its
        order, read from the due index without reading the lots themselves: what the expiry
        sweep lists before its batch reads the lots it books."""
        self._check_open()
        if limit <= 0:
            return []
        rows = self._lazy(
            self._q("SELECT id, wallet_id FROM lots WHERE remaining > 0 AND due_at IS NOT NULL"
                    " AND due_at <= ? ORDER BY due_at, id"),
            (self._DIALECT.instant(at),),
            _BATCH,
        )
        own = self._lots
        live = ((lot_id, wallet_id) for lot_id, wallet_id in rows
                if lot_id not in own or own[lot_id].is_live)
        return list(itertools.islice(live, limit))

    def get_hold(self, hold_id: str) -> Hold:
        """The hold as this unit sees it."""
        self._check_open()
        found = self._holds.get(hold_id)
        if found is not None:
            return found
        row = self._one(self._q(f"SELECT {HOLD_COLS} FROM holds WHERE id = ?"), (hold_id,))
        if row is None:
            raise HoldNotFoundError(hold_id)
        return self._ROWS.hold(row)

    def wallet_holds(self, wallet_id: str) -> Iterator[Hold]:
        """The wallet's holds, by creation then id."""
        self._check_open()
        rows = self._all(
            self._q(f"SELECT {HOLD_COLS} FROM holds WHERE wallet_id = ?"), (wallet_id,)
        )
        holds = {row[0]: self._ROWS.hold(row) for row in rows}
        holds.update((h.id, h) for h in self._holds.values() if h.wallet_id == wallet_id)
        yield from sorted(holds.values(), key=lambda h: (h.created_at, h.id))

    def due_holds(self, at: datetime, limit: int) -> list[Hold]:
        """Committed active holds whose window ended at or before ``at``, soonest first."""
        self._check_open()
        if limit <= 0:
            return []
        rows = self._lazy(
            self._q(
                f"SELECT {HOLD_COLS} FROM holds WHERE status = 'active'"
                " AND expires_at <= ? ORDER BY expires_at, id"
            ),
            (self._DIALECT.instant(at),),
            _BATCH,
        )
        holds = (self._holds.get(row[0]) or self._ROWS.hold(row) for row in rows)
        return list(
            itertools.islice((h for h in holds if h.status is HoldStatus.ACTIVE), limit)
        )

    def get_charge(self, entry_id: str) -> Charge | None:
        """The refundable charge of a spend or capture entry."""
        self._check_open()
        charge = self._charges.get(entry_id)
        if charge is not None:
            return charge
        row = self._one(
            self._q(f"SELECT {CHARGE_COLS} FROM charges WHERE entry_id = ?"), (entry_id,)
        )
        return None if row is None else self._ROWS.charge(row)

    # -- records ----------------------------------------------------------------------------

    def get_record(self, rtype: RecordType[T], key: str) -> T | None:
        """The record as this unit sees it: its own buffered write, else the stored row (the
        primary key)."""
        self._check_open()
        buffered, record = self._buffered_record(rtype.kind, key)
        if buffered:
            own: T | None = record
            return own
        if (rtype.kind, key) in self._read_ahead:
            data = self._read_ahead[(rtype.kind, key)]
            return None if data is None else rtype.load(data)
        row = self._one(
            self._q("SELECT data FROM records WHERE kind = ? AND key = ?"), (rtype.kind, key)
        )
        return None if row is None else rtype.load(row[0])

    def find_records(
        self,
        rtype: RecordType[T],
        *,
        tenant_id: str | None = None,
        wallet_id: str | None = None,
        tag: str | None = None,
        unique: str | None = None,
        limit: int | None = None,
    ) -> list[T]:
        """The records of the kind matching the filters, by ``(order, key)``: the committed
        rows read from the index of the kind by unique value, tenant, wallet or tag (up to
        ``limit`` plus the records this unit wrote of the kind, which may replace some),
        overlaid with this unit's own."""
        self._check_open()
        where = record_filter(tenant_id, wallet_id, tag, unique, limit)
        if limit is not None and limit <= 0:
            return []
        sql = "SELECT sort, key, data FROM records WHERE kind = ?" + "".join(
            f" AND {column} = ?" for column, _ in where
        ) + " ORDER BY sort, key"
        params: list[Any] = [rtype.kind, *(value for _, value in where)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit + self._buffered_kind(rtype.kind))
        rows = self._all(self._q(sql), params)
        return self._overlay_records(rtype, rows, where, limit)

    def _check_wallets(self, wallet_ids: Sequence[str]) -> None:
        """``WalletNotFoundError`` for the first of ``wallet_ids`` (in the order the unit wrote
        them, like the memory store) that is neither stored nor opened in this unit (wallets
        this unit read or wrote need no read; the others, one)."""
        wanted = sorted(
            {
                wallet_id
                for wallet_id in wallet_ids
                if wallet_id not in self._wallets and self._known_wallet(wallet_id) is None
            }
        )
        if not wanted:
            return
        where, params = self._DIALECT.any_of("id", wanted, "text")
        rows = self._all(f"SELECT id FROM wallets WHERE {where}", params)
        missing = set(wanted) - {row[0] for row in rows}
        for wallet_id in wallet_ids:
            if wallet_id in missing:
                raise WalletNotFoundError(wallet_id)

    def _write_terms(self) -> None:
        """Write the terms (floor) of each wallet this unit changed them of
        (:meth:`change_terms`), sorted by id, before the rest of the unit: its other columns,
        and the version check, are written with the wallet's moving columns."""
        for wallet_id in sorted(self._terms):
            wallet = self._wallets[wallet_id]
            with self._translated("writing wallet terms"):
                self._cursor(self._q("UPDATE wallets SET floor = ? WHERE id = ?"),
                             (wallet.floor.minor_units, wallet_id))

    def _record_statements(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """This unit's record writes as statements (``?`` placeholders) and their rows, for a
        backend that sends statements: removals first; then the unique value of each record
        it rewrites is let go, so that records may trade values within the unit; then every
        record is upserted."""
        removed, put = self._record_writes()
        statements: list[tuple[str, list[tuple[Any, ...]]]] = []
        if removed:
            statements.append(("DELETE FROM records WHERE kind = ? AND key = ?", removed))
        if any(row.unique is not None for row in put):
            statements.append((
                "UPDATE records SET uniq = NULL WHERE kind = ? AND key = ?"
                " AND uniq IS NOT NULL AND (? IS NULL OR uniq <> ?)",
                [(row.kind, row.key, row.unique, row.unique) for row in put],
            ))
        if put:
            statements.append((
                f"INSERT INTO records ({RECORD_COLS}, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (kind, key) DO UPDATE SET tenant_id = excluded.tenant_id,"
                " wallet_id = excluded.wallet_id, tag = excluded.tag, uniq = excluded.uniq,"
                " sort = excluded.sort, data = excluded.data, seal = excluded.seal",
                [self._sealed("records", attrs.astuple(row)) for row in put],
            ))
        return statements

    def _record_payload(self) -> dict[str, list[dict[str, Any]]]:
        """This unit's record writes as a backend that sends them as data writes them: the
        removals (``record_deletes``: kind and key) and the rows put (``records``, by column
        name), in write order."""
        removed, put = self._record_writes()
        payload: dict[str, list[dict[str, Any]]] = {}
        if removed:
            payload["record_deletes"] = [{"kind": kind, "key": key} for kind, key in removed]
        if put:
            payload["records"] = [
                dict(zip((*_RECORD_NAMES, "seal"), self._sealed("records", attrs.astuple(row)),
                         strict=True)) for row in put
            ]
        return payload

    # -- condition groups -------------------------------------------------------------------

    def get_condition_group(self, group_id: str) -> ConditionGroup:
        """The group as this unit sees it."""
        self._check_open()
        group = self._groups.get(group_id)
        if group is not None:
            return group
        row = self._one(
            self._q(f"SELECT {GROUP_COLS} FROM condition_groups WHERE id = ?"), (group_id,)
        )
        if row is None:
            raise ConditionGroupNotFoundError(group_id)
        return self._ROWS.group(row)

    def lock_condition_group(self, group_id: str) -> ConditionGroup:
        """The group (a backend whose write unit is not already exclusive locks its row)."""
        return self.get_condition_group(group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's groups, by name then id: the stored ones overlaid with this unit's."""
        self._check_open()
        rows = self._all(
            self._q(
                f"SELECT {GROUP_COLS} FROM condition_groups WHERE tenant_id = ?"
                " ORDER BY tenant_id, name, id"
            ),
            (tenant_id,),
        )
        groups = {row[0]: self._ROWS.group(row) for row in rows}
        groups.update(self._groups)
        return sorted(
            (g for g in groups.values() if g.tenant_id == tenant_id),
            key=lambda g: (g.name, g.id),
        )

    # -- events (the outbox) ----------------------------------------------------------------

    def pending_events(self, tenant_id: str, limit: int,
                       kinds: Sequence[str] | None = None) -> list[Event]:
        """The tenant's committed, unacknowledged events (of ``kinds``) in commit order (the
        pending index, ``(tenant_id, seq)``), less the ones this unit acknowledged."""
        self._check_open()
        wanted = None if kinds is None else sorted(set(kinds))
        if limit <= 0 or wanted == []:
            return []
        acked = self._acks.get(tenant_id, set())
        of_kinds = "" if wanted is None else f" AND kind IN ({','.join('?' * len(wanted))})"
        rows = self._all(
            self._q(
                f"SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?"
                f" AND acked_at IS NULL{of_kinds} ORDER BY tenant_id, seq LIMIT ?"
            ),
            (tenant_id, *(wanted or ()), limit + len(acked)),
        )
        events = (self._ROWS.event(row) for row in rows if row[0] not in acked)
        return list(itertools.islice(events, limit))

    def ack_events(self, tenant_id: str, event_ids: Sequence[str]) -> int:
        """Buffer the acknowledgement of the tenant's pending events: one read (by id) finds
        which of ``event_ids`` are committed, pending and not yet acknowledged in this unit."""
        self._check_writable()
        acked = self._acks.get(tenant_id, set())
        wanted = sorted({i for i in event_ids if i not in acked})
        if not wanted:
            return 0
        # By id only: the unique index answers it, whatever the tenant's backlog.
        rows = self._all(
            self._q(
                "SELECT id, tenant_id, acked_at IS NULL FROM events"
                f" WHERE id IN ({','.join('?' * len(wanted))})"
            ),
            wanted,
        )
        new = {str(row[0]) for row in rows if row[1] == tenant_id and row[2]}
        if new:
            self._acks.setdefault(tenant_id, set()).update(new)
        return len(new)

    # -- locks ------------------------------------------------------------------------------

    def lock_wallets(
        self, wallet_ids: Sequence[str], *, tenant_records: Sequence[RecordType[Any]] = ()
    ) -> dict[str, Wallet]:
        """The wallets, in sorted id order (a backend whose write unit is not already
        exclusive locks their rows); the records of the ``tenant_records`` kinds stored under
        their tenants' ids are read with one statement, when there is more than one to read."""
        ids = sorted(set(wallet_ids))
        if len(ids) > 1:
            self._read_wallets(ids)
        wallets = {wallet_id: self.get_wallet(wallet_id) for wallet_id in ids}
        kinds = sorted({rtype.kind for rtype in tenant_records})
        tenants = sorted({wallet.tenant_id for wallet in wallets.values()})
        unread = [(kind, tenant) for kind in kinds for tenant in tenants
                  if (kind, tenant) not in self._read_ahead]
        if len(unread) > 1:
            kind_marks, key_marks = ",".join("?" * len(kinds)), ",".join("?" * len(tenants))
            rows = self._all(self._q(
                f"SELECT kind, key, data FROM records WHERE kind IN ({kind_marks})"
                f" AND key IN ({key_marks})"), (*kinds, *tenants))
            for pair in unread:
                self._read_ahead[pair] = None
            for kind, key, data in rows:
                self._read_ahead[(kind, key)] = data
        return wallets

    # -- journal ----------------------------------------------------------------------------

    def get_entry(self, entry_id: str) -> Entry:
        """The entry; ``EntryNotFoundError`` if unknown."""
        self._check_open()
        for change in self._changes:
            if change.entry.id == entry_id:
                return change.entry
        row = self._one(self._q(f"SELECT {ENTRY_COLS} FROM entries WHERE id = ?"), (entry_id,))
        if row is None:
            raise EntryNotFoundError(entry_id)
        return self._entries([row])[0]

    def reversal_of(self, entry_id: str) -> str | None:
        """The entry that reverses ``entry_id``."""
        self._check_open()
        for change in self._changes:
            if change.entry.reverses == entry_id:
                return change.entry.id
        row = self._one(self._q("SELECT id FROM entries WHERE reverses = ?"), (entry_id,))
        return None if row is None else str(row[0])

    def iter_entries(self, until: int | None = None) -> Iterator[Entry]:
        """The committed journal in order (up to sequence number ``until``), read a batch at a
        time."""
        self._check_open()
        page = self._q(f"SELECT {ENTRY_COLS} FROM entries WHERE seq > ? AND seq <= ?"
                       " ORDER BY seq LIMIT ?")
        last = 0
        end = (1 << 63) - 1 if until is None else until
        while True:
            rows = self._all(page, (last, end, _BATCH))
            if not rows:
                return
            yield from self._entries(rows)
            last = rows[-1][0]

    def journal_end(self) -> int:
        """The highest sequence number drawn by a settled entry (:meth:`_settle_journal`
        first, where units commit at once)."""
        self._check_open()
        self._settle_journal()
        row = self._one("SELECT coalesce(max(seq), 0) FROM entries", ())
        return int(row[0])

    def _settle_journal(self) -> None:
        """Wait until no unit is writing entries (nothing to do where one unit writes at a
        time)."""

    def wallet_history(
        self, wallet_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[Entry, WalletSnapshot]]:
        """The wallet's committed entries in ``[since, until)`` with balances after each."""
        self._check_open()
        entry_cols = names(ENTRY_COLS)
        history_cols = names(HISTORY_COLS)
        cols = ", ".join(f"e.{c}" for c in entry_cols)
        hist = ", ".join(f"h.{c}" for c in history_cols)
        where = "h.wallet_id = ?"
        params: list[Any] = [wallet_id]
        if since is not None:
            where += " AND h.recorded_at >= ?"
            params.append(self._DIALECT.instant(since))
        if until is not None:
            where += " AND h.recorded_at < ?"
            params.append(self._DIALECT.instant(until))
        # Pages follow the history's key (the last row's instant and sequence), so each page
        # costs the same however deep into a long history it is.
        first = self._q(
            f"SELECT {cols}, {hist} FROM wallet_history h JOIN entries e ON e.seq = h.entry_seq"
            f" WHERE {where} ORDER BY h.wallet_id, h.recorded_at, h.entry_seq LIMIT ?"
        )
        after = first.replace(
            " ORDER BY", self._q(" AND (h.recorded_at, h.entry_seq) > (?, ?) ORDER BY"), 1
        )
        width = len(entry_cols)
        at_col = width + history_cols.index("recorded_at")
        rows = self._all(first, (*params, _BATCH))
        while rows:
            entries = self._entries([row[:width] for row in rows])
            for entry, row in zip(entries, rows, strict=True):
                yield entry, self._ROWS.snapshot(row[width:])
            if len(rows) < _BATCH:
                return
            last = rows[-1]
            del rows, entries  # one page in memory at a time, not two
            rows = self._all(after, (*params, last[at_col], last[0], _BATCH))

    def snapshot_at(self, wallet_id: str, at: datetime) -> WalletSnapshot | None:
        """Balances after the wallet's last committed entry at or before ``at``."""
        self._check_open()
        row = self._one(
            self._q(
                f"SELECT {HISTORY_COLS} FROM wallet_history"
                " WHERE wallet_id = ? AND recorded_at <= ?"
                " ORDER BY wallet_id DESC, recorded_at DESC, entry_seq DESC LIMIT 1"
            ),
            (wallet_id, self._DIALECT.instant(at)),
        )
        return None if row is None else self._ROWS.snapshot(row)

    def account_balance_at(self, account: str, at: datetime) -> Money | None:
        """A wallet account's committed balance at ``at``."""
        self._check_open()
        row = self._one(
            self._q(
                "SELECT balance_after, currency FROM postings WHERE account = ?"
                " AND recorded_at <= ? AND balance_after IS NOT NULL"
                " ORDER BY account DESC, recorded_at DESC, entry_seq DESC LIMIT 1"
            ),
            (account, self._DIALECT.instant(at)),
        )
        return None if row is None else Money(row[0], row[1])

    # -- idempotency ------------------------------------------------------------------------

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored record for the key; ``IntegrityError`` when it does not match its seal
        (changed since the library wrote it: a replay must not return a forged outcome)."""
        self._check_open()
        record = self._idempotency.get((scope, key))
        if record is not None:
            return record
        row = self._one(
            self._q(f"SELECT {IDEMPOTENCY_COLS}, seal FROM idempotency"
                    " WHERE scope = ? AND key = ?"),
            (scope, key),
        )
        if row is None:
            self._absent_keys.add((scope, key))
            return None
        record = self._ROWS.idempotency(row[:-1])
        wrong = self._store.sealer.check("idempotency", CANON.idempotency_row(record), row[-1])
        if wrong is not None:
            raise IntegrityError(f"the idempotency record {scope}/{key} {wrong}: it is not"
                                 " replayed (verify the store)")
        return record
