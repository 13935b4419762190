"""Values <-> rows of the SQL tables, once for every dialect (private).

A :class:`Rows` turns each stored value (wallet, lot, hold, charge, entry, …) into the column
values a write sends, and a row read by the column lists of
:mod:`prepaid_wallet.storage._schema` back into the value. Amounts are integer minor units next
to their currency; instants are stored the way the dialect's
:attr:`~prepaid_wallet.storage._dialect.Dialect.instant` says (SQLite: integer microseconds since
the Unix epoch; PostgreSQL: ``timestamptz``) and read back as aware UTC instants; metadata, ids
and hashes lists are compact JSON text.

Spend conditions are stored as JSON text (:meth:`SpendCondition.to_data`, compact, keys sorted):
:func:`condition_text` and :func:`condition_of` convert. Records of every record type are
stored as :class:`~prepaid_wallet.storage.base.RecordRow` s, which their type computes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prepaid_wallet import _codec
from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import IntegrityError
from prepaid_wallet.expiry import lot_end
from prepaid_wallet.ledger import Entry, EntryKind, Posting
from prepaid_wallet.money import Money, _check_range, _valid
from prepaid_wallet.policies import is_conditioned
from prepaid_wallet.seals import row_text
from prepaid_wallet.storage._dialect import Dialect
from prepaid_wallet.storage.base import Event, IdempotencyRecord, WalletSnapshot
from prepaid_wallet.wallet import (
    AllocationPart,
    Charge,
    Hold,
    HoldStatus,
    Lot,
    Wallet,
    WalletStatus,
)

__all__ = [
    "Rows",
    "condition_from_text",
    "condition_of",
    "condition_text",
    "stored_amount",
]


def stored_amount(minor: Any, currency: str) -> Money:
    """A stored amount (integer minor units) in a currency already checked on its row: only
    its type and range are checked again."""
    if type(minor) is not int:
        raise IntegrityError(f"stored amount {minor!r} is not an integer")
    return _valid(_check_range(minor, currency, "amount"), currency)


_condition_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def condition_text(condition: SpendCondition | None) -> str | None:
    """``condition`` as stored: the JSON of :meth:`SpendCondition.to_data`, compact, with
    sorted keys (``None`` stays ``None``)."""
    return None if condition is None else _condition_encoder.encode(condition.to_data())


@functools.lru_cache(maxsize=4096)
def condition_from_text(text: str) -> SpendCondition:
    """The condition stored as ``text`` (conditions are immutable, so equal texts share one
    parsed value)."""
    return SpendCondition.from_data(json.loads(text))


def condition_of(text: str | None) -> SpendCondition | None:
    """The condition stored as ``text``, or ``None``."""
    return None if text is None else condition_from_text(text)




#: Each wallet status by its stored text (an unknown one is refused by ``WalletStatus``).
_STATUS = {status.value: status for status in WalletStatus}


def _json(value: Any) -> str:
    """Compact JSON text of a tuple of strings or pairs."""
    if value == ():
        return "[]"
    return row_text(value)


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    if text == "[]":
        return ()
    return tuple((str(a), str(b)) for a, b in json.loads(text))


def _parts(text: str) -> tuple[AllocationPart, ...]:
    parts: tuple[AllocationPart, ...] = _codec.loads(tuple[AllocationPart, ...], text)
    return parts


class Rows:
    """The row mappers of one dialect: ``<name>_row(value)`` gives the column values a write
    sends, ``<name>(row)`` the value of a row read by the matching column list of
    :mod:`prepaid_wallet.storage._schema`."""

    def __init__(self, dialect: Dialect) -> None:
        self._at = dialect.instant
        self._at_of = dialect.instant_of

    def instant(self, at: datetime) -> Any:
        """``at`` as the dialect stores an instant."""
        return self._at(at)

    def instant_of(self, value: Any) -> datetime:
        """A stored instant as an aware UTC instant."""
        return self._at_of(value)

    def _opt_at(self, at: datetime | None) -> Any:
        return None if at is None else self._at(at)

    def optional_instant(self, at: datetime | None) -> Any:
        """An instant or None as the dialect stores it (NULL for None)."""
        return self._opt_at(at)

    def _opt_at_of(self, value: Any) -> datetime | None:
        return None if value is None else self._at_of(value)

    # -- wallets ----------------------------------------------------------------------------

    def wallet_row(self, w: Wallet) -> tuple[Any, ...]:
        """The wallet's columns (``WALLET_COLS``)."""
        return (
            w.id, w.tenant_id, w.owner_id, w.currency, w.floor.minor_units, self._at(w.created_at),
            w.open.minor_units, w.commerce.minor_units, w.held.minor_units, w.status.value,
            w.version, w.head, _json(w.metadata), self._opt_at(w.last_at),
        )

    def wallet(self, row: Sequence[Any]) -> Wallet:
        """The wallet of a ``WALLET_COLS`` row."""
        currency = row[3]
        floor = Money(row[4], currency)  # checks the currency and the range once...
        return Wallet(
            id=row[0], tenant_id=row[1], owner_id=row[2], currency=currency,
            floor=floor, created_at=self._at_of(row[5]),
            open=stored_amount(row[6], currency),  # ...then only the range
            commerce=stored_amount(row[7], currency),
            held=stored_amount(row[8], currency),
            status=_STATUS.get(row[9]) or WalletStatus(row[9]), version=row[10],
            head=row[11], metadata=_pairs(row[12]), last_at=self._opt_at_of(row[13]),
        )

    # -- lots -------------------------------------------------------------------------------

    def lot_row(self, lot: Lot) -> tuple[Any, ...]:
        """The lot's columns (``LOT_COLS``), then when it ends whatever its group does
        (``ends_at``: its own expiry or its conditions' end). When it falls due also depends
        on its group, which the backend knows."""
        return (
            lot.id, lot.wallet_id, lot.amount.currency, lot.amount.minor_units,
            lot.remaining.minor_units, self._at(lot.granted_at), self._opt_at(lot.expires_at),
            lot.priority, lot.reason, lot.entry_id, lot.expired_entry_id,
            condition_text(lot.condition), lot.group_id, lot.group_version, is_conditioned(lot),
            self._opt_at(lot_end(lot)),
        )

    def lot(self, row: Sequence[Any]) -> Lot:
        """The lot of a ``LOT_COLS`` row."""
        currency = row[2]
        return Lot(
            id=row[0], wallet_id=row[1], amount=Money(row[3], currency),  # checks the currency
            remaining=stored_amount(row[4], currency),  # ...then only the range
            granted_at=self._at_of(row[5]),
            expires_at=self._opt_at_of(row[6]), priority=row[7], reason=row[8],
            entry_id=row[9], expired_entry_id=row[10], condition=condition_of(row[11]),
            group_id=row[12], group_version=row[13],
        )

    def live_key(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """:func:`~prepaid_wallet.policies.default_lot_key` of a ``LOT_COLS`` row."""
        granted = self._at_of(row[5])
        expires = self._opt_at_of(row[6])
        return (not row[14], row[7], expires is None, expires or granted, granted, row[0])

    # -- condition groups -------------------------------------------------------------------

    def group_row(self, g: ConditionGroup) -> tuple[Any, ...]:
        """The group's columns (``GROUP_COLS``)."""
        return (
            g.id, g.tenant_id, g.name, g.version, condition_text(g.condition),
            self._opt_at(g.valid_from), self._opt_at(g.valid_until),
        )

    def group(self, row: Sequence[Any]) -> ConditionGroup:
        """The group of a ``GROUP_COLS`` row."""
        return ConditionGroup(
            id=row[0], tenant_id=row[1], name=row[2], condition=condition_from_text(row[4]),
            version=row[3], valid_from=self._opt_at_of(row[5]),
            valid_until=self._opt_at_of(row[6]),
        )

    # -- holds and charges ------------------------------------------------------------------

    def hold_row(self, h: Hold) -> tuple[Any, ...]:
        """The hold's columns (``HOLD_COLS``)."""
        return (
            h.id, h.wallet_id, h.amount.currency, h.amount.minor_units,
            _codec.dumps_parts(h.allocation),
            self._at(h.created_at), self._at(h.expires_at), h.entry_id, h.status.value,
            None if h.captured is None else h.captured.minor_units, h.resolved_entry_id,
            self._opt_at(h.resolved_at),
        )

    def hold(self, row: Sequence[Any]) -> Hold:
        """The hold of a ``HOLD_COLS`` row."""
        currency = row[2]
        return Hold(
            id=row[0], wallet_id=row[1], amount=Money(row[3], currency),
            allocation=_parts(row[4]), created_at=self._at_of(row[5]),
            expires_at=self._at_of(row[6]), entry_id=row[7], status=HoldStatus(row[8]),
            captured=None if row[9] is None else Money(row[9], currency),
            resolved_entry_id=row[10], resolved_at=self._opt_at_of(row[11]),
        )

    @staticmethod
    def charge_row(c: Charge) -> tuple[Any, ...]:
        """The charge's columns (``CHARGE_COLS``)."""
        return (
            c.entry_id, c.wallet_id, c.amount.currency, c.amount.minor_units,
            _codec.dumps_parts(c.allocation), _codec.dumps_parts(c.refunded),
        )

    @staticmethod
    def charge(row: Sequence[Any]) -> Charge:
        """The charge of a ``CHARGE_COLS`` row."""
        return Charge(
            entry_id=row[0], wallet_id=row[1], amount=Money(row[3], row[2]),
            allocation=_parts(row[4]), refunded=_parts(row[5]),
        )

    # -- the journal ------------------------------------------------------------------------

    def entry_row(self, e: Entry) -> tuple[Any, ...]:
        """The entry's columns (``ENTRY_COLS``) but ``seq``, which the backend draws."""
        return (
            e.id, e.kind.value, self._at(e.effective_at), self._at(e.recorded_at),
            _json(e.wallet_ids), _json(e.prev_hashes), e.idempotency_key, e.actor,
            _json(e.metadata), e.refund_of, e.reverses, e.hash,
        )

    def entry(self, row: Sequence[Any], postings: Sequence[Sequence[Any]]) -> Entry:
        """An entry from its ``ENTRY_COLS`` row and its postings' ``(account, minor,
        currency)`` rows."""
        return Entry(
            id=row[1], kind=EntryKind(row[2]),
            postings=tuple(Posting(p[0], Money(p[1], p[2])) for p in postings),
            effective_at=self._at_of(row[3]), recorded_at=self._at_of(row[4]),
            wallet_ids=tuple(json.loads(row[5])), prev_hashes=tuple(json.loads(row[6])),
            idempotency_key=row[7], actor=row[8], metadata=_pairs(row[9]), refund_of=row[10],
            reverses=row[11], hash=row[12],
        )

    def snapshot(self, row: Sequence[Any]) -> WalletSnapshot:
        """The balances of a ``HISTORY_COLS`` row."""
        currency = row[3]
        return WalletSnapshot(
            wallet_id=row[0], entry_id=row[1], recorded_at=self._at_of(row[2]),
            open=Money(row[4], currency), commerce=Money(row[5], currency),
            held=Money(row[6], currency),
        )

    # -- idempotency and events ------------------------------------------------------------

    def idempotency_row(self, r: IdempotencyRecord) -> tuple[Any, ...]:
        """The record's columns (``IDEMPOTENCY_COLS``)."""
        return (
            r.scope, r.key, r.operation, _json(r.request), r.outcome, r.payload,
            self._at(r.created_at),
        )

    def idempotency(self, row: Sequence[Any]) -> IdempotencyRecord:
        """The record of an ``IDEMPOTENCY_COLS`` row."""
        return IdempotencyRecord(
            scope=row[0], key=row[1], operation=row[2], request=_pairs(row[3]), outcome=row[4],
            payload=row[5], created_at=self._at_of(row[6]),
        )

    def event_row(self, e: Event) -> tuple[Any, ...]:
        """The event's columns (``EVENT_COLS``)."""
        return (e.id, e.tenant_id, e.wallet_id, e.kind, self._at(e.created_at), e.payload)

    def event(self, row: Sequence[Any]) -> Event:
        """The event of an ``EVENT_COLS`` row."""
        return Event(
            id=row[0], tenant_id=row[1], wallet_id=row[2], kind=row[3],
            created_at=self._at_of(row[4]), payload=row[5],
        )
