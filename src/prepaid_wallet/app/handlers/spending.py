"""Spending: deciding a spend request without writing (``check_spend``) and paying it from the
wallet's lots and open balance (``spend``), after the automatic top-up a credit-only spend may
need first (``prepare``)."""

from __future__ import annotations

from prepaid_wallet import wallet as _w
from prepaid_wallet.actors import Actor
from prepaid_wallet.app.charges import top_up_allowed
from prepaid_wallet.app.checks import (
    check_currency,
    check_purchase_time,
    check_request,
)
from prepaid_wallet.app.commands import Spend
from prepaid_wallet.app.decision import decide, with_mode
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.intents import pending_top_up_intent, put_top_up_intent
from prepaid_wallet.app.lots import lots_of
from prepaid_wallet.app.pipeline import Context, authorize, lock
from prepaid_wallet.app.settings import top_up_rule
from prepaid_wallet.errors import SpendDeniedError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import _trusted
from prepaid_wallet.policies import Decision, PaymentMode, Reason, SpendRequest
from prepaid_wallet.results import SpendResult

__all__ = ["check_spend", "prepare", "spend"]

#: Every spend's result, built without attrs' frozen ``__init__`` (see
#: :func:`~prepaid_wallet.money._trusted`).
_new_result = _trusted(SpendResult)


def check_spend(env: Environment, wallet_id: str, request: SpendRequest) -> Decision:
    """The decision on ``request`` now, read in a read-only unit of work (nothing written)."""
    check_request(request)
    at = env.now()
    check_purchase_time(request, at)
    with env.store.unit_of_work(read_only=True) as uow:
        check_name(wallet_id, "wallet_id")
        wallet = env.wallet(uow, wallet_id)
        check_currency(wallet, request.amount, "request.amount")
        return decide(env, uow, wallet, request, at)


def prepare(env: Environment, command: Spend, key: str | None, actor: Actor | None) -> None:
    """Before the spend's unit of work: refuse a purchase instant after now, then, when the
    service may top up at spend time, run the automatic top-up the spend may need
    (:func:`_top_up_first`: the actor authorized first, and nothing when an outcome is already
    stored under ``key``: a replay must not top up)."""
    request = command.spend_request
    if request.at is not None:  # a request without an instant of its own needs no clock here
        check_purchase_time(request, env.now())
    if env.spend_top_ups:
        _top_up_first(env, command, key, actor)


def spend(ctx: Context, command: Spend) -> SpendResult:
    """Pay the request in spend order, with its fee; ``SpendDeniedError`` (with the decision)
    when it is refused. Nothing is written when the decision allocates nothing."""
    wallet = ctx.wallet(command.wallet_id)
    request = command.spend_request
    check_currency(wallet, request.amount, "request.amount")
    decision = decide(ctx.env, ctx.uow, wallet, request, ctx.at)
    if not decision.allowed:
        raise SpendDeniedError(decision)
    entry_id = None
    if decision.allocation:
        extra = {} if request.description is None else {"description": request.description}
        change = _w.spend(wallet, decision.allocation, lots_of(ctx.uow, decision.allocation),
                          ctx.info(**extra), decision.fee)
        ctx.record(change)
        entry_id = change.entry.id
    return _new_result(entry_id, decision.allocation, decision.covered, decision.remainder_due,
                       decision, decision.fee if entry_id is not None else None)


def _top_up_first(env: Environment, command: Spend, key: str | None,
                  actor: Actor | None) -> None:
    """Before a credit-only spend: when credit falls short and the wallet's rule tops up at
    spend time, charge the shortfall grossed up for its own top-up fee (at least the rule's
    minimum) and credit it, so the spend can go through; nothing when no top-up may start or
    the charge does not succeed (the spend is then refused as usual). The actor is authorized
    to spend in the first unit of work, before anything is charged or written
    (``PermissionDeniedError``)."""
    wallet_id, request = command.wallet_id, command.spend_request
    gateway = env.gateway
    if gateway is None or request.mode is PaymentMode.CREDIT_FIRST:
        return
    from prepaid_wallet.app.handlers.automatic_top_up import drive
    from prepaid_wallet.rules.topup import TopUpIntent, TopUpReason, spend_top_up

    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = env.wallet(uow, wallet_id)
        authorize(env, uow, actor, command, wallet.tenant_id)
        if key is not None and uow.get_idempotency(wallet.tenant_id, key) is not None:
            return  # a replay: the spend's stored outcome, no top-up
        # Most spends: no rule that tops up at spend time, so nothing to lock or decide.
        if with_mode(env, uow, wallet, request).mode is not PaymentMode.CREDIT_ONLY:
            return
        found = top_up_rule(env, uow, wallet)
        if found is None or not found.at_spend:
            return
    at = env.now()
    with env.store.unit_of_work() as uow:
        wallet = lock(env, uow, wallet_id)[wallet_id]
        authorize(env, uow, actor, command, wallet.tenant_id)  # the policy as locked
        rule = top_up_rule(env, uow, wallet)
        if rule is None or not rule.at_spend or rule.currency != wallet.currency:
            return
        if request.amount.currency != wallet.currency:
            return
        decision = decide(env, uow, wallet, request, at)
        if decision.allowed or decision.reasons != (Reason.INSUFFICIENT_CREDIT,):
            return
        # The suggested top-up is the shortfall grossed up for the tenant's top-up fee: the
        # least charge that, once its fee is taken, lets the spend go through.
        amount = spend_top_up(rule, decision.suggested_top_up)
        if amount is None or pending_top_up_intent(uow, wallet.id) is not None:
            return
        if not top_up_allowed(env, uow, wallet, amount, at):
            return  # its limits or maximum balance would not allow it: refused as usual
        intent = TopUpIntent(id=env.ids.new("tu"), wallet_id=wallet.id, amount=amount,
                             reason=TopUpReason.SPEND, created_at=at)
        put_top_up_intent(uow, wallet.tenant_id, intent)
        uow.commit()
    drive(env, gateway, intent.id)
