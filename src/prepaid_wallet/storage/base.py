"""The storage contract the backends implement: :mod:`prepaid_wallet.app.ports` (the store as the
application sees it, re-exported here), and the canonical dump every backend's
``export_state`` builds.

Backends: :mod:`prepaid_wallet.storage.memory`, SQLite and PostgreSQL. The one behavioural test
suite in ``tests/storage/contract.py`` runs against each; a new backend is done when it passes
that suite unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from prepaid_wallet import _codec
from prepaid_wallet.app.ports import (
    Event,
    IdempotencyRecord,
    RecordRow,
    RecordType,
    Store,
    UnitOfWork,
    WalletSnapshot,
)
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.ledger import Entry
from prepaid_wallet.wallet import Charge, Hold, Lot, Wallet

__all__ = [
    "Event",
    "IdempotencyRecord",
    "RecordRow",
    "RecordType",
    "Store",
    "UnitOfWork",
    "WalletSnapshot",
    "dump_state",
]


def dump_state(
    *,
    wallets: Iterable[Wallet],
    lots: Iterable[Lot],
    lot_index: Iterable[tuple[str, bool, datetime | None, datetime | None]],
    holds: Iterable[Hold],
    charges: Iterable[Charge],
    entries: Iterable[Entry],
    balances: Iterable[tuple[str, Sequence[int | None]]],
    history: Iterable[WalletSnapshot],
    idempotency: Iterable[IdempotencyRecord],
    groups: Iterable[ConditionGroup],
    events: Iterable[tuple[Event, bool]],
    records: Iterable[RecordRow],
) -> dict[str, Any]:
    """The canonical dump :meth:`Store.export_state` returns, from everything a store holds in
    any order (``entries`` and ``events`` in the order they were committed, ``events`` with
    whether each was acknowledged; ``records`` the rows of every record type, their data dumped
    as parsed JSON): every backend builds it here, so equal stores give equal dumps.

    ``balances`` gives, for each entry (by id, in journal order), the stored balance after each
    of its postings (integer minor units; ``None`` for a tenant account); ``history`` every
    wallet's balance history (one snapshot per wallet and entry, each wallet's in recorded
    order); ``lot_index`` what each lot is found by, ``(lot id, whether it is conditioned, when
    it ends whatever its group does, when it falls due)`` -- the last for a live lot only (an
    empty lot is in no due index, and the SQL stores do not move its due instant when its
    group's end moves). Left out, because they are not facts of the ledger but where a backend
    keeps them: the schema version, the sequence numbers of entries and events (their order is
    kept) and the instant an event was acknowledged (the backend's clock; whether it was is
    kept)."""
    return {
        "wallets": _codec.to_data(sorted(wallets, key=lambda w: w.id)),
        "lots": _codec.to_data(sorted(lots, key=lambda x: x.id)),
        "lot_index": [[lot_id, conditioned, *_codec.to_data([ends_at, due_at])]
                      for lot_id, conditioned, ends_at, due_at in sorted(lot_index)],
        "holds": _codec.to_data(sorted(holds, key=lambda h: h.id)),
        "charges": _codec.to_data(sorted(charges, key=lambda c: c.entry_id)),
        "entries": _codec.to_data(list(entries)),
        "balances_after": [[entry_id, list(after)] for entry_id, after in balances],
        # Sorted by wallet only: a stable sort keeps each wallet's recorded order.
        "wallet_history": [
            [s.wallet_id, s.entry_id, *_codec.to_data([s.recorded_at]), s.open.currency,
             s.open.minor_units, s.commerce.minor_units, s.held.minor_units]
            for s in sorted(history, key=lambda s: s.wallet_id)
        ],
        "idempotency": _codec.to_data(sorted(idempotency, key=lambda r: (r.scope, r.key))),
        "condition_groups": _codec.to_data(sorted(groups, key=lambda g: g.id)),
        "events": [
            [*_codec.to_data([e.id, e.tenant_id, e.wallet_id, e.kind, e.created_at, e.payload]),
             acknowledged]
            for e, acknowledged in events
        ],
        "records": [
            [r.kind, r.key, r.tenant_id, r.wallet_id, r.tag, r.unique, r.order, json.loads(r.data)]
            for r in sorted(records, key=lambda r: (r.kind, r.key))
        ],
    }
