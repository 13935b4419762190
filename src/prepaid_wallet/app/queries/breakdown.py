"""Reading what a wallet holds and what of it is spendable where and until when."""

from __future__ import annotations

from datetime import datetime

import attrs

from prepaid_wallet.app.checks import check_currency, check_request
from prepaid_wallet.app.decision import with_mode
from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.clock import require_aware
from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.policies import (
    PaymentMode,
    SpendOrder,
    SpendRequest,
    decide_spend,
    order_lots,
)
from prepaid_wallet.results import Breakdown, LotView

__all__ = ["breakdown"]


def breakdown(
    env: Environment,
    wallet_id: str,
    *,
    at: datetime | None = None,
    request: SpendRequest | None = None,
    locale: str = "en_US",
) -> Breakdown:
    """The open balance and each lot with money left, in the order lots pay, with when it stops
    paying, its conditions in words (in ``locale``) and whether it is usable at ``at`` (aware;
    default now); for a ``request``, what is spendable for it and each lot's share."""
    check_name(wallet_id, "wallet_id")
    when = env.now() if at is None else require_aware(at, "at")
    if request is not None:
        check_request(request)
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = env.wallet(uow, wallet_id)
        if request is not None:
            check_currency(wallet, request.amount, "request.amount")
            request = with_mode(env, uow, wallet, request)
        groups = Groups(uow)
        live = list(order_lots(env.order(uow, wallet.tenant_id), uow.live_lots(wallet.id)))
        decision = None if request is None else decide_spend(
            wallet, request, live, when, SpendOrder.DEFAULT, groups
        )
        # What credit could pay, lot by lot, even when the request as a whole is refused.
        paying = None if request is None else decide_spend(
            wallet, attrs.evolve(request, mode=PaymentMode.CREDIT_FIRST), live, when,
            SpendOrder.DEFAULT, groups,
        )
        known = {
            lot.group_id: found for lot in live
            if lot.group_id and (found := groups.get(lot.group_id)) is not None
        }
    shares: dict[str, int] = {}
    for part in () if paying is None else paying.allocation:
        if part.lot_id is not None:
            shares[part.lot_id] = shares.get(part.lot_id, 0) + part.amount.minor_units
    currency = wallet.currency
    views: list[LotView] = []
    expired = Money.zero(currency)
    for lot in live:
        group = known.get(lot.group_id) if lot.group_id else None
        ends = env.lot_expiry(lot, known)
        if ends is not None and when >= ends:
            expired += lot.remaining
        words: tuple[str, ...]
        if group is not None:
            words = attrs.evolve(group, condition=lot.condition or SpendCondition()).describe(
                locale)
        elif lot.condition is not None:
            words = lot.condition.describe(locale)
        else:
            words = SpendCondition().describe(locale)
        usable = (ends is None or when < ends) and (
            lot.group_id is None or (group is not None and group.is_valid_at(when))
        ) and (
            lot.condition is None or lot.condition.valid_from is None
            or when >= lot.condition.valid_from
        )
        views.append(LotView(
            lot_id=lot.id, remaining=lot.remaining, expires_at=ends, priority=lot.priority,
            reason=lot.reason, conditions=words, group_id=lot.group_id,
            group_name=None if group is None else group.name, usable=usable,
            spendable_now=None if request is None else Money(shares.get(lot.id, 0), currency),
        ))
    headroom = wallet.open - wallet.floor
    return Breakdown(
        wallet_id=wallet.id, at=when, currency=currency, open=wallet.open,
        open_spendable=max(headroom, Money.zero(currency)), lots=tuple(views),
        expired=expired, spendable=None if decision is None else decision.covered,
        decision=decision,
    )
