"""The reads every SQL unit of work makes the same way (private).

A SQL backend's unit of work answers a lookup from what it buffered first, then from the
committed row; a listing merges the two. Pending events (the outbox) are read from committed
rows only, less the ones the unit acknowledged. The SQL and the merging live here once; a backend
supplies how it runs a query (``_one``, ``_all``, ``_lazy``), its placeholder (``_MARK``), how an
instant becomes a column value (``_instant_param``), how a row becomes a value (``_map_*``), its
column lists and live-lot order, and which committed wallets it already holds
(``_known_wallet``). Statements are written with ``?`` placeholders and converted once per
backend.

Spend conditions are stored as JSON text (:meth:`SpendCondition.to_data`, compact, keys sorted)
by both backends: :func:`condition_text` and :func:`condition_of` convert. Automatic top-up
intents likewise (:meth:`TopUpIntent.to_data`): :func:`intent_text` and :func:`intent_of`.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import (
    ConditionGroupNotFoundError,
    HoldNotFoundError,
    IntegrityError,
    LotNotFoundError,
    WalletNotFoundError,
)
from prepaid_wallet.ledger import Entry
from prepaid_wallet.money import Money, _check_range, _valid
from prepaid_wallet.policies import default_lot_key
from prepaid_wallet.storage._buffer import WriteBuffer
from prepaid_wallet.storage.base import Event, IdempotencyRecord, dump_state
from prepaid_wallet.wallet import Charge, Hold, HoldStatus, Lot, Wallet

if TYPE_CHECKING:  # top-up intents are read and written only by top-up paths
    from prepaid_wallet.rules.topup import TopUpIntent

__all__ = [
    "SQLReads",
    "condition_from_text",
    "condition_of",
    "condition_text",
    "intent_of",
    "intent_text",
    "stored_amount",
]


@functools.cache
def _marked(sql: str, mark: str) -> str:
    return sql if mark == "?" else sql.replace("?", mark)


def stored_amount(minor: Any, currency: str) -> Money:
    """A stored amount (integer minor units) in a currency already checked on its row: only
    its type and range are checked again."""
    if type(minor) is not int:
        raise IntegrityError(f"stored amount {minor!r} is not an integer")
    return _valid(_check_range(minor, currency, "amount"), currency)


#: Rows per page when a listing is read by key (``iter_wallets``).
_PAGE = 500

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


def intent_text(intent: TopUpIntent) -> str:
    """``intent`` as stored: the JSON of :meth:`TopUpIntent.to_data`, compact, with sorted
    keys."""
    return _condition_encoder.encode(intent.to_data())


def intent_of(text: str) -> TopUpIntent:
    """The intent stored as ``text``."""
    from prepaid_wallet.rules.topup import TopUpIntent

    return TopUpIntent.from_data(json.loads(text))


class SQLReads(WriteBuffer):
    """Wallet, lot, hold, charge, setting and group reads of a SQL unit of work, overlaid with
    its buffer."""

    _MARK: ClassVar[str] = "?"
    _WALLET_COLS: ClassVar[str]
    _LOT_COLS: ClassVar[str]
    _HOLD_COLS: ClassVar[str]
    _CHARGE_COLS: ClassVar[str]
    _GROUP_COLS: ClassVar[str]
    _LIVE_ORDER: ClassVar[str]
    _ENTRY_COLS: ClassVar[str]
    _IDEMPOTENCY_COLS: ClassVar[str]
    #: The columns an :class:`~prepaid_wallet.storage.base.Event` is read from.
    _EVENT_COLS: ClassVar[str] = "id, tenant_id, wallet_id, kind, created_at, payload"
    #: Entries read per query of postings when the whole journal is exported.
    _EXPORT_BATCH: ClassVar[int] = 256

    @staticmethod
    def _map_wallet(row: Sequence[Any]) -> Wallet:
        raise NotImplementedError

    @staticmethod
    def _map_lot(row: Sequence[Any]) -> Lot:
        raise NotImplementedError

    @staticmethod
    def _map_hold(row: Sequence[Any]) -> Hold:
        raise NotImplementedError

    @staticmethod
    def _map_charge(row: Sequence[Any]) -> Charge:
        raise NotImplementedError

    @staticmethod
    def _map_group(row: Sequence[Any]) -> ConditionGroup:
        raise NotImplementedError

    @staticmethod
    def _map_event(row: Sequence[Any]) -> Event:
        raise NotImplementedError

    @staticmethod
    def _map_idempotency(row: Sequence[Any]) -> IdempotencyRecord:
        raise NotImplementedError

    @staticmethod
    def _fetch_entries(conn: Any, rows: Sequence[Sequence[Any]]) -> list[Entry]:
        """The entries of ``rows`` (entry columns) with their postings."""
        raise NotImplementedError

    @classmethod
    def export_tables(cls, conn: Any) -> dict[str, Any]:
        """Every table read through ``conn`` (a connection inside one snapshot whose
        ``execute(sql)`` iterates rows), as :func:`~prepaid_wallet.storage.base.dump_state`
        returns it: what ``export_state`` of either SQL store gives."""

        def rows(sql: str) -> Any:
            return conn.execute(sql)

        entry_rows = list(rows(f"SELECT {cls._ENTRY_COLS} FROM entries ORDER BY seq"))
        batch = cls._EXPORT_BATCH
        return dump_state(
            wallets=[cls._map_wallet(r) for r in rows(f"SELECT {cls._WALLET_COLS} FROM wallets")],
            lots=[cls._map_lot(r) for r in rows(f"SELECT {cls._LOT_COLS} FROM lots")],
            holds=[cls._map_hold(r) for r in rows(f"SELECT {cls._HOLD_COLS} FROM holds")],
            charges=[cls._map_charge(r) for r in rows(f"SELECT {cls._CHARGE_COLS} FROM charges")],
            entries=[entry for i in range(0, len(entry_rows), batch)
                     for entry in cls._fetch_entries(conn, entry_rows[i : i + batch])],
            idempotency=[cls._map_idempotency(r)
                         for r in rows(f"SELECT {cls._IDEMPOTENCY_COLS} FROM idempotency")],
            groups=[cls._map_group(r)
                    for r in rows(f"SELECT {cls._GROUP_COLS} FROM condition_groups")],
            settings=[(str(r[0]), str(r[1]), str(r[2]))
                      for r in rows("SELECT wallet_id, name, value FROM wallet_settings")],
            intents=[(str(r[0]), intent_of(r[1]))
                     for r in rows("SELECT tenant_id, data FROM top_up_intents")],
            events=[(cls._map_event(r[:6]), bool(r[6])) for r in rows(
                f"SELECT {cls._EVENT_COLS}, acked_at IS NOT NULL FROM events ORDER BY seq")],
        )

    @staticmethod
    def _live_key(row: Sequence[Any]) -> tuple[Any, ...]:
        """:func:`~prepaid_wallet.policies.default_lot_key` of a lot row."""
        raise NotImplementedError

    @staticmethod
    def _instant_param(at: datetime) -> Any:
        """An instant as the column value the backend stores."""
        raise NotImplementedError

    def __init__(self, *, read_only: bool) -> None:
        super().__init__(read_only=read_only)
        #: Wallets as stored, read by this unit: a write unit holds their lock (or the file's)
        #: and a read unit reads one snapshot, so what was read stays true until the unit ends.
        self._stored: dict[str, Wallet] = {}

    # -- what a backend provides ------------------------------------------------------------

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _lazy(self, sql: str, params: Sequence[Any]) -> Iterator[Any]:
        raise NotImplementedError

    def _known_wallet(self, wallet_id: str) -> Wallet | None:
        """The committed wallet if this unit already read it."""
        return self._stored.get(wallet_id)

    # -- shared -----------------------------------------------------------------------------

    def _q(self, sql: str) -> str:
        return _marked(sql, self._MARK)

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
            self._q(f"SELECT {self._WALLET_COLS} FROM wallets WHERE id = ?"), (wallet_id,)
        )
        if row is None:
            raise WalletNotFoundError(wallet_id)
        wallet = self._stored[wallet_id] = self._map_wallet(row)
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

    def iter_wallets(self, tenant_id: str | None = None) -> Iterator[Wallet]:
        """All wallets (of one tenant), by id: committed ones read a page at a time after the
        last id seen (bounded memory however many there are), merged with this unit's own."""
        self._check_open()
        where = "id > ?" if tenant_id is None else "tenant_id = ? AND id > ?"
        page = self._q(
            f"SELECT {self._WALLET_COLS} FROM wallets WHERE {where} ORDER BY id LIMIT ?"
        )
        own = sorted(
            (w.id, w) for w in self._wallets.values() if tenant_id in (None, w.tenant_id)
        )

        def committed() -> Iterator[tuple[str, Wallet]]:
            last = ""
            while True:
                params = (last, _PAGE) if tenant_id is None else (tenant_id, last, _PAGE)
                rows = self._all(page, params)
                for row in rows:
                    yield row[0], self._map_wallet(row)
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
        row = self._one(self._q(f"SELECT {self._LOT_COLS} FROM lots WHERE id = ?"), (lot_id,))
        if row is None:
            raise LotNotFoundError(lot_id)
        return self._map_lot(row)

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
                f"SELECT {self._LOT_COLS} FROM lots WHERE wallet_id = ? AND remaining > 0"
                f" ORDER BY wallet_id, {self._LIVE_ORDER}"
            ),
            (wallet_id,),
        )
        committed = ((self._live_key(row), self._map_lot(row)) for row in rows_iter)
        for _, stored in heapq.merge(committed, extra, key=lambda pair: pair[0]):
            lot = self._lots.get(stored.id, stored)
            if lot.is_live:
                yield lot

    def wallet_lots(self, wallet_id: str) -> Iterator[Lot]:
        """Every lot of the wallet, by grant instant then id."""
        self._check_open()
        rows = self._all(
            self._q(f"SELECT {self._LOT_COLS} FROM lots WHERE wallet_id = ?"), (wallet_id,)
        )
        lots = {row[0]: self._map_lot(row) for row in rows}
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
                self._q(f"SELECT {self._LOT_COLS} FROM lots WHERE {where} ORDER BY due_at, id"),
                (self._instant_param(at),),
            )
        else:
            rows = self._lazy(
                self._q(
                    f"SELECT {self._LOT_COLS} FROM lots WHERE wallet_id = ? AND {where}"
                    " ORDER BY wallet_id, due_at, id"
                ),
                (wallet_id, self._instant_param(at)),
            )
        lots = (self._lots.get(row[0]) or self._map_lot(row) for row in rows)
        return list(itertools.islice((lot for lot in lots if lot.is_live), limit))

    def get_hold(self, hold_id: str) -> Hold:
        """The hold as this unit sees it."""
        self._check_open()
        found = self._holds.get(hold_id)
        if found is not None:
            return found
        row = self._one(self._q(f"SELECT {self._HOLD_COLS} FROM holds WHERE id = ?"), (hold_id,))
        if row is None:
            raise HoldNotFoundError(hold_id)
        return self._map_hold(row)

    def wallet_holds(self, wallet_id: str) -> Iterator[Hold]:
        """The wallet's holds, by creation then id."""
        self._check_open()
        rows = self._all(
            self._q(f"SELECT {self._HOLD_COLS} FROM holds WHERE wallet_id = ?"), (wallet_id,)
        )
        holds = {row[0]: self._map_hold(row) for row in rows}
        holds.update((h.id, h) for h in self._holds.values() if h.wallet_id == wallet_id)
        yield from sorted(holds.values(), key=lambda h: (h.created_at, h.id))

    def due_holds(self, at: datetime, limit: int) -> list[Hold]:
        """Committed active holds whose window ended at or before ``at``, soonest first."""
        self._check_open()
        if limit <= 0:
            return []
        rows = self._lazy(
            self._q(
                f"SELECT {self._HOLD_COLS} FROM holds WHERE status = 'active'"
                " AND expires_at <= ? ORDER BY expires_at, id"
            ),
            (self._instant_param(at),),
        )
        holds = (self._holds.get(row[0]) or self._map_hold(row) for row in rows)
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
            self._q(f"SELECT {self._CHARGE_COLS} FROM charges WHERE entry_id = ?"), (entry_id,)
        )
        return None if row is None else self._map_charge(row)

    # -- wallet settings --------------------------------------------------------------------

    def get_setting(self, wallet_id: str, name: str) -> str | None:
        """The setting as this unit sees it: its own buffered value, else the stored one."""
        self._check_open()
        buffered, value = self._buffered_setting(wallet_id, name)
        if buffered:
            return value
        row = self._one(
            self._q("SELECT value FROM wallet_settings WHERE wallet_id = ? AND name = ?"),
            (wallet_id, name),
        )
        return None if row is None else str(row[0])

    # -- condition groups -------------------------------------------------------------------

    def get_condition_group(self, group_id: str) -> ConditionGroup:
        """The group as this unit sees it."""
        self._check_open()
        group = self._groups.get(group_id)
        if group is not None:
            return group
        row = self._one(
            self._q(f"SELECT {self._GROUP_COLS} FROM condition_groups WHERE id = ?"), (group_id,)
        )
        if row is None:
            raise ConditionGroupNotFoundError(group_id)
        return self._map_group(row)

    def lock_condition_group(self, group_id: str) -> ConditionGroup:
        """The group (a backend whose write unit is not already exclusive locks its row)."""
        return self.get_condition_group(group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's groups, by name then id: the stored ones overlaid with this unit's."""
        self._check_open()
        rows = self._all(
            self._q(
                f"SELECT {self._GROUP_COLS} FROM condition_groups WHERE tenant_id = ?"
                " ORDER BY tenant_id, name, id"
            ),
            (tenant_id,),
        )
        groups = {row[0]: self._map_group(row) for row in rows}
        groups.update(self._groups)
        return sorted(
            (g for g in groups.values() if g.tenant_id == tenant_id),
            key=lambda g: (g.name, g.id),
        )

    # -- automatic top-ups ------------------------------------------------------------------

    def get_top_up_intent(self, intent_id: str) -> TopUpIntent | None:
        """The intent as this unit sees it: its own buffered state, else the stored one."""
        self._check_open()
        buffered = self._intents.get(intent_id)
        if buffered is not None:
            return buffered[1]
        row = self._one(self._q("SELECT data FROM top_up_intents WHERE id = ?"), (intent_id,))
        return None if row is None else intent_of(row[0])

    def pending_top_up_intent(self, wallet_id: str) -> TopUpIntent | None:
        """The wallet's pending intent as this unit sees it: the committed one (the unique
        index of pending intents by wallet) overlaid with this unit's."""
        self._check_open()
        row = self._one(
            self._q(
                "SELECT data FROM top_up_intents WHERE wallet_id = ? AND status = 'pending'"
            ),
            (wallet_id,),
        )
        return self._pending_overlay(wallet_id, None if row is None else intent_of(row[0]))

    def pending_top_up_intents(self, limit: int) -> list[tuple[str, TopUpIntent]]:
        """Up to ``limit`` committed pending intents of every tenant, oldest first (the index
        of pending intents by ``(created_at, id)``)."""
        self._check_open()
        if limit <= 0:
            return []
        rows = self._all(
            self._q(
                "SELECT tenant_id, data FROM top_up_intents WHERE status = 'pending'"
                " ORDER BY created_at, id LIMIT ?"
            ),
            (limit,),
        )
        return [(str(row[0]), intent_of(row[1])) for row in rows]

    # -- events (the outbox) ----------------------------------------------------------------

    def pending_events(self, tenant_id: str, limit: int) -> list[Event]:
        """The tenant's committed, unacknowledged events in commit order (the pending index,
        ``(tenant_id, seq)``), less the ones this unit acknowledged."""
        self._check_open()
        if limit <= 0:
            return []
        acked = self._acks.get(tenant_id, set())
        rows = self._all(
            self._q(
                f"SELECT {self._EVENT_COLS} FROM events WHERE tenant_id = ?"
                " AND acked_at IS NULL ORDER BY tenant_id, seq LIMIT ?"
            ),
            (tenant_id, limit + len(acked)),
        )
        events = (self._map_event(row) for row in rows if row[0] not in acked)
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
