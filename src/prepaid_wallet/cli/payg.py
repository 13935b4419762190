"""The commands of pay-as-you-go time credit, the ``payg`` group: ``open`` a contract, report
the ``device``, ``pay``, record a conversion (``convert``), call an ``upgrade``, pay its
downpayment from past payments (``reconvert``) or from a conversion (``unlink``), confirm it
``installed``; and read the contract (``show``), its on-time ``history`` and its ``payments``.

Every write prints the contract after it, the upgrade it concerned, the on-time lines it wrote
and the device tokens it issued (``--json``: the whole outcome as one object). Amounts are in
the wallet's currency. Every write takes ``--actor`` and ``--role`` (repeatable); the roles are
read here and joined with the actor by :func:`_actor`, the one place that builds who runs a
command.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _amount, _columns, _iso, _listing
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from decimal import Decimal

    from prepaid_wallet import _codec
    from prepaid_wallet.money import Money
    from prepaid_wallet.rules.payg import Contract, OnTime, PaygOutcome, PaygPayment, Upgrade

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")


# -- reading arguments -----------------------------------------------------------------------------


def _performance(text: str | None) -> Decimal | None:
    """``--performance``: a decimal from 0 to 1, written as such (``0.97``)."""
    if text is None:
        return None
    from decimal import Decimal, InvalidOperation

    rule = "must be a decimal from 0 to 1, such as 0.97"
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError("--performance", rule, text) from None
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        raise InvalidInputError("--performance", rule, text)
    return value


def _payments(items: list[str], currency: str) -> dict[str, Money]:
    """``--payment ID=AMOUNT`` values, each payment once."""
    payments: dict[str, Money] = {}
    for item in items:
        payment_id, sep, amount = item.rpartition("=")
        if not sep or not payment_id:
            raise InvalidInputError("--payment", "must be ID=AMOUNT, such as p-7=150.00", item)
        if payment_id in payments:
            raise InvalidInputError("--payment", "must not name a payment twice", payment_id)
        payments[payment_id] = _amount(amount, currency, "payments")
    return payments


# -- writing results -------------------------------------------------------------------------------


def _span(time: timedelta) -> str:
    """A duration as ``10d 04:00:00`` (whole seconds; ``-`` before one taken back)."""
    sign = "-" if time < timedelta(0) else ""
    seconds = int(abs(time).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{days}d {hours:02d}:{minutes:02d}:{seconds:02d}"


def _contract_rows(ctx: _Context, contract: Contract, at: datetime) -> list[tuple[str, str]]:
    return [
        ("wallet", contract.wallet_id), ("state", contract.state.value),
        ("products", ", ".join(contract.products)),
        ("daily rate", ctx.money(contract.daily_rate)),
        ("service ends", _iso(contract.service_end)),
        ("time left", _span(contract.time_left(at))),
        ("device", f"{contract.device_id or '-'} ({contract.device_state.value})"),
    ]


def _upgrade_rows(ctx: _Context, upgrade: Upgrade, at: datetime) -> list[tuple[str, str]]:
    rows = [
        ("upgrade", f"{upgrade.upgrade_id} ({upgrade.status.value})"),
        ("new products", ", ".join(upgrade.products)),
        ("new daily rate", ctx.money(upgrade.daily_rate)),
        ("downpayment", ctx.money(upgrade.downpayment)),
        ("held toward it", ctx.money(upgrade.held_total)),
        ("deadline", _iso(upgrade.deadline)
         + (" (passed)" if upgrade.is_late(at) and upgrade.ended_at is None else "")),
        ("time left after", _span(upgrade.time_left_after)),
    ]
    if upgrade.paid_by is not None:
        rows.append(("paid by", upgrade.paid_by))
    return rows


def _line_row(ctx: _Context, line: OnTime) -> tuple[str, ...]:
    return (_iso(line.at), line.kind.value, ctx.money(line.amount), ctx.money(line.daily_rate),
            _span(line.time), _iso(line.service_end), ", ".join(line.payment_ids) or "-")


_LINE_HEADER = ("at", "kind", "amount", "rate", "time", "service end", "payments")


def _outcome(ctx: _Context, outcome: PaygOutcome) -> ExitCode:
    """A write's outcome: the contract, the upgrade, the on-time lines and the tokens."""
    if ctx.json:
        ctx.emit(_codec.to_data(outcome))
        return ExitCode.OK
    at = outcome.contract.updated_at
    rows = _contract_rows(ctx, outcome.contract, at)
    if outcome.upgrade is not None:
        rows += _upgrade_rows(ctx, outcome.upgrade, at)
    for token in outcome.tokens:
        rows.append(("token", f"{token.code} ({token.kind.value} {token.value})"))
    ctx.table(rows)
    if outcome.on_time:
        ctx.line()
        _columns(ctx, [_LINE_HEADER, *(_line_row(ctx, line) for line in outcome.on_time)])
    return ExitCode.OK


# -- the commands ----------------------------------------------------------------------------------


def _open(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _outcome(ctx, ctx.service.open_contract(
        wallet.id, products=args.product, daily_rate=_amount(args.rate, wallet.currency,
                                                             "daily_rate"),
        device_id=args.device, idempotency_key=args.idempotency_key, actor=ctx.actor))


def _device(ctx: _Context) -> ExitCode:
    from prepaid_wallet.rules.payg import DeviceState

    args = ctx.args
    return _outcome(ctx, ctx.service.report_device(
        args.wallet, state=DeviceState(args.state), idempotency_key=args.idempotency_key,
        actor=ctx.actor))


def _pay(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _outcome(ctx, ctx.service.payg_payment(
        wallet.id, payment_id=args.payment_id, amount=_amount(args.amount, wallet.currency),
        method=args.method, idempotency_key=args.idempotency_key, actor=ctx.actor))


def _convert(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _outcome(ctx, ctx.service.record_conversion(
        wallet.id, conversion_id=args.conversion_id,
        payments=_payments(args.payment, wallet.currency), method=args.method,
        idempotency_key=args.idempotency_key, actor=ctx.actor))


def _upgrade(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _outcome(ctx, ctx.service.call_upgrade(
        wallet.id, products=args.product,
        daily_rate=_amount(args.rate, wallet.currency, "daily_rate"),
        downpayment=_amount(args.downpayment, wallet.currency, "downpayment"),
        performance=_performance(args.performance), idempotency_key=args.idempotency_key,
        actor=ctx.actor))


def _reconvert(ctx: _Context) -> ExitCode:
    args = ctx.args
    return _outcome(ctx, ctx.service.reconvert_payments(
        args.wallet, payment_ids=args.payment_id, idempotency_key=args.idempotency_key,
        actor=ctx.actor))


def _unlink(ctx: _Context) -> ExitCode:
    args = ctx.args
    return _outcome(ctx, ctx.service.unlink_conversion_payment(
        args.wallet, conversion_id=args.conversion_id, payment_id=args.payment_id,
        idempotency_key=args.idempotency_key, actor=ctx.actor))


def _installed(ctx: _Context) -> ExitCode:
    args = ctx.args
    return _outcome(ctx, ctx.service.confirm_upgrade_installed(
        args.wallet, idempotency_key=args.idempotency_key, actor=ctx.actor))


def _show(ctx: _Context) -> ExitCode:
    """The contract now: its performance, its time left and its upgrade, if one waits for its
    downpayment or to be installed (a waiting upgrade past its deadline is shown as passed:
    the next command on the contract, or ``expire``, expires it)."""
    svc = ctx.service
    wallet_id = ctx.args.wallet
    contract = svc.contract(wallet_id)
    at = svc.clock.now()
    score = svc.contract_performance(wallet_id, at=at)
    upgrade = None
    if contract.upgrade_id is not None:
        upgrade = next((u for u in svc.upgrades(wallet_id)
                        if u.upgrade_id == contract.upgrade_id), None)
    if ctx.json:
        ctx.emit({"contract": _codec.to_data(contract), "at": _codec.to_data(at),
                  "performance": str(score), "time_left": _codec.to_data(contract.time_left(at)),
                  "upgrade": None if upgrade is None else _codec.to_data(upgrade)})
        return ExitCode.OK
    rows = _contract_rows(ctx, contract, at)
    rows.insert(2, ("performance", f"{score} (since {_iso(contract.started_at)})"))
    if upgrade is not None:
        rows += _upgrade_rows(ctx, upgrade, at)
    ctx.table(rows)
    return ExitCode.OK


def _history(ctx: _Context) -> ExitCode:
    lines = ctx.service.on_time(ctx.args.wallet)
    return _listing(ctx, lines, "no on-time history", _LINE_HEADER,
                    lambda line: _line_row(ctx, line))


def _payment_row(ctx: _Context, payment: PaygPayment) -> tuple[str, ...]:
    linked = payment.upgrade_id or payment.conversion_id or "-"
    return (payment.payment_id, _iso(payment.paid_at), ctx.money(payment.amount),
            payment.method, payment.status.value, _span(payment.time), linked)


def _payments_list(ctx: _Context) -> ExitCode:
    payments = ctx.service.payg_payments(ctx.args.wallet)
    return _listing(ctx, payments, "no payments",
                    ("payment", "paid at", "amount", "method", "status", "time", "for"),
                    lambda payment: _payment_row(ctx, payment))


# -- arguments -------------------------------------------------------------------------------------


COMMANDS = _Family()


def _wallet(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")


def _who(p: argparse.ArgumentParser) -> None:
    """The options of every write: who runs it, and the idempotency key."""
    p.add_argument("--actor", help="who does it (recorded on the journal entries)")
    p.add_argument("--role", action="append", metavar="ROLE",
                   help="a role the actor acts in, such as system_process_officer or admin"
                        " (repeatable; needs --actor)")
    _key(p)


def _package(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--product", action="append", required=True, metavar="P",
                   help=f"a product of the {what} package (repeatable)")
    p.add_argument("--rate", required=True, metavar="AMOUNT",
                   help="the daily rate, a decimal in the wallet's currency, such as 50.00")


@COMMANDS.command("payg open", _open, _ONE,
                  help="open a pay-as-you-go contract: products at a daily rate")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    _package(p, "contract's")
    p.add_argument("--device", metavar="ID", help="the device the contract runs")
    _who(p)


@COMMANDS.command("payg device", _device, _ONE,
                  help="the device's state as it reports it (an upgrade needs it on)")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    p.add_argument("state", choices=("on", "off"), help="what the device reports")
    _who(p)


@COMMANDS.command("payg pay", _pay, _ONE,
                  help="a payment: turned into time, or held toward a waiting downpayment")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    p.add_argument("--payment-id", required=True, metavar="ID",
                   help="the payment's reference (unique per tenant)")
    p.add_argument("--amount", required=True, help="a decimal in the wallet's currency")
    p.add_argument("--method", default="mobile_money",
                   help="how it was paid (default mobile_money)")
    _who(p)


@COMMANDS.command("payg convert", _convert, _ONE,
                  help="a conversion transaction: payments made before going pay-as-you-go")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    p.add_argument("--conversion-id", required=True, metavar="ID",
                   help="the conversion transaction's reference (unique per tenant)")
    p.add_argument("--payment", action="append", required=True, metavar="ID=AMOUNT",
                   help="a payment linked to it and its amount (repeatable)")
    p.add_argument("--method", default="conversion", help="the method recorded"
                                                          " (default conversion)")
    _who(p)


@COMMANDS.command("payg upgrade", _upgrade, _ONE,
                  help="the upgrade call: opens a 4-hour window to pay the downpayment")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    _package(p, "new")
    p.add_argument("--downpayment", required=True, metavar="AMOUNT",
                   help="the downpayment due within the window")
    p.add_argument("--performance", metavar="D",
                   help="the contract performance, a decimal from 0 to 1 (default: the"
                        " library's own figure)")
    _who(p)


@COMMANDS.command("payg reconvert", _reconvert, _ONE,
                  help="pay the waiting downpayment with past payments' time"
                       " (system process officers)")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    p.add_argument("--payment-id", required=True, action="extend", nargs="+", metavar="ID",
                   help="the payments to turn back into money (one or more; repeatable)")
    _who(p)


@COMMANDS.command("payg unlink", _unlink, _ONE,
                  help="pay the waiting downpayment with a payment of a conversion (admins)")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    p.add_argument("--conversion-id", required=True, metavar="ID",
                   help="the conversion transaction")
    p.add_argument("--payment-id", metavar="ID",
                   help="the payment to unlink (default: the first that covers what the"
                        " downpayment needs)")
    _who(p)


@COMMANDS.command("payg installed", _installed, _ONE,
                  help="the paid upgrade was installed or collected: the contract is active")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
    _who(p)


@COMMANDS.command("payg show", _show,
                  help="the contract now: performance, time left, its upgrade")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)


@COMMANDS.command("payg history", _history, help="the contract's on-time lines, oldest first")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)


@COMMANDS.command("payg payments", _payments_list,
                  help="the wallet's pay-as-you-go payments and what became of each")
def _(p: argparse.ArgumentParser) -> None:
    _wallet(p)
