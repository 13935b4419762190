"""The commands that read a wallet: ``balance``, ``lots`` and ``statement`` (a table, CSV, JSON
or JSON Lines)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prepaid_wallet.cli.framework import ExitCode, _Context, _Family, _OnFirstUse
from prepaid_wallet.cli.output import _instant, _iso, _listing, _Progress
from prepaid_wallet.text import printable

if TYPE_CHECKING:
    import csv

    from prepaid_wallet import _codec
    from prepaid_wallet.results import Balance, StatementLine, StatementStream

if not TYPE_CHECKING:  # imported when first used
    csv = _OnFirstUse("csv")
    _codec = _OnFirstUse("prepaid_wallet._codec")


def _balance_data(balance: Balance) -> dict[str, Any]:
    data: dict[str, Any] = _codec.to_data(balance)
    data.update(total=_codec.to_data(balance.total), available=_codec.to_data(balance.available),
                spendable=_codec.to_data(balance.spendable))
    return data


def _lots(ctx: _Context) -> ExitCode:
    return _listing(
        ctx, ctx.service.lots(ctx.args.wallet, include_empty=ctx.args.all), "no lots",
        ("id", "remaining", "expires", "priority", "reason"),
        lambda lot: (lot.id, ctx.money(lot.remaining),
                     _iso(lot.expires_at) if lot.expires_at else "never", str(lot.priority),
                     printable(lot.reason)),
    )


def _balance(ctx: _Context) -> ExitCode:
    balance = ctx.service.balance(ctx.args.wallet)
    if ctx.json:
        ctx.emit(_balance_data(balance))
    else:
        ctx.table([
            ("wallet", balance.wallet_id), ("as of", _iso(balance.as_of)),
            ("open", ctx.money(balance.open)), ("commerce", ctx.money(balance.commerce)),
            ("held", ctx.money(balance.held)), ("expired", ctx.money(balance.expired)),
            ("total", ctx.money(balance.total)), ("available", ctx.money(balance.available)),
            ("spendable", ctx.money(balance.spendable)), ("floor", ctx.money(balance.floor)),
        ])
    return ExitCode.OK


#: The CSV columns of ``statement --format csv``: amounts are plain decimals in ``currency``.
CSV_COLUMNS = ("recorded_at", "entry_id", "kind", "description", "change", "open_after",
               "commerce_after", "held_after", "total_after", "currency")


def _statement(ctx: _Context) -> ExitCode:
    args = ctx.args
    since = _instant(args.since, "--since")
    until = _instant(args.until, "--until")
    fmt = args.format or ("json" if ctx.json else "table")
    with ctx.service.stream_statement(args.wallet, since=since, until=until) as stream, \
            _Progress("statement") as progress:
        lines = progress.each(stream, "lines")
        if fmt == "json":
            _statement_json(ctx, stream, lines)
        elif fmt == "jsonl":
            for entry in lines:
                data = _codec.to_data(entry)
                data["total_after"] = _codec.to_data(entry.total_after)
                ctx.emit(data)
        elif fmt == "csv":
            _statement_csv(ctx, stream, lines)
        else:
            _statement_table(ctx, stream, lines)
    return ExitCode.OK


def _statement_json(ctx: _Context, stream: StatementStream,
                    lines: Iterable[StatementLine]) -> None:
    """One JSON object, written as the lines are read (the ``closing`` total comes last)."""
    head = {"wallet_id": stream.wallet_id, "currency": stream.currency,
            "since": _codec.to_data(stream.since), "until": _codec.to_data(stream.until),
            "opening": _codec.to_data(stream.opening)}
    ctx.out.write(json.dumps(head)[:-1] + ', "lines": [')
    for i, line in enumerate(lines):
        ctx.out.write((", " if i else "") + json.dumps(_codec.to_data(line)))
    ctx.out.write(f'], "closing": {json.dumps(_codec.to_data(stream.closing))}}}\n')


def _statement_csv(ctx: _Context, stream: StatementStream,
                   lines: Iterable[StatementLine]) -> None:
    writer = csv.writer(ctx.out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in lines:
        writer.writerow((
            _iso(entry.recorded_at), entry.entry_id, entry.kind.value, entry.description or "",
            entry.change.amount, entry.open_after.amount, entry.commerce_after.amount,
            entry.held_after.amount, entry.total_after.amount, stream.currency,
        ))


#: Column widths of the statement table, fixed so that rows print as they are read.
_WHEN_WIDTH = len("2026-12-31T23:00:00.000000+00:00")
#: The longest ``EntryKind`` value, ``hold_expiry`` (a test keeps it so).
_KIND_WIDTH = 11
_AMOUNT_WIDTH = 14


def _statement_table(ctx: _Context, stream: StatementStream,
                     lines: Iterable[StatementLine]) -> None:
    def row(when: str, kind: str, change: str, balance: str, description: str) -> None:
        ctx.line(f"{when.ljust(_WHEN_WIDTH)}  {kind.ljust(_KIND_WIDTH)}"
                 f"  {change.rjust(_AMOUNT_WIDTH)}  {balance.rjust(_AMOUNT_WIDTH)}"
                 f"  {description}".rstrip())

    ctx.line(f"statement of {stream.wallet_id} ({stream.currency})"
             f" from {_iso(stream.since)} to {_iso(stream.until)}")
    ctx.line(f"opening balance {ctx.money(stream.opening)}")
    row("recorded at", "kind", "change", "balance", "description")
    for e in lines:
        row(_iso(e.recorded_at), e.kind.value, ctx.money(e.change), ctx.money(e.total_after),
            printable(e.description or ""))
    ctx.line(f"closing balance {ctx.money(stream.closing)}")


# -- arguments -----------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("lots", _lots)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("--all", action="store_true",
                   help="every lot, also the spent and expired")


@COMMANDS.command("balance", _balance)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")


@COMMANDS.command("statement", _statement)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("--format", choices=("table", "csv", "jsonl"),
                   help="table (default), csv, or jsonl (one line per entry)")
    p.add_argument("--since", metavar="ISO",
                   help="from this instant (included); a date alone is 00:00 UTC")
    p.add_argument("--until", metavar="ISO",
                   help="to this instant (excluded); a date alone is 00:00 UTC")
