"""The ``prepaid-wallet`` command line (also ``python -m prepaid_wallet``).

A composition root: it opens the store a URL names, builds a
:class:`~prepaid_wallet.service.WalletService` on the system clock, runs one command and prints
its result.

Usage::

    prepaid-wallet [--db URL] [--json] [--debug] [--locale L] COMMAND ...

The store is ``--db URL``, else the ``PREPAID_WALLET_DB`` environment variable, else
``sqlite:///wallets.db`` (a file in the current directory). Only ``init`` and ``demo`` create a
store; every other command on a missing one fails (exit 3) naming it, and creates nothing.
Global options may come before or after the command.

Commands:

* ``init`` -- create or migrate the store; prints its schema state.
* ``demo`` -- create a store and fill it with a small hub's week.
* ``wallet open --tenant T --owner O --currency C [--floor AMOUNT]`` -- open a wallet.
* ``wallet show ID`` -- one wallet and its balances.
* ``wallet list [--tenant T]`` -- every wallet (of one tenant), by id.
* ``top-up WALLET AMOUNT --method M`` -- credit the open balance.
* ``award WALLET AMOUNT --reason R [--expires ISO]`` -- grant a commerce lot.
* ``check WALLET AMOUNT [--mode credit-only|credit-first]`` -- decide a spend; writes nothing.
  Exits 0 when the spend would be allowed, 4 when it would be refused.
* ``spend WALLET AMOUNT [--mode ...] [--description D]`` -- pay from the wallet.
* ``transfer FROM TO AMOUNT`` -- move open balance to another wallet of the same tenant.
* ``hold WALLET AMOUNT (--window DURATION | --expires ISO)`` -- reserve money for a later
  capture, for a duration (``90s``, ``30m``, ``4h``, ``2d``) or until an instant.
* ``capture HOLD [AMOUNT]`` -- take all (or part) of an active hold; the rest is released.
* ``void HOLD`` -- release an active hold entirely.
* ``refund ENTRY [AMOUNT] --reason R`` -- give back all that is left (or part) of a spend or
  capture entry.
* ``lots WALLET [--all]`` -- the wallet's lots with money left (every lot with ``--all``).
* ``holds WALLET [--all]`` -- the wallet's active holds (every hold with ``--all``).
* ``balance WALLET`` -- open, commerce, held, expired, total, available, spendable.
* ``statement WALLET [--format table|csv|jsonl] [--since ISO] [--until ISO]``.
* ``expire`` -- release ended holds and book expired lots as breakage.
* ``verify`` -- check the whole store. Exits 6 when it finds a problem.

Every command that writes takes ``--idempotency-key KEY`` (except ``expire``, which books each
expiry exactly once however often it runs). Amounts are decimal strings in the
wallet's currency (``"12.50"``), never rounded: more decimals than the currency has are refused.
Instants are ISO 8601 with a UTC offset (``2026-12-31T23:00:00+00:00``), or a date alone
(``2026-12-31``: 00:00 UTC that day).

Output is text for people (amounts formatted for ``--locale``, default ``en_US``; the process
locale is never used) or, with ``--json``, one JSON object per command and one object per line
for listings (``wallet list``, ``lots``, ``statement --format jsonl``).

Exit codes (:class:`ExitCode`): 0 ok; 1 unexpected error (a bug); 2 usage (bad arguments,
``InvalidInputError``); 3 not found (``NotFoundError``); 4 refused (``RefusedError``, e.g. a
spend credit cannot cover, with its shortfall and a suggested top-up); 5 conflict
(``ConflictError``, e.g. an idempotency key reused for another request); 6 storage
(``StorageError``, ``IntegrityError``, or ``verify`` finding a problem); 130 interrupted (Ctrl-C:
what was printed was committed). An error prints one line on stderr; ``--debug`` adds the
traceback. A closed output pipe ends a command quietly, exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

# Only the errors are imported up front: parsing the arguments (and --help, and a usage error)
# needs nothing else of the library, and each command imports what it uses when it runs.
from prepaid_wallet.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    InvalidTimeError,
    NotFoundError,
    PrepaidWalletError,
    RefusedError,
    SpendDeniedError,
    StorageError,
    StoreNotFoundError,
)
from prepaid_wallet.text import printable

if TYPE_CHECKING:
    import csv
    import sqlite3
    import traceback

    from prepaid_wallet import _codec
    from prepaid_wallet.conditions import LineItem
    from prepaid_wallet.money import Money
    from prepaid_wallet.policies import Decision, SpendRequest
    from prepaid_wallet.results import Balance, StatementLine, StatementStream
    from prepaid_wallet.service import WalletService
    from prepaid_wallet.wallet import AllocationPart, Hold, Wallet

__all__ = ["DEFAULT_DB", "ENV_DB", "ExitCode", "main"]


class _OnFirstUse:
    """A module imported when one of its attributes is first read (each attribute is then kept
    here, so later reads are plain lookups)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)
        return value


if not TYPE_CHECKING:  # what only some commands (or errors) use
    csv = _OnFirstUse("csv")
    sqlite3 = _OnFirstUse("sqlite3")
    traceback = _OnFirstUse("traceback")
    _codec = _OnFirstUse("prepaid_wallet._codec")

#: The environment variable that names the store when ``--db`` is not given.
ENV_DB = "PREPAID_WALLET_DB"
#: The store used when neither ``--db`` nor ``PREPAID_WALLET_DB`` is given.
DEFAULT_DB = "sqlite:///wallets.db"

_T = TypeVar("_T")
_SQLITE = "sqlite:///"
#: ``--mode`` choices and the ``PaymentMode`` value each stands for.
_MODES = {"credit-only": "credit_only", "credit-first": "credit_first"}
_DURATION = re.compile(r"([0-9]{1,9})([smhd])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION_RULE = ("must be a positive whole number of seconds, minutes, hours or days:"
                  " 90s, 30m, 4h or 2d")


class ExitCode(IntEnum):
    """The exit status of ``prepaid-wallet``; each error class has its own."""

    OK = 0
    #: An unexpected error: a bug in the program (run again with ``--debug``).
    ERROR = 1
    #: Bad arguments, or ``InvalidInputError``: fix the request.
    USAGE = 2
    #: ``NotFoundError``: a wallet (or other id) is unknown.
    NOT_FOUND = 3
    #: ``RefusedError``: a valid request the business rules refuse (``check`` too).
    REFUSED = 4
    #: ``ConflictError``: an idempotency key reused, a duplicate wallet, a concurrent update.
    CONFLICT = 5
    #: ``StorageError`` or ``IntegrityError`` (and ``verify`` finding a problem).
    STORAGE = 6
    #: Ctrl-C (SIGINT), as shells report it (128 + 2): what was printed was committed.
    INTERRUPTED = 130


class _UsageError(Exception):
    """argparse found bad arguments (raised instead of exiting)."""


def _terminal_width() -> int:
    """``shutil.get_terminal_size().columns`` without importing ``shutil`` (and the archive
    modules it brings) on every start."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_width() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """Raises instead of exiting on bad arguments; never accepts an abbreviated option (so
    adding an option never changes what an old command line means)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


# -- parsing ---------------------------------------------------------------------------------------


def _key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idempotency-key", metavar="KEY",
                        help="replaying the same request with this key writes nothing and"
                             " prints the first outcome again")


def _mode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=sorted(_MODES), default="credit-only",
                        help="credit-only (default): refuse what credit cannot cover;"
                             " credit-first: credit pays what it can, the rest is due")


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


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after its name. The top-level parser holds
    the defaults; a command's own copies leave the attribute alone unless given."""
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--db", metavar="URL", default=default(None),
                        help=f"the store: memory:, sqlite:///FILE or postgresql://HOST/DB"
                             f" (default: ${ENV_DB}, else {DEFAULT_DB}); only init and demo"
                             " create a store")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="machine-readable output: one JSON object (JSON Lines for lists)")
    parser.add_argument("--debug", action="store_true", default=default(False),
                        help="show tracebacks on errors")
    parser.add_argument("--locale", default=default("en_US"),
                        help="locale for amounts in text output, e.g. de_DE or de-DE"
                             " (default en_US; the process locale is never used)")


#: What a command does to the store, for Ctrl-C: READ stops at once; ONE lets the operation in
#: progress finish and print before stopping; STREAM stops after the row being booked.
_READ, _ONE, _STREAM = "read", "one", "stream"


_Arguments = Callable[[argparse.ArgumentParser], None]


class _Commands:
    """Adds commands to a sub-parser group, each with the global options and what it runs.

    Every command is listed (for ``--help`` and usage errors), but only the one being run gets
    its arguments when ``only`` names it: building the others' is most of what building the
    whole parser costs, and a command that starts in a fraction of a second pays for it."""

    def __init__(self, group: Any, only: str | None) -> None:
        self._group = group
        self._only = only

    def add(self, name: str, help: str, run: Callable[[_Context], ExitCode] | None = None,
            writes: str = _READ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._group.add_parser(
            name, help=help, description=help[:1].upper() + help[1:] + ".")
        if self.wanted(name):
            _global_options(parser, defaults=False)
        if run is not None:
            parser.set_defaults(run=run, writes=writes)
        return parser

    def wanted(self, name: str) -> bool:
        return self._only is None or self._only == name

    def command(self, name: str, help: str, run: Callable[[_Context], ExitCode],
                writes: str = _READ) -> Callable[[_Arguments], _Arguments]:
        """Decorates the function that adds a command's own arguments."""
        def register(arguments: _Arguments) -> _Arguments:
            parser = self.add(name, help, run, writes)
            if self.wanted(name):
                arguments(parser)
            return arguments
        return register


#: The global options that take a value (the scan below skips the value).
_VALUED = frozenset({"--db", "--locale"})


def _command_words(argv: Sequence[str]) -> list[str]:
    """The command and the action that ``argv`` names, as argparse will read them (global
    options may come first; abbreviated options are not allowed, so the scan is exact)."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--":
            break
        elif arg.startswith("-"):
            skip = arg in _VALUED
        else:
            words.append(arg)
            if len(words) == 2:
                break
    return words


def _build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given the ``argv`` about to be parsed, only the command it names gets
    its arguments (every command is still listed)."""
    words = [] if argv is None else _command_words(argv)
    # None builds every command's arguments; "" (no command given, or an unknown one) none.
    only = None if argv is None else words[0] if words and words[0] in _COMMAND_NAMES else ""
    action = words[1] if only == "wallet" and len(words) > 1 else None
    parser = _Parser(
        prog="prepaid-wallet",
        description="Prepaid customer credit: wallets, top-ups, awards, spends, statements."
                    " Global options may come before or after the command."
                    " Start with: prepaid-wallet --db sqlite:///wallets.db init",
        epilog="exit codes: 0 ok, 1 unexpected error, 2 usage, 3 not found, 4 refused,"
               " 5 conflict, 6 storage, 130 interrupted. Run 'prepaid-wallet COMMAND --help'"
               " for a command's arguments.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    _global_options(parser, defaults=True)
    parser.set_defaults(run=None, writes=_READ, usage_of=parser)
    commands = _Commands(parser.add_subparsers(dest="command", metavar="COMMAND",
                                               title="commands"), only)

    commands.add("init", "create the store, or migrate it to this version's schema", _init,
                 _ONE)

    wallet = commands.add("wallet", "open, show and list wallets")
    wallet.set_defaults(usage_of=wallet)
    if commands.wanted("wallet"):
        actions = _Commands(wallet.add_subparsers(dest="wallet_command", metavar="ACTION",
                                                  title="actions"),
                            action if action in ("open", "show", "list") else None)

        @actions.command("open", "open a wallet", _wallet_open, _ONE)
        def _(p: argparse.ArgumentParser) -> None:
            p.add_argument("--tenant", required=True,
                           help="the hub, merchant or business the wallet belongs to")
            p.add_argument("--owner", required=True, help="the customer's id in the host")
            p.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
            p.add_argument("--floor", metavar="AMOUNT",
                           help="lowest the open balance may go (zero or negative; default 0)")
            _key(p)

        @actions.command("show", "one wallet and its balances", _wallet_show)
        def _(p: argparse.ArgumentParser) -> None:
            p.add_argument("wallet", help="the wallet's id")

        @actions.command("list", "every wallet, by id", _wallet_list)
        def _(p: argparse.ArgumentParser) -> None:
            p.add_argument("--tenant", help="only this tenant's wallets")

    @commands.command("top-up", "credit the open balance", _top_up, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("amount", help="a decimal in the wallet's currency, such as 20.00")
        p.add_argument("--method", required=True, help="how it was paid, e.g. card")
        _key(p)

    @commands.command("award", "grant a commerce lot", _award, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("amount", help="a decimal in the wallet's currency, such as 5.00")
        p.add_argument("--reason", required=True, help="why it is granted, kept on the lot")
        p.add_argument("--expires", metavar="ISO", help="expiry instant (default: never)")
        p.add_argument("--product", dest="products", action="append", default=[],
                       metavar="ID", help="only these products may be paid (repeatable)")
        p.add_argument("--category", dest="categories", action="append", default=[],
                       metavar="NAME", help="only these categories may be paid (repeatable)")
        p.add_argument("--merchant", dest="merchants", action="append", default=[],
                       metavar="ID", help="only at these merchants (repeatable)")
        p.add_argument("--group", metavar="GROUP_ID",
                       help="a condition group whose conditions and end the lot follows")
        _key(p)

    @commands.command("check", "decide a spend without writing anything (exit 4 if it would be"
                               " refused)", _check)
    def _(p: argparse.ArgumentParser) -> None:
        _purchase(p)

    @commands.command("spend", "pay from the wallet", _spend, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        _purchase(p)
        p.add_argument("--description", help="free text kept on the entry, e.g. order 1001")
        _key(p)

    @commands.command("transfer", "move open balance to another wallet", _transfer, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("source", metavar="FROM", help="the paying wallet's id")
        p.add_argument("target", metavar="TO",
                       help="the receiving wallet's id (same tenant and currency)")
        p.add_argument("amount", help="a decimal in the wallets' currency")
        _key(p)

    @commands.command("hold", "reserve money for a later capture", _hold, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("amount", help="a decimal in the wallet's currency")
        ends = p.add_mutually_exclusive_group(required=True)
        ends.add_argument("--window", metavar="DURATION",
                          help="how long the hold lasts: 90s, 30m, 4h, 2d")
        ends.add_argument("--expires", metavar="ISO", help="when the hold ends")
        _key(p)

    @commands.command("capture", "take all or part of an active hold", _capture, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("hold", help="the hold's id")
        p.add_argument("amount", nargs="?",
                       help="at most the held amount (default: all); the rest is released")
        _key(p)

    @commands.command("void", "release an active hold entirely", _void, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("hold", help="the hold's id")
        _key(p)

    @commands.command("refund", "give back all or part of a spend or capture", _refund, _ONE)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("entry", help="the spend or capture entry's id")
        p.add_argument("amount", nargs="?", help="default: all that is left to refund")
        p.add_argument("--reason", required=True, help="why, kept on the refund entry")
        _key(p)

    @commands.command("lots", "a wallet's lots with money left", _lots)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("--all", action="store_true",
                       help="every lot, also the spent and expired")

    @commands.command("holds", "a wallet's active holds", _holds)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("--all", action="store_true",
                       help="every hold, also the captured, voided and expired")

    @commands.command("balance", "a wallet's balances now", _balance)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")

    @commands.command("statement", "a wallet's entries and balances", _statement)
    def _(p: argparse.ArgumentParser) -> None:
        p.add_argument("wallet", help="the wallet's id")
        p.add_argument("--format", choices=("table", "csv", "jsonl"),
                       help="table (default), csv, or jsonl (one line per entry)")
        p.add_argument("--since", metavar="ISO",
                       help="from this instant (included); a date alone is 00:00 UTC")
        p.add_argument("--until", metavar="ISO",
                       help="to this instant (excluded); a date alone is 00:00 UTC")

    # The sweep books each expiry exactly once, so running it again is already harmless: the
    # service takes no idempotency key for it.
    commands.add("expire", "release ended holds, book expired lots as breakage", _expire,
                 _STREAM)
    commands.add("verify", "check the whole store against its journal (exit 6 on a problem)",
                 _verify)
    commands.add("demo", "create a store and fill it with a small hub's week", _demo)
    return parser


#: Every command's name, in the order ``--help`` lists them.
_COMMAND_NAMES = ("init", "wallet", "top-up", "award", "check", "spend", "transfer", "hold",
                  "capture", "void", "refund", "lots", "holds", "balance", "statement",
                  "expire", "verify", "demo")


class _Version(argparse.Action):
    """``--version``: the library's version and the interpreter's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> NoReturn:
        from prepaid_wallet import __version__

        sys.stdout.write(f"prepaid-wallet {__version__} (Python {sys.version.split()[0]})\n")
        parser.exit(0)


# -- helpers -------------------------------------------------------------------------------------


class _Context:
    """What a command needs: the arguments, the service (opened lazily) and the output."""

    def __init__(self, args: argparse.Namespace, url: str, out: TextIO,
                 interrupts: _Interrupts | None = None) -> None:
        self.args = args
        self.url = url
        self.out = out
        self.interrupts = interrupts or _Interrupts()
        self._service: WalletService | None = None

    @property
    def creates(self) -> bool:
        """Whether this command may create the store (only ``init`` and ``demo`` do)."""
        return self.args.run in (_init, _demo)

    @property
    def service(self) -> WalletService:
        if self._service is None:
            from prepaid_wallet.service import WalletService
            from prepaid_wallet.storage import open_store

            self._service = WalletService(open_store(self.url, create=self.creates))
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.store.close()

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def money(self, value: Money) -> str:
        from prepaid_wallet.formatting import format_money

        return format_money(value, self.args.locale)

    def emit(self, data: Any) -> None:
        self.out.write(json.dumps(data) + "\n")

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def table(self, rows: Sequence[tuple[str, str]]) -> None:
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.line(f"{label.ljust(width)}  {value}")


def _amount(text: str, currency: str, field: str = "amount") -> Money:
    from prepaid_wallet.money import Money

    return Money.of(text, currency, field=field)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT_RULE = ("must be an ISO 8601 instant with a UTC offset, such as"
                 " 2026-01-31T09:00:00+01:00 or 2026-01-31T08:00:00Z, or a date such as"
                 " 2026-01-31 (00:00 UTC that day)")


def _instant(text: str | None, field: str) -> datetime | None:
    """An instant from ISO 8601 text with a UTC offset, or a date alone (``2026-01-31``), which
    means 00:00 UTC that day."""
    if text is None:
        return None
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidTimeError(field, "must be a real date such as 2026-01-31",
                                   text) from None
        return datetime.combine(day, dt_time(0), tzinfo=UTC)
    from prepaid_wallet._data import instant_from_text

    try:
        return instant_from_text(text, field)
    except InvalidTimeError as exc:
        raise InvalidTimeError(field, _INSTANT_RULE, text) from exc.__cause__


def _duration(text: str, field: str) -> timedelta:
    """A strict ``<digits><s|m|h|d>`` duration, positive."""
    match = _DURATION.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise InvalidTimeError(field, _DURATION_RULE, text)
    value = timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})
    try:
        datetime.now(UTC) + value
    except OverflowError:
        raise InvalidTimeError(field, "ends beyond the last representable instant",
                               text) from None
    return value


def _iso(value: datetime | None) -> str:
    return "-" if value is None else str(_codec.to_data(value))


def _allocation(ctx: _Context, parts: Sequence[AllocationPart]) -> str:
    if not parts:
        return "-"
    return ", ".join(f"{part.lot_id or 'open balance'} {ctx.money(part.amount)}"
                     for part in parts)


def _wallet_rows(ctx: _Context, wallet: Wallet) -> list[tuple[str, str]]:
    return [
        ("wallet", wallet.id), ("tenant", wallet.tenant_id), ("owner", wallet.owner_id),
        ("currency", wallet.currency), ("status", wallet.status.value),
        ("floor", ctx.money(wallet.floor)), ("open", ctx.money(wallet.open)),
        ("commerce", ctx.money(wallet.commerce)), ("held", ctx.money(wallet.held)),
        ("total", ctx.money(wallet.total)), ("created", _iso(wallet.created_at)),
    ]


def _balance_data(balance: Balance) -> dict[str, Any]:
    data: dict[str, Any] = _codec.to_data(balance)
    data.update(total=_codec.to_data(balance.total), available=_codec.to_data(balance.available),
                spendable=_codec.to_data(balance.spendable))
    return data


# -- commands ------------------------------------------------------------------------------------


def _schema_before(url: str) -> int | None:
    """The schema version of an existing SQLite file before it is opened (None: no file yet, or
    not SQLite)."""
    if not url.startswith(_SQLITE):
        return None
    from pathlib import Path

    path = Path(url[len(_SQLITE):])
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # opening the store reports what is wrong with the file
    return None if row is None else int(row[0])


def _init(ctx: _Context) -> ExitCode:
    before = _schema_before(ctx.url)
    store = ctx.service.store
    backend = type(store).__module__.rsplit(".", 1)[-1]
    module = sys.modules[type(store).__module__]
    version: int | None = getattr(module, "SCHEMA_VERSION", None)
    if version is None:
        state = "ready (in memory, nothing is kept)"
    elif before is None:
        state = f"ready at schema version {version}"
    elif before < version:
        state = f"migrated from schema version {before} to {version}"
    else:
        state = f"up to date at schema version {version}"
    if ctx.json:
        ctx.emit({"db": ctx.url, "backend": backend, "schema_version": version,
                  "previous_schema_version": before, "state": state})
    else:
        ctx.line(f"{ctx.url}: {backend} store {state}")
    return ExitCode.OK


def _wallet_open(ctx: _Context) -> ExitCode:
    args = ctx.args
    floor = None if args.floor is None else _amount(args.floor, args.currency, "floor")
    wallet = ctx.service.open_wallet(owner_id=args.owner, tenant_id=args.tenant,
                                     currency=args.currency, floor=floor,
                                     idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(wallet))
    else:
        ctx.line(f"opened wallet {wallet.id}")
        ctx.table(_wallet_rows(ctx, wallet)[1:])
    return ExitCode.OK


def _wallet_show(ctx: _Context) -> ExitCode:
    wallet = ctx.service.get_wallet(ctx.args.wallet)
    if ctx.json:
        ctx.emit(_codec.to_data(wallet))
    else:
        ctx.table(_wallet_rows(ctx, wallet))
    return ExitCode.OK


def _wallet_list(ctx: _Context) -> ExitCode:
    listed = 0
    with _Progress("wallet list") as progress:
        for wallet in progress.each(ctx.service.iter_wallets(ctx.args.tenant), "wallets"):
            listed += 1
            if ctx.json:
                ctx.emit(_codec.to_data(wallet))
            else:
                ctx.line("  ".join((wallet.id, wallet.tenant_id, wallet.owner_id,
                                    ctx.money(wallet.total))))
    if not ctx.json and not listed:
        ctx.line("no wallets")
    return ExitCode.OK


def _top_up(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    receipt = ctx.service.top_up(wallet.id, _amount(args.amount, wallet.currency),
                                 method=args.method, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(receipt))
    else:
        ctx.line(f"topped up {ctx.money(receipt.amount)} to {wallet.id}"
                 f" (entry {receipt.entry_id})")
        if receipt.fee is not None:
            ctx.line(f"fee {ctx.money(receipt.fee)}")
    return ExitCode.OK


def _award(ctx: _Context) -> ExitCode:
    from prepaid_wallet.conditions import SpendCondition

    args = ctx.args
    expires = _instant(args.expires, "--expires")
    condition = SpendCondition(products=args.products, categories=args.categories,
                               merchants=args.merchants)
    wallet = ctx.service.get_wallet(args.wallet)
    lot = ctx.service.award(wallet.id, _amount(args.amount, wallet.currency),
                            reason=args.reason, expires_at=expires,
                            condition=None if condition.is_unrestricted else condition,
                            group_id=args.group, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(lot))
    else:
        ctx.line(f"awarded {ctx.money(lot.amount)} to {wallet.id} as lot {lot.id}"
                 f" (expires {_iso(lot.expires_at) if lot.expires_at else 'never'},"
                 f" entry {lot.entry_id})")
    return ExitCode.OK


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
    return SpendRequest(amount, PaymentMode(_MODES[args.mode]), getattr(args, "description", None),
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


def _transfer(ctx: _Context) -> ExitCode:
    args = ctx.args
    source = ctx.service.get_wallet(args.source)
    receipt = ctx.service.transfer(source.id, args.target,
                                   _amount(args.amount, source.currency),
                                   idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(receipt))
    else:
        ctx.line(f"transferred {ctx.money(receipt.amount)} from {source.id} to"
                 f" {receipt.counterparty_id} (entry {receipt.entry_id})")
        if receipt.fee is not None:
            ctx.line(f"fee {ctx.money(receipt.fee)}")
    return ExitCode.OK


def _hold_rows(ctx: _Context, held: Hold) -> list[tuple[str, str]]:
    rows = [("hold", held.id), ("wallet", held.wallet_id), ("status", held.status.value),
            ("amount", ctx.money(held.amount)), ("expires", _iso(held.expires_at)),
            ("held from", _allocation(ctx, held.allocation)), ("entry", held.entry_id)]
    if held.captured is not None:
        rows.append(("captured", ctx.money(held.captured)))
    if held.resolved_entry_id is not None:
        rows.append(("resolved by", held.resolved_entry_id))
    return rows


def _hold(ctx: _Context) -> ExitCode:
    args = ctx.args
    window = None if args.window is None else _duration(args.window, "--window")
    expires = _instant(args.expires, "--expires")
    wallet = ctx.service.get_wallet(args.wallet)
    held = ctx.service.hold(wallet.id, _amount(args.amount, wallet.currency),
                            expires_at=expires, window=window,
                            idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(held))
    else:
        ctx.table(_hold_rows(ctx, held))
    return ExitCode.OK


def _capture(ctx: _Context) -> ExitCode:
    args = ctx.args
    amount = None
    if args.amount is not None:
        held = ctx.service.get_hold(args.hold)
        wallet = ctx.service.get_wallet(held.wallet_id)
        amount = _amount(args.amount, wallet.currency)
    result = ctx.service.capture(args.hold, amount, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(result))
    else:
        rows = [("entry", result.entry_id), ("hold", result.hold_id),
                ("captured", ctx.money(result.captured)),
                ("released", ctx.money(result.released)),
                ("paid from", _allocation(ctx, result.allocation))]
        if result.breakage.is_positive():
            rows.append(("breakage", ctx.money(result.breakage)))
        ctx.table(rows)
    return ExitCode.OK


def _void(ctx: _Context) -> ExitCode:
    held = ctx.service.void(ctx.args.hold, idempotency_key=ctx.args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(held))
    else:
        ctx.table(_hold_rows(ctx, held))
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


def _lots(ctx: _Context) -> ExitCode:
    return _listing(
        ctx, ctx.service.lots(ctx.args.wallet, include_empty=ctx.args.all), "no lots",
        ("id", "remaining", "expires", "priority", "reason"),
        lambda lot: (lot.id, ctx.money(lot.remaining),
                     _iso(lot.expires_at) if lot.expires_at else "never", str(lot.priority),
                     printable(lot.reason)),
    )


def _holds(ctx: _Context) -> ExitCode:
    from prepaid_wallet.wallet import HoldStatus

    return _listing(
        ctx, [h for h in ctx.service.holds(ctx.args.wallet)
              if ctx.args.all or h.status is HoldStatus.ACTIVE], "no holds",
        ("id", "status", "amount", "expires"),
        lambda h: (h.id, h.status.value, ctx.money(h.amount), _iso(h.expires_at)),
    )


def _listing(ctx: _Context, items: Sequence[_T], empty: str, header: tuple[str, ...],
             row: Callable[[_T], tuple[str, ...]]) -> ExitCode:
    """A short listing: one JSON object per item, or a table (``empty`` when there is none)."""
    if ctx.json:
        for item in items:
            ctx.emit(_codec.to_data(item))
    elif not items:
        ctx.line(empty)
    else:
        _columns(ctx, [header, *(row(item) for item in items)])
    return ExitCode.OK


def _columns(ctx: _Context, rows: Sequence[tuple[str, ...]]) -> None:
    """Rows aligned in columns (the last one left ragged)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        ctx.line("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                            row[-1]]).rstrip())


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


def _expire(ctx: _Context) -> ExitCode:
    lots = holds = 0
    with _Progress("expire") as progress:
        for done in progress.each(ctx.service.sweep_expired(), "booked"):
            if done.kind == "lot":
                lots += 1
            else:
                holds += 1
            if ctx.json:
                ctx.emit({"record": "expiry", **_codec.to_data(done)})
            elif done.kind == "lot":
                ctx.line(f"expired lot {done.subject_id} of {done.wallet_id}:"
                         f" {ctx.money(done.amount)} to breakage (entry {done.entry_id})")
            else:
                ctx.line(f"released hold {done.subject_id} of {done.wallet_id}:"
                         f" {ctx.money(done.amount)} (entry {done.entry_id})")
            if ctx.interrupts.pending:  # Ctrl-C: stop after the booking just printed (the
                break                   # sweep holds no unit of work open between bookings)
    if ctx.json:
        ctx.emit({"record": "summary", "lots_expired": lots, "holds_released": holds,
                  "entries": lots + holds})
    else:
        ctx.line(f"expired {lots} lot(s), released {holds} hold(s) in {lots + holds}"
                 " entry(ies)")
    return ExitCode.OK


def _verify(ctx: _Context) -> ExitCode:
    counts = {"entries": 0, "wallets": 0}
    problems = 0
    with _Progress("verify") as progress:
        def track(phase: str, done: int) -> None:
            counts[phase] = done
            progress(phase, done)

        for problem in ctx.service.iter_verify(progress=track):
            problems += 1
            if ctx.json:
                ctx.emit({"record": "problem", **_codec.to_data(problem)})
            else:
                ctx.line(printable(f"{problem.code} {problem.subject}: {problem.detail}"))
    if ctx.json:
        ctx.emit({"record": "summary", "entries": counts["entries"],
                  "wallets": counts["wallets"], "problems": problems, "ok": not problems})
    else:
        ctx.line(f"checked {counts['entries']} entries and {counts['wallets']} wallets:"
                 f" {f'{problems} problem(s)' if problems else 'ok'}")
    return ExitCode.STORAGE if problems else ExitCode.OK


def _demo(ctx: _Context) -> ExitCode:
    from prepaid_wallet import demo  # only this command needs it

    summary = demo.run(ctx.service.store, ctx.out, json=ctx.json, locale=ctx.args.locale,
                       db=ctx.url)
    return ExitCode.OK if summary.verified else ExitCode.STORAGE


class _Progress:
    """A long job's progress on stderr, only when stderr is a terminal: one line rewritten at
    most five times a second, erased when the job ends. Nothing is written otherwise, so
    pipes and logs see only the job's own output."""

    _EVERY = 0.2

    def __init__(self, job: str, stream: TextIO | None = None) -> None:
        self._job = job
        out = sys.stderr if stream is None else stream
        self._out: TextIO | None = out if out.isatty() else None
        self._next = 0.0
        self._shown = False
        self._started = time.monotonic()

    def __call__(self, phase: str, done: int) -> None:
        if self._out is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._EVERY
        rate = done / max(now - self._started, 1e-9)
        self._out.write(f"\r{self._job}: {done:,} {phase} ({rate:,.0f}/s)\x1b[K")
        self._out.flush()
        self._shown = True

    def each(self, rows: Iterable[_T], phase: str) -> Iterator[_T]:
        """``rows``, reporting how many have gone by."""
        for done, row in enumerate(rows, 1):
            yield row
            self(phase, done)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None and self._shown:
            self._out.write("\r\x1b[K")
            self._out.flush()


# -- errors and main -----------------------------------------------------------------------------


_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (InvalidInputError, ExitCode.USAGE),
    (NotFoundError, ExitCode.NOT_FOUND),
    (RefusedError, ExitCode.REFUSED),
    (ConflictError, ExitCode.CONFLICT),
    (StorageError, ExitCode.STORAGE),
    (IntegrityError, ExitCode.STORAGE),
)


def _exit_code(exc: PrepaidWalletError) -> ExitCode:
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return ExitCode.ERROR


def _message(exc: PrepaidWalletError, url: str) -> str:
    message = str(exc)
    if isinstance(exc, SpendDeniedError) and exc.decision.suggested_top_up.is_positive():
        message += f"; suggested top-up {exc.decision.suggested_top_up}"
    if isinstance(exc, StoreNotFoundError):
        message += f"; create it with: prepaid-wallet --db {shlex.quote(url)} init"
    return " ".join(message.split())  # always one line


def _error_details(exc: PrepaidWalletError) -> dict[str, Any]:
    """What a script needs besides the message: the field and rule of bad input, the decision
    of a refused spend."""
    details: dict[str, Any] = {}
    if isinstance(exc, InvalidInputError):
        details.update(field=exc.field, rule=exc.rule)
    if isinstance(exc, SpendDeniedError):
        details["decision"] = _codec.to_data(exc.decision)
    return details


def _report(code: ExitCode, kind: str, message: str, details: dict[str, Any], *,
            as_json: bool) -> None:
    """One line on stderr: ``error: ...`` for people, or with ``--json`` one object
    ``{"error": {"exit_code", "category", "type", "message", ...details}}``."""
    if as_json:
        data = {"exit_code": int(code), "category": code.name.lower(), "type": kind,
                "message": message, **details}
        sys.stderr.write(json.dumps({"error": data}) + "\n")
    elif code is ExitCode.ERROR or kind == "UsageError":
        sys.stderr.write(f"{message}\n")
    else:
        sys.stderr.write(f"error: {message}\n")


class _Interrupts:
    """Ctrl-C (SIGINT) for the command line.

    Outside a deferred section Ctrl-C raises ``KeyboardInterrupt`` at once: reading commands
    stop where they are, nothing having been written. Inside one (a command that writes, and
    the printing of what it wrote) the first Ctrl-C is only remembered, so the operation in
    progress finishes and its result is printed before the command stops; ``expire`` stops
    after the booking in progress. A second Ctrl-C raises at once.
    """

    def __init__(self) -> None:
        self.pending = False
        self._deferring = 0
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        """Handle SIGINT (only possible in the main thread; elsewhere nothing changes)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: object) -> None:
        if self._deferring and not self.pending:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1


def _store_url(args: argparse.Namespace) -> str:
    """``--db``, else ``$PREPAID_WALLET_DB``, else the default; empty values are refused."""
    if args.db is not None:
        if not args.db:
            raise InvalidInputError("--db", "must be a store URL, not empty", args.db)
        return str(args.db)
    from_env = os.environ.get(ENV_DB)
    if from_env is not None:
        if not from_env:
            raise InvalidInputError(ENV_DB, "must be a store URL when it is set, not empty",
                                    from_env)
        return from_env
    return DEFAULT_DB


def _quiet_stdout() -> None:
    """After a closed pipe: send what is still buffered for stdout nowhere, so the exit does
    not fail on flushing it."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prepaid-wallet`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status
    (an :class:`ExitCode`). Errors are reported on stderr in one line, with the traceback when
    ``--debug`` is given; nothing is raised. A closed output pipe ends the command quietly
    (exit 0); Ctrl-C ends it with one line and exit 130 (see :class:`ExitCode`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    interrupts = _Interrupts()
    interrupts.install()
    try:
        return _run(argv, interrupts)
    except BrokenPipeError:  # the reader has gone: nothing more to say to anyone
        _quiet_stdout()
        return ExitCode.OK
    except KeyboardInterrupt:  # before a command ran, or while its error was reported
        _report(ExitCode.INTERRUPTED, "KeyboardInterrupt", "interrupted", {},
                as_json="--json" in argv)
        return ExitCode.INTERRUPTED
    finally:
        interrupts.restore()


def _run(argv: list[str], interrupts: _Interrupts) -> int:
    parser = _build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        _report(ExitCode.USAGE, "UsageError", str(exc), {}, as_json="--json" in argv)
        return ExitCode.USAGE
    except SystemExit as exc:  # --help, --version
        sys.stdout.flush()
        return exc.code if isinstance(exc.code, int) else ExitCode.OK
    if args.run is None:  # no command, or "wallet" without its action: say what there is
        sys.stderr.write(args.usage_of.format_help())
        return ExitCode.USAGE
    url = DEFAULT_DB
    ctx: _Context | None = None
    writes = args.writes in (_ONE, _STREAM)
    completed = False
    try:
        url = _store_url(args)
        ctx = _Context(args, url, sys.stdout, interrupts)
        run: Callable[[_Context], ExitCode] = args.run
        with interrupts.deferred() if writes else contextlib.nullcontext():
            code = run(ctx)
            sys.stdout.flush()
        completed = True
        if interrupts.pending:  # Ctrl-C came while it wrote: it finished, now it stops
            raise KeyboardInterrupt
        return code
    except PrepaidWalletError as exc:
        code = _exit_code(exc)
        if args.debug:
            traceback.print_exc()
        _report(code, type(exc).__name__, _message(exc, url), _error_details(exc),
                as_json=args.json)
        return code
    except KeyboardInterrupt:
        sys.stdout.flush()
        if completed:
            message = ("interrupted; what is printed above was committed, nothing else was"
                       " written")
        elif not writes:
            message = "interrupted; nothing was written"
        else:
            message = ("interrupted; the operation in progress is committed only if it had"
                       " finished: check, or retry with the same --idempotency-key")
        _report(ExitCode.INTERRUPTED, "KeyboardInterrupt", message, {}, as_json=args.json)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        _report(ExitCode.ERROR, type(exc).__name__,
                f"unexpected error: {type(exc).__name__}: {' '.join(str(exc).split())}"
                " (run with --debug for details)", {}, as_json=args.json)
        return ExitCode.ERROR
    finally:
        if ctx is not None:
            with contextlib.suppress(PrepaidWalletError):  # closing is best effort
                ctx.close()
