"""The in-memory store: the contract's reference backend, for tests, scripts and demos.

One lock serialises units of work: a unit holds it from ``__enter__`` to ``__exit__``, so two
threads can never overdraw a wallet. Writes are buffered in the unit and copied into the store
only on :meth:`commit` (copy-on-commit): an uncommitted change is invisible to everyone else and
vanishes on rollback. It raises the same typed errors as the SQL backends. Nothing survives the
process.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import (
    ConcurrencyError,
    ConditionGroupNotFoundError,
    ConflictError,
    DuplicateWalletError,
    EntryNotFoundError,
    HoldNotFoundError,
    IntegrityError,
    LotNotFoundError,
    StorageError,
    WalletNotFoundError,
)
from prepaid_wallet.expiry import ExpiryPolicy, lot_end
from prepaid_wallet.ledger import Entry, check_postings, parse_account
from prepaid_wallet.money import Money, _trusted
from prepaid_wallet.policies import default_lot_key, is_conditioned
from prepaid_wallet.results import Problem
from prepaid_wallet.seals import SealKey, check_seal_key
from prepaid_wallet.storage._buffer import WriteBuffer, matches, record_filter
from prepaid_wallet.storage.base import (
    Event,
    IdempotencyRecord,
    RecordRow,
    RecordType,
    WalletSnapshot,
    dump_state,
)
from prepaid_wallet.wallet import Charge, Hold, HoldStatus, Lot, Wallet

__all__ = ["MemoryStore"]

_LotKey = tuple[Any, ...]
T = TypeVar("T")
#: The indexes of the records: ``(kind, column, value)`` -> sorted ``(order, key)``; the
#: column ``""`` (value ``""``) indexes every record of the kind.
_RecordIndex = dict[tuple[str, str, str], list[tuple[str, str]]]


def _record_indexes(row: RecordRow) -> Iterator[tuple[str, str, str]]:
    """The index entries of ``row``: its kind, tenant, wallet and tag."""
    yield row.kind, "", ""
    yield row.kind, "tenant_id", row.tenant_id
    if row.wallet_id is not None:
        yield row.kind, "wallet_id", row.wallet_id
    if row.tag is not None:
        yield row.kind, "tag", row.tag


#: When a lot stops paying, and so when it falls due: the domain's rule.
_EXPIRY = ExpiryPolicy()
#: The records every keyed write adds, built without attrs' frozen ``__init__`` (see
#: :func:`~prepaid_wallet.money._trusted`).
_new_snapshot = _trusted(WalletSnapshot)
_new_idempotency = _trusted(IdempotencyRecord)

class _History:
    """Values of one thing over time, for as-of lookups by bisection."""

    __slots__ = ("instants", "values")

    def __init__(self) -> None:
        self.instants: list[datetime] = []
        self.values: list[Any] = []

    def add(self, at: datetime, value: Any) -> None:
        instants = self.instants
        if not instants or instants[-1] <= at:  # recorded time moves forward: the usual case
            instants.append(at)
            self.values.append(value)
            return
        index = bisect.bisect_right(instants, at)
        instants.insert(index, at)
        self.values.insert(index, value)

    def at(self, at: datetime) -> Any:
        index = bisect.bisect_right(self.instants, at)
        return self.values[index - 1] if index else None

    def between(self, since: datetime | None, until: datetime | None) -> list[Any]:
        lo = 0 if since is None else bisect.bisect_left(self.instants, since)
        hi = len(self.instants) if until is None else bisect.bisect_left(self.instants, until)
        return self.values[lo:hi]


class MemoryStore:
    """A store that lives in this process's memory. ``open_store("memory:")`` makes one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread whose unit of work holds the lock
        self._closed = False
        self.wallets: dict[str, Wallet] = {}
        self.wallet_keys: dict[tuple[str, str, str], str] = {}
        self.lots: dict[str, Lot] = {}
        self.lots_by_wallet: dict[str, list[str]] = {}
        self.live: dict[str, list[_LotKey]] = {}  # wallet -> sorted default keys of live lots
        self.live_ids: dict[str, set[str]] = {}
        self.due: list[tuple[datetime, str]] = []  # (falls due at, lot id) of live lots
        self.due_by_wallet: dict[str, list[tuple[datetime, str]]] = {}
        self.lot_due: dict[str, tuple[datetime, str]] = {}  # lot id -> its item in ``due``
        self.groups: dict[str, ConditionGroup] = {}
        self.events: list[Event] = []  # in commit order
        self.event_ids: set[str] = set()
        self.pending: dict[str, dict[str, Event]] = {}  # tenant -> unacknowledged, in order
        self.acked_at: dict[str, datetime] = {}  # event id -> when it was acknowledged
        self.group_lots: dict[str, set[str]] = {}  # group id -> its live lots
        self.account_balances: dict[str, Money] = {}
        self.holds: dict[str, Hold] = {}
        self.holds_by_wallet: dict[str, list[str]] = {}
        self.active_holds: list[tuple[datetime, str]] = []
        self.charges: dict[str, Charge] = {}
        self.entries: list[Entry] = []
        self.entry_seq: dict[str, int] = {}
        self.reversals: dict[str, str] = {}
        self.snapshots: dict[str, _History] = {}
        self.account_history: dict[str, _History] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        #: The results of records stored by ``put_outcome`` whose payload is not written yet:
        #: this store keeps values, so a result is encoded when its record is first read.
        self.outcomes: dict[tuple[str, str], Any] = {}
        self.records: dict[tuple[str, str], RecordRow] = {}  # (kind, key) -> row
        self.record_uniques: dict[tuple[str, str], str] = {}  # (kind, unique) -> key
        self.record_index: _RecordIndex = {}

    def unit_of_work(self, *, read_only: bool = False) -> MemoryUnitOfWork:
        """A new unit of work; it takes the store's lock when entered (a read-only one too, so
        it sees one consistent state)."""
        if self._closed:
            raise StorageError("the store is closed")
        return MemoryUnitOfWork(self, read_only=read_only)

    def reseal(self, key: SealKey | None) -> int:
        """Nothing to seal: this store keeps values in the process, not rows (0)."""
        check_seal_key(key, "key")
        return 0

    def close(self) -> None:
        """Forget everything."""
        self._closed = True

    def export_state(self) -> dict[str, Any]:
        """Canonical dump of everything stored."""
        if self._owner == threading.get_ident():  # inside this thread's own unit of work
            return self._export()
        with self._lock:
            return self._export()

    def balances_after(self) -> Iterator[tuple[str, list[int | None]]]:
        """Each entry's id (in journal order) and the balance after each of its postings:
        ``None`` for a tenant account, else the wallet account's balance after it (the running
        sum its history keeps)."""
        running: dict[str, int] = {}
        for entry in self.entries:
            after: list[int | None] = []
            for posting in entry.postings:
                if parse_account(posting.account).is_wallet:
                    balance = running.get(posting.account, 0) + posting.amount.minor_units
                    running[posting.account] = balance
                    after.append(balance)
                else:
                    after.append(None)
            yield entry.id, after

    def _export(self) -> dict[str, Any]:
        return dump_state(
            wallets=self.wallets.values(), lots=self.lots.values(), holds=self.holds.values(),
            charges=self.charges.values(), entries=self.entries,
            lot_index=[(lot.id, is_conditioned(lot), lot_end(lot),
                        self._due_at(lot) if lot.is_live else None)
                       for lot in self.lots.values()],
            balances=self.balances_after(),
            history=[s for wallet_id in sorted(self.snapshots)
                     for s in self.snapshots[wallet_id].values],
            idempotency=[self.idempotency_record(k) for k in list(self.idempotency)],
            groups=self.groups.values(),
            events=[(e, e.id not in self.pending.get(e.tenant_id, {})) for e in self.events],
            records=self.records.values(),
        )

    def idempotency_record(self, scoped: tuple[str, str]) -> IdempotencyRecord:
        """The record stored under ``(scope, key)``, its payload written now if its result was
        kept as a value (see :attr:`outcomes`)."""
        record = self.idempotency[scoped]
        if scoped in self.outcomes:
            record = self.idempotency[scoped] = _written(record, self.outcomes.pop(scoped))
        return record

    # -- applying a committed unit (called with the lock held) ------------------------------

    def _due_at(self, lot: Lot) -> datetime | None:
        """When ``lot`` falls due: its own expiry, its conditions' end or its group's end,
        whichever is first."""
        group = None if lot.group_id is None else self.groups[lot.group_id]
        return _EXPIRY.expires_at(lot, group)

    def _index_due(self, lot: Lot) -> None:
        """Put the live ``lot`` where it now falls due (or take it out of the due index)."""
        old = self.lot_due.pop(lot.id, None)
        if old is not None:
            del self.due[bisect.bisect_left(self.due, old)]
            wallet_due = self.due_by_wallet[lot.wallet_id]
            del wallet_due[bisect.bisect_left(wallet_due, old)]
        due_at = self._due_at(lot) if lot.is_live else None
        if due_at is not None:
            item = (due_at, lot.id)
            bisect.insort(self.due, item)
            bisect.insort(self.due_by_wallet.setdefault(lot.wallet_id, []), item)
            self.lot_due[lot.id] = item

    def _apply_lot(self, lot: Lot) -> None:
        old = self.lots.get(lot.id)
        self.lots[lot.id] = lot
        if old is None:
            self.lots_by_wallet.setdefault(lot.wallet_id, []).append(lot.id)
        was_live = old is not None and old.is_live
        key = default_lot_key(lot)
        live = self.live.setdefault(lot.wallet_id, [])
        ids = self.live_ids.setdefault(lot.wallet_id, set())
        if lot.is_live and not was_live:
            bisect.insort(live, key)
            ids.add(lot.id)
            if lot.group_id is not None:
                self.group_lots.setdefault(lot.group_id, set()).add(lot.id)
            self._index_due(lot)
        elif was_live and not lot.is_live:
            del live[bisect.bisect_left(live, key)]
            ids.discard(lot.id)
            if lot.group_id is not None:
                self.group_lots[lot.group_id].discard(lot.id)
            self._index_due(lot)

    def _apply_group(self, group: ConditionGroup) -> None:
        old = self.groups.get(group.id)
        self.groups[group.id] = group
        if old is not None and old.valid_until != group.valid_until:
            for lot_id in sorted(self.group_lots.get(group.id, ())):
                self._index_due(self.lots[lot_id])

    def _apply_record(self, kind: str, key: str, row: RecordRow | None) -> None:
        """Store ``row`` under ``(kind, key)`` (``None``: remove it), moving its indexes."""
        old = self.records.pop((kind, key), None)
        if old is not None:
            item = (old.order, key)
            for index in _record_indexes(old):
                entries = self.record_index[index]
                del entries[bisect.bisect_left(entries, item)]
            if old.unique is not None and self.record_uniques.get((kind, old.unique)) == key:
                del self.record_uniques[(kind, old.unique)]
        if row is not None:
            self.records[(kind, key)] = row
            for index in _record_indexes(row):
                bisect.insort(self.record_index.setdefault(index, []), (row.order, key))
            if row.unique is not None:
                self.record_uniques[(kind, row.unique)] = key

    def _apply_hold(self, hold: Hold) -> None:
        old = self.holds.get(hold.id)
        self.holds[hold.id] = hold
        if old is None:
            self.holds_by_wallet.setdefault(hold.wallet_id, []).append(hold.id)
        item = (hold.expires_at, hold.id)
        was_active = old is not None and old.status is HoldStatus.ACTIVE
        if hold.status is HoldStatus.ACTIVE and not was_active:
            bisect.insort(self.active_holds, item)
        elif was_active and hold.status is not HoldStatus.ACTIVE:
            del self.active_holds[bisect.bisect_left(self.active_holds, item)]

    def _apply_entry(self, entry: Entry, wallets: Sequence[Wallet]) -> None:
        self.entry_seq[entry.id] = len(self.entries)
        self.entries.append(entry)
        if entry.reverses is not None:
            self.reversals[entry.reverses] = entry.id
        for posting in entry.postings:
            if parse_account(posting.account).is_wallet:
                last = self.account_balances.get(posting.account)
                balance = posting.amount if last is None else last + posting.amount
                self.account_balances[posting.account] = balance
                history = self.account_history.get(posting.account)
                if history is None:
                    history = self.account_history[posting.account] = _History()
                history.add(entry.recorded_at, balance)
        for wallet in wallets:
            self._add_snapshot(_new_snapshot(
                wallet.id, entry.id, entry.recorded_at, wallet.open, wallet.commerce, wallet.held
            ))

    def _add_snapshot(self, snapshot: WalletSnapshot) -> None:
        """Add a wallet's balances after an entry to its history."""
        history = self.snapshots.get(snapshot.wallet_id)
        if history is None:
            history = self.snapshots[snapshot.wallet_id] = _History()
        history.add(snapshot.recorded_at, snapshot)


class MemoryUnitOfWork(WriteBuffer):
    """A unit of work on a :class:`MemoryStore` (see :mod:`prepaid_wallet.storage.base`)."""

    def __init__(self, store: MemoryStore, *, read_only: bool = False) -> None:
        self._store = store
        super().__init__(read_only=read_only)
        self._entered = False
        self._done = False
        #: Results buffered by ``put_outcome``, their records' payload not written yet.
        self._outcomes: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> Self:
        if self._entered:
            raise StorageError("a unit of work is used once")
        if self._store._owner == threading.get_ident():
            raise StorageError("this thread already has a unit of work open on this store")
        self._store._lock.acquire()
        self._store._owner = threading.get_ident()
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
            self._store._owner = None
            self._store._lock.release()

    def _check_open(self) -> None:
        if not self._entered or self._done:
            raise StorageError("the unit of work is not active (use it once, inside 'with')")

    def commit(self) -> None:
        """Validate the buffered writes, then copy them into the store."""
        self._check_open()
        store = self._store
        # Validate everything before touching the store, so a failure changes nothing.
        for wallet in self._new_wallets:
            if wallet.id in store.wallets:
                raise ConflictError(f"wallet id {wallet.id!r} already exists")
            key = (wallet.tenant_id, wallet.owner_id, wallet.currency)
            if key in store.wallet_keys:
                raise DuplicateWalletError(*key, store.wallet_keys[key])
        for wallet_id, wallet in self._wallets.items():
            stored = store.wallets.get(wallet_id)
            base = self._base_versions.get(wallet_id, 0)
            current = stored.version if stored is not None else 0
            if current != base:
                raise ConcurrencyError(wallet_id, base, current)
            del wallet
        seen: set[str] = set()
        for change in self._changes:
            check_postings(change.entry.postings)
            if change.entry.id in store.entry_seq or change.entry.id in seen:
                raise IntegrityError(f"entry id {change.entry.id!r} already used")
            seen.add(change.entry.id)
        for scoped_key in self._idempotency:
            if scoped_key in store.idempotency:
                raise ConflictError(f"idempotency key {scoped_key[1]!r} was stored concurrently")
        for lot in self._lots.values():
            if lot.group_id is not None and lot.group_id not in store.groups and (
                lot.group_id not in self._groups
            ):
                raise IntegrityError(f"lot {lot.id!r} refers to unknown group {lot.group_id!r}")
        for event in self._events:
            if event.id in store.event_ids:
                raise ConflictError(f"event id {event.id!r} already used")
        puts = self._record_writes()[1] if self._records else []
        for row in puts:
            if row.wallet_id is not None and row.wallet_id not in store.wallets and (
                row.wallet_id not in self._wallets
            ):
                raise WalletNotFoundError(row.wallet_id)
        for row in puts:
            holder = None if row.unique is None else store.record_uniques.get(
                (row.kind, row.unique))
            if holder is not None and holder != row.key and (row.kind, holder) not in (
                self._records
            ):
                raise ConflictError(
                    f"a {row.kind!r} record ({holder!r}) already has the unique value"
                    f" {row.unique!r}"
                )
        # Apply.
        for group in self._groups.values():
            store._apply_group(group)
        for event in self._events:
            store.events.append(event)
            store.event_ids.add(event.id)
            store.pending.setdefault(event.tenant_id, {})[event.id] = event
        if self._acks:
            now = datetime.now(UTC)
            for tenant_id, acked in self._acks.items():
                pending = store.pending.get(tenant_id, {})
                for event_id in acked:
                    if pending.pop(event_id, None) is not None:
                        store.acked_at[event_id] = now
        for wallet in self._new_wallets:
            store.wallet_keys[(wallet.tenant_id, wallet.owner_id, wallet.currency)] = wallet.id
        store.wallets.update(self._wallets)
        for lot in self._lots.values():
            store._apply_lot(lot)
        for held in self._holds.values():
            store._apply_hold(held)
        store.charges.update(self._charges)
        for change in self._changes:
            store._apply_entry(change.entry, change.wallets)
        store.idempotency.update(self._idempotency)
        store.outcomes.update(self._outcomes)
        for (kind, record_key), found in self._records.items():
            store._apply_record(kind, record_key, None if found is None else found[0])
        self._done = True

    def rollback(self) -> None:
        """Discard the buffered writes."""
        self._clear_buffer()
        self._outcomes.clear()
        self._done = True

    # -- wallets ----------------------------------------------------------------------------

    def lock_wallets(
        self, wallet_ids: Sequence[str], *, tenant_records: Sequence[RecordType[Any]] = ()
    ) -> dict[str, Wallet]:
        """The wallets (the unit already holds the store's one lock; a record is read when
        asked for, at no cost: ``tenant_records`` changes nothing)."""
        return {wallet_id: self.get_wallet(wallet_id) for wallet_id in sorted(set(wallet_ids))}

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet as this unit sees it."""
        self._check_open()
        wallet = self._wallets.get(wallet_id) or self._store.wallets.get(wallet_id)
        if wallet is None:
            raise WalletNotFoundError(wallet_id)
        return wallet

    def find_wallet(self, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, if any."""
        self._check_open()
        buffered = self._new_wallet_for(tenant_id, owner_id, currency)
        if buffered is not None:
            return buffered
        wallet_id = self._store.wallet_keys.get((tenant_id, owner_id, currency))
        return None if wallet_id is None else self.get_wallet(wallet_id)

    def iter_wallets(self, tenant_id: str | None = None, *, after: str | None = None
                     ) -> Iterator[Wallet]:
        """All wallets (of one tenant), by id (after ``after``, if given)."""
        self._check_open()
        ids = sorted(set(self._store.wallets) | set(self._wallets))
        if after is not None:
            ids = ids[bisect.bisect_right(ids, after):]
        for wallet_id in ids:
            wallet = self.get_wallet(wallet_id)
            if tenant_id is None or wallet.tenant_id == tenant_id:
                yield wallet

    # -- lots, holds, charges ---------------------------------------------------------------

    def get_lot(self, lot_id: str) -> Lot:
        """The lot as this unit sees it."""
        self._check_open()
        lot = self._lots.get(lot_id) or self._store.lots.get(lot_id)
        if lot is None:
            raise LotNotFoundError(lot_id)
        return lot

    def live_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Live lots in default spend order: the store's sorted index merged with this unit's
        own changes, read lazily."""
        self._check_open()
        store = self._store
        committed = store.live.get(wallet_id, [])
        committed_ids = store.live_ids.get(wallet_id, set())
        extra = sorted(
            default_lot_key(lot)
            for lot in self._lots.values()
            if lot.wallet_id == wallet_id and lot.id not in committed_ids and lot.is_live
        )
        for key in heapq.merge(committed, extra):
            lot = self.get_lot(key[-1])
            if lot.is_live:
                yield lot

    def wallet_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Every lot of the wallet, by grant instant then id."""
        self._check_open()
        ids = set(self._store.lots_by_wallet.get(wallet_id, []))
        ids.update(lot.id for lot in self._lots.values() if lot.wallet_id == wallet_id)
        lots = [self.get_lot(i) for i in ids]
        yield from sorted(lots, key=lambda lot: (lot.granted_at, lot.id))

    def due_lots(self, at: datetime, limit: int, wallet_id: str | None = None) -> list[Lot]:
        """Committed live lots (of one wallet) falling due at or before ``at``, soonest
        first."""
        self._check_open()
        due = self._store.due if wallet_id is None else self._store.due_by_wallet.get(wallet_id, [])
        end = bisect.bisect_right(due, (at, "\U0010ffff"))
        lots = (self.get_lot(lot_id) for _, lot_id in due[:end])
        return list(itertools.islice((lot for lot in lots if lot.is_live), limit))

    def get_hold(self, hold_id: str) -> Hold:
        """The hold as this unit sees it."""
        self._check_open()
        found = self._holds.get(hold_id) or self._store.holds.get(hold_id)
        if found is None:
            raise HoldNotFoundError(hold_id)
        return found

    def wallet_holds(self, wallet_id: str) -> Iterator[Hold]:
        """The wallet's holds, by creation then id."""
        self._check_open()
        ids = set(self._store.holds_by_wallet.get(wallet_id, []))
        ids.update(h.id for h in self._holds.values() if h.wallet_id == wallet_id)
        yield from sorted((self.get_hold(i) for i in ids), key=lambda h: (h.created_at, h.id))

    def due_holds(self, at: datetime, limit: int) -> list[Hold]:
        """Committed active holds whose window ended at or before ``at``, soonest first."""
        self._check_open()
        active = self._store.active_holds
        end = bisect.bisect_right(active, (at, "\U0010ffff"))
        holds = (self.get_hold(hold_id) for _, hold_id in active[:end])
        return list(
            itertools.islice((h for h in holds if h.status is HoldStatus.ACTIVE), limit)
        )

    def get_charge(self, entry_id: str) -> Charge | None:
        """The refundable charge of a spend or capture entry."""
        self._check_open()
        return self._charges.get(entry_id) or self._store.charges.get(entry_id)

    # -- events -----------------------------------------------------------------------------

    def pending_events(self, tenant_id: str, limit: int,
                       kinds: Sequence[str] | None = None) -> list[Event]:
        """The tenant's committed, unacknowledged events (of ``kinds``), oldest first."""
        self._check_open()
        acked = self._acks.get(tenant_id, set())
        wanted = None if kinds is None else frozenset(kinds)
        pending = (e for e in self._store.pending.get(tenant_id, {}).values()
                   if e.id not in acked and (wanted is None or e.kind in wanted))
        return list(itertools.islice(pending, max(limit, 0)))

    def ack_events(self, tenant_id: str, event_ids: Sequence[str]) -> int:
        """Buffer the acknowledgement of the tenant's pending events."""
        self._check_writable()
        pending = self._store.pending.get(tenant_id, {})
        acked = self._acks.setdefault(tenant_id, set())
        new = {i for i in event_ids if i in pending and i not in acked}
        acked.update(new)
        return len(new)

    # -- records ----------------------------------------------------------------------------

    def get_record(self, rtype: RecordType[T], key: str) -> T | None:
        """The record as this unit sees it."""
        self._check_open()
        if self._records:  # most units read records before they write any
            buffered, record = self._buffered_record(rtype.kind, key)
            if buffered:
                own: T | None = record
                return own
        row = self._store.records.get((rtype.kind, key))
        return None if row is None else rtype.load(row.data)

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
        """The records of the kind matching the filters, by ``(order, key)``: the holder of the
        unique value, else one index of the kind (by wallet, else tag, else tenant, else all of
        the kind), overlaid with this unit's own."""
        self._check_open()
        where = record_filter(tenant_id, wallet_id, tag, unique, limit)
        given = dict(where)
        store = self._store
        kind = rtype.kind
        if unique is not None:
            holder = store.record_uniques.get((kind, unique))
            keys = [] if holder is None else [holder]
        else:
            column = next((c for c in ("wallet_id", "tag", "tenant_id") if c in given), "")
            keys = [key for _, key in store.record_index.get((kind, column, given.get(column, "")),
                                                             [])]
        rows = (store.records[(kind, key)] for key in keys)
        committed = ((r.order, r.key, r.data) for r in rows if matches(r, where))
        return self._overlay_records(rtype, committed, where, limit)

    # -- condition groups -------------------------------------------------------------------

    def get_condition_group(self, group_id: str) -> ConditionGroup:
        """The group as this unit sees it."""
        self._check_open()
        group = self._groups.get(group_id) or self._store.groups.get(group_id)
        if group is None:
            raise ConditionGroupNotFoundError(group_id)
        return group

    def lock_condition_group(self, group_id: str) -> ConditionGroup:
        """The group (the unit already holds the store's one lock)."""
        return self.get_condition_group(group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's groups, by name then id."""
        self._check_open()
        groups = {**self._store.groups, **self._groups}
        return sorted(
            (g for g in groups.values() if g.tenant_id == tenant_id), key=lambda g: (g.name, g.id)
        )

    # -- journal ----------------------------------------------------------------------------

    def get_entry(self, entry_id: str) -> Entry:
        """The entry; ``EntryNotFoundError`` if unknown."""
        self._check_open()
        for change in self._changes:
            if change.entry.id == entry_id:
                return change.entry
        seq = self._store.entry_seq.get(entry_id)
        if seq is None:
            raise EntryNotFoundError(entry_id)
        return self._store.entries[seq]

    def reversal_of(self, entry_id: str) -> str | None:
        """The entry that reverses ``entry_id``."""
        self._check_open()
        for change in self._changes:
            if change.entry.reverses == entry_id:
                return change.entry.id
        return self._store.reversals.get(entry_id)

    def iter_entries(self, until: int | None = None) -> Iterator[Entry]:
        """The committed journal in order (up to position ``until``: its first entries)."""
        self._check_open()
        yield from list(self._store.entries[:until])

    def journal_end(self) -> int:
        """The number of committed entries (units run one at a time)."""
        self._check_open()
        return len(self._store.entries)

    def iter_row_problems(self) -> Iterator[Problem]:
        """Nothing: this store keeps values, not rows, in the process that wrote them."""
        self._check_open()
        return iter(())

    def wallet_history(
        self, wallet_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[Entry, WalletSnapshot]]:
        """The wallet's committed entries in ``[since, until)`` with balances after each."""
        self._check_open()
        history = self._store.snapshots.get(wallet_id)
        if history is None:
            return
        for snapshot in history.between(since, until):
            yield self.get_entry(snapshot.entry_id), snapshot

    def snapshot_at(self, wallet_id: str, at: datetime) -> WalletSnapshot | None:
        """Balances after the wallet's last committed entry at or before ``at``."""
        self._check_open()
        history = self._store.snapshots.get(wallet_id)
        result: WalletSnapshot | None = history.at(at) if history is not None else None
        return result

    def account_balance_at(self, account: str, at: datetime) -> Money | None:
        """A wallet account's committed balance at ``at``."""
        self._check_open()
        history = self._store.account_history.get(account)
        result: Money | None = history.at(at) if history is not None else None
        return result

    # -- idempotency ------------------------------------------------------------------------

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored record for the key."""
        self._check_open()
        scoped = (scope, key)
        own = self._idempotency.get(scoped)
        if own is not None:
            if scoped in self._outcomes:
                own = self._idempotency[scoped] = _written(own, self._outcomes.pop(scoped))
            return own
        if scoped in self._store.idempotency:
            return self._store.idempotency_record(scoped)
        # The unit holds the store's one lock: no other unit can store the key before this
        # one commits, so storing it needs no second lookup (see ``put_idempotency``).
        self._absent_keys.add(scoped)
        return None

    def put_outcome(self, scope: str, key: str, operation: str,
                    request: tuple[tuple[str, str], ...], result: Any, at: datetime) -> None:
        """Buffer the ``"ok"`` record of a command run under ``key``, keeping ``result`` as a
        value: its text is written when the record is first read (a replay, a copy)."""
        self.put_idempotency(_new_idempotency(scope, key, operation, request, "ok", "", at))
        self._outcomes[(scope, key)] = result


    # -- writing ----------------------------------------------------------------------------

    def _stored_version(self, wallet_id: str) -> int:
        stored = self._store.wallets.get(wallet_id)
        return stored.version if stored else 0


def _written(record: IdempotencyRecord, result: Any) -> IdempotencyRecord:
    """``record`` with its payload: ``result``'s canonical JSON text."""
    return attrs.evolve(record, payload=_codec.dumps(result))
