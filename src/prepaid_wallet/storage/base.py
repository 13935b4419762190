"""The storage contract the backends implement: :mod:`prepaid_wallet.app.ports` (the store as the
application sees it, re-exported here), and the canonical dump every backend's
``export_state`` builds.

Backends: :mod:`prepaid_wallet.storage.memory`, SQLite and PostgreSQL. The one behavioural test
suite in ``tests/storage/contract.py`` runs against each; a new backend is done when it passes
that suite unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
    holds: Iterable[Hold],
    charges: Iterable[Charge],
    entries: Iterable[Entry],
    idempotency: Iterable[IdempotencyRecord],
    groups: Iterable[ConditionGroup],
    events: Iterable[tuple[Event, bool]],
    records: Iterable[RecordRow],
) -> dict[str, Any]:
    """The canonical dump :meth:`Store.export_state` returns, from everything a store holds in
    any order (``entries`` and ``events`` in the order they were committed, ``events`` with
    whether each was acknowledged; ``records`` the rows of every record type, their data dumped
    as parsed JSON): every backend builds it here, so equal stores give equal dumps."""
    return {
        "wallets": _codec.to_data(sorted(wallets, key=lambda w: w.id)),
        "lots": _codec.to_data(sorted(lots, key=lambda x: x.id)),
        "holds": _codec.to_data(sorted(holds, key=lambda h: h.id)),
        "charges": _codec.to_data(sorted(charges, key=lambda c: c.entry_id)),
        "entries": _codec.to_data(list(entries)),
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
