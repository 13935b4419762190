"""The commands that pay from a wallet and give back: ``check`` (decide a spend, writing
nothing), ``spend`` and ``refund``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _allocation, _amount, _instant
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.conditions import LineItem
    from prepaid_wallet.policies import Decision, SpendRequest
    from prepaid_wallet.wallet import Wallet

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")

#: ``--mode`` choices and the ``PaymentMode`` value each stands for.
_MODES = {"credit-only": "credit_only", "credit-first": "credit_first"}


_LINES_RULE = ("must be a JSON array of objects with product_id, amount (a decimal string) and"
               " optional category")


def _line_items(text: str, currency: str) -> tuple[LineItem, ...]:
    """``--lines``: JSON text, ``@FILE`` or ``@-`` (standard input)."""
    from pathlib import Path

    from prepaid_wallet.conditions import LineItem

    source = text
    if text.startswith("@"):
        name = text[1:]
        try:
            source = sys.stdin.read() if name == "-" else Path(name).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError("--lines", f"names a file that cannot be read ({exc})",
                                    text) from None
    try:
        data = json.loads(source)
    except ValueError:
        raise InvalidInputError("--lines", f"{_LINES_RULE}; it is not valid JSON",
                                text) from None
    if not isinstance(data, list) or not data:
        raise InvalidInputError("--lines", _LINES_RULE, text)
    items = []
    for i, item in enumerate(data):
        field = f"--lines[{i}]"
        if not isinstance(item, dict) or not {"product_id", "amount"} <= item.keys() or \
                not item.keys() <= {"product_id", "amount", "category"}:
            raise InvalidInputError(field, "must be an object with product_id, amount and"
                                           " optional category, nothing else", item)
        amount = item["amount"]
        if not isinstance(amount, str):
            raise InvalidInputError(f"{field}.amount",
                                    'must be a decimal string such as "3.50"', amount)
        money = _amount(amount, currency, f"{field}.amount")
        try:
            items.append(LineItem(item["product_id"], money, item.get("category")))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{field}.{exc.field}", exc.rule, exc.value) from None
    return tuple(items)


def _request(ctx: _Context, wallet: Wallet) -> SpendRequest:
    from prepaid_wallet.money import Money
    from prepaid_wallet.policies import PaymentMode, SpendRequest

    args = ctx.args
    lines = () if args.lines is None else _line_items(args.lines, wallet.currency)
    if args.amount is not None:
        amount = _amount(args.amount, wallet.currency)
    elif lines:
        amount = Money.sum((line.amount for line in lines), wallet.currency)
    else:
        raise InvalidInputError("amount", "is required unless --lines gives the line items")
    mode = None if args.mode is None else PaymentMode(_MODES[args.mode])  # None: the tenant's
    return SpendRequest(amount, mode, getattr(args, "description", None),
                        lines=lines, merchant=args.merchant,
                        merchant_groups=frozenset(args.merchant_groups),
                        at=_instant(args.at, "--at"))


def _decision_rows(ctx: _Context, decision: Decision) -> list[tuple[str, str]]:
    rows = [
        ("allowed", "yes" if decision.allowed else "no"),
        ("amount", ctx.money(decision.amount)), ("mode", decision.mode.value),
        ("covered", ctx.money(decision.covered)), ("shortfall", ctx.money(decision.shortfall)),
        ("suggested top-up", ctx.money(decision.suggested_top_up)),
        ("remainder due", ctx.money(decision.remainder_due)),
        ("paid from", _allocation(ctx, decision.allocation)),
    ]
    if decision.reasons:
        rows.insert(1, ("reasons", ", ".join(r.value for r in decision.reasons)))
    if decision.fee is not None:
        rows.append(("fee", ctx.money(decision.fee)))
    return rows


def _check(ctx: _Context) -> ExitCode:
    wallet = ctx.service.get_wallet(ctx.args.wallet)
    decision = ctx.service.check_spend(wallet.id, _request(ctx, wallet))
    if ctx.json:
        ctx.emit(_codec.to_data(decision))
    else:
        ctx.table(_decision_rows(ctx, decision))
    return ExitCode.OK if decision.allowed else ExitCode.REFUSED


def _spend(ctx: _Context) -> ExitCode:
    wallet = ctx.service.get_wallet(ctx.args.wallet)
    result = ctx.service.spend(wallet.id, _request(ctx, wallet),
                               idempotency_key=ctx.args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(result))
    else:
        rows = [("entry", result.entry_id or "-"), ("paid", ctx.money(result.amount)),
                ("remainder due", ctx.money(result.remainder_due)),
                ("paid from", _allocation(ctx, result.allocation))]
        if result.fee is not None:
            rows.append(("fee", ctx.money(result.fee)))
        ctx.table(rows)
    return ExitCode.OK


#: The ``EntryKind`` values a refund may name (a ``StrEnum`` member equals its value).
_REFUNDABLE = ("spend", "capture")


def _refund(ctx: _Context) -> ExitCode:
    args = ctx.args
    amount = None
    if args.amount is not None:
        entry = ctx.service.entry(args.entry)
        if entry.kind not in _REFUNDABLE or not entry.wallet_ids:
            raise InvalidInputError(
                "entry_id", f"must be a spend or capture entry (it is a {entry.kind.value})",
                args.entry,
            )
        wallet = ctx.service.get_wallet(entry.wallet_ids[0])
        amount = _amount(args.amount, wallet.currency)
    result = ctx.service.refund(args.entry, amount, reason=args.reason,
                                idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(result))
    else:
        rows = [("entry", result.entry_id), ("refund of", result.refund_of),
                ("refunded", ctx.money(result.amount)),
                ("returned to", _allocation(ctx, result.allocation))]
        if result.breakage.is_positive():
            rows.append(("breakage", ctx.money(result.breakage)))
        ctx.table(rows)
    return ExitCode.OK


# -- arguments -----------------------------------------------------------------------------------


def _mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=sorted(_MODES),
                        help="credit-only: refuse what credit cannot cover; credit-first: credit"
                             " pays what it can, the rest is due (default: the tenant's, set in"
                             " its rules; credit-only unless it set another)")


def _purchase(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wallet", help="the paying wallet's id")
    parser.add_argument("amount", nargs="?",
                        help="the purchase amount, a decimal in the wallet's currency such as"
                             " 12.50 (default with --lines: the lines' total)")
    _mode(parser)
    parser.add_argument("--lines", metavar="JSON",
                        help="line items: a JSON array of {product_id, amount, category}, or"
                             " @FILE to read it from a file, or @- from standard input")
    parser.add_argument("--merchant", help="the merchant the purchase is made at")
    parser.add_argument("--merchant-group", dest="merchant_groups", action="append",
                        default=[], metavar="GROUP",
                        help="a group the merchant belongs to (repeat for several)")
    parser.add_argument("--at", metavar="ISO",
                        help="when the purchase is made, for awards valid only at some times"
                             " (default: now; not later than now)")


COMMANDS = _Family()


@COMMANDS.command("check", _check)
def _(p: argparse.ArgumentParser) -> None:
    _purchase(p)


@COMMANDS.command("spend", _spend, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    _purchase(p)
    p.add_argument("--description", help="free text kept on the entry, e.g. order 1001")
    _key(p)


@COMMANDS.command("refund", _refund, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("entry", help="the spend or capture entry's id")
    p.add_argument("amount", nargs="?", help="default: all that is left to refund")
    p.add_argument("--reason", required=True, help="why, kept on the refund entry")
    _key(p)
