"""Recording a change and what it causes in the same unit of work: a low-balance event for each
wallet whose open balance it takes across its tenant's thresholds (an outbox), and an automatic
top-up for each wallet it leaves at or below its top-up rule's threshold."""

from __future__ import annotations

import json
from datetime import datetime

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.intents import pending_top_up_intent, put_top_up_intent
from prepaid_wallet.app.ports import Event, UnitOfWork
from prepaid_wallet.app.settings import top_up_rule
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.wallet import Change, Wallet

__all__ = ["LOW_BALANCE", "record"]

#: The kind of the outbox events a low balance writes.
LOW_BALANCE = "low_balance"


def record(env: Environment, uow: UnitOfWork, change: Change) -> None:
    """Record ``change`` and, in the same unit of work, a low-balance event for each wallet
    whose open balance it takes across its tenant's thresholds, and a threshold top-up intent
    for each wallet it leaves at or below its rule's threshold (a top-up never starts
    another)."""
    events: list[Event] = []
    for wallet in change.wallets:
        rule = env.tenant_rules(uow, wallet.tenant_id).low_balance
        if rule is None:
            continue
        from prepaid_wallet.rules.reminders import crossed

        before = uow.get_wallet(wallet.id)
        passed = crossed(rule, before.open, wallet.open)
        if passed:
            payload = {
                "owner_id": wallet.owner_id, "entry_id": change.entry.id,
                "open": str(wallet.open), "floor": str(wallet.floor),
                "thresholds": [t.label for t in passed],
            }
            events.append(Event(env.ids.new("ev"), wallet.tenant_id, wallet.id,
                                LOW_BALANCE, change.entry.recorded_at,
                                json.dumps(payload, sort_keys=True)))
    uow.record(change)
    for event in events:
        uow.add_event(event)
    if change.entry.kind is not EntryKind.TOP_UP:  # a top-up never triggers another
        for wallet in change.wallets:
            threshold_intent(env, uow, wallet, change.entry.recorded_at)


def threshold_intent(env: Environment, uow: UnitOfWork, wallet: Wallet, at: datetime) -> None:
    """Start an automatic top-up when ``wallet`` is now at or below its rule's threshold and
    none is in flight (written in the same unit of work as the operation)."""
    rule = top_up_rule(env, uow, wallet)
    if rule is None or rule.currency != wallet.currency:
        return
    from prepaid_wallet.rules.topup import TopUpIntent, TopUpReason, threshold_top_up

    amount = threshold_top_up(rule, wallet.open)
    if amount is None or pending_top_up_intent(uow, wallet.id) is not None:
        return
    from prepaid_wallet.app.charges import top_up_allowed

    if not top_up_allowed(env, uow, wallet, amount, at):
        return  # its limits or maximum balance would not allow it
    put_top_up_intent(uow, wallet.tenant_id, TopUpIntent(
        id=env.ids.new("tu"), wallet_id=wallet.id, amount=amount,
        reason=TopUpReason.THRESHOLD, created_at=at))
