"""Credit at checkout: applying a member's credit to a host's order (one pending credit
payment per order, a hold underneath, re-sized when the total changes), placing the order
(the hold captured), abandoning it (the hold released), and crediting what a placed order was
paid more than its total.

A re-size releases the order's hold and places the new one in the same unit of work (two
entries, one commit), so the order never holds credit twice and its credit is never free for
another checkout in between: the wallet stays locked throughout.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from prepaid_wallet import holds as _holds
from prepaid_wallet import wallet as _w
from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import check_currency
from prepaid_wallet.app.commands.checkout import AbandonOrder, ApplyCredit, CreditOwed, PlaceOrder
from prepaid_wallet.app.decision import decide, payment_mode
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.lots import ends, lots_of
from prepaid_wallet.app.orders import find_order, order_of, owned, put_order
from prepaid_wallet.app.pipeline import Context, run
from prepaid_wallet.errors import (
    InvalidInputError,
    NoCreditOwedError,
    NotFoundError,
    OrderExpiredError,
    OrderNotCoveredError,
    OrderStateError,
    PrepaidWalletError,
    RefusedError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode, SpendRequest
from prepaid_wallet.rules.checkout import (
    CHECKOUT_WINDOW,
    CreditClaim,
    OrderPayment,
    OrderStatus,
)
from prepaid_wallet.rules.checkout import (
    credit_owed as owed_on,
)
from prepaid_wallet.wallet import HoldStatus, Wallet

__all__ = ["abandon_order", "apply_credit", "credit_owed", "credit_owed_many", "place_order"]


def apply_credit(ctx: Context, command: ApplyCredit) -> OrderPayment:
    """The order's pending credit payment for the command's total: new (credit pays the least
    of what it can and the total, decided as a credit-first spend of the total, with its fee
    and the wallet's spend limits; a spend the limits refuse pays nothing by credit), the same
    one unchanged when the total is the same and it has not ended, else re-sized: its hold
    released and a new one placed, in this unit of work. ``OrderStateError`` for an order
    already placed or abandoned; ``InvalidInputError`` (``order_id``) for another wallet's
    order of the tenant."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.total, "total")
    at = ctx.at
    found = find_order(ctx.uow, wallet.tenant_id, command.order_id)
    if found is not None:
        if found.wallet_id != wallet.id:
            raise InvalidInputError("order_id", "is an order paid by another wallet",
                                    command.order_id)
        if found.status is not OrderStatus.PENDING:
            raise OrderStateError(found.order_id, found.status.value, "apply credit")
        if found.total == command.total and not found.is_expired(at) and (
                command.mode is None or command.mode is found.mode):
            return found
        wallet = _release(ctx, wallet, found)
    mode = payment_mode(ctx.env, ctx.uow, wallet, command.mode)
    ending = at + (CHECKOUT_WINDOW if command.window is None else command.window)
    credit = Money.zero(wallet.currency)
    hold_id = None
    if command.total.is_positive():
        decision = decide(ctx.env, ctx.uow, wallet,
                          SpendRequest(command.total, PaymentMode.CREDIT_FIRST), at)
        if decision.allowed and decision.covered.is_positive():
            hold_id = ctx.env.ids.new("hold")
            change = _holds.hold(
                wallet, hold_id=hold_id, allocation=decision.allocation,
                lots=lots_of(ctx.uow, decision.allocation), expires_at=ending,
                info=ctx.info(order_id=command.order_id), fee=decision.fee,
            )
            ctx.record(change)
            credit = decision.covered
    payment = OrderPayment(
        order_id=command.order_id, tenant_id=wallet.tenant_id, wallet_id=wallet.id,
        total=command.total, credit=credit, mode=mode, status=OrderStatus.PENDING,
        hold_id=hold_id, expires_at=ending,
        created_at=at if found is None else found.created_at, updated_at=at,
    )
    put_order(ctx.uow, payment)
    return payment


def _release(ctx: Context, wallet: Wallet, payment: OrderPayment) -> Wallet:
    """Give the order's hold back (voided; expired when its window has ended), if it is still
    active; the wallet after it."""
    if payment.hold_id is None:
        return wallet
    held = ctx.uow.get_hold(payment.hold_id)
    if held.status is not HoldStatus.ACTIVE:
        return wallet
    status = HoldStatus.EXPIRED if ctx.at >= held.expires_at else HoldStatus.VOIDED
    lots = lots_of(ctx.uow, held.allocation)
    change = _holds.release(wallet, held, lots, status, ctx.info(order_id=payment.order_id),
                        ends(ctx.env, ctx.uow, lots))
    ctx.record(change)
    return change.wallet(wallet.id)


def place_order(ctx: Context, command: PlaceOrder) -> OrderPayment:
    """Capture the order's pending credit payment (all of it, with the spend fee its hold
    reserved) and mark the order placed. Refused, changing nothing: ``OrderStateError`` when
    it is not pending, ``OrderExpiredError`` at or after its end (apply credit again, then
    place it), ``OrderNotCoveredError`` when it was sized ``CREDIT_ONLY`` and credit does not
    pay all of it."""
    wallet = ctx.wallet(command.wallet_id)
    payment = order_of(ctx.uow, wallet, command.order_id)
    if payment.status is not OrderStatus.PENDING:
        raise OrderStateError(payment.order_id, payment.status.value, "place")
    if payment.is_expired(ctx.at):
        raise OrderExpiredError(payment.order_id)
    if payment.mode is PaymentMode.CREDIT_ONLY and payment.remainder_due.is_positive():
        raise OrderNotCoveredError(payment.order_id, payment.remainder_due)
    entry_id = None
    if payment.hold_id is not None:
        from prepaid_wallet.app.commands import CaptureHold
        from prepaid_wallet.app.handlers.hold import capture

        entry_id = capture(ctx, CaptureHold(hold_id=payment.hold_id)).entry_id
    placed = attrs.evolve(payment, status=OrderStatus.PLACED, entry_id=entry_id,
                          updated_at=ctx.at)
    put_order(ctx.uow, placed)
    return placed


def abandon_order(ctx: Context, command: AbandonOrder) -> OrderPayment:
    """Release the order's pending credit payment (if its hold is still active) and mark the
    order abandoned; ``OrderStateError`` when it is not pending. An expired pending payment may
    be abandoned too."""
    wallet = ctx.wallet(command.wallet_id)
    payment = order_of(ctx.uow, wallet, command.order_id)
    if payment.status is not OrderStatus.PENDING:
        raise OrderStateError(payment.order_id, payment.status.value, "abandon")
    _release(ctx, wallet, payment)
    abandoned = attrs.evolve(payment, status=OrderStatus.ABANDONED, updated_at=ctx.at)
    put_order(ctx.uow, abandoned)
    return abandoned


def credit_owed(ctx: Context, command: CreditOwed) -> OrderPayment:
    """Credit the placed order's overpayment (credit + what other methods paid - the final
    total) to the open balance, once: an operator's credit against the tenant's adjustment
    account, in one entry, with no fee, recording the staff member. ``NoCreditOwedError``
    (changing nothing) when nothing is owed or it was already credited; ``OrderStateError``
    for an order that is not placed. An order the library never saw was paid by other methods
    only: it is recorded, placed with no credit, with the credit owed."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.total, "total")
    check_currency(wallet, command.paid_by_other_methods, "paid_by_other_methods")
    payment = _placed_or_paid_otherwise(ctx, wallet, command)
    if payment.credited_entry_id is not None:
        raise NoCreditOwedError(payment.order_id, payment.credited_entry_id)
    if payment.status is not OrderStatus.PLACED:
        raise OrderStateError(payment.order_id, payment.status.value, "credit what is owed")
    owed = owed_on(payment, command.total, command.paid_by_other_methods)
    if not owed.is_positive():
        raise NoCreditOwedError(payment.order_id)
    reason = command.reason or f"credit owed on order {payment.order_id}"
    change = _w.adjust(wallet, owed, ctx.info(reason=reason, order_id=payment.order_id))
    ctx.record(change)
    credited = attrs.evolve(
        payment, paid_by_other_methods=command.paid_by_other_methods,
        final_total=command.total, credited=owed, credited_entry_id=change.entry.id,
        credited_by=ctx.actor, credited_at=ctx.at, updated_at=ctx.at,
    )
    put_order(ctx.uow, credited)
    return credited


def _placed_or_paid_otherwise(ctx: Context, wallet: Wallet, command: CreditOwed) -> OrderPayment:
    """The order's credit payment; for an order the library never saw (paid by other methods
    only), a placed payment of no credit, which the credit owed is then recorded on.
    ``OrderNotFoundError`` for another wallet's order."""
    found = find_order(ctx.uow, wallet.tenant_id, command.order_id)
    if found is not None:
        return owned(found, wallet, command.order_id)
    return OrderPayment(
        order_id=command.order_id, tenant_id=wallet.tenant_id, wallet_id=wallet.id,
        total=command.total, credit=Money.zero(wallet.currency),
        mode=payment_mode(ctx.env, ctx.uow, wallet, None), status=OrderStatus.PLACED,
        hold_id=None, expires_at=ctx.at, created_at=ctx.at, updated_at=ctx.at)


def credit_owed_many(
    env: Environment, claims: Sequence[CreditClaim], *, actor: Actor | str,
    reason: str | None = None,
) -> list[OrderPayment | PrepaidWalletError]:
    """:func:`credit_owed` for each claim, in order, each in its own unit of work (one entry
    per order credited): per claim, the order credited, or the error that changed nothing for
    it (``NoCreditOwedError``, ``OrderStateError``, ``OrderNotFoundError``,
    ``WalletNotFoundError``, ``CurrencyMismatchError``...). Every claim's arguments are
    checked before any runs: bad input raises (naming ``claims[<index>].<field>``) and changes
    nothing."""
    if isinstance(claims, str | bytes) or not isinstance(claims, Sequence):
        raise InvalidInputError("claims", "must be a sequence of CreditClaim", claims)
    commands = []
    for index, claim in enumerate(claims):
        if not isinstance(claim, CreditClaim):
            raise InvalidInputError(f"claims[{index}]", "must be a CreditClaim", claim)
        command = CreditOwed(
            wallet_id=claim.wallet_id, order_id=claim.order_id, total=claim.total,
            paid_by_other_methods=claim.paid_by_other_methods, reason=reason, actor=actor)
        try:
            command.validate()
        except InvalidInputError as exc:
            raise InvalidInputError(f"claims[{index}].{exc.field}", exc.rule,
                                    exc.value) from exc
        commands.append(command)
    results: list[OrderPayment | PrepaidWalletError] = []
    for command in commands:
        try:
            results.append(run(env, command))
        except (RefusedError, NotFoundError, InvalidInputError) as outcome:
            results.append(outcome)
    return results
