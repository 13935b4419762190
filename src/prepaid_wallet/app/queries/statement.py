"""Reading a wallet's statement: its entries in a time range, each with its effect on the
balances and the lots it touched, read from one snapshot a line at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidTimeError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.results import LotMovement, Statement, StatementLine, StatementStream

__all__ = ["statement", "stream_statement"]


def statement(
    env: Environment, wallet_id: str, *, since: datetime | None = None,
    until: datetime | None = None,
) -> Statement:
    """The wallet's entries recorded in ``[since, until)`` (aware; either may be None), with
    opening and closing totals, all in memory (:func:`stream_statement` reads them lazily)."""
    with stream_statement(env, wallet_id, since=since, until=until) as stream:
        lines = tuple(stream)
        return Statement(stream.wallet_id, stream.currency, stream.since, stream.until,
                         stream.opening, stream.closing, lines)


def stream_statement(
    env: Environment, wallet_id: str, *, since: datetime | None = None,
    until: datetime | None = None,
) -> StatementStream:
    """:func:`statement` read lazily: the opening total at once, then the lines one at a time
    from one consistent snapshot. The stream holds a read-only unit of work until closed; bad
    arguments and an unknown wallet (or another tenant's) raise at the call."""
    check_name(wallet_id, "wallet_id")
    start = None if since is None else require_aware(since, "since")
    end = None if until is None else require_aware(until, "until")
    if start is not None and end is not None and end < start:
        raise InvalidTimeError("until", "must not be before since", until)
    with contextlib.ExitStack() as stack:
        uow = stack.enter_context(env.store.unit_of_work(read_only=True))
        wallet = env.wallet(uow, wallet_id)
        zero = Money.zero(wallet.currency)
        before = None if start is None else uow.snapshot_at(
            wallet.id, start - timedelta(microseconds=1)
        )
        prev = (zero, zero, zero) if before is None else (
            before.open, before.commerce, before.held)
        opening = prev[0] + prev[1] + prev[2]
        lines = _statement_lines(env, uow, wallet.id, start, end, prev)
        return StatementStream(wallet.id, wallet.currency, start, end, opening, opening,
                               lines, stack.pop_all().close)
    raise AssertionError("unreachable")  # pragma: no cover


def _statement_lines(
    env: Environment,
    uow: UnitOfWork,
    wallet_id: str,
    start: datetime | None,
    end: datetime | None,
    prev: tuple[Money, Money, Money],
) -> Iterator[StatementLine]:
    """The statement's lines, each from the previous line's balances (``prev`` to start)."""
    lot_prefix = f"wallet:{wallet_id}:lot:"
    groups = Groups(uow)
    for entry, snap in uow.wallet_history(wallet_id, start, end):
        movements = tuple(
            LotMovement(p.account[len(lot_prefix):], p.amount,
                        env.lot_expiry(uow.get_lot(p.account[len(lot_prefix):]), groups))
            for p in entry.postings if p.account.startswith(lot_prefix)
        )
        meta = entry.meta
        yield StatementLine(
            entry_id=entry.id, kind=entry.kind, recorded_at=entry.recorded_at,
            change=snap.total - (prev[0] + prev[1] + prev[2]),
            open_change=snap.open - prev[0], commerce_change=snap.commerce - prev[1],
            held_change=snap.held - prev[2], open_after=snap.open,
            commerce_after=snap.commerce, held_after=snap.held, lots=movements,
            description=meta.get("description") or meta.get("reason"),
            refund_of=entry.refund_of, reverses=entry.reverses,
            reversed_by=uow.reversal_of(entry.id),
        )
        prev = (snap.open, snap.commerce, snap.held)
