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

Schema: amounts are INTEGER minor units next to a currency TEXT column; instants are INTEGER
microseconds since the Unix epoch (UTC), read back as aware UTC datetimes; spend conditions are
JSON text, and so are automatic top-up intents (a partial unique index allows one pending
intent per wallet). Events (the outbox) are appended in commit order (``seq``) and keep, once
acknowledged, the instant they were. Each lot row also keeps whether it is conditioned and
when it falls due (its expiry or its condition group's end, whichever is first), for the live
and due indexes. The schema is created
on open, in one transaction, and its version recorded in ``meta``; a file written by a newer
library raises :class:`~prepaid_wallet.errors.SchemaVersionError`. The database is a second line
of defence: triggers keep ``entries``, ``postings`` and ``wallet_history`` append-only and refuse
an entry whose postings are fewer than two or do not sum to zero per currency.

Driver errors are translated in one place, :func:`_translated`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from prepaid_wallet import _codec
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import (
    ConcurrencyError,
    ConflictError,
    DuplicateWalletError,
    EntryNotFoundError,
    IntegrityError,
    InvalidInputError,
    SchemaVersionError,
    StorageError,
    StoreNotFoundError,
    WalletNotFoundError,
)
from prepaid_wallet.expiry import lot_end
from prepaid_wallet.ledger import Entry, EntryKind, Posting, check_postings
from prepaid_wallet.money import Money
from prepaid_wallet.policies import is_conditioned
from prepaid_wallet.storage._buffer import balances_after
from prepaid_wallet.storage._sql import (
    SQLReads,
    condition_from_text,
    condition_of,
    condition_text,
    intent_text,
    stored_amount,
)
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

if TYPE_CHECKING:  # top-up intents are read and written only by top-up paths
    from prepaid_wallet.rules.topup import TopUpIntent

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "SQLiteUnitOfWork"]

#: The schema version this library writes and reads.
SCHEMA_VERSION = 6

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_BATCH = 256
#: Every message raised by one of our triggers starts with this.
_TRIGGER = "prepaid_wallet:"

#: Version 1 of the schema, as first released. A new file gets it and then every migration, in
#: the same transaction, so a new file and a migrated one always have the same schema.
_SCHEMA_V1 = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    floor INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    open INTEGER NOT NULL,
    commerce INTEGER NOT NULL,
    held INTEGER NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 0),
    head TEXT NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (tenant_id, owner_id, currency)
);
CREATE INDEX wallets_by_tenant ON wallets (tenant_id, id);
CREATE TABLE lots (
    id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    remaining INTEGER NOT NULL CHECK (remaining >= 0),
    granted_at INTEGER NOT NULL,
    expires_at INTEGER,
    priority INTEGER NOT NULL,
    reason TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    expired_entry_id TEXT
);
CREATE INDEX lots_by_wallet ON lots (wallet_id, granted_at, id);
CREATE INDEX lots_live ON lots (
    wallet_id, priority, expires_at IS NULL, coalesce(expires_at, granted_at), granted_at, id
) WHERE remaining > 0;
CREATE INDEX lots_due ON lots (expires_at, id)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE INDEX lots_due_by_wallet ON lots (wallet_id, expires_at, id)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE TABLE holds (
    id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    allocation TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    status TEXT NOT NULL,
    captured INTEGER,
    resolved_entry_id TEXT,
    resolved_at INTEGER
);
CREATE INDEX holds_by_wallet ON holds (wallet_id, created_at, id);
CREATE INDEX holds_due ON holds (expires_at, id) WHERE status = 'active';
CREATE TABLE charges (
    entry_id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    allocation TEXT NOT NULL,
    refunded TEXT NOT NULL
);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    effective_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    wallet_ids TEXT NOT NULL,
    prev_hashes TEXT NOT NULL,
    idempotency_key TEXT,
    actor TEXT,
    metadata TEXT NOT NULL,
    refund_of TEXT,
    reverses TEXT,
    hash TEXT NOT NULL
);
CREATE INDEX entries_by_reverses ON entries (reverses) WHERE reverses IS NOT NULL;
CREATE TABLE postings (
    entry_seq INTEGER NOT NULL,
    entry_id TEXT NOT NULL REFERENCES entries (id) DEFERRABLE INITIALLY DEFERRED,
    position INTEGER NOT NULL,
    account TEXT NOT NULL,
    minor INTEGER NOT NULL CHECK (minor != 0),
    currency TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    balance_after INTEGER,
    PRIMARY KEY (entry_seq, position)
);
CREATE INDEX postings_by_entry ON postings (entry_id);
CREATE INDEX postings_as_of ON postings (account, recorded_at, entry_seq);
CREATE INDEX postings_latest ON postings (account, entry_seq);
CREATE TABLE wallet_history (
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    entry_seq INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    currency TEXT NOT NULL,
    open INTEGER NOT NULL,
    commerce INTEGER NOT NULL,
    held INTEGER NOT NULL,
    PRIMARY KEY (wallet_id, entry_seq)
);
CREATE INDEX wallet_history_as_of ON wallet_history (wallet_id, recorded_at, entry_seq);
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    operation TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
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

#: ``_MIGRATIONS[n]`` turns schema ``n - 1`` into ``n``; each runs inside the one transaction
#: that opens the file.
_MIGRATIONS: dict[int, str] = {
    # Version 2: fewer pages written per entry. Postings, balance history, charges and
    # idempotency records become clustered (WITHOUT ROWID) tables keyed the way they are read;
    # postings link to their entry by sequence number; the index of every posting by account
    # keeps only wallet accounts (the ones with a balance to look up at an instant).
    2: f"""
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
""",
    # Version 3: condition groups, and lots that carry spend conditions. A lot records whether
    # it is conditioned (conditioned lots pay first: the live index leads with it), when it ends
    # whatever its group does (``ends_at``: its own expiry or its conditions' end) and when it
    # falls due: that or its group's end, whichever is first (the due indexes read that; a
    # group's live lots are found by ``lots_by_group`` when its end moves).
    3: """
CREATE TABLE condition_groups (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    condition TEXT NOT NULL,
    valid_from INTEGER,
    valid_until INTEGER
);
CREATE INDEX condition_groups_by_name ON condition_groups (tenant_id, name, id);
ALTER TABLE lots ADD COLUMN condition TEXT;
ALTER TABLE lots ADD COLUMN group_id TEXT REFERENCES condition_groups (id);
ALTER TABLE lots ADD COLUMN group_version INTEGER;
ALTER TABLE lots ADD COLUMN conditioned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lots ADD COLUMN ends_at INTEGER;
ALTER TABLE lots ADD COLUMN due_at INTEGER;
UPDATE lots SET ends_at = expires_at, due_at = expires_at WHERE expires_at IS NOT NULL;
DROP INDEX lots_live;
CREATE INDEX lots_live ON lots (
    wallet_id, conditioned DESC, priority, expires_at IS NULL, coalesce(expires_at, granted_at),
    granted_at, id
) WHERE remaining > 0;
DROP INDEX lots_due;
CREATE INDEX lots_due ON lots (due_at, id) WHERE remaining > 0 AND due_at IS NOT NULL;
DROP INDEX lots_due_by_wallet;
CREATE INDEX lots_due_by_wallet ON lots (wallet_id, due_at, id)
    WHERE remaining > 0 AND due_at IS NOT NULL;
CREATE INDEX lots_by_group ON lots (group_id, id) WHERE remaining > 0 AND group_id IS NOT NULL;
""",
    # Version 4: wallet settings (limits overrides, owner groups, automatic top-up rules): text
    # values by wallet and name, clustered by that key (the way they are read). A setting names
    # a stored wallet.
    4: """
CREATE TABLE wallet_settings (
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (wallet_id, name)
) WITHOUT ROWID;
""",
    # Version 5: the events outbox (low-balance reminders and the like), written with the unit
    # that caused them. ``seq`` (the rowid) is the commit order; an acknowledged event stays,
    # with the instant it was acknowledged, and leaves the index of pending events, which is
    # read by tenant in commit order.
    5: """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    wallet_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    acked_at INTEGER
);
CREATE INDEX events_pending ON events (tenant_id, seq) WHERE acked_at IS NULL;
""",
    # Version 6: automatic top-up intents, stored as the JSON of ``TopUpIntent.to_data`` next
    # to the columns they are found by. A wallet has at most one pending intent (the database
    # itself refuses a second: the partial unique index); the pending ones of every tenant are
    # read oldest first from an index of their own.
    6: """
CREATE TABLE top_up_intents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    wallet_id TEXT NOT NULL REFERENCES wallets (id),
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX top_up_intents_one_pending ON top_up_intents (wallet_id)
    WHERE status = 'pending';
CREATE INDEX top_up_intents_pending ON top_up_intents (created_at, id)
    WHERE status = 'pending';
""",
}

_WALLET_COLS = (
    "id, tenant_id, owner_id, currency, floor, created_at, open, commerce, held, status,"
    " version, head, metadata"
)
_LOT_COLS = (
    "id, wallet_id, currency, amount, remaining, granted_at, expires_at, priority, reason,"
    " entry_id, expired_entry_id, condition, group_id, group_version, conditioned"
)
#: What a lot write sends: the columns read, and when the lot falls due.
_LOT_WRITE_COLS = _LOT_COLS + ", ends_at, due_at"
_GROUP_COLS = "id, tenant_id, name, version, condition, valid_from, valid_until"
_HOLD_COLS = (
    "id, wallet_id, currency, amount, allocation, created_at, expires_at, entry_id, status,"
    " captured, resolved_entry_id, resolved_at"
)
_CHARGE_COLS = "entry_id, wallet_id, currency, amount, allocation, refunded"
_ENTRY_COLS = (
    "seq, id, kind, effective_at, recorded_at, wallet_ids, prev_hashes, idempotency_key, actor,"
    " metadata, refund_of, reverses, hash"
)
_IDEMPOTENCY_COLS = "scope, key, operation, request, outcome, payload, created_at"
_EVENT_COLS = "id, tenant_id, wallet_id, kind, created_at, payload"
_HISTORY_COLS = "wallet_id, entry_id, recorded_at, currency, open, commerce, held"
_LIVE_ORDER = (
    "conditioned DESC, priority, expires_at IS NULL, coalesce(expires_at, granted_at),"
    " granted_at, id"
)

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


# -- values <-> columns ----------------------------------------------------------------------------


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICRO


def _instant(micros: int) -> datetime:
    return _EPOCH + micros * _MICRO


def _opt_micros(at: datetime | None) -> int | None:
    return None if at is None else _micros(at)


def _opt_instant(micros: int | None) -> datetime | None:
    return None if micros is None else _instant(micros)


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    if text == "[]":
        return ()
    return tuple((str(a), str(b)) for a, b in json.loads(text))


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(value: Any) -> str:
    if value == ():
        return "[]"
    return _encode(value)


def _parts(text: str) -> tuple[AllocationPart, ...]:
    parts: tuple[AllocationPart, ...] = _codec.loads(tuple[AllocationPart, ...], text)
    return parts


def _wallet_row(w: Wallet) -> tuple[Any, ...]:
    return (
        w.id, w.tenant_id, w.owner_id, w.currency, w.floor.minor_units, _micros(w.created_at),
        w.open.minor_units, w.commerce.minor_units, w.held.minor_units, w.status.value,
        w.version, w.head, _json(w.metadata),
    )


def _wallet(row: Sequence[Any]) -> Wallet:
    currency = row[3]
    floor = Money(row[4], currency)  # checks the currency and the range once...
    return Wallet(
        id=row[0], tenant_id=row[1], owner_id=row[2], currency=currency,
        floor=floor, created_at=_instant(row[5]),
        open=stored_amount(row[6], currency),  # ...then only the range
        commerce=stored_amount(row[7], currency),
        held=stored_amount(row[8], currency), status=WalletStatus(row[9]), version=row[10],
        head=row[11], metadata=_pairs(row[12]),
    )


def _lot_row(lot: Lot, group_ends: dict[str, int | None]) -> tuple[Any, ...]:
    """The lot's columns (:data:`_LOT_WRITE_COLS`); ``group_ends`` holds the end of validity
    (``valid_until``) of its group, if it has one."""
    expires = _opt_micros(lot.expires_at)
    ends = _opt_micros(lot_end(lot))
    due = ends
    if lot.group_id is not None:
        end = group_ends[lot.group_id]
        if end is not None and (due is None or end < due):
            due = end
    return (
        lot.id, lot.wallet_id, lot.amount.currency, lot.amount.minor_units,
        lot.remaining.minor_units, _micros(lot.granted_at), expires,
        lot.priority, lot.reason, lot.entry_id, lot.expired_entry_id,
        condition_text(lot.condition), lot.group_id, lot.group_version,
        int(is_conditioned(lot)), ends, due,
    )


def _lot(row: Sequence[Any]) -> Lot:
    currency = row[2]
    return Lot(
        id=row[0], wallet_id=row[1], amount=Money(row[3], currency),
        remaining=Money(row[4], currency), granted_at=_instant(row[5]),
        expires_at=_opt_instant(row[6]), priority=row[7], reason=row[8], entry_id=row[9],
        expired_entry_id=row[10], condition=condition_of(row[11]), group_id=row[12],
        group_version=row[13],
    )


def _group_row(g: ConditionGroup) -> tuple[Any, ...]:
    return (
        g.id, g.tenant_id, g.name, g.version, condition_text(g.condition),
        _opt_micros(g.valid_from), _opt_micros(g.valid_until),
    )


def _group(row: Sequence[Any]) -> ConditionGroup:
    return ConditionGroup(
        id=row[0], tenant_id=row[1], name=row[2], condition=condition_from_text(row[4]),
        version=row[3], valid_from=_opt_instant(row[5]), valid_until=_opt_instant(row[6]),
    )


def _hold_row(h: Hold) -> tuple[Any, ...]:
    return (
        h.id, h.wallet_id, h.amount.currency, h.amount.minor_units,
        _codec.dumps_parts(h.allocation),
        _micros(h.created_at), _micros(h.expires_at), h.entry_id, h.status.value,
        None if h.captured is None else h.captured.minor_units, h.resolved_entry_id,
        _opt_micros(h.resolved_at),
    )


def _hold(row: Sequence[Any]) -> Hold:
    currency = row[2]
    return Hold(
        id=row[0], wallet_id=row[1], amount=Money(row[3], currency),
        allocation=_parts(row[4]), created_at=_instant(row[5]), expires_at=_instant(row[6]),
        entry_id=row[7], status=HoldStatus(row[8]),
        captured=None if row[9] is None else Money(row[9], currency),
        resolved_entry_id=row[10], resolved_at=_opt_instant(row[11]),
    )


def _charge_row(c: Charge) -> tuple[Any, ...]:
    return (
        c.entry_id, c.wallet_id, c.amount.currency, c.amount.minor_units,
        _codec.dumps_parts(c.allocation), _codec.dumps_parts(c.refunded),
    )


def _charge(row: Sequence[Any]) -> Charge:
    return Charge(
        entry_id=row[0], wallet_id=row[1], amount=Money(row[3], row[2]),
        allocation=_parts(row[4]), refunded=_parts(row[5]),
    )


def _entry_row(seq: int, e: Entry) -> tuple[Any, ...]:
    return (
        seq, e.id, e.kind.value, _micros(e.effective_at), _micros(e.recorded_at),
        _json(e.wallet_ids), _json(e.prev_hashes), e.idempotency_key, e.actor,
        _json(e.metadata), e.refund_of, e.reverses, e.hash,
    )


def _entry(row: Sequence[Any], postings: Sequence[Sequence[Any]]) -> Entry:
    """An entry from its row and its postings' ``(account, minor, currency)`` rows."""
    return Entry(
        id=row[1], kind=EntryKind(row[2]),
        postings=tuple(Posting(p[0], Money(p[1], p[2])) for p in postings),
        effective_at=_instant(row[3]), recorded_at=_instant(row[4]),
        wallet_ids=tuple(json.loads(row[5])), prev_hashes=tuple(json.loads(row[6])),
        idempotency_key=row[7], actor=row[8], metadata=_pairs(row[9]), refund_of=row[10],
        reverses=row[11], hash=row[12],
    )


def _idempotency_row(r: IdempotencyRecord) -> tuple[Any, ...]:
    return (
        r.scope, r.key, r.operation, _json(r.request), r.outcome, r.payload,
        _micros(r.created_at),
    )


def _idempotency(row: Sequence[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=row[0], key=row[1], operation=row[2], request=_pairs(row[3]), outcome=row[4],
        payload=row[5], created_at=_instant(row[6]),
    )


def _event_row(e: Event) -> tuple[Any, ...]:
    return (e.id, e.tenant_id, e.wallet_id, e.kind, _micros(e.created_at), e.payload)


def _event(row: Sequence[Any]) -> Event:
    return Event(
        id=row[0], tenant_id=row[1], wallet_id=row[2], kind=row[3],
        created_at=_instant(row[4]), payload=row[5],
    )


def _intent_row(tenant_id: str, intent: TopUpIntent) -> tuple[Any, ...]:
    return (
        intent.id, tenant_id, intent.wallet_id, intent.status.value,
        _micros(intent.created_at), intent_text(intent),
    )


def _snapshot(row: Sequence[Any]) -> WalletSnapshot:
    currency = row[3]
    return WalletSnapshot(
        wallet_id=row[0], entry_id=row[1], recorded_at=_instant(row[2]),
        open=Money(row[4], currency), commerce=Money(row[5], currency),
        held=Money(row[6], currency),
    )


def _live_key(row: Sequence[Any]) -> tuple[Any, ...]:
    """:func:`~prepaid_wallet.policies.default_lot_key` of a lot row."""
    granted = _instant(row[5])
    expires = _opt_instant(row[6])
    return (not row[14], row[7], expires is None, expires or granted, granted, row[0])


def _fetch_entries(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Entry]:
    """Rebuild the entries of ``rows`` (entry rows) with their postings, in one query."""
    if not rows:
        return []
    seqs = [row[0] for row in rows]
    marks = ",".join("?" * len(seqs))
    postings: dict[int, list[tuple[Any, ...]]] = {}
    for seq, account, minor, currency in conn.execute(
        f"SELECT entry_seq, account, minor, currency FROM postings"
        f" WHERE entry_seq IN ({marks}) ORDER BY entry_seq, position",
        seqs,
    ):
        postings.setdefault(seq, []).append((account, minor, currency))
    return [_entry(row, postings.get(row[0], [])) for row in rows]


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
    ) -> None:
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
        conn = self._connection()
        self._retrying(conn, "BEGIN IMMEDIATE")
        try:
            with _translated("creating the schema"):
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
                    if found > SCHEMA_VERSION:
                        raise SchemaVersionError(found, SCHEMA_VERSION)
                    if found < 1:
                        raise StorageError(
                            f"the database has no usable schema version ({found}); it was not"
                            " written by this library"
                        )
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(_MIGRATIONS[version]):
                        conn.execute(statement)
                if found < SCHEMA_VERSION:
                    conn.execute(
                        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        (str(SCHEMA_VERSION),),
                    )
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

class SQLiteUnitOfWork(SQLReads):
    """A unit of work on a :class:`SQLiteStore` (see :mod:`prepaid_wallet.storage.base`)."""

    _WALLET_COLS = _WALLET_COLS
    _LOT_COLS = _LOT_COLS
    _HOLD_COLS = _HOLD_COLS
    _CHARGE_COLS = _CHARGE_COLS
    _GROUP_COLS = _GROUP_COLS
    _LIVE_ORDER = _LIVE_ORDER
    _map_wallet = staticmethod(_wallet)
    _map_lot = staticmethod(_lot)
    _map_hold = staticmethod(_hold)
    _map_charge = staticmethod(_charge)
    _map_group = staticmethod(_group)
    _map_event = staticmethod(_event)
    _map_idempotency = staticmethod(_idempotency)
    _fetch_entries = staticmethod(_fetch_entries)
    _ENTRY_COLS = _ENTRY_COLS
    _IDEMPOTENCY_COLS = _IDEMPOTENCY_COLS
    _EXPORT_BATCH = _BATCH
    _live_key = staticmethod(_live_key)
    _instant_param = staticmethod(_micros)

    def __init__(self, store: SQLiteStore, *, read_only: bool = False) -> None:
        self._store = store
        super().__init__(read_only=read_only)
        self._conn: sqlite3.Connection | None = None
        self._entered = False
        self._done = False

    def __enter__(self) -> Self:
        if self._entered:
            raise StorageError("a unit of work is used once")
        store = self._store
        if getattr(store._local, "active", False):
            raise StorageError("this thread already has a unit of work open on this store")
        conn = store._connection()
        if self._read_only:
            with _translated("BEGIN"):
                conn.execute("BEGIN")
        else:
            store._retrying(conn, "BEGIN IMMEDIATE")
        self._conn = conn
        store._local.active = True
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

    def _check_open(self) -> sqlite3.Connection:
        if not self._entered or self._done or self._conn is None:
            raise StorageError("the unit of work is not active (use it once, inside 'with')")
        return self._conn

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        conn = self._check_open()
        with _translated("reading"):
            return conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = self._check_open()
        with _translated("reading"):
            return conn.execute(sql, params).fetchall()

    def _lazy(self, sql: str, params: Sequence[Any]) -> Iterator[Any]:
        """Rows of ``sql``, fetched ``_BATCH`` at a time."""
        conn = self._check_open()
        with _translated("reading"):
            cursor = conn.execute(sql, params)
        try:
            while True:
                with _translated("reading"):
                    rows = cursor.fetchmany(_BATCH)
                if not rows:
                    return
                yield from rows
        finally:
            with contextlib.suppress(sqlite3.Error):  # its connection may be closed already
                cursor.close()

    # -- commit and rollback ---------------------------------------------------------------

    def commit(self) -> None:
        """Validate the buffered writes, send them in one transaction and commit it."""
        conn = self._check_open()
        try:
            if (
                self._changes or self._new_wallets or self._idempotency or self._groups
                or self._settings or self._events or self._acks or self._intents
            ):
                group_ends = self._validate()
                self._flush(conn, group_ends)
            self._store._retrying(conn, "COMMIT")
        except BaseException:
            self.rollback()  # a failed commit ends the unit; nothing of it is kept
            raise
        self._done = True

    def rollback(self) -> None:
        """Discard the buffered writes and end the transaction."""
        self._clear_buffer()
        self._done = True
        conn = self._conn
        if conn is not None and not self._store._closed:
            with _translated("ROLLBACK"):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

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
        seen: set[str] = set()
        for change in self._changes:
            check_postings(change.entry.postings)
            entry_id = change.entry.id
            if entry_id in seen:
                raise IntegrityError(f"entry id {entry_id!r} already used")
            seen.add(entry_id)
        if self._settings:
            self._check_wallets([wallet_id for wallet_id, _ in self._settings])
        if self._intents:
            self._check_wallets([intent.wallet_id for _, intent in self._intents.values()])
        return self._group_ends()

    def _check_wallets(self, wallet_ids: Sequence[str]) -> None:
        """``WalletNotFoundError`` for the first of ``wallet_ids`` (the wallets of settings or
        intents, in the order the unit wrote them, like the memory store) that is neither
        stored nor opened in this unit (wallets this unit read or wrote need no read; the
        others, one)."""
        wanted = sorted(
            {
                wallet_id
                for wallet_id in wallet_ids
                if wallet_id not in self._wallets and self._known_wallet(wallet_id) is None
            }
        )
        if not wanted:
            return
        rows = self._all(
            f"SELECT id FROM wallets WHERE id IN ({','.join('?' * len(wanted))})", wanted
        )
        missing = set(wanted) - {row[0] for row in rows}
        for wallet_id in wallet_ids:
            if wallet_id in missing:
                raise WalletNotFoundError(wallet_id)

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
            conn.execute(
                f"INSERT INTO condition_groups ({_GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,"
                " name = excluded.name, version = excluded.version,"
                " condition = excluded.condition, valid_from = excluded.valid_from,"
                " valid_until = excluded.valid_until",
                _group_row(group),
            )
            if stored is not None and stored[0] != until:
                conn.execute(
                    "UPDATE lots SET due_at = CASE"
                    " WHEN :until IS NULL THEN ends_at"
                    " WHEN ends_at IS NULL OR ends_at > :until THEN :until"
                    " ELSE ends_at END"
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
                    f"INSERT INTO wallets ({_WALLET_COLS}) VALUES ({','.join('?' * 13)})",
                    [_wallet_row(self._wallets[w.id]) for w in self._new_wallets],
                )
            # A change moves balances, version and head only; the rest of a wallet is fixed.
            updates = [
                (w.open.minor_units, w.commerce.minor_units, w.held.minor_units,
                 w.status.value, w.version, w.head, w.id, self._base_versions.get(w.id, 0))
                for w in self._wallets.values()
                if w.id not in new_ids
            ]
            for row in updates:
                cursor = conn.execute(
                    "UPDATE wallets SET open = ?, commerce = ?, held = ?, status = ?,"
                    " version = ?, head = ? WHERE id = ? AND version = ?",
                    row,
                )
                if cursor.rowcount != 1:  # this update did not apply: the version moved
                    wallet_id, base = row[-2], row[-1]
                    found = conn.execute("SELECT version FROM wallets WHERE id = ?", (wallet_id,))
                    current = found.fetchone()
                    raise ConcurrencyError(str(wallet_id), int(base), current[0] if current else 0)
        if self._settings:  # after the wallets: a wallet opened in this unit may get settings
            self._flush_settings(conn)
        if self._intents:  # after the wallets too, for the same reason
            self._flush_intents(conn)
        self._flush_journal(conn)
        if self._events or self._acks:
            self._flush_events(conn)
        with _translated("writing lots, holds and charges"):
            if self._lots:
                # A lot's terms are fixed when it is granted; what moves is its remainder, its
                # expiry entry, and when it falls due (its group's end may have moved while it
                # was empty).
                conn.executemany(
                    f"INSERT INTO lots ({_LOT_WRITE_COLS}) VALUES ({','.join('?' * 17)})"
                    " ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining,"
                    " expired_entry_id = excluded.expired_entry_id, due_at = excluded.due_at",
                    [_lot_row(lot, group_ends) for lot in self._lots.values()],
                )
            if self._holds:
                conn.executemany(
                    f"INSERT INTO holds ({_HOLD_COLS}) VALUES ({','.join('?' * 12)})"
                    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                    " captured = excluded.captured,"
                    " resolved_entry_id = excluded.resolved_entry_id,"
                    " resolved_at = excluded.resolved_at",
                    [_hold_row(h) for h in self._holds.values()],
                )
            if self._charges:
                conn.executemany(
                    f"INSERT INTO charges ({_CHARGE_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (entry_id) DO UPDATE SET refunded = excluded.refunded",
                    [_charge_row(c) for c in self._charges.values()],
                )
        if self._idempotency:
            with _translated("writing idempotency records"):
                conn.executemany(
                    f"INSERT INTO idempotency ({_IDEMPOTENCY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [_idempotency_row(r) for r in self._idempotency.values()],
                )

    def _flush_settings(self, conn: sqlite3.Connection) -> None:
        """Write this unit's settings: a value replaces the stored one, ``None`` removes it."""
        removed = [key for key, value in self._settings.items() if value is None]
        stored = [(*key, value) for key, value in self._settings.items() if value is not None]
        with _translated("writing wallet settings"):
            if removed:
                conn.executemany(
                    "DELETE FROM wallet_settings WHERE wallet_id = ? AND name = ?", removed
                )
            if stored:
                conn.executemany(
                    "INSERT INTO wallet_settings (wallet_id, name, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (wallet_id, name) DO UPDATE SET value = excluded.value",
                    stored,
                )

    def _flush_intents(self, conn: sqlite3.Connection) -> None:
        """Write this unit's intents (a new one is inserted; a stored one takes its new status
        and data). Finished ones go first, so one this unit ends makes way for its wallet's
        next; a stored pending intent of a wallet this unit gives another one violates the
        partial unique index (``ConflictError``)."""
        from prepaid_wallet.rules.topup import IntentStatus

        intents = sorted(
            self._intents.values(),
            key=lambda ti: (ti[1].status is IntentStatus.PENDING, ti[1].id),
        )
        with _translated("writing top-up intents"):
            try:
                conn.executemany(
                    "INSERT INTO top_up_intents (id, tenant_id, wallet_id, status, created_at,"
                    " data) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                    " data = excluded.data",
                    [_intent_row(tenant_id, intent) for tenant_id, intent in intents],
                )
            except sqlite3.IntegrityError as exc:
                if "top_up_intents.wallet_id" in str(exc):
                    raise ConflictError(
                        "writing top-up intents: a wallet already has a pending top-up"
                        f" ({exc})"
                    ) from exc
                raise

    def _flush_events(self, conn: sqlite3.Connection) -> None:
        """Append this unit's events in its order (an id already stored conflicts), then mark
        the events it acknowledged, if still pending, with the current instant."""
        with _translated("writing events"):
            if self._events:
                conn.executemany(
                    f"INSERT INTO events ({_EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                    [_event_row(e) for e in self._events],
                )
            now = _micros(datetime.now(UTC))
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
                at = _micros(entry.recorded_at)
                postings.extend(
                    (seq, position, posting.account, posting.amount.minor_units,
                     posting.amount.currency, at, balance)
                    for position, (posting, balance) in enumerate(
                        zip(entry.postings, balances_after(change), strict=True)
                    )
                )
                entries.append(_entry_row(seq, entry))
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
                    f"INSERT INTO entries ({_ENTRY_COLS}) VALUES ({','.join('?' * 13)})", entries
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

    # -- wallets ---------------------------------------------------------------------------

    def lock_wallets(self, wallet_ids: Sequence[str]) -> dict[str, Wallet]:
        """The wallets (a write unit already holds the database's write lock)."""
        return {wallet_id: self.get_wallet(wallet_id) for wallet_id in sorted(set(wallet_ids))}

    # -- journal ---------------------------------------------------------------------------

    def get_entry(self, entry_id: str) -> Entry:
        """The entry; ``EntryNotFoundError`` if unknown."""
        conn = self._check_open()
        for change in self._changes:
            if change.entry.id == entry_id:
                return change.entry
        row = self._one(f"SELECT {_ENTRY_COLS} FROM entries WHERE id = ?", (entry_id,))
        if row is None:
            raise EntryNotFoundError(entry_id)
        with _translated("reading"):
            return _fetch_entries(conn, [row])[0]

    def reversal_of(self, entry_id: str) -> str | None:
        """The entry that reverses ``entry_id``."""
        self._check_open()
        for change in self._changes:
            if change.entry.reverses == entry_id:
                return change.entry.id
        row = self._one("SELECT id FROM entries WHERE reverses = ?", (entry_id,))
        return None if row is None else str(row[0])

    def iter_entries(self) -> Iterator[Entry]:
        """The committed journal in order, read a batch at a time."""
        conn = self._check_open()
        last = 0
        while True:
            rows = self._all(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, _BATCH),
            )
            if not rows:
                return
            with _translated("reading"):
                batch = _fetch_entries(conn, rows)
            yield from batch
            last = rows[-1][0]

    def wallet_history(
        self, wallet_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[tuple[Entry, WalletSnapshot]]:
        """The wallet's committed entries in ``[since, until)`` with balances after each."""
        conn = self._check_open()
        lo = -(2**63) if since is None else _micros(since)
        hi = 2**63 - 1 if until is None else _micros(until)
        cols = ", ".join(f"e.{c.strip()}" for c in _ENTRY_COLS.split(","))
        hist = ", ".join(f"h.{c.strip()}" for c in _HISTORY_COLS.split(","))
        rows = self._lazy(
            f"SELECT {cols}, {hist} FROM wallet_history h JOIN entries e ON e.seq = h.entry_seq"
            " WHERE h.wallet_id = ? AND h.recorded_at >= ? AND h.recorded_at < ?"
            " ORDER BY h.wallet_id, h.recorded_at, h.entry_seq",
            (wallet_id, lo, hi),
        )
        width = len(_ENTRY_COLS.split(","))
        while batch := list(itertools.islice(rows, _BATCH)):
            with _translated("reading"):
                entries = _fetch_entries(conn, [row[:width] for row in batch])
            for entry, row in zip(entries, batch, strict=True):
                yield entry, _snapshot(row[width:])

    def snapshot_at(self, wallet_id: str, at: datetime) -> WalletSnapshot | None:
        """Balances after the wallet's last committed entry at or before ``at``."""
        self._check_open()
        row = self._one(
            f"SELECT {_HISTORY_COLS} FROM wallet_history WHERE wallet_id = ? AND recorded_at <= ?"
            " ORDER BY wallet_id DESC, recorded_at DESC, entry_seq DESC LIMIT 1",
            (wallet_id, _micros(at)),
        )
        return None if row is None else _snapshot(row)

    def account_balance_at(self, account: str, at: datetime) -> Money | None:
        """A wallet account's committed balance at ``at``."""
        self._check_open()
        row = self._one(
            "SELECT balance_after, currency FROM postings WHERE account = ? AND recorded_at <= ?"
            " AND balance_after IS NOT NULL"
            " ORDER BY account DESC, recorded_at DESC, entry_seq DESC LIMIT 1",
            (account, _micros(at)),
        )
        return None if row is None else Money(row[0], row[1])

    # -- idempotency -----------------------------------------------------------------------

    def get_idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The stored record for the key."""
        self._check_open()
        record = self._idempotency.get((scope, key))
        if record is not None:
            return record
        row = self._one(
            f"SELECT {_IDEMPOTENCY_COLS} FROM idempotency WHERE scope = ? AND key = ?",
            (scope, key),
        )
        return None if row is None else _idempotency(row)
