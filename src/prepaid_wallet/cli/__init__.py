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
* ``expire`` -- release ended holds, book expired lots as breakage, expire pending top-ups and
  pay-as-you-go upgrades whose downpayment window has ended.
* ``verify`` -- check the whole store. Exits 6 when it finds a problem.
* ``copy --from URL --to URL`` -- copy a whole store into an empty store of any backend: the
  source is verified first, the copy is written in one transaction and verified after. Exits 6
  when the source or the copy has a problem or the target is not empty (nothing is written).
* ``backup --to FILE`` -- back up the SQLite store ``--db`` names to a new file while writers
  keep writing, and verify the backup (exit 6 on a problem, or when ``FILE`` exists; a
  PostgreSQL ``--db`` is exit 2: use ``pg_dump``, or ``copy`` to a SQLite file).
* ``restore --from FILE`` -- put a backup in place as the new store ``--db`` names, verified
  first; never over an existing store file, never into a store that holds data (exit 6).
* ``rules show|history --tenant T`` -- the tenant's stored rules (its current version, or every
  version) as JSON.
* ``rules set --tenant T FILE|-`` -- store the rules in the JSON document ``FILE`` (``-``:
  standard input) as the tenant's next version.
* ``access show|history --tenant T`` -- the tenant's access policy (its current version, or
  every version) as JSON; ``access set --tenant T FILE|- [--actor A] [--role R]...`` -- store
  the policy in ``FILE`` as its next version, set by actor ``A`` holding roles ``R``.
* ``group list --tenant T``, ``group show ID`` -- a tenant's condition groups.
* ``group create --tenant T --name N FILE|-``, ``group update ID [--name N] [--conditions
  FILE|-] [--valid-from ISO|none] [--valid-until ISO|none]`` -- define and change one, its
  conditions as JSON.
* ``payg open|device|pay|convert|upgrade|reconvert|unlink|installed WALLET ...`` -- a
  pay-as-you-go contract and its upgrades (each takes ``--actor``, ``--role`` and
  ``--idempotency-key``); ``payg show|history|payments WALLET`` -- read it.
* ``key create --tenant T --role R [--role R]... [--name N]`` -- create an API key of the
  tenant and print its secret (shown this once); ``key list --tenant T`` -- its keys, never
  their secrets; ``key rotate KEY [--grace DURATION]`` -- a new secret (the old one works for
  ``DURATION`` more: ``90s``, ``30m``, ``4h``, ``2d``; default: it stops at once);
  ``key revoke KEY``.
* ``serve [--host H] [--port P] [--workers N] [--webhooks]`` -- serve the HTTP API (the
  ``server`` extra; docs/http.md); ``openapi`` -- print its OpenAPI document.
* ``call OPERATION [JSON|-] [--tenant T] [--actor A] [--role R]... [--idempotency-key K]`` --
  run any operation the HTTP API offers with its arguments as one JSON object, and print its
  JSON result (``call list``: every operation).
* ``webhook add --tenant T --url U [--kind K]...`` -- register an endpoint; prints its signing
  secret once. ``webhook list --tenant T``, ``webhook remove ID`` -- list, disable.
* ``webhook deliver [--limit N]`` -- one pass: the tenants' pending events into deliveries,
  then the due deliveries sent (signed, retried later on failure); prints a summary.
* ``webhook log --tenant T [--status pending|delivered|failed]`` -- the deliveries.
* ``webhook replay (--delivery ID | --event ID | --tenant T --since ISO)`` -- send again.

Every command that writes takes ``--idempotency-key KEY`` (except ``expire``, which books each
expiry exactly once however often it runs, ``group create|update``: defining a group twice
conflicts, and changing one to what it is writes nothing; and ``key``: a secret is never kept
to be replayed). Amounts are decimal strings in the wallet's currency (``"12.50"``), never
rounded: more decimals than the currency has are refused.
Instants are ISO 8601 with a UTC offset (``2026-12-31T23:00:00+00:00``), or a date alone
(``2026-12-31``: 00:00 UTC that day).

Output is text for people (amounts formatted for ``--locale``, default ``en_US``; the process
locale is never used) or, with ``--json``, one JSON object per command and one object per line
for listings (``wallet list``, ``lots``, ``statement --format jsonl``).

Exit codes (:class:`ExitCode`): 0 ok; 1 unexpected error (a bug); 2 usage (bad arguments,
``InvalidInputError``); 3 not found (``NotFoundError``); 4 refused (``RefusedError``, e.g. a
spend credit cannot cover, with its shortfall and a suggested top-up); 5 conflict
(``ConflictError``, e.g. an idempotency key reused for another request); 6 storage
(``StorageError``, ``IntegrityError``, or ``verify`` finding a problem); 7 denied
(``PermissionDeniedError``: the tenant's access policy); 130 interrupted (Ctrl-C:
what was printed was committed). An error prints one line on stderr; ``--debug`` adds the
traceback. A closed output pipe ends a command quietly, exit 0.

This module parses the arguments, runs the command and reports its errors. Each command is
defined in a module of this package (``wallet``, ``payment``, ``hold``, ``report``,
``maintenance``, ``integrity``, ``config``, ``checkout``, ``top_ups``, ``payg``, ``keys``,
``webhooks``, ``server``), named by its line of ``_COMMANDS`` and imported only when the
command is the one being run; ``framework`` holds what every command is made of and
``output`` what they share.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

# Only the command line's framework and the errors are imported up front: parsing the arguments
# (and --help, and a usage error) needs nothing else of the library. The module that defines a
# command is imported only when the command is the one given, and the command imports what it
# uses when it runs.
from prepaid_wallet.cli.framework import (
    _ONE,
    _READ,
    _STREAM,
    DEFAULT_DB,
    ENV_DB,
    ExitCode,
    _Commands,
    _Context,
    _global_options,
    _Interrupts,
    _OnFirstUse,
    _Parser,
    _UsageError,
)
from prepaid_wallet.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PrepaidWalletError,
    RefusedError,
    SpendDeniedError,
    StorageError,
    StoreNotFoundError,
)

if TYPE_CHECKING:
    import traceback

    from prepaid_wallet import _codec
    from prepaid_wallet.cli.framework import _Family
    from prepaid_wallet.cli.report import CSV_COLUMNS as CSV_COLUMNS

__all__ = ["DEFAULT_DB", "ENV_DB", "ExitCode", "main"]

if not TYPE_CHECKING:  # what only errors use
    traceback = _OnFirstUse("traceback")
    _codec = _OnFirstUse("prepaid_wallet._codec")


# -- parsing ---------------------------------------------------------------------------------------


#: Every command, in the order ``--help`` lists them: its name, its one-line help, and the module
#: of this package that defines it (what it runs and its arguments: see ``_Family`` in
#: :mod:`~prepaid_wallet.cli.framework`). A module is imported only when one of its commands is
#: the one being run. A command group (``wallet``) is one line: its actions are in its module.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "create the store, or migrate it to this version's schema", "maintenance"),
    ("wallet", "open, show and list wallets; set a wallet's floor or payment mode", "wallet"),
    ("top-up", "credit the open balance", "wallet"),
    ("award", "grant a commerce lot", "wallet"),
    ("award-many", "grant the awards of a CSV file, a batch at a time, once per batch key",
     "wallet"),
    ("check", "decide a spend without writing anything (exit 4 if it would be refused)",
     "payment"),
    ("spend", "pay from the wallet", "payment"),
    ("transfer", "move open balance to another wallet", "wallet"),
    ("hold", "reserve money for a later capture", "hold"),
    ("capture", "take all or part of an active hold", "hold"),
    ("void", "release an active hold entirely", "hold"),
    ("refund", "give back all or part of a spend or capture", "payment"),
    ("lots", "a wallet's lots with money left", "report"),
    ("holds", "a wallet's active holds", "hold"),
    ("balance", "a wallet's balances now", "report"),
    ("statement", "a wallet's entries and balances", "report"),
    ("expire", "release ended holds, book expired lots as breakage", "maintenance"),
    ("verify", "check the whole store against its journal (exit 6 on a problem)", "integrity"),
    ("checkpoint", "print (and keep) a digest of the journal to verify against later",
     "integrity"),
    ("seal", "seal every stored row again with a new key, or without one", "integrity"),
    ("copy", "copy a whole store into an empty one, of any backend, verified", "maintenance"),
    ("backup", "back up a SQLite store to a file, online, verified", "maintenance"),
    ("restore", "restore a backup file as a new store, verified before it is used",
     "maintenance"),
    ("rules", "show and set a tenant's rules (fees, limits...) as JSON", "config"),
    ("group", "list, show, create and update a tenant's condition groups", "config"),
    ("access", "show and set a tenant's access policy (roles -> operations) as JSON", "config"),
    ("order", "apply a member's credit to an order, place, abandon or show it", "checkout"),
    ("credit-owed", "credit what a placed order was paid more than its total", "checkout"),
    ("payment", "customer top-ups through a payment provider: start, report, show, pending,"
     " chargeback", "top_ups"),
    ("payg", "pay-as-you-go contracts: open, pay, upgrade, reconvert, unlink, show, history",
     "payg"),
    ("key", "create, list, rotate and revoke a tenant's API keys", "keys"),
    ("serve", "serve the HTTP API (the server extra)", "server"),
    ("openapi", "print the HTTP API's OpenAPI 3.1 document", "server"),
    ("call", "run any operation with JSON arguments, print its JSON result", "server"),
    ("webhook", "webhook endpoints and deliveries: add, list, remove, deliver, log, replay",
     "webhooks"),
    ("demo", "create a store and fill it with a small hub's week", "maintenance"),
)

#: The global options that take a value (the scan below skips the value).
_VALUED = frozenset({"--db", "--locale", "--seal-key-file"})


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
    action = words[1] if only and len(words) > 1 else None  # a group's action
    parser = _Parser(
        prog="prepaid-wallet",
        description="Prepaid customer credit: wallets, top-ups, awards, spends, statements."
                    " Global options may come before or after the command."
                    " Start with: prepaid-wallet --db sqlite:///wallets.db init",
        epilog="exit codes: 0 ok, 1 unexpected error, 2 usage, 3 not found, 4 refused,"
               " 5 conflict, 6 storage, 7 denied, 130 interrupted."
               " Run 'prepaid-wallet COMMAND --help' for a command's arguments.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    _global_options(parser, defaults=True)
    parser.set_defaults(run=None, writes=_READ, creates=False, usage_of=parser)
    commands = _Commands(parser.add_subparsers(dest="command", metavar="COMMAND",
                                               title="commands"), only)
    for name, help, module in _COMMANDS:
        command = commands.add(name, help)
        if commands.wanted(name):
            family: _Family = importlib.import_module(f"{__name__}.{module}").COMMANDS
            family.build(name, command, action)
    return parser


#: Every command's name, in the order ``--help`` lists them.
_COMMAND_NAMES = tuple(name for name, _, _ in _COMMANDS)


class _Version(argparse.Action):
    """``--version``: the library's version and the interpreter's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> NoReturn:
        from prepaid_wallet import __version__

        sys.stdout.write(f"prepaid-wallet {__version__} (Python {sys.version.split()[0]})\n")
        parser.exit(0)


# -- errors and main -----------------------------------------------------------------------------


_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (InvalidInputError, ExitCode.USAGE),
    (NotFoundError, ExitCode.NOT_FOUND),
    (RefusedError, ExitCode.REFUSED),
    (ConflictError, ExitCode.CONFLICT),
    (StorageError, ExitCode.STORAGE),
    (IntegrityError, ExitCode.STORAGE),
    (PermissionDeniedError, ExitCode.DENIED),
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
    if isinstance(exc, PermissionDeniedError):
        details.update(actor=exc.actor, operation=exc.operation, tenant_id=exc.tenant_id)
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


def __getattr__(name: str) -> Any:
    """``CSV_COLUMNS``, read from the module of ``statement`` (imported then, not on every
    start)."""
    if name == "CSV_COLUMNS":
        from prepaid_wallet.cli.report import CSV_COLUMNS

        return CSV_COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
