"""Reads of many rows at once that every SQL store shares (private): the lots, records and
idempotency records a job's batch needs, each kind in one statement per chunk of ids instead of
one statement per row (what :class:`~prepaid_wallet.storage._sql.SQLUnitOfWork` inherits)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from prepaid_wallet.errors import IntegrityError
from prepaid_wallet.seals import Sealer
from prepaid_wallet.storage._buffer import WriteBuffer
from prepaid_wallet.storage._dialect import Dialect
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._schema import IDEMPOTENCY_COLS, LOT_COLS, WALLET_COLS
from prepaid_wallet.storage._sealing import CANON
from prepaid_wallet.storage.base import IdempotencyRecord, RecordType
from prepaid_wallet.wallet import Lot, Wallet

__all__ = ["CHUNK", "ManyReads"]

T = TypeVar("T")

#: Ids bound in one statement at most (well below SQLite's limit of bound parameters).
CHUNK = 500


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


class _Sealed(Protocol):
    """What these reads need of the store: the sealer that proves its rows."""

    sealer: Sealer


class ManyReads(WriteBuffer):
    """``get_lots``, ``get_records`` and ``get_idempotencies`` of a SQL unit of work: the
    unit's own buffered writes first, then one query per chunk of the ids left (``... IN
    (...)``, or :meth:`Dialect.keyed <prepaid_wallet.storage._dialect.Dialect.keyed>`)."""

    _ROWS: ClassVar[Rows]
    _DIALECT: ClassVar[Dialect]
    _store: _Sealed
    _read_ahead: dict[tuple[str, str], str | None]
    _stored: dict[str, Wallet]

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        raise NotImplementedError

    def _read_wallets(self, wallet_ids: Sequence[str]) -> None:
        """Read the stored wallets among ``wallet_ids`` that this unit has not read yet, in
        one query per chunk (a batch's lock reads them all at once)."""
        self._check_open()
        wanted = [wallet_id for wallet_id in wallet_ids
                  if wallet_id not in self._wallets and wallet_id not in self._stored]
        for chunk in _chunks(wanted):
            rows = self._all(
                self._q(f"SELECT {WALLET_COLS} FROM wallets WHERE id IN"
                        f" ({_marks(len(chunk))})"), list(chunk))
            for row in rows:
                wallet = self._ROWS.wallet(row)
                self._stored[wallet.id] = wallet

    def get_lots(self, lot_ids: Sequence[str]) -> dict[str, Lot]:
        """The lots known among ``lot_ids`` as this unit sees them, by id."""
        self._check_open()
        found: dict[str, Lot] = {}
        wanted: list[str] = []
        for lot_id in dict.fromkeys(lot_ids):
            own = self._lots.get(lot_id)
            if own is not None:
                found[lot_id] = own
            else:
                wanted.append(lot_id)
        for chunk in _chunks(wanted):
            rows = self._all(
                self._q(f"SELECT {LOT_COLS} FROM lots WHERE id IN ({_marks(len(chunk))})"),
                list(chunk),
            )
            for row in rows:
                lot = self._ROWS.lot(row)
                found[lot.id] = lot
        return {lot_id: found[lot_id] for lot_id in lot_ids if lot_id in found}

    def get_records(self, rtype: RecordType[T], keys: Sequence[str]) -> dict[str, T]:
        """The records stored under ``keys`` as this unit sees them, by key; what was read
        is kept for the unit's later :meth:`get_record` calls."""
        self._check_open()
        kind = rtype.kind
        found: dict[str, T] = {}
        wanted: list[str] = []
        for key in dict.fromkeys(keys):
            buffered, record = self._buffered_record(kind, key)
            if buffered:
                if record is not None:
                    found[key] = record
            elif (kind, key) in self._read_ahead:
                data = self._read_ahead[(kind, key)]
                if data is not None:
                    found[key] = rtype.load(data)
            else:
                wanted.append(key)
        for chunk in _chunks(wanted):
            rows = self._all(*self._DIALECT.keyed("key, data", "records", "kind", kind, chunk))
            stored = {row[0]: row[1] for row in rows}
            for key in chunk:
                data = stored.get(key)
                self._read_ahead[(kind, key)] = data
                if data is not None:
                    found[key] = rtype.load(data)
        return {key: found[key] for key in keys if key in found}

    def get_idempotencies(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], IdempotencyRecord]:
        """The records stored under the ``(scope, key)`` pairs, by pair; each checked against
        its seal like :meth:`get_idempotency` (``IntegrityError``), and a pair found absent is
        noted so that storing a record under it reads nothing more."""
        self._check_open()
        found: dict[tuple[str, str], IdempotencyRecord] = {}
        by_scope: dict[str, list[str]] = {}
        for pair in dict.fromkeys(keys):
            own = self._idempotency.get(pair)
            if own is not None:
                found[pair] = own
            else:
                by_scope.setdefault(pair[0], []).append(pair[1])
        sealer = self._store.sealer
        for scope, scope_keys in by_scope.items():
            for chunk in _chunks(scope_keys):
                rows = self._all(*self._DIALECT.keyed(
                    f"{IDEMPOTENCY_COLS}, seal", "idempotency", "scope", scope, chunk))
                for row in rows:
                    record = self._ROWS.idempotency(row[:-1])
                    wrong = sealer.check("idempotency", CANON.idempotency_row(record), row[-1])
                    if wrong is not None:
                        raise IntegrityError(
                            f"the idempotency record {record.scope}/{record.key} {wrong}: it"
                            " is not replayed (verify the store)")
                    found[(record.scope, record.key)] = record
                for key in chunk:
                    if (scope, key) not in found:
                        self._absent_keys.add((scope, key))
        return {pair: found[pair] for pair in keys if pair in found}
