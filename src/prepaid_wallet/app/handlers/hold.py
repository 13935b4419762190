"""Holds: reserving credit for a later capture (decided and allocated like a credit-only spend,
its fee reserved too), capturing at most the held amount once (with the spend fee of what is
captured), and voiding (the money goes back where it came from)."""

from __future__ import annotations

from prepaid_wallet import holds as _holds
from prepaid_wallet.app.charges import fee
from prepaid_wallet.app.checks import check_currency, check_horizon
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
from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode, SpendRequest
from prepaid_wallet.results import CaptureResult
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.wallet import Hold, HoldStatus, Wallet

__all__ = ["capture", "hold", "void"]


def hold(ctx: Context, command: PlaceHold) -> Hold:
    """A new active hold of the command's amount, until its expiry or the end of its window:
    decided as a credit-only spend of that amount is (the same decision, with the spend fee
    and the wallet's spend limits; ``SpendDeniedError`` when that spend would be refused),
    allocated as it would be, with the spend's fee reserved for the capture."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.amount)
    at = ctx.at
    days = ctx.env.tenant_rules(ctx.uow, wallet.tenant_id).hold_horizon_days
    if command.window is not None:  # checked before it is added: it may pass the calendar
        check_horizon(command.window, at, days, "window", command.window, "hold_horizon_days")
    ending = command.until(at)
    if ending <= at:
        raise InvalidTimeError("expires_at", "must be in the future", command.expires_at)
    check_horizon(ending, at, days, "expires_at", command.expires_at, "hold_horizon_days")
    decision = decide(ctx.env, ctx.uow, wallet,
                      SpendRequest(command.amount, PaymentMode.CREDIT_ONLY), at)
    if not decision.allowed:
        raise SpendDeniedError(decision, "hold")
    change = _holds.hold(
        wallet, hold_id=ctx.env.ids.new("hold"), allocation=decision.allocation,
        lots=lots_of(ctx.uow, decision.allocation), expires_at=ending, info=ctx.info(),
        fee=decision.fee,
    )
    ctx.record(change)
    return change.holds[0]


def capture(ctx: Context, command: CaptureHold) -> CaptureResult:
    """Capture the command's amount (default: all) of an active, unexpired hold, with the
    spend fee of what it captures (:func:`_capture_fee`); the rest and the reserved fee are
    released, and a part whose lot has expired meanwhile is booked as breakage. No limit is
    checked: the hold counted as the spend while it was active, and its capture now does."""
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
    charged = _capture_fee(ctx, wallet, held, take)
    change = _holds.capture(wallet, held, take, lots, ctx.info(), ends(ctx.env, ctx.uow, lots),
                        charged)
    ctx.record(change)
    return CaptureResult(
        change.entry.id, held.id, take, held.amount - take, change.charges[0].allocation,
        breakage_of(change.entry, wallet.tenant_id), charged,
    )


def _capture_fee(ctx: Context, wallet: Wallet, held: Hold, take: Money) -> Money | None:
    """The spend fee of ``take`` under the tenant's rules now (what a spend of it pays), at
    most the fee the hold reserved: the reservation is what the customer authorised, and it
    always covers the fee of a smaller amount under the same rules (a fee never falls as the
    amount grows)."""
    reserved = held.reserved_fee
    if reserved is None:
        return None
    charged = fee(ctx.env, ctx.uow, wallet, Operation.SPEND, take)
    return None if charged is None else min(charged, reserved)


def void(ctx: Context, command: VoidHold) -> Hold:
    """Release an active hold entirely (a part whose lot has expired meanwhile is booked as
    breakage)."""
    held = ctx.uow.get_hold(command.hold_id)
    wallet = ctx.wallet(held.wallet_id)
    if held.status is not HoldStatus.ACTIVE:
        raise HoldStateError(held.id, held.status.value, "void")
    lots = lots_of(ctx.uow, held.allocation)
    change = _holds.release(wallet, held, lots, HoldStatus.VOIDED, ctx.info(),
                        ends(ctx.env, ctx.uow, lots))
    ctx.record(change)
    return change.holds[0]
