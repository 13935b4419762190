"""Low-balance reminders: the outbox of events a wallet's open balance crossing its tenant's
thresholds writes (read and acknowledged here), and the report of who is running low.

A service scoped to a tenant reads another tenant as a tenant with nothing (no events, no
wallets, no thresholds), and refuses to acknowledge its events (``TenantMismatchError``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prepaid_wallet import _codec
from prepaid_wallet.app.access import authorize
from prepaid_wallet.app.checks import check_limit
from prepaid_wallet.app.effects import LOW_BALANCE
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.results import LowBalanceEvent, LowBalanceLine

if TYPE_CHECKING:
    from prepaid_wallet.rules.reminders import Threshold

__all__ = ["ack_events", "events", "low_balance_report"]


def events(env: Environment, tenant_id: str, *, limit: int = 100) -> list[LowBalanceEvent]:
    """The tenant's low-balance events not yet acknowledged, oldest first (at most
    ``limit``); events of other kinds are for webhooks (:mod:`prepaid_wallet.app.webhooks`)."""
    check_name(tenant_id, "tenant_id")
    check_limit(limit)
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        found = uow.pending_events(tenant_id, limit, kinds=(LOW_BALANCE,))
    out = []
    for event in found:
        data = json.loads(event.payload)
        out.append(LowBalanceEvent(
            id=event.id, tenant_id=event.tenant_id, wallet_id=event.wallet_id,
            owner_id=data["owner_id"], entry_id=data["entry_id"], at=event.created_at,
            open=_codec.from_data(Money, data["open"]),
            floor=_codec.from_data(Money, data["floor"]),
            thresholds=tuple(data["thresholds"]),
        ))
    return out


def ack_events(env: Environment, tenant_id: str, event_ids: Iterable[str]) -> int:
    """Acknowledge events of the tenant; how many of them were pending."""
    env.check_tenant(tenant_id)
    if isinstance(event_ids, str | bytes) or not isinstance(event_ids, Iterable):
        raise InvalidInputError("event_ids", "must be a collection of event ids", event_ids)
    ids = [check_name(i, "event_ids") for i in event_ids]
    with env.store.unit_of_work() as uow:
        authorize(uow, None, "ack_events", tenant_id, default=env.principal)
        done = uow.ack_events(tenant_id, ids)
        uow.commit()
    return done


def low_balance_report(env: Environment, tenant_id: str, threshold: str | Money
                       ) -> list[LowBalanceLine]:
    """The tenant's wallets at or below ``threshold`` (a label of the tenant's thresholds, or
    an amount), by wallet id, each with the least top-up that takes it back above."""
    check_name(tenant_id, "tenant_id")
    if not isinstance(threshold, str | Money):
        raise InvalidInputError("threshold", "must be a threshold label or a Money",
                                threshold)
    seen = env.sees(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        if isinstance(threshold, str):
            rule = env.tenant_rules(uow, tenant_id).low_balance if seen else None
            if rule is None:
                raise InvalidInputError("threshold", "must be an amount: the tenant has no "
                                        "low-balance thresholds", threshold)
            level: Threshold = rule.threshold(threshold)
            limit = level.amount
        else:
            limit = threshold
        if not seen:
            return []
        step = Money(1, limit.currency)
        return [
            LowBalanceLine(wallet.id, wallet.owner_id, wallet.open, wallet.floor,
                           limit - wallet.open + step)
            for wallet in uow.iter_wallets(tenant_id)
            if wallet.currency == limit.currency and wallet.open <= limit
        ]
