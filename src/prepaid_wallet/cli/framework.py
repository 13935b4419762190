"""What every command of the command line is made of: the exit codes, the parser and the global
options, the table a module of commands fills in (:class:`_Family`), the context a command runs
with (:class:`_Context`) and Ctrl-C (:class:`_Interrupts`).

Imported on every start, so it imports nothing of the library up front: a command imports what it
uses when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from prepaid_wallet.actors import Actor
    from prepaid_wallet.money import Money
    from prepaid_wallet.seals import SealKey
    from prepaid_wallet.service import WalletService


class _OnFirstUse:
    """A module imported when one of its attributes is first read (each attribute is then kept
    here, so later reads are plain lookups)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)
        return value



#: The environment variable that names the store when ``--db`` is not given.
ENV_DB = "PREPAID_WALLET_DB"
#: The environment variable that names the seal key file when ``--seal-key-file`` is not given.
ENV_SEAL_KEY_FILE = "PREPAID_WALLET_SEAL_KEY_FILE"
#: The store used when neither ``--db`` nor ``PREPAID_WALLET_DB`` is given.
DEFAULT_DB = "sqlite:///wallets.db"


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
    #: ``PermissionDeniedError``: the actor may not run this for the tenant (its access policy).
    DENIED = 7
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



def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after its name. The top-level parser holds
    the defaults; a command's own copies leave the attribute alone unless given."""
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--db", metavar="URL", default=default(None),
                        help=f"the store: memory:, sqlite:///FILE or postgresql://HOST/DB"
                             f" (default: ${ENV_DB}, else {DEFAULT_DB}); only init and demo"
                             " create a store")
    parser.add_argument("--seal-key-file", metavar="FILE", default=default(None),
                        help=f"the key the store's rows are sealed with, as '<key id>:<hex>'"
                             f" (default: ${ENV_SEAL_KEY_FILE}, else no key)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="machine-readable output: one JSON object (JSON Lines for lists)")
    parser.add_argument("--debug", action="store_true", default=default(False),
                        help="show tracebacks on errors")
    parser.add_argument("--locale", default=default("en_US"),
                        help="locale for amounts in text output, e.g. de_DE or de-DE"
                             " (default en_US; the process locale is never used)")


def read_seal_key(path: str) -> SealKey:
    """The seal key in the file at ``path`` (``<key id>:<hex>``); ``InvalidInputError`` naming
    ``seal_key`` if it cannot be read or is not a key (what it holds is never printed)."""
    from prepaid_wallet.errors import InvalidInputError
    from prepaid_wallet.seals import SealKey

    try:
        with open(path, encoding="ascii") as file:
            text = file.read(4096)
    except (OSError, UnicodeDecodeError):
        raise InvalidInputError("seal_key", "must name a readable key file") from None
    return SealKey.from_text(text)


#: What a command does to the store, for Ctrl-C: READ stops at once; ONE lets the operation in
#: progress finish and print before stopping; STREAM stops after the row being booked.
_READ, _ONE, _STREAM = "read", "one", "stream"


_Arguments = Callable[[argparse.ArgumentParser], None]
_Run = Callable[["_Context"], ExitCode]


class _Commands:
    """Adds commands to a sub-parser group, each with the global options.

    Every command is listed (for ``--help`` and usage errors), but only the one being run gets
    its arguments when ``only`` names it: building the others' is most of what building the
    whole parser costs, and a command that starts in a fraction of a second pays for it."""

    def __init__(self, group: Any, only: str | None) -> None:
        self._group = group
        self._only = only

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._group.add_parser(
            name, help=help, description=help[:1].upper() + help[1:] + ".")
        if self.wanted(name):
            _global_options(parser, defaults=False)
        return parser

    def wanted(self, name: str) -> bool:
        return self._only is None or self._only == name


class _Spec:
    """One command (or action) of a :class:`_Family` (a plain class: a ``NamedTuple`` would
    cost every start about a millisecond)."""

    __slots__ = ("arguments", "creates", "help", "run", "writes")

    def __init__(self, run: _Run, writes: str, creates: bool, help: str,
                 arguments: _Arguments | None) -> None:
        self.run = run
        self.writes = writes
        self.creates = creates
        self.help = help
        self.arguments = arguments

    def attach(self, parser: argparse.ArgumentParser) -> None:
        """Give the command's ``parser`` what it runs and its own arguments."""
        parser.set_defaults(run=self.run, writes=self.writes, creates=self.creates)
        if self.arguments is not None:
            self.arguments(parser)


class _Family:
    """The commands one module of this package defines, in its module attribute ``COMMANDS``.

    Each command is registered with the function that runs it, what it does to the store
    (``writes``: ``_READ``, ``_ONE`` or ``_STREAM``, for Ctrl-C), whether it may create a
    missing store (``creates``: only ``init`` and ``demo``) and the function that adds its own
    arguments (:meth:`command` decorates it). Its name, its one-line help and the module are
    one line of the table in :mod:`prepaid_wallet.cli`, which imports the module only when the
    command is the one being run.

    A name of two words (``"wallet open"``) is an action of a command group (``wallet``, the
    name in the table): an action's one-line help is given here; the group lists its actions,
    and only the one being run gets its arguments.
    """

    def __init__(self) -> None:
        self._specs: dict[str, _Spec] = {}

    def add(self, name: str, run: _Run, writes: str = _READ, *, creates: bool = False,
            help: str = "", arguments: _Arguments | None = None) -> None:
        """Register the command (or action) ``name``."""
        self._specs[name] = _Spec(run, writes, creates, help, arguments)

    def command(self, name: str, run: _Run, writes: str = _READ, *, creates: bool = False,
                help: str = "") -> Callable[[_Arguments], _Arguments]:
        """Decorates the function that adds a command's own arguments (see :meth:`add`)."""
        def register(arguments: _Arguments) -> _Arguments:
            self.add(name, run, writes, creates=creates, help=help, arguments=arguments)
            return arguments
        return register

    def names(self) -> list[str]:
        """The names registered: commands, and ``"group action"`` for actions."""
        return list(self._specs)

    def build(self, name: str, parser: argparse.ArgumentParser, action: str | None) -> None:
        """Give the command ``name`` (whose ``parser`` has the global options) what it runs and
        its arguments; a group its actions, each with the global options, and the arguments of
        ``action`` only when it names one of them (else of every action)."""
        spec = self._specs.get(name)
        if spec is not None:
            spec.attach(parser)
            return
        prefix = f"{name} "
        actions = {key.removeprefix(prefix): each for key, each in self._specs.items()
                   if key.startswith(prefix)}
        if not actions:
            raise KeyError(f"{name!r} is no command of this module")
        parser.set_defaults(usage_of=parser)
        group = _Commands(parser.add_subparsers(dest=f"{name.replace('-', '_')}_command",
                                                metavar="ACTION", title="actions"),
                          action if action in actions else None)
        for key, each in actions.items():
            sub = group.add(key, each.help)
            if group.wanted(key):
                each.attach(sub)


# -- running -------------------------------------------------------------------------------------


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
        return bool(self.args.creates)

    @property
    def service(self) -> WalletService:
        if self._service is None:
            from prepaid_wallet.service import WalletService
            from prepaid_wallet.storage import open_store

            self._service = WalletService(open_store(self.url, create=self.creates,
                                                     seal_key=self.seal_key))
        return self._service

    @property
    def seal_key(self) -> SealKey | None:
        """The key of ``--seal-key-file`` (else ``$PREPAID_WALLET_SEAL_KEY_FILE``), if any."""
        import os

        path = getattr(self.args, "seal_key_file", None) or os.environ.get(ENV_SEAL_KEY_FILE)
        return None if not path else read_seal_key(path)

    def close(self) -> None:
        if self._service is not None:
            self._service.store.close()

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    @property
    def actor(self) -> Actor | None:
        """Who runs the command: ``--actor`` with its ``--role`` s (``--role`` needs
        ``--actor``: ``InvalidInputError``)."""
        from prepaid_wallet.actors import Actor
        from prepaid_wallet.errors import InvalidInputError

        roles = tuple(dict.fromkeys(getattr(self.args, "role", None) or ()))
        actor_id = getattr(self.args, "actor", None)
        if roles and actor_id is None:
            raise InvalidInputError("--role", "needs --actor: roles belong to an actor",
                                    roles[0])
        return None if actor_id is None else Actor(actor_id, frozenset(roles))

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


class _Interrupts:
    """Ctrl-C (SIGINT) for the command line.

    Outside a deferred section Ctrl-C raises ``KeyboardInterrupt`` at once: reading commands
    stop where they are, nothing having been written. Inside one (a command that writes, and
    the printing of what it wrote) the first Ctrl-C is only remembered, so the operation in
    progress finishes and its result is printed before the command stops; ``expire`` stops
    after the batch in progress, every row of it printed. A second Ctrl-C raises at once.
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
