"""Customer top-ups as the store keeps them: their record type, declared once, the reads and
writes their paths make, and the one crediting path that automatic and customer top-ups share.

A customer top-up is stored by its id with its tenant and wallet, tagged with its status and
ordered by the instant it expires, so the expiry job reads the pending ones that are due from
the front of an index (never all of them), and the pending ones of a tenant or a wallet are
read soonest-to-expire first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.charges import fee
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import IdempotencyRecord, RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.idempotency import canonical_request
from prepaid_wallet.money import Money
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.topup.customer import CustomerTopUp
from prepaid_wallet.wallet import Wallet

__all__ = [
    "CUSTOMER_TOP_UPS",
    "credit_top_up",
    "customer_top_up",
    "due_customer_top_ups",
    "pending_customer_top_ups",
    "put_customer_top_up",
]

#: The tag of a pending customer top-up (``CustomerTopUpStatus.PENDING``).
_PENDING = "pending"

#: Customer top-ups (see the module docstring).
CUSTOMER_TOP_UPS: RecordType[CustomerTopUp] = RecordType(
    kind="customer_top_up",
    type=CustomerTopUp,
    key=lambda t: t.id,
    tenant=lambda t: t.tenant_id,
    wallet=lambda t: t.wallet_id,
    tag=lambda t: t.status.value,
    order=lambda t: sortable_instant(t.expires_at),
)


def put_customer_top_up(uow: UnitOfWork, top_up: CustomerTopUp) -> None:
    """Buffer a new customer top-up, or its new state (same id)."""
    uow.put_record(CUSTOMER_TOP_UPS, top_up)


def customer_top_up(env: Environment, uow: UnitOfWork, top_up_id: str) -> CustomerTopUp | None:
    """The customer top-up, as the unit sees it; None if unknown or, for a scoped service,
    another tenant's."""
    found = uow.get_record(CUSTOMER_TOP_UPS, top_up_id)
    if found is None or not env.sees(found.tenant_id):
        return None
    return found


def pending_customer_top_ups(
    uow: UnitOfWork, *, tenant_id: str | None = None, wallet_id: str | None = None,
    limit: int | None = None,
) -> list[CustomerTopUp]:
    """The pending customer top-ups of a tenant or of a wallet (or of every tenant), soonest
    to expire first."""
    return uow.find_records(CUSTOMER_TOP_UPS, tenant_id=tenant_id, wallet_id=wallet_id,
                            tag=_PENDING, limit=limit)


def due_customer_top_ups(uow: UnitOfWork, at: datetime, limit: int,
                         tenant_id: str | None = None) -> list[CustomerTopUp]:
    """Up to ``limit`` pending customer top-ups that expire at or before ``at``, soonest
    first (read from the front of the index of pending ones)."""
    found = pending_customer_top_ups(uow, tenant_id=tenant_id, limit=limit)
    return [top_up for top_up in found if top_up.expires_at <= at]


def credit_top_up(
    env: Environment, uow: UnitOfWork, wallet: Wallet, *, amount: Money, method: str,
    key: str, at: datetime, actor: str | None, metadata: Mapping[str, str], operation: str,
    request: Mapping[str, str],
) -> str | None:
    """Post a top-up whose money the provider took to the wallet's open balance, exactly once:
    under the idempotency key ``key`` (of the charge: a second call under it posts nothing and
    returns None), less the tenant's top-up fee (a fee that would swallow the whole top-up is
    not charged). The entry carries ``actor`` and ``metadata`` (which says what it credits,
    e.g. ``{"top_up_intent": id}``); the idempotency record is ``operation`` with the fields
    ``request``. The one crediting path of automatic and customer top-ups; the caller holds
    the wallet's lock and commits. Returns the entry's id."""
    if uow.get_idempotency(wallet.tenant_id, key) is not None:
        return None
    at = max(at, wallet.not_before)  # recorded time never goes backwards
    charged = fee(env, uow, wallet, Operation.TOP_UP, amount)
    if charged is not None and charged >= amount:
        charged = None  # a fee may never swallow a top-up the customer paid
    change = _w.top_up(wallet, amount, method, env.info(at, key, actor, metadata),
                       fee=charged)
    record(env, uow, change)
    entry_id = change.entry.id
    uow.put_idempotency(IdempotencyRecord(
        wallet.tenant_id, key, operation, canonical_request(operation, **request), "ok",
        json.dumps(entry_id), at))
    return entry_id

