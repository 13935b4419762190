"""Holds: reserving credit for a later capture (allocated like a credit-only spend), capturing
at most the held amount once, and voiding (the money goes back where it came from)."""

from __future__ import annotations

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.checks import check_currency
from prepaid_wallet.app.commands import CaptureHold, PlaceHold, VoidHold
from prepaid_wallet.app.decision import decide
from prepaid_wallet.app.lots import breakage_of, ends, lots_of
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.errors import (
    HoldExpiredError,
    HoldStateError,
    InvalidAmountError,
    InvalidTimeError,
    SpendDeniedError,
)
from prepaid_wallet.policies import PaymentMode, SpendRequest
from prepaid_wallet.results import CaptureResult
from prepaid_wallet.wallet import Hold, HoldStatus

__all__ = ["capture", "hold", "void"]


def hold(ctx: Context, command: PlaceHold) -> Hold:
    """A new active hold of the command's amount, until its expiry or the end of its window,
    allocated over lots and the open balance as a credit-only spend would be (the decision
    without the tenant's rules)."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.amount)
    at = ctx.at
    ending = command.until(at)
    if ending <= at:
        raise InvalidTimeError("expires_at", "must be in the future", command.expires_at)
    decision = decide(ctx.env, ctx.uow, wallet,
                      SpendRequest(command.amount, PaymentMode.CREDIT_ONLY), at, rules=False)
    if not decision.allowed:
        raise SpendDeniedError(decision, "hold")
    change = _w.hold(
        wallet, hold_id=ctx.env.ids.new("hold"), allocation=decision.allocation,
        lots=lots_of(ctx.uow, decision.allocation), expires_at=ending, info=ctx.info(),
    )
    ctx.record(change)
    return change.holds[0]


def capture(ctx: Context, command: CaptureHold) -> CaptureResult:
    """Capture the command's amount (default: all) of an active, unexpired hold; the rest is
    released, and a part whose lot has expired meanwhile is booked as breakage."""
    held = ctx.uow.get_hold(command.hold_id)
    wallet = ctx.wallet(held.wallet_id)
    take = held.amount if command.amount is None else command.amount
    check_currency(wallet, take)
    if take > held.amount:
        raise InvalidAmountError(
            "amount", f"must not exceed the held amount ({held.amount})", command.amount
        )
    if held.status is not HoldStatus.ACTIVE:
        raise HoldStateError(held.id, held.status.value, "capture")
    if ctx.at >= held.expires_at:
        raise HoldExpiredError(held.id)
    lots = lots_of(ctx.uow, held.allocation)
    change = _w.capture(wallet, held, take, lots, ctx.info(), ends(ctx.env, ctx.uow, lots))
    ctx.record(change)
    return CaptureResult(
        change.entry.id, held.id, take, held.amount - take, change.charges[0].allocation,
        breakage_of(change.entry, wallet.tenant_id),
    )


def void(ctx: Context, command: VoidHold) -> Hold:
    """Release an active hold entirely (a part whose lot has expired meanwhile is booked as
    breakage)."""
    held = ctx.uow.get_hold(command.hold_id)
    wallet = ctx.wallet(held.wallet_id)
    if held.status is not HoldStatus.ACTIVE:
        raise HoldStateError(held.id, held.status.value, "void")
    lots = lots_of(ctx.uow, held.allocation)
    change = _w.release(wallet, held, lots, HoldStatus.VOIDED, ctx.info(),
                        ends(ctx.env, ctx.uow, lots))
    ctx.record(change)
    return change.holds[0]
