"""Expiry: moving money of a lot to a new lot with another expiry, and the sweep that releases
holds whose window has ended and books expired lots' remainders as breakage."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prepaid_wallet import holds as _holds
from prepaid_wallet import wallet as _w
from prepaid_wallet.app.batches import (
    DEFAULT_BATCH_SIZE,
    Batch,
    BatchJob,
    check_batch_size,
    run_batch,
)
from prepaid_wallet.app.checks import check_currency, check_horizon
from prepaid_wallet.app.commands import ExtendExpiry
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.app.lots import ends, lots_of
from prepaid_wallet.app.outbox import HOLD_EXPIRED, LOT_EXPIRED, instant_text, money_data
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import InvalidAmountError, InvalidTimeError, LotNotFoundError
from prepaid_wallet.ids import check_name
from prepaid_wallet.results import Expiry, ExpiryReport, FailedRow
from prepaid_wallet.wallet import HoldStatus, Lot

__all__ = ["expire_due", "extend_expiry", "sweep_expired"]

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


def expire_due(env: Environment, *, batch_size: int = DEFAULT_BATCH_SIZE) -> ExpiryReport:
    """Everything :func:`sweep_expired` books, counted: lots expired, holds released, and the
    entries booked, and the rows it could not book; then the pending customer top-ups whose
    time is up, marked expired."""
    from prepaid_wallet.app.handlers.customer_top_up import expire_customer_top_ups

    batch_size = check_batch_size(batch_size)
    entry_ids: list[str] = []
    holds_released = 0
    failed: list[FailedRow] = []
    at = env.now()
    for done in _sweep_all(env, at, batch_size, failed):
        entry_ids.append(done.entry_id)
        holds_released += done.kind == "hold"
    top_ups = expire_customer_top_ups(env, at)
    return ExpiryReport(len(entry_ids) - holds_released, holds_released, tuple(entry_ids),
                        top_ups, tuple(failed))


def sweep_expired(env: Environment, *, batch_size: int = DEFAULT_BATCH_SIZE,
                  stop: Callable[[], bool] | None = None) -> Iterator[Expiry]:
    """Release every active hold whose window has ended, then book every expired lot's
    remainder as breakage, as of the first step's instant: ``batch_size`` rows per unit of
    work, each yielded once its batch committed (holds first, then lots, soonest due first),
    due rows read a batch at a time. A scoped service books its own tenant's rows only:
    another tenant's are passed over, never booked and never in the way. A row that cannot be
    booked is passed over and the others are booked; once the sweep is done, the first such
    row's error is raised (:func:`expire_due` reports them all instead). ``stop``, if given, is
    asked before each batch: once it says so the sweep ends, every row booked yielded."""
    batch_size = check_batch_size(batch_size)
    return _sweep_raising(env, batch_size, stop or _never)


def _never() -> bool:
    return False


def _sweep_raising(env: Environment, batch_size: int, stop: Callable[[], bool]
                   ) -> Iterator[Expiry]:
    failed: list[FailedRow] = []
    yield from _sweep_all(env, env.now(), batch_size, failed, stop)
    if failed:
        raise failed[0].error


def _sweep_all(env: Environment, at: datetime, batch_size: int, failed: list[FailedRow],
               stop: Callable[[], bool] = _never) -> Iterator[Expiry]:
    yield from _sweep(
        env, lambda uow, limit: [(h.id, h.wallet_id) for h in uow.due_holds(at, limit)],
        _DueHolds(at), batch_size, failed, stop,
    )
    yield from _sweep(env, lambda uow, limit: uow.due_lot_rows(at, limit), _DueLots(at),
                      batch_size, failed, stop)


_Row = tuple[str, str]  # (hold or lot id, wallet id)


def _sweep(
    env: Environment, due: Callable[[UnitOfWork, int], list[_Row]],
    job: BatchJob[_Row, Expiry], batch_size: int, failed: list[FailedRow],
    stop: Callable[[], bool],
) -> Iterator[Expiry]:
    """Book what ``due`` lists (``(row id, wallet id)`` pairs, at most the limit given), a
    batch at a time (:func:`~prepaid_wallet.app.batches.run_batch`), until it lists nothing
    new. A row passed over -- another tenant's, for a scoped service, one that turns out not
    to be due after all (or was booked by another sweep), or one that failed -- is remembered,
    and each read asks for that many rows more, so rows passed over never crowd out the rest;
    rows that are booked leave the due index."""
    passed: set[str] = set()
    while not stop():
        with env.store.unit_of_work(read_only=True) as uow:
            listed = [(row_id, wallet_id)
                      for row_id, wallet_id in due(uow, batch_size + len(passed))
                      if row_id not in passed]
            batch = []
            for row_id, wallet_id in listed:
                if env.sees_wallet(uow, wallet_id):
                    batch.append((row_id, wallet_id))
                else:
                    passed.add(row_id)
        if not listed:
            return
        outcome = run_batch(env, job, batch)
        passed.update(row_id for row_id, _ in outcome.passed)
        for row in outcome.failed:
            passed.add(row.row_id)
            failed.append(row)
        yield from outcome.done


class _DueHolds(BatchJob[_Row, Expiry]):
    """Release each hold if it is still active and its window has ended at ``at``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def wallet_of(self, row: _Row) -> str:
        return row[1]

    def row_id(self, row: _Row) -> str:
        return row[0]

    def book(self, batch: Batch, row: _Row) -> Expiry | None:
        env, uow = batch.env, batch.uow
        hold_id = check_name(row[0], "hold_id")
        held = uow.get_hold(hold_id)
        if held.wallet_id != row[1]:
            return None  # not the hold listed: passed over
        wallet = batch.wallet(held.wallet_id)
        at = max(self.at, wallet.not_before)  # recorded time never goes backwards
        if held.status is not HoldStatus.ACTIVE or at < held.expires_at:
            return None
        lots = lots_of(uow, held.allocation)
        change = _holds.release(wallet, held, lots, HoldStatus.EXPIRED,
                            env.info(at, None, None, None), ends(env, uow, lots))
        record(env, uow, change)
        batch.emit(tenant_id=wallet.tenant_id, wallet_id=wallet.id, kind=HOLD_EXPIRED,
                   at=change.entry.recorded_at, data={
                       "hold_id": hold_id, "amount": money_data(held.reserved),
                       "entry_id": change.entry.id,
                       "expired_at": instant_text(held.expires_at)})
        return Expiry("hold", hold_id, wallet.id, held.reserved, change.entry.id, at)


class _DueLots(BatchJob[_Row, Expiry]):
    """Book each lot's remainder as breakage if it is still live and expired at ``at``: the
    batch's lots and their condition groups read once."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._lots: dict[str, Lot] = {}
        self._groups: dict[str, ConditionGroup] = {}

    def wallet_of(self, row: _Row) -> str:
        return row[1]

    def row_id(self, row: _Row) -> str:
        return row[0]

    def begin(self, batch: Batch, rows: Sequence[_Row]) -> None:
        self._lots = batch.uow.get_lots([lot_id for lot_id, _ in rows])
        self._groups = {}

    def book(self, batch: Batch, row: _Row) -> Expiry | None:
        env, uow = batch.env, batch.uow
        lot = self._lots.get(row[0])
        if lot is None:
            raise LotNotFoundError(row[0])
        if lot.wallet_id != row[1]:
            return None  # not the lot listed: passed over
        wallet = batch.wallet(lot.wallet_id)
        at = max(self.at, wallet.not_before)  # recorded time never goes backwards
        group = None
        if lot.group_id is not None:
            group = self._groups.get(lot.group_id)
            if group is None:
                group = self._groups[lot.group_id] = uow.get_condition_group(lot.group_id)
        if not lot.is_live or lot.expired_entry_id or not env.expiry.is_expired(lot, at, group):
            return None
        change = _w.expire_lot(wallet, lot, env.info(at, None, None, None))
        record(env, uow, change)
        batch.emit(tenant_id=wallet.tenant_id, wallet_id=wallet.id, kind=LOT_EXPIRED,
                   at=change.entry.recorded_at, data={
                       "lot_id": lot.id, "amount": money_data(lot.remaining),
                       "entry_id": change.entry.id, "reason": lot.reason})
        return Expiry("lot", lot.id, wallet.id, lot.remaining, change.entry.id, at)
