"""The decision on a spend as a command takes it: the domain's pure decision over the wallet's
lots, with the tenant's spend fee, a suggested top-up grossed up for its fee, and the wallet's
spend limits."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet.app.charges import breaches, fee, gross_top_up
from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.settings import PAYMENT_MODE, get_setting
from prepaid_wallet.money import Money
from prepaid_wallet.policies import Decision, PaymentMode, Reason, SpendRequest, decide_spend
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.tenant import TenantRules

__all__ = ["decide", "payment_mode", "with_mode"]


def with_mode(env: Environment, uow: UnitOfWork, wallet: Wallet, request: SpendRequest,
              rules: TenantRules | None = None) -> SpendRequest:
    """``request`` with a payment mode: its own, else the wallet's (:func:`payment_mode`;
    ``rules``: the tenant's rules, if the caller has read them)."""
    if request.mode is not None:
        return request
    return request.in_mode(payment_mode(env, uow, wallet, None, rules))


def payment_mode(env: Environment, uow: UnitOfWork, wallet: Wallet, mode: PaymentMode | None,
                 rules: TenantRules | None = None) -> PaymentMode:
    """``mode`` if given, else the member's own (the wallet setting
    :data:`~prepaid_wallet.app.settings.PAYMENT_MODE`, read only when its tenant allows member
    modes: ``TenantRules.member_payment_modes``), else its tenant's
    (``TenantRules.payment_mode``). ``rules``: the tenant's rules, when the caller has read
    them already (else they are read here)."""
    if mode is not None:
        return mode
    if rules is None:
        rules = env.tenant_rules(uow, wallet.tenant_id)
    if rules.member_payment_modes:
        own = get_setting(uow, wallet.id, PAYMENT_MODE)
        if own is not None:
            return PaymentMode(own)
    return rules.payment_mode


def decide(env: Environment, uow: UnitOfWork, wallet: Wallet, request: SpendRequest,
           at: datetime) -> Decision:
    """The decision on ``request`` (without a mode: in its tenant's default mode): commerce and
    the open balance (less the spend's fee), then the wallet's spend limits. The tenant's
    rules are read once, here, for the mode, the fee, the spend order and the limits."""
    tenant = env.tenant_rules(uow, wallet.tenant_id)
    request = with_mode(env, uow, wallet, request, tenant)
    spend_fee = fee(env, uow, wallet, Operation.SPEND, request.amount) if tenant.fees else None
    # Lot remainders add up to commerce (I4): with none, there is no lot to read.
    lots = uow.live_lots(wallet.id) if wallet.commerce.is_positive() else iter(())
    decision = decide_spend(wallet, request, lots, at, env.order_of(tenant),
                            Groups(uow), spend_fee)
    if decision.suggested_top_up.is_positive() and tenant.fees:
        decision = attrs.evolve(decision, suggested_top_up=gross_top_up(
            env, uow, wallet, decision.suggested_top_up))
    if spend_fee is not None and decision.allowed and decision.covered < request.amount:
        # Credit pays less than asked (CREDIT_FIRST): the fee is the fee of what it pays.
        spend_fee = fee(env, uow, wallet, Operation.SPEND, decision.covered) if (
            decision.covered.is_positive()) else None
        decision = attrs.evolve(decision, fee=spend_fee)
    spent = decision.covered if decision.covered.is_positive() else request.amount
    found = breaches(env, uow, wallet, Operation.SPEND, spent, at, rules=tenant)
    if not found:
        return decision
    zero = Money.zero(wallet.currency)
    return attrs.evolve(
        decision, allowed=False, reasons=(*decision.reasons, Reason.LIMIT_EXCEEDED),
        allocation=(), remainder_due=zero, limits=found,
    )
