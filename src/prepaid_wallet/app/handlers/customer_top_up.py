"""Customer top-ups: start one (pending, no money moved), take the provider's report of it (a
success credited exactly once), expire the pending ones whose time is up.

The credit is posted through the crediting path automatic top-ups use
(:func:`prepaid_wallet.app.customer_top_ups.credit_top_up`), under an idempotency key made of
the top-up's id, in the unit of work that records the success.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.access import authorize
from prepaid_wallet.app.charges import (
    check_top_up,
    top_up_allowed,
)
from prepaid_wallet.app.checks import (
    check_common,
    check_currency,
    check_optional_text,
    check_positive,
)
from prepaid_wallet.app.commands.top_ups import ChargeBackTopUp, ReportTopUp, StartTopUp
from prepaid_wallet.app.customer_top_ups import (
    credit_top_up,
    customer_top_up,
    due_customer_top_ups,
    put_customer_top_up,
)
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.outbox import (
    TOP_UP_CANCELED,
    TOP_UP_EXPIRED,
    TOP_UP_FAILED,
    TOP_UP_REFUND_DUE,
    TOP_UP_SUCCEEDED,
    emit,
    money_data,
)
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import InvalidInputError, RefundExceedsOriginalError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.results import TopUpReport
from prepaid_wallet.rules.topup.customer import (
    CustomerTopUp,
    CustomerTopUpStatus,
    RefundStatus,
    TopUpRefund,
    expire,
    report,
)
from prepaid_wallet.rules.topup.gateway import ChargeOutcome, ChargeStatus
from prepaid_wallet.wallet import Wallet

__all__ = [
    "charge_back_top_up",
    "credit_key",
    "expire_customer_top_ups",
    "refund_top_up",
    "report_top_up",
    "start_top_up",
]

#: How many due top-ups the expiry job reads at a time.
_BATCH = 100


def credit_key(top_up: CustomerTopUp) -> str:
    """The idempotency key a customer top-up's credit is posted under:
    ``f"customer-top-up:{id}"``."""
    return f"customer-top-up:{top_up.id}"


def start_top_up(ctx: Context, command: StartTopUp) -> CustomerTopUp:
    """A pending customer top-up, within the tenant's bounds, the wallet's top-up limits and
    its maximum balance (as a top-up of its amount now would be)."""
    wallet = ctx.wallet(command.wallet_id)
    amount = command.amount
    check_currency(wallet, amount)
    settings = ctx.env.tenant_rules(ctx.uow, wallet.tenant_id).customer_top_ups
    settings.check(amount)
    check_top_up(ctx.env, ctx.uow, wallet, amount, ctx.at)
    top_up = CustomerTopUp(
        id=ctx.env.ids.new("ctu"), tenant_id=wallet.tenant_id, wallet_id=wallet.id,
        amount=amount, method=command.method, created_at=ctx.at,
        expires_at=ctx.at + settings.lifetime, actor=ctx.actor, metadata=dict(ctx.metadata))
    put_customer_top_up(ctx.uow, top_up)
    return top_up


def report_top_up(ctx: Context, command: ReportTopUp) -> TopUpReport:
    """Apply the provider's answer; a new success is credited here (or, when the wallet's
    limits no longer allow it, marked ``REFUND_DUE`` and not credited)."""
    current = customer_top_up(ctx.env, ctx.uow, command.top_up_id)
    assert current is not None  # the lock spec found it under the same lock
    wallet = ctx.wallet(current.wallet_id)
    updated = report(current, command.outcome, ctx.at)
    entry_id = None
    if updated.status is CustomerTopUpStatus.SUCCEEDED and updated.entry_id is None:
        if top_up_allowed(ctx.env, ctx.uow, wallet, updated.amount, ctx.at):
            source = {"customer_top_up": updated.id}
            if updated.superseded is not None:
                source["reported_after"] = updated.superseded.value
            entry_id = credit_top_up(
                ctx.env, ctx.uow, wallet, amount=updated.amount, method=updated.method,
                key=credit_key(updated), at=ctx.at, actor=updated.actor,
                metadata={**updated.metadata, **source}, operation="customer_top_up",
                request={"top_up": updated.id})
            updated = attrs.evolve(updated, entry_id=entry_id)
        else:
            updated = attrs.evolve(updated, status=CustomerTopUpStatus.REFUND_DUE)
    if updated != current:
        put_customer_top_up(ctx.uow, updated)
        _top_up_event(ctx.env, ctx.uow, current, updated, ctx.at)
    ended = updated.status in (CustomerTopUpStatus.FAILED, CustomerTopUpStatus.CANCELED,
                               CustomerTopUpStatus.EXPIRED, CustomerTopUpStatus.REFUND_DUE)
    return TopUpReport(() if entry_id is None else (entry_id,),
                       (updated.id,) if ended else (),
                       (updated.id,) if updated.is_pending else ())


#: The event each status a customer top-up ends in writes.
_EVENTS = {
    CustomerTopUpStatus.SUCCEEDED: TOP_UP_SUCCEEDED,
    CustomerTopUpStatus.FAILED: TOP_UP_FAILED,
    CustomerTopUpStatus.CANCELED: TOP_UP_CANCELED,
    CustomerTopUpStatus.EXPIRED: TOP_UP_EXPIRED,
    CustomerTopUpStatus.REFUND_DUE: TOP_UP_REFUND_DUE,
}


def _top_up_event(env: Environment, uow: UnitOfWork, before: CustomerTopUp,
                  after: CustomerTopUp, at: datetime) -> None:
    """The event of a customer top-up's new status, in ``uow`` (none when it did not
    change)."""
    kind = _EVENTS.get(after.status)
    if kind is None or after.status is before.status:
        return
    data: dict[str, object] = {
        "top_up_id": after.id, "source": "customer", "amount": money_data(after.amount),
        "method": after.method}
    if after.entry_id is not None:
        data["entry_id"] = after.entry_id
    if after.superseded is not None:
        data["reported_after"] = after.superseded.value
    emit(env, uow, tenant_id=after.tenant_id, wallet_id=after.wallet_id, kind=kind, at=at,
         data=data)


def expire_top_ups(env: Environment) -> tuple[str, ...]:
    """:func:`expire_customer_top_ups` now."""
    return expire_customer_top_ups(env, env.now())


def expire_customer_top_ups(env: Environment, at: datetime) -> tuple[str, ...]:
    """Expire every pending customer top-up whose time is up at ``at`` (a scoped service: its
    own tenant's), each in a unit of work of its own under its wallet's lock; the ids
    expired."""
    expired: list[str] = []
    while True:
        with env.store.unit_of_work(read_only=True) as uow:
            due = due_customer_top_ups(uow, at, _BATCH, env.tenant_id)
        for top_up in due:
            with env.store.unit_of_work() as uow:
                uow.lock_wallets([top_up.wallet_id], tenant_records=WITH_LOCKS)
                current = customer_top_up(env, uow, top_up.id)
                if current is None:
                    continue
                updated = expire(current, at)
                if updated != current:
                    put_customer_top_up(uow, updated)
                    _top_up_event(env, uow, current, updated, at)
                    uow.commit()
                    expired.append(updated.id)
        if len(due) < _BATCH:
            return tuple(expired)


# -- money back -----------------------------------------------------------------------------------


def charge_back_top_up(ctx: Context, command: ChargeBackTopUp) -> CustomerTopUp:
    """Book a chargeback of a credited top-up (a ``chargeback`` entry out of the open balance,
    which may end below the floor: a debt), or of one whose money is owed back
    (``REFUND_DUE``: nothing to take out of the wallet, the debt to the customer shrinks)."""
    from prepaid_wallet import wallet as _w

    current = customer_top_up(ctx.env, ctx.uow, command.top_up_id)
    assert current is not None  # the lock spec found it under the same lock
    wallet = ctx.wallet(current.wallet_id)
    left = current.refundable
    give = left if command.amount is None else command.amount
    check_currency(wallet, give)
    if give.is_zero() or give > left:
        raise RefundExceedsOriginalError(current.id, give, left)
    ids = current.chargeback_ids
    if current.status is CustomerTopUpStatus.SUCCEEDED:
        change = _w.return_top_up(wallet, give, current.method,
                                  ctx.info(reason=command.reason, customer_top_up=current.id),
                                  chargeback=True)
        ctx.record(change)
        ids = (*ids, change.entry.id)
    before = current.charged_back or Money.zero(give.currency)
    updated = attrs.evolve(current, charged_back=before + give, chargeback_ids=ids)
    put_customer_top_up(ctx.uow, updated)
    return updated


def refund_top_up(
    env: Environment, top_up_id: str, amount: Money | None, *, reason: str,
    idempotency_key: str | None, actor: Actor | str | None, metadata: Mapping[str, str] | None,
) -> TopUpRefund:
    """Give (part of) a customer top-up back to its payment method through the gateway.

    1. Under the wallet's lock: the amount is checked against what is left of the top-up
       (and, for a credited one, the open balance), taken out of the wallet (a
       ``refund_out`` entry) and the refund stored ``PENDING``, in one unit of work;
    2. the gateway is asked, outside any lock, under a key of the refund;
    3. its answer is stored: ``SUCCEEDED``; or ``FAILED`` with the money put back (a reversal
       of the refund entry); ``UNKNOWN`` (or a crash) leaves it pending: calling again under
       the same ``idempotency_key`` re-sends it under the same key (never refunded twice).
    """
    from prepaid_wallet.rules.topup import RefundingGateway

    if amount is not None:
        check_positive(amount)
    check_name(top_up_id, "top_up_id")
    check_optional_text(reason, "reason")
    meta, key, who = check_common(metadata, idempotency_key, actor)
    actor_id = None if who is None else who.id
    gateway = env.gateway
    if not isinstance(gateway, RefundingGateway):
        raise InvalidInputError("gateway", "refunds need a gateway with a refund method "
                                "(WalletService(gateway=...), see RefundingGateway)")
    at = env.now()
    with env.store.unit_of_work() as uow:
        found = customer_top_up(env, uow, top_up_id)
        if found is None:
            raise InvalidInputError("top_up_id", "must be the id of a customer top-up",
                                    top_up_id)
        wallet = uow.lock_wallets([found.wallet_id], tenant_records=WITH_LOCKS)[found.wallet_id]
        at = max(at, wallet.not_before)  # recorded time never goes backwards
        authorize(uow, who, "refund_top_up", wallet.tenant_id, default=env.principal)
        current = customer_top_up(env, uow, top_up_id) or found
        refund = None if key is None else next(
            (r for r in current.refunds if r.request_key == key), None)
        if refund is None:
            refund, current = _take_out(env, uow, wallet, current, amount, reason, key,
                                        actor_id, meta, at)
            uow.commit()
    if refund.status is not RefundStatus.PENDING:
        return refund
    outcome = gateway.refund(charge_key=current.id,
                             reference=None if current.outcome is None
                             else current.outcome.reference,
                             amount=refund.amount, idempotency_key=refund.key)
    if outcome.status is ChargeStatus.UNKNOWN:
        return attrs.evolve(refund, outcome=outcome)
    return _settle_refund(env, top_up_id, refund.key, outcome, actor_id)


def _take_out(
    env: Environment, uow: UnitOfWork, wallet: Wallet, top_up: CustomerTopUp,
    amount: Money | None, reason: str, key: str | None, actor: str | None,
    metadata: Mapping[str, str], at: datetime,
) -> tuple[TopUpRefund, CustomerTopUp]:
    """The new refund, stored pending, its money taken out of the wallet (in ``uow``)."""
    from prepaid_wallet import wallet as _w

    cap = top_up.refundable
    if top_up.status is CustomerTopUpStatus.SUCCEEDED:
        cap = min(cap, max(wallet.open, Money.zero(wallet.currency)))
    give = cap if amount is None else amount
    check_currency(wallet, give)
    if give.is_zero() or give > cap:
        raise RefundExceedsOriginalError(top_up.id, give, cap)
    refund_key = f"{top_up.id}:refund:{len(top_up.refunds) + 1}"
    entry_id = None
    if top_up.status is CustomerTopUpStatus.SUCCEEDED:
        info = env.info(at, None, actor, {**metadata, "reason": reason,
                                           "customer_top_up": top_up.id,
                                           "refund": refund_key})
        change = _w.return_top_up(wallet, give, top_up.method, info)
        record(env, uow, change)
        entry_id = change.entry.id
    refund = TopUpRefund(key=refund_key, amount=give, reason=reason, requested_at=at,
                         entry_id=entry_id, request_key=key)
    updated = attrs.evolve(top_up, refunds=(*top_up.refunds, refund))
    put_customer_top_up(uow, updated)
    return refund, updated


def _settle_refund(env: Environment, top_up_id: str, refund_key: str, outcome: ChargeOutcome,
                   actor: str | None) -> TopUpRefund:
    """Store the gateway's definite answer about a refund; a failed one puts its money back
    (a reversal of its entry). A refund already settled is returned as it is."""
    from prepaid_wallet import wallet as _w

    at = env.now()
    with env.store.unit_of_work() as uow:
        found = customer_top_up(env, uow, top_up_id)
        assert found is not None
        wallet = uow.lock_wallets([found.wallet_id], tenant_records=WITH_LOCKS)[found.wallet_id]
        at = max(at, wallet.not_before)  # recorded time never goes backwards
        current = customer_top_up(env, uow, top_up_id) or found
        index = next(i for i, r in enumerate(current.refunds) if r.key == refund_key)
        refund = current.refunds[index]
        if refund.status is not RefundStatus.PENDING:
            return refund
        if outcome.status is ChargeStatus.SUCCEEDED:
            refund = attrs.evolve(refund, status=RefundStatus.SUCCEEDED, outcome=outcome)
        else:
            reversal_id = None
            if refund.entry_id is not None:
                original = uow.get_entry(refund.entry_id)
                change = _w.reverse(original, [wallet], {}, env.info(
                    at, None, actor, {"reason": "refund failed", "customer_top_up": top_up_id}))
                record(env, uow, change)
                reversal_id = change.entry.id
            refund = attrs.evolve(refund, status=RefundStatus.FAILED, outcome=outcome,
                                  reversal_id=reversal_id)
        refunds = (*current.refunds[:index], refund, *current.refunds[index + 1:])
        put_customer_top_up(uow, attrs.evolve(current, refunds=refunds))
        uow.commit()
        return refund
