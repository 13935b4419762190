"""The write buffer every backend's unit of work shares (private).

A unit of work buffers what it writes -- new wallets, changed wallets, lots, holds, charges,
journal changes, idempotency records, condition groups, events and records -- and sends it all
at commit. The buffer, the
optimistic version check in :meth:`WriteBuffer.record` and the idempotency put live here once;
a backend supplies how it reads (``get_wallet``, ``get_idempotency``), how it checks that the
unit is active (``_check_open``) and what version of a wallet is stored (``_stored_version``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import (
    ConcurrencyError,
    ConflictError,
    DuplicateWalletError,
    IntegrityError,
    InvalidInputError,
    LotNotFoundError,
    StorageError,
)
from prepaid_wallet.ledger import held_account, lot_account, open_account, parse_account
from prepaid_wallet.storage.base import Event, IdempotencyRecord, RecordRow, RecordType
from prepaid_wallet.wallet import Change, Charge, Hold, Lot, Wallet

__all__ = ["RecordFilter", "WriteBuffer", "balances_after", "matches", "record_filter"]

T = TypeVar("T")

#: What :meth:`~prepaid_wallet.storage.base.UnitOfWork.find_records` filters by, as
#: ``(column, value)`` pairs of the ``records`` table (the filters given, in a fixed order).
RecordFilter = tuple[tuple[str, str], ...]


def record_filter(
    tenant_id: str | None,
    wallet_id: str | None,
    tag: str | None,
    unique: str | None,
    limit: int | None,
) -> RecordFilter:
    """The filters of a ``find_records`` call, checked: each given one is text
    (``InvalidInputError`` naming it otherwise), and so is ``limit`` an int or ``None``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InvalidInputError("limit", "must be an int or None", limit)
    found = []
    given = (("tenant_id", tenant_id), ("wallet_id", wallet_id), ("tag", tag), ("uniq", unique))
    for column, value in given:
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInputError("unique" if column == "uniq" else column, "must be text",
                                    value)
        found.append((column, value))
    return tuple(found)


def matches(row: RecordRow, where: RecordFilter) -> bool:
    """Whether ``row`` passes every filter of ``where``."""
    values = {"tenant_id": row.tenant_id, "wallet_id": row.wallet_id, "tag": row.tag,
              "uniq": row.unique}
    return all(values[column] == value for column, value in where)


def balances_after(change: Change) -> list[int | None]:
    """The balance after ``change`` of the account of each of its entry's postings, in posting
    order: ``None`` for a tenant account; for a wallet's open, held or lot account, the new
    state the change carries (balances are derived from postings, so the state *is* the
    account's balance -- no read of earlier postings is needed). ``IntegrityError`` if the
    change posts to a wallet or lot whose new state it does not carry."""
    # The accounts whose state the change carries, by key: a posting's account is looked up
    # as it is, and only one the change does not carry is parsed (a tenant's: no balance).
    known: dict[str, int] = {}
    for wallet in change.wallets:
        known[open_account(wallet.id)] = wallet.open.minor_units
        known[held_account(wallet.id)] = wallet.held.minor_units
    for lot in change.lots:
        known[lot_account(lot.wallet_id, lot.id)] = lot.remaining.minor_units
    out: list[int | None] = []
    for posting in change.entry.postings:
        account = posting.account
        balance = known.get(account)
        if balance is None and parse_account(account).is_wallet:
            raise IntegrityError(
                f"entry {change.entry.id!r} posts to {account} but its change does not"
                " carry that account's new state"
            )
        out.append(balance)
    return out


class WriteBuffer:
    """Buffered writes of one unit of work, and the checks made when they are buffered."""

    _read_only: bool

    def __init__(self, *, read_only: bool) -> None:
        self._read_only = read_only
        self._wallets: dict[str, Wallet] = {}
        self._base_versions: dict[str, int] = {}
        self._new_wallets: list[Wallet] = []
        self._lots: dict[str, Lot] = {}
        self._holds: dict[str, Hold] = {}
        self._charges: dict[str, Charge] = {}
        self._changes: list[Change] = []
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        #: Keys this unit looked up and found in no committed record (a backend's
        #: ``get_idempotency`` notes them): storing one needs no second lookup.
        self._absent_keys: set[tuple[str, str]] = set()
        self._groups: dict[str, ConditionGroup] = {}
        self._events: list[Event] = []
        self._acks: dict[str, set[str]] = {}  # tenant -> event ids acknowledged
        #: (kind, key) -> (the row and the record put, or None for a removal), in write order.
        self._records: dict[tuple[str, str], tuple[RecordRow, Any] | None] = {}
        #: Stored wallets whose terms (floor) this unit changed, by id.
        self._terms: set[str] = set()
        #: What the application reads once per unit (a tenant's rules): dropped with the unit.
        self.memo: dict[Any, Any] = {}

    # -- what a backend provides ------------------------------------------------------------

    def _check_open(self) -> object:
        raise NotImplementedError

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet as this unit sees it."""
        raise NotImplementedError

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record stored (or buffered) under ``(scope, key)``."""
        raise NotImplementedError

    def get_lot(self, lot_id: str) -> Lot:
        """The lot as this unit sees it."""
        raise NotImplementedError

    def get_record(self, rtype: RecordType[T], key: str) -> T | None:
        """The record as this unit sees it."""
        raise NotImplementedError

    def get_lots(self, lot_ids: Sequence[str]) -> dict[str, Lot]:
        """The lots known among ``lot_ids``, by id: one :meth:`get_lot` each (a backend that
        can read many rows at once does)."""
        found: dict[str, Lot] = {}
        for lot_id in lot_ids:
            try:
                found[lot_id] = self.get_lot(lot_id)
            except LotNotFoundError:
                continue
        return found

    def get_records(self, rtype: RecordType[T], keys: Sequence[str]) -> dict[str, T]:
        """The records stored under ``keys``, by key: one :meth:`get_record` each (a backend
        that can read many rows at once does)."""
        found: dict[str, T] = {}
        for key in keys:
            record = self.get_record(rtype, key)
            if record is not None:
                found[key] = record
        return found

    def get_idempotencies(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], IdempotencyRecord]:
        """The records stored under the ``(scope, key)`` pairs: one :meth:`get_idempotency`
        each (a backend that can read many rows at once does)."""
        found: dict[tuple[str, str], IdempotencyRecord] = {}
        for scope, key in keys:
            record = self.get_idempotency(scope, key)
            if record is not None:
                found[(scope, key)] = record
        return found

    def due_lots(self, at: datetime, limit: int, wallet_id: str | None = None) -> list[Lot]:
        """Lots with money left falling due at or before ``at``, soonest first."""
        raise NotImplementedError

    def due_lot_rows(self, at: datetime, limit: int) -> list[tuple[str, str]]:
        """``(lot id, wallet id)`` of the lots :meth:`due_lots` lists, in its order (a backend
        with a due index reads them from it alone)."""
        return [(lot.id, lot.wallet_id) for lot in self.due_lots(at, limit)]

    def _stored_version(self, wallet_id: str) -> int:
        """The committed version of ``wallet_id`` (0 when it is not stored yet)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        self._check_open()
        if self._read_only:
            raise StorageError("this unit of work is read-only")

    def _clear_buffer(self) -> None:
        self._wallets.clear()
        self._new_wallets.clear()
        self._lots.clear()
        self._holds.clear()
        self._charges.clear()
        self._changes.clear()
        self._idempotency.clear()
        self._absent_keys.clear()
        self._groups.clear()
        self._events.clear()
        self._acks.clear()
        self._records.clear()
        self._terms.clear()

    def _has_writes(self) -> bool:
        """Whether the unit buffered anything to write."""
        return bool(
            self._changes or self._new_wallets or self._idempotency or self._groups
            or self._events or self._acks or self._records or self._terms
        )

    def find_wallet(self, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, if any."""
        raise NotImplementedError

    def _new_wallet_for(self, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The wallet this unit opened for the owner at the tenant in the currency, if any."""
        for wallet in self._new_wallets:
            if (wallet.tenant_id, wallet.owner_id, wallet.currency) == (
                tenant_id, owner_id, currency
            ):
                return self._wallets[wallet.id]
        return None

    def add_wallet(self, wallet: Wallet) -> None:
        """Buffer a new wallet (one per owner, tenant and currency: ``DuplicateWalletError``)."""
        self._check_writable()
        existing = self.find_wallet(wallet.tenant_id, wallet.owner_id, wallet.currency)
        if existing is not None:
            raise DuplicateWalletError(
                wallet.tenant_id, wallet.owner_id, wallet.currency, existing.id
            )
        self._new_wallets.append(wallet)
        self._wallets[wallet.id] = wallet
        self._base_versions[wallet.id] = 0

    # -- records ----------------------------------------------------------------------------

    def put_record(self, rtype: RecordType[T], record: T) -> None:
        """Buffer a record (a unique value another record of the kind buffered in this unit
        holds conflicts at once; one only stored conflicts at commit)."""
        self._check_writable()
        row = rtype.row(record)
        if row.unique is not None:
            for (kind, key), other in self._records.items():
                if (other is not None and kind == row.kind and key != row.key
                        and other[0].unique == row.unique):
                    raise ConflictError(
                        f"a {kind!r} record ({key!r}) already has the unique value"
                        f" {row.unique!r}"
                    )
        self._records[(row.kind, row.key)] = (row, record)

    def delete_record(self, rtype: RecordType[Any], key: str) -> None:
        """Buffer the removal of a record."""
        self._check_writable()
        if not isinstance(key, str):
            raise InvalidInputError("key", "must be text", key)
        self._records[(rtype.kind, key)] = None

    def _buffered_record(self, kind: str, key: str) -> tuple[bool, Any]:
        """``(True, record or None)`` when this unit wrote the record of ``kind`` under
        ``key``, else ``(False, None)``."""
        if (kind, key) not in self._records:
            return False, None
        found = self._records[(kind, key)]
        return True, None if found is None else found[1]

    def _buffered_kind(self, kind: str) -> int:
        """How many records of ``kind`` this unit wrote (or removed)."""
        return sum(1 for k, _ in self._records if k == kind)

    def _overlay_records(
        self,
        rtype: RecordType[T],
        committed: Iterable[tuple[str, str, str]],
        where: RecordFilter,
        limit: int | None,
    ) -> list[T]:
        """The committed ``(order, key, data)`` rows matching ``where`` (sorted), less those
        this unit rewrote, merged with this unit's own matching records, by ``(order, key)``;
        up to ``limit``. Only the records returned are decoded."""
        kind = rtype.kind
        own: list[tuple[str, str, Any]] = []
        written: set[str] = set()
        for (k, key), found in self._records.items():
            if k != kind:
                continue
            written.add(key)
            if found is not None and matches(found[0], where):
                own.append((found[0].order, key, found[1]))
        items: list[tuple[str, str, Any, bool]] = [
            (order, key, data, True) for order, key, data in committed if key not in written
        ]
        if own:
            items.extend((order, key, record, False) for order, key, record in own)
            items.sort(key=lambda item: (item[0], item[1]))
        if limit is not None:
            items = items[: max(limit, 0)]
        return [rtype.load(value) if stored else value for _, _, value, stored in items]

    def _record_wallets(self) -> list[str]:
        """The wallets the records this unit puts belong to, in write order."""
        return [found[0].wallet_id for found in self._records.values()
                if found is not None and found[0].wallet_id is not None]

    def _record_writes(self) -> tuple[list[tuple[str, str]], list[RecordRow]]:
        """This unit's record removals ``(kind, key)`` and puts, in write order."""
        removed = [key for key, found in self._records.items() if found is None]
        put = [found[0] for found in self._records.values() if found is not None]
        return removed, put

    def add_event(self, event: Event) -> None:
        """Buffer an event (an id used twice in the unit conflicts at once)."""
        self._check_writable()
        if any(e.id == event.id for e in self._events):
            raise ConflictError(f"event id {event.id!r} already used")
        self._events.append(event)

    def put_condition_group(self, group: ConditionGroup) -> None:
        """Buffer a new condition group or the new state of one."""
        self._check_writable()
        self._groups[group.id] = group

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Buffer a record (a key already stored or buffered conflicts)."""
        self._check_writable()
        found = (record.scope, record.key)
        if found in self._idempotency or (
                found not in self._absent_keys and self.get_idempotency(*found) is not None):
            raise ConflictError(f"idempotency key {record.key!r} is already stored")
        self._idempotency[(record.scope, record.key)] = record

    def put_outcome(self, scope: str, key: str, operation: str,
                    request: tuple[tuple[str, str], ...], result: Any, at: datetime) -> None:
        """Buffer the ``"ok"`` record of a command run under ``key``, ``result`` encoded
        (:func:`prepaid_wallet._codec.dumps`)."""
        self.put_idempotency(IdempotencyRecord(scope, key, operation, request, "ok",
                                               _codec.dumps(result), at))

    def change_terms(self, wallet: Wallet) -> None:
        """Buffer new terms of a wallet -- its floor -- written at commit; nothing else of it
        changes (its balances, status, version and head move only with a change, so the unit's
        later changes of it build on this wallet). ``IntegrityError`` when ``wallet`` differs
        from the unit's view of it in anything but its terms, or its floor is positive or in
        another currency."""
        self._check_writable()
        current = self.get_wallet(wallet.id)
        floor = wallet.floor
        if floor.currency != current.currency or floor.is_positive() or (
                attrs.evolve(wallet, floor=current.floor) != current):
            raise IntegrityError(f"wallet {wallet.id!r}: only its terms may change here")
        for index, opened in enumerate(self._new_wallets):
            if opened.id == wallet.id:  # opened in this unit: it is written whole
                self._new_wallets[index] = wallet
                self._wallets[wallet.id] = wallet
                return
        if wallet.id not in self._base_versions:
            self._base_versions[wallet.id] = self._stored_version(wallet.id)
        self._wallets[wallet.id] = wallet
        self._terms.add(wallet.id)

    def record(self, change: Change) -> None:
        """Buffer a change, checking each wallet's version moved by exactly one."""
        self._check_writable()
        for wallet in change.wallets:
            current = self.get_wallet(wallet.id)
            if wallet.version != current.version + 1:
                raise ConcurrencyError(wallet.id, current.version + 1, wallet.version)
        for wallet in change.wallets:
            if wallet.id not in self._base_versions:
                self._base_versions[wallet.id] = self._stored_version(wallet.id)
            self._wallets[wallet.id] = wallet
        for lot in change.lots:
            self._lots[lot.id] = lot
        for held in change.holds:
            self._holds[held.id] = held
        for charge in change.charges:
            self._charges[charge.entry_id] = charge
        self._changes.append(change)
