"""The store as the application sees it: a :class:`Store` hands out :class:`UnitOfWork` objects.

The application owns this contract and the storage backends implement it (they import it; the
application never imports a backend), so the layers point one way: see docs/architecture.md.
:mod:`prepaid_wallet.storage.base` re-exports it for the backends.

A unit of work is a transaction over the whole store:

* ``with store.unit_of_work() as uow:`` -- everything done inside is rolled back on leaving the
  block unless :meth:`UnitOfWork.commit` was called; an exception inside the block always rolls
  back. A unit of work is used once.
* Lookups by id and by wallet (``get_*``, ``lock_wallets``, ``find_wallet``, ``iter_wallets``,
  ``live_lots``, ``wallet_lots``, ``wallet_holds``, ``get_charge``, ``reversal_of``,
  ``get_idempotency``, ``get_condition_group``, ``lock_condition_group``,
  ``condition_groups``, ``get_record``, ``find_records``) see committed state plus the unit's
  own buffered writes. The time and
  journal indexes (``due_lots``, ``due_holds``, ``iter_entries``, ``wallet_history``,
  ``snapshot_at``, ``account_balance_at``) see committed state only -- writes are buffered
  until commit so a backend can send them in one round trip -- but never return a lot the unit
  has emptied or a hold it has resolved. Commands therefore read those indexes in a unit of
  their own before they write.
* :meth:`UnitOfWork.lock_wallets` locks the wallets a command touches, in sorted id order, for the
  rest of the unit (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, one
  lock in memory). Every write command locks before it reads what it will change.
* :meth:`UnitOfWork.record` buffers a :class:`~prepaid_wallet.wallet.Change`; :meth:`commit`
  writes every buffered change atomically. Each changed wallet's ``version`` must be exactly one
  more per entry than the stored one (optimistic check): otherwise :class:`ConcurrencyError`.
* Only errors from :mod:`prepaid_wallet.errors` escape; driver errors are translated into
  :class:`~prepaid_wallet.errors.StorageError` at one choke point per backend.
* New stored state is a :class:`RecordType`, declared once next to the capability that owns
  it, and read and written with :meth:`UnitOfWork.get_record`, :meth:`UnitOfWork.put_record`,
  :meth:`UnitOfWork.delete_record` and :meth:`UnitOfWork.find_records`: every backend stores
  every record type in one table (kind, key, tenant, wallet, tag, unique value, order and the
  record's JSON), so a new stored concept needs no new method here nor in any backend.

Backends: :mod:`prepaid_wallet.storage.memory` (this package), SQLite and PostgreSQL. The one
behavioural test suite in ``tests/storage/contract.py`` runs against each; a new backend is done
when it passes that suite unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ledger import Entry
from prepaid_wallet.money import Money
from prepaid_wallet.results import Problem
from prepaid_wallet.wallet import Change, Charge, Hold, Lot, Wallet

__all__ = [
    "Event",
    "IdempotencyRecord",
    "OptimisticStore",
    "RecordRow",
    "RecordType",
    "Store",
    "UnitOfWork",
    "WalletSnapshot",
    "sortable_instant",
]

T = TypeVar("T")


def _no_value(record: object) -> None:
    """The default of an optional indexed value of a record type: none."""
    return None


def _text(kind: str, what: str, value: object, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInputError(f"{kind}.{what}", "must be non-empty text", value)
    return value


@attrs.frozen
class RecordRow:
    """One stored record as every backend keeps it: the columns of the ``records`` table
    (what :meth:`RecordType.row` computes from a record)."""

    kind: str
    key: str
    tenant_id: str
    wallet_id: str | None
    tag: str | None
    unique: str | None
    order: str
    data: str


@attrs.frozen
class RecordType(Generic[T]):
    """A kind of stored record, declared once; every backend stores every record type in one
    table.

    * ``kind`` -- the unique name of the kind (``"wallet_setting"``, ``"top_up_intent"`` ...);
    * ``type`` -- the class of the records (an attrs class);
    * ``key`` -- the record's key within its kind (``(kind, key)`` is the primary key);
    * ``tenant`` -- the tenant the record belongs to (indexed: ``find_records(tenant_id=...)``);
    * ``wallet`` -- the stored wallet it belongs to, if any (indexed; the wallet must exist:
      ``WalletNotFoundError`` at commit otherwise);
    * ``tag`` -- one indexed value it is found by (a status, a name ...), if any;
    * ``unique`` -- a value no two records of the kind may share at once (``None``: free); a
      clash is :class:`~prepaid_wallet.errors.ConflictError`, at once when the unit itself
      buffered the other record, at commit at the latest;
    * ``order`` -- text, compared byte by byte (code point by code point), that
      :meth:`UnitOfWork.find_records` sorts by, then the key; by default the key itself. An
      instant is ordered by :func:`sortable_instant`;
    * ``dumps`` / ``loads`` -- the codec: a record as JSON text and back. By default the
      canonical JSON of :mod:`prepaid_wallet._codec` (a field added later takes its default
      when an older record is read); a type with a stored form of its own (a versioned
      ``to_data``) gives its own.

    Every value computed from a record is non-empty text without NUL (``None`` where it is
    optional), else :class:`~prepaid_wallet.errors.InvalidInputError` naming
    ``<kind>.<what>``. The backends store and index these values; they never import a record
    type.
    """

    kind: str
    type: type[T]
    key: Callable[[T], str]
    tenant: Callable[[T], str]
    wallet: Callable[[T], str | None] = _no_value
    tag: Callable[[T], str | None] = _no_value
    unique: Callable[[T], str | None] = _no_value
    order: Callable[[T], str] = attrs.field(
        default=attrs.Factory(lambda self: self.key, takes_self=True)
    )
    dumps: Callable[[T], str] = _codec.dumps
    loads: Callable[[str], T] = attrs.field(
        default=attrs.Factory(lambda self: functools.partial(_codec.loads, self.type),
                              takes_self=True)
    )

    def row(self, record: T) -> RecordRow:
        """The stored columns of ``record``: ``InvalidInputError`` for a record of another
        type or a computed value that is not text."""
        kind = self.kind
        if not isinstance(record, self.type):
            raise InvalidInputError(
                "record", f"must be a {self.type.__name__} (record kind {kind!r})", record
            )
        return RecordRow(
            kind=kind,
            key=_text(kind, "key", self.key(record), optional=False) or "",
            tenant_id=_text(kind, "tenant", self.tenant(record), optional=False) or "",
            wallet_id=_text(kind, "wallet", self.wallet(record), optional=True),
            tag=_text(kind, "tag", self.tag(record), optional=True),
            unique=_text(kind, "unique", self.unique(record), optional=True),
            order=_text(kind, "order", self.order(record), optional=False) or "",
            data=self.dumps(record),
        )

    def load(self, data: str) -> T:
        """The record stored as ``data`` (its JSON)."""
        return self.loads(data)


def sortable_instant(at: datetime) -> str:
    """``at`` as text that sorts like the instants (a :attr:`RecordType.order`): UTC, fixed
    width, to the microsecond (``2024-05-01T09:30:00.000000Z``)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.frozen
class WalletSnapshot:
    """A wallet's balances right after one of its entries (the statement and as-of index)."""

    wallet_id: str
    entry_id: str
    recorded_at: datetime
    open: Money
    commerce: Money
    held: Money

    @property
    def total(self) -> Money:
        """Open + commerce + held after the entry."""
        return self.open + self.commerce + self.held


@attrs.frozen
class IdempotencyRecord:
    """What a command with an idempotency key did, kept to replay it.

    ``scope`` is the tenant, so two tenants may use the same keys. ``request`` is the canonical
    form of the request (field name -> text) that a retry must match; ``outcome`` is ``"ok"`` or
    ``"refused"`` and ``payload`` the stored result or refusal (JSON text).
    """

    scope: str
    key: str
    operation: str
    request: tuple[tuple[str, str], ...]
    outcome: str
    payload: str
    created_at: datetime


@attrs.frozen
class Event:
    """Something the host should act on, written in the same unit of work as the operation that
    caused it (an outbox): ``kind`` (e.g. ``"low_balance"``), the tenant and wallet, the
    instant, and ``payload`` (JSON text the service encodes). The host reads pending events and
    acknowledges them, so none is lost and none is handled twice."""

    id: str
    tenant_id: str
    wallet_id: str
    kind: str
    created_at: datetime
    payload: str


class UnitOfWork(Protocol):
    """One transaction over the store. See the module docstring for the rules."""

    #: A dict the application keeps what it reads once per unit in (a tenant's rules); new
    #: and empty in every unit, dropped with it. The store never reads it.
    memo: dict[Any, Any]

    def __enter__(self) -> Self:
        """Begin."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed; release locks."""
        ...

    def commit(self) -> None:
        """Write every buffered change atomically."""
        ...

    def rollback(self) -> None:
        """Discard every buffered change."""
        ...

    # -- wallets ----------------------------------------------------------------------------

    def lock_wallets(
        self, wallet_ids: Sequence[str], *, tenant_records: Sequence[RecordType[Any]] = ()
    ) -> dict[str, Wallet]:
        """Lock and return the wallets, in sorted id order; ``WalletNotFoundError`` for an
        unknown id.

        ``tenant_records`` names record types whose records are stored under a tenant's id
        (e.g. a tenant's current rules): the unit reads those of the locked wallets' tenants
        along with the wallets (PostgreSQL: in the lock's own round trip), and a later
        :meth:`get_record` of one returns what was read then (the unit's own writes still
        come first). The stores that run in the process read nothing more."""
        ...

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet, without locking; ``WalletNotFoundError`` if unknown."""
        ...

    def find_wallet(self, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet in ``currency`` at ``tenant_id``, if any."""
        ...

    def add_wallet(self, wallet: Wallet) -> None:
        """Buffer a new wallet; ``DuplicateWalletError`` if the owner already has one in this
        currency at this tenant."""
        ...

    def iter_wallets(self, tenant_id: str | None = None, *, after: str | None = None
                     ) -> Iterator[Wallet]:
        """All wallets (of one tenant), by id; with ``after``, only those whose id sorts after
        it (a job that pages through the wallets starts each page where the last ended)."""
        ...

    # -- lots, holds, charges ---------------------------------------------------------------

    def get_lot(self, lot_id: str) -> Lot:
        """The lot; ``LotNotFoundError`` if unknown."""
        ...

    def get_lots(self, lot_ids: Sequence[str]) -> dict[str, Lot]:
        """The lots of ``lot_ids`` as this unit sees them, by id; an unknown id is left out.
        One read for many lots (a job that books a batch of them reads them at once)."""
        ...

    def live_lots(self, wallet_id: str) -> Iterator[Lot]:
        """The wallet's lots with money left, lazily, in
        :attr:`~prepaid_wallet.policies.SpendOrder.DEFAULT` order
        (:func:`~prepaid_wallet.policies.default_lot_key`: conditioned lots first; an index,
        never a scan)."""
        ...

    def wallet_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Every lot the wallet ever had, by grant instant then id."""
        ...

    def due_lots(self, at: datetime, limit: int, wallet_id: str | None = None) -> list[Lot]:
        """Up to ``limit`` lots (of one wallet, or of all) with money left that fall due at or
        before ``at``, soonest first, ties by lot id (an index, never a scan). A lot falls due
        at its own expiry, at the end of its conditions' validity (``condition.valid_until``)
        or at the end of its condition group's validity (``valid_until``), whichever comes
        first; changing a group's validity moves its lots in this index."""
        ...

    def due_lot_rows(self, at: datetime, limit: int) -> list[tuple[str, str]]:
        """``(lot id, wallet id)`` of the lots :meth:`due_lots` lists (without a wallet), in
        its order: what the expiry sweep lists before its batch reads the lots it books (a
        SQL store reads them from its due index alone)."""
        ...

    def get_hold(self, hold_id: str) -> Hold:
        """The hold; ``HoldNotFoundError`` if unknown."""
        ...

    def wallet_holds(self, wallet_id: str) -> Iterator[Hold]:
        """The wallet's holds, by creation then id."""
        ...

    def due_holds(self, at: datetime, limit: int) -> list[Hold]:
        """Up to ``limit`` active holds whose window ended at or before ``at``, soonest first."""
        ...

    def get_charge(self, entry_id: str) -> Charge | None:
        """The refundable charge recorded by a spend or capture entry, if any."""
        ...

    # -- records (stored state of every other kind) ------------------------------------------

    def get_record(self, rtype: RecordType[T], key: str) -> T | None:
        """The record of kind ``rtype`` stored under ``key``, if any: committed state plus this
        unit's own buffered writes."""
        ...

    def get_records(self, rtype: RecordType[T], keys: Sequence[str]) -> dict[str, T]:
        """The records of kind ``rtype`` stored under ``keys``, by key, as :meth:`get_record`
        sees each (a key without a record is left out): one read for many keys. A later
        :meth:`get_record` of one of them in this unit reads nothing more."""
        ...

    def put_record(self, rtype: RecordType[T], record: T) -> None:
        """Buffer an insert, or the replacement of the record of the same key (written at
        commit with everything else). A unique value another record of the kind holds
        conflicts (``ConflictError``, at commit at the latest); the wallet it names must exist
        (``WalletNotFoundError`` at commit); lock that wallet first."""
        ...

    def delete_record(self, rtype: RecordType[Any], key: str) -> None:
        """Buffer the removal of the record of kind ``rtype`` stored under ``key`` (an unknown
        key: nothing)."""
        ...

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
        """The records of the kind matching every filter given (up to ``limit``), by
        ``(order, key)``: committed state plus this unit's own buffered writes, read from an
        index (never a scan of other kinds). ``unique`` finds the one record holding that
        unique value, if any."""
        ...

    # -- events (the outbox) ----------------------------------------------------------------

    def add_event(self, event: Event) -> None:
        """Buffer an event (written at commit with everything else; an id already used
        conflicts)."""
        ...

    def pending_events(self, tenant_id: str, limit: int,
                       kinds: Sequence[str] | None = None) -> list[Event]:
        """Up to ``limit`` committed events of the tenant not yet acknowledged, oldest first
        (in the order they were committed; an index, never a scan); of the ``kinds`` given
        only, if any are (``None``: every kind)."""
        ...

    def ack_events(self, tenant_id: str, event_ids: Sequence[str]) -> int:
        """Mark the tenant's events acknowledged (buffered; at commit). Returns how many of the
        ids were pending; unknown or already acknowledged ids are ignored."""
        ...

    # -- condition groups -------------------------------------------------------------------

    def get_condition_group(self, group_id: str) -> ConditionGroup:
        """The condition group; ``ConditionGroupNotFoundError`` if unknown."""
        ...

    def lock_condition_group(self, group_id: str) -> ConditionGroup:
        """Lock the condition group for the rest of the unit (before changing it) and return
        it; ``ConditionGroupNotFoundError`` if unknown."""
        ...

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's condition groups, by name then id."""
        ...

    def put_condition_group(self, group: ConditionGroup) -> None:
        """Buffer a new condition group, or the new state of one (locked first): its name,
        conditions and version, and its validity, which its lots then follow
        (:meth:`due_lots`)."""
        ...

    # -- journal ----------------------------------------------------------------------------

    def get_entry(self, entry_id: str) -> Entry:
        """The entry; ``EntryNotFoundError`` if unknown."""
        ...

    def reversal_of(self, entry_id: str) -> str | None:
        """The id of the entry that reverses ``entry_id``, if any."""
        ...

    def iter_entries(self, until: int | None = None) -> Iterator[Entry]:
        """The whole journal in the order it was written; with ``until`` (a position
        :meth:`journal_end` gave), only the entries up to that position."""
        ...

    def journal_end(self) -> int:
        """The journal's settled end: a position such that every entry before it is
        committed (or was rolled back) and every entry committed from now on comes after it.
        Where commands commit at once (PostgreSQL), this waits for the units that are writing
        entries right now to end, and holds new ones back for that moment. Call it in a write
        unit and read the journal up to it (:meth:`iter_entries`) in a later unit."""
        ...

    def iter_row_problems(self) -> Iterator[Problem]:
        """Every stored row the journal does not prove that is not as the library wrote it:
        a row whose seal does not match, or that holds what the library never writes, or a
        derived column (a posting's balance after, a lot's due instant) that the rows it is
        derived from do not give. A store kept in the process holds no rows: nothing."""
        ...

    def wallet_history(
        self, wallet_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[Entry, WalletSnapshot]]:
        """The wallet's entries recorded in ``[since, until)``, in order, each with the
        wallet's balances right after it."""
        ...

    def snapshot_at(self, wallet_id: str, at: datetime) -> WalletSnapshot | None:
        """The wallet's balances after its last entry recorded at or before ``at`` (None if it
        had none yet): an index lookup, whatever the length of the journal."""
        ...

    def account_balance_at(self, account: str, at: datetime) -> Money | None:
        """A wallet account's balance after its last posting at or before ``at`` (None if it
        had none)."""
        ...

    # -- idempotency ------------------------------------------------------------------------

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record stored under ``(scope, key)``, if any."""
        ...

    def get_idempotencies(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], IdempotencyRecord]:
        """The records stored under the ``(scope, key)`` pairs, by pair, as
        :meth:`get_idempotency` sees each (a pair without one is left out): one read for many
        keys. Storing a record under a key found absent here reads nothing more."""
        ...

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Buffer a record (written at commit; a second record for the same key conflicts)."""
        ...

    def put_outcome(self, scope: str, key: str, operation: str,
                    request: tuple[tuple[str, str], ...], result: Any, at: datetime) -> None:
        """Buffer the ``"ok"`` record of a command run under ``key``, its payload the
        canonical JSON text of ``result`` (:func:`prepaid_wallet._codec.dumps`), as
        :meth:`put_idempotency` buffers one. A store may keep the value and write its text
        when the record is first read."""
        ...

    # -- writing ----------------------------------------------------------------------------

    def record(self, change: Change) -> None:
        """Buffer a change: its entry and the new state of every object it touched."""
        ...

    def change_terms(self, wallet: Wallet) -> None:
        """Buffer new terms of a stored wallet (what a wallet has besides money: its floor),
        which the unit's view of it has from now on and the commit writes; its balances,
        status, version and head are the unit's view's (only :meth:`record` moves them).
        ``IntegrityError`` for a wallet that differs in anything else."""
        ...


class Store(Protocol):
    """A place wallets live: hands out units of work."""

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work (use it in a ``with`` block).

        A ``read_only`` unit takes no write locks (SQLite: a deferred transaction; PostgreSQL:
        no ``FOR UPDATE``) and refuses ``record``, ``add_wallet`` and ``put_idempotency`` with
        ``StorageError``; it sees one consistent snapshot of committed state.
        """
        ...

    def export_state(self) -> dict[str, Any]:
        """A canonical, JSON-friendly dump of everything stored (for tests, audits and
        backend comparisons): equal dumps mean equal stores."""
        ...

    def reseal(self, key: Any) -> int:
        """Seal every stored row again with ``key`` (a
        :class:`~prepaid_wallet.storage.SealKey`, or ``None`` for no key) and use it from now
        on; the number of rows sealed (a store kept in the process has none)."""
        ...

    def close(self) -> None:
        """Release connections and files. The store is unusable afterwards."""
        ...


class OptimisticStore(Store, Protocol):
    """A store that can also run a write unit optimistically (PostgreSQL does): the pipeline
    (:func:`prepaid_wallet.app.pipeline.run`) uses it when the store has the method."""

    def optimistic_unit_of_work(self) -> UnitOfWork:
        """A write unit that may answer ``lock_wallets`` with the wallets and tenant records
        the store last saw committed, locking nothing, and check at commit (or at its first
        other read, or when it ends with an error) that they are still stored so.
        ``StaleStateError`` when they are not: nothing was written, and the caller runs its
        work again in an ordinary :meth:`Store.unit_of_work`. It must not be used by work
        that cannot be run again."""
        ...
