"""Automatic top-up intents as the store keeps them: their record type, declared once, and the
reads and writes the top-up paths make.

An intent is stored with its tenant, by its id, in the stored form of its own
(:meth:`~prepaid_wallet.rules.topup.TopUpIntent.to_data`, versioned). It belongs to its wallet
(which must be stored), is tagged with its status (``"credit_due"`` for one that succeeded and
is not credited yet), ordered by its creation instant, and holds its wallet's id as its unique
value while it is in flight (pending, or succeeded and not credited yet): a wallet has at most
one intent in flight, which the database itself enforces (a second one is a
:class:`~prepaid_wallet.errors.ConflictError`), and the intents in flight of every tenant are
read oldest first from the index of the tag.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet.app.ports import RecordType, UnitOfWork, sortable_instant

if TYPE_CHECKING:  # loaded by the top-up paths only, when they run
    from prepaid_wallet.rules.topup import TopUpIntent

__all__ = [
    "TOP_UP_INTENTS",
    "StoredIntent",
    "get_top_up_intent",
    "pending_top_up_intent",
    "pending_top_up_intents",
    "put_top_up_intent",
]

#: The status of an intent still being worked on (``IntentStatus.PENDING``).
_PENDING = "pending"
#: The tag of an intent that succeeded and whose credit is not posted yet.
_CREDIT_DUE = "credit_due"


def _tag(stored: StoredIntent) -> str:
    intent = stored.intent
    if intent.status.value == "succeeded" and not intent.credited:
        return _CREDIT_DUE
    return intent.status.value


def _in_flight(stored: StoredIntent) -> str | None:
    return stored.intent.wallet_id if _tag(stored) in (_PENDING, _CREDIT_DUE) else None


@attrs.frozen
class StoredIntent:
    """An intent and the tenant it belongs to, as stored."""

    tenant_id: str
    intent: TopUpIntent


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _dumps(stored: StoredIntent) -> str:
    return _encode({"intent": stored.intent.to_data(), "tenant_id": stored.tenant_id})


def _loads(text: str) -> StoredIntent:
    from prepaid_wallet.rules.topup import TopUpIntent

    data = json.loads(text)
    return StoredIntent(data["tenant_id"], TopUpIntent.from_data(data["intent"]))


#: Automatic top-up intents (see the module docstring).
TOP_UP_INTENTS: RecordType[StoredIntent] = RecordType(
    kind="top_up_intent",
    type=StoredIntent,
    key=lambda s: s.intent.id,
    tenant=lambda s: s.tenant_id,
    wallet=lambda s: s.intent.wallet_id,
    tag=_tag,
    unique=_in_flight,
    order=lambda s: sortable_instant(s.intent.created_at),
    dumps=_dumps,
    loads=_loads,
)


def put_top_up_intent(uow: UnitOfWork, tenant_id: str, intent: TopUpIntent) -> None:
    """Buffer a new intent, or its new state (same id). A second pending intent of a wallet
    conflicts (``ConflictError``, at commit at the latest); the wallet must exist."""
    uow.put_record(TOP_UP_INTENTS, StoredIntent(tenant_id, intent))


def get_top_up_intent(uow: UnitOfWork, intent_id: str) -> TopUpIntent | None:
    """The intent, as the unit sees it; None if unknown."""
    stored = uow.get_record(TOP_UP_INTENTS, intent_id)
    return None if stored is None else stored.intent


def pending_top_up_intent(uow: UnitOfWork, wallet_id: str) -> TopUpIntent | None:
    """The wallet's intent in flight (pending, or succeeded and not credited yet; at most one:
    the holder of its unique value), as the unit sees it."""
    found = uow.find_records(TOP_UP_INTENTS, unique=wallet_id)
    return found[0].intent if found else None


def pending_top_up_intents(
    uow: UnitOfWork, limit: int, tenant_id: str | None = None
) -> list[tuple[str, TopUpIntent]]:
    """Up to ``limit`` intents in flight of every tenant (or of ``tenant_id``),
    ``(tenant_id, intent)``: those whose credit is due first, then the pending ones, each
    oldest first (by creation instant, then id)."""
    found = uow.find_records(TOP_UP_INTENTS, tenant_id=tenant_id, tag=_CREDIT_DUE, limit=limit)
    if len(found) < limit:
        found += uow.find_records(TOP_UP_INTENTS, tenant_id=tenant_id, tag=_PENDING,
                                  limit=limit - len(found))
    return [(stored.tenant_id, stored.intent) for stored in found]
