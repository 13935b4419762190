"""Expiry: moving money of a lot to a new lot with another expiry, and the sweep that releases
holds whose window has ended and books expired lots' remainders as breakage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.checks import check_currency, check_horizon
from prepaid_wallet.app.commands import ExtendExpiry
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.app.lots import ends, lots_of
from prepaid_wallet.app.outbox import HOLD_EXPIRED, LOT_EXPIRED, emit, instant_text, money_data
from prepaid_wallet.app.pipeline import Context, lock
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import InvalidAmountError, InvalidTimeError
from prepaid_wallet.ids import check_name
from prepaid_wallet.results import Expiry, ExpiryReport
from prepaid_wallet.wallet import HoldStatus, Lot

__all__ = ["expire_due", "extend_expiry", "sweep_expired"]

#: Due rows read per batch by a sweep.
_SWEEP_BATCH = 200


def extend_expiry(ctx: Context, command: ExtendExpiry) -> Lot:
    """Move the command's amount (default: all) of an unexpired lot into a new lot with the new
    expiry and the lot's other terms; returns the new lot."""
    lot = ctx.uow.get_lot(command.lot_id)
    wallet = ctx.wallet(lot.wallet_id)
    moved = lot.remaining if command.amount is None else command.amount
    check_currency(wallet, moved)
    expiry = command.expiry
    if expiry is not None and expiry <= ctx.at:
        raise InvalidTimeError("expires_at", "must be in the future", command.expires_at)
    check_horizon(expiry, ctx.at, ctx.env.tenant_rules(ctx.uow, wallet.tenant_id)
                  .award_horizon_days, "expires_at", command.expires_at, "award_horizon_days")
    end = ctx.env.lot_expiry(lot, Groups(ctx.uow))
    if end is not None and ctx.at >= end:
        raise InvalidTimeError(
            "lot_id", "must name a lot that has not expired (an expired remainder is breakage)",
            command.lot_id)
    if not moved.is_positive() or moved > lot.remaining:
        raise InvalidAmountError(
            "amount", f"must be positive and at most what lot {lot.id!r} holds "
            f"({lot.remaining})", moved,
        )
    new_id = ctx.env.ids.new("lot")
    change = _w.extend_lot(wallet, lot, new_lot_id=new_id, amount=moved, expires_at=expiry,
                           info=ctx.info(reason=lot.reason))
    ctx.record(change)
    return next(x for x in change.lots if x.id == new_id)


def expire_due(env: Environment) -> ExpiryReport:
    """Everything :func:`sweep_expired` books, counted: lots expired, holds released, and the
    entries booked; then the pending customer top-ups whose time is up, marked expired."""
    from prepaid_wallet.app.handlers.customer_top_up import expire_customer_top_ups

    entry_ids: list[str] = []
    holds_released = 0
    at = env.now()
    for done in sweep_expired(env):
        entry_ids.append(done.entry_id)
        holds_released += done.kind == "hold"
    top_ups = expire_customer_top_ups(env, at)
    return ExpiryReport(len(entry_ids) - holds_released, holds_released, tuple(entry_ids),
                        top_ups)


def sweep_expired(env: Environment) -> Iterator[Expiry]:
    """Release every active hold whose window has ended, then book every expired lot's
    remainder as breakage, as of the first step's instant: each in a unit of work of its own,
    yielded once committed (holds first, then lots, soonest due first), due rows read a batch
    at a time. A scoped service books its own tenant's rows only: another tenant's are passed
    over, never booked and never in the way."""
    at = env.now()
    yield from _sweep(
        env,
        lambda uow, limit: [(h.id, h.wallet_id) for h in uow.due_holds(at, limit)],
        lambda hold_id: _release_due_hold(env, hold_id, at),
    )
    yield from _sweep(
        env,
        lambda uow, limit: [(lot.id, lot.wallet_id) for lot in uow.due_lots(at, limit)],
        lambda lot_id: _expire_due_lot(env, lot_id, at),
    )


def _sweep(
    env: Environment, due: Callable[[UnitOfWork, int], list[tuple[str, str]]],
    book: Callable[[str], Expiry | None],
) -> Iterator[Expiry]:
    """Book what ``due`` lists (``(row id, wallet id)`` pairs, at most the limit given), a
    batch at a time, until it lists nothing new. A row passed over -- another tenant's, for a
    scoped service, or one that turns out not to be due after all (or was booked by another
    sweep) -- is remembered, and each read asks for that many rows more, so rows passed over
    never crowd out the rest; rows that are booked leave the due index."""
    passed: set[str] = set()
    while True:
        with env.store.unit_of_work(read_only=True) as uow:
            listed = [(row_id, wallet_id)
                      for row_id, wallet_id in due(uow, _SWEEP_BATCH + len(passed))
                      if row_id not in passed]
            batch = []
            for row_id, wallet_id in listed:
                if env.sees_wallet(uow, wallet_id):
                    batch.append(row_id)
                else:
                    passed.add(row_id)
        if not listed:
            return
        for row_id in batch:
            done = book(row_id)
            if done is None:
                passed.add(row_id)
            else:
                yield done


def _release_due_hold(env: Environment, hold_id: str, at: datetime) -> Expiry | None:
    """Release the hold if it is still active and its window has ended at ``at``."""
    with env.store.unit_of_work() as uow:
        check_name(hold_id, "hold_id")
        wallet_id = uow.get_hold(hold_id).wallet_id
        wallet = lock(env, uow, wallet_id, fields=("hold_id",))[wallet_id]
        at = max(at, wallet.not_before)  # recorded time never goes backwards
        held = uow.get_hold(hold_id)
        if held.status is not HoldStatus.ACTIVE or at < held.expires_at:
            return None
        lots = lots_of(uow, held.allocation)
        change = _w.release(wallet, held, lots, HoldStatus.EXPIRED,
                            env.info(at, None, None, None), ends(env, uow, lots))
        record(env, uow, change)
        emit(env, uow, tenant_id=wallet.tenant_id, wallet_id=wallet.id, kind=HOLD_EXPIRED,
             at=change.entry.recorded_at, data={
                 "hold_id": hold_id, "amount": money_data(held.reserved),
                 "entry_id": change.entry.id, "expired_at": instant_text(held.expires_at)})
        uow.commit()
    return Expiry("hold", hold_id, wallet.id, held.reserved, change.entry.id, at)


def _expire_due_lot(env: Environment, lot_id: str, at: datetime) -> Expiry | None:
    """Book the lot's remainder as breakage if it is still live and expired at ``at``."""
    with env.store.unit_of_work() as uow:
        wallet_id = uow.get_lot(lot_id).wallet_id
        wallet = uow.lock_wallets([wallet_id], tenant_records=WITH_LOCKS)[wallet_id]
        at = max(at, wallet.not_before)  # recorded time never goes backwards
        lot = uow.get_lot(lot_id)
        group = None if lot.group_id is None else uow.get_condition_group(lot.group_id)
        if not lot.is_live or lot.expired_entry_id or not env.expiry.is_expired(lot, at, group):
            return None
        change = _w.expire_lot(wallet, lot, env.info(at, None, None, None))
        record(env, uow, change)
        emit(env, uow, tenant_id=wallet.tenant_id, wallet_id=wallet_id, kind=LOT_EXPIRED,
             at=change.entry.recorded_at, data={
                 "lot_id": lot_id, "amount": money_data(lot.remaining),
                 "entry_id": change.entry.id, "reason": lot.reason})
        uow.commit()
    return Expiry("lot", lot_id, wallet_id, lot.remaining, change.entry.id, at)
