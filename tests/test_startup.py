"""Start-up cost, guarded without timing anything: which modules a command line call and a bare
``import prepaid_wallet`` load, and that the package's lazy exports are the real objects.

The timings themselves are measured by ``benchmarks/cli_startup.py``; here each check runs a
fresh interpreter and reads its ``sys.modules``.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import prepaid_wallet
from prepaid_wallet import Money, SpendRequest, WalletService, open_store

INIT = Path(prepaid_wallet.__file__)


def _declared_homes() -> dict[str, str]:
    """Every name ``prepaid_wallet/__init__.py`` imports for the type checker, and its module."""
    homes: dict[str, str] = {}
    for node in ast.walk(ast.parse(INIT.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("prepaid_wallet."):
            for alias in node.names:
                homes[alias.asname or alias.name] = node.module
    return homes


def test_every_export_is_declared_once_with_its_home() -> None:
    homes = _declared_homes()
    assert sorted(prepaid_wallet.__all__) == sorted([*homes, "__version__"])
    assert len(set(prepaid_wallet.__all__)) == len(prepaid_wallet.__all__)
    assert homes == prepaid_wallet._HOMES  # the lazy table says what the imports say


@pytest.mark.parametrize("name", sorted(_declared_homes()))
def test_export_resolves_to_the_object_of_its_home_module(name: str) -> None:
    home = importlib.import_module(_declared_homes()[name])
    assert getattr(prepaid_wallet, name) is getattr(home, name)
    namespace: dict[str, object] = {}
    exec(f"from prepaid_wallet import {name}", namespace)
    assert namespace[name] is getattr(home, name)
    assert name in dir(prepaid_wallet)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        prepaid_wallet.Nope  # type: ignore[attr-defined]  # noqa: B018
    assert isinstance(prepaid_wallet.__version__, str)
    # One version: the package's is the installed distribution's.
    from importlib import metadata

    assert prepaid_wallet.__version__ == metadata.version("prepaid_wallet")


# -- what a fresh interpreter imports ----------------------------------------------------------

#: Never imported before a command runs (nor by ``import prepaid_wallet``).
HEAVY = (
    "prepaid_wallet.service",
    "prepaid_wallet.storage",
    "prepaid_wallet.storage.sqlite",
    "prepaid_wallet.storage.postgres",
    "prepaid_wallet.results",
    "prepaid_wallet.rules.topup",
    "prepaid_wallet.demo",
    "attrs",
    "babel",
    "dateutil.rrule",
    "psycopg",
    "sqlite3",
)


def _modules_after(code: str) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return set(loaded)


def _package(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] == "prepaid_wallet"}


def test_import_prepaid_wallet_imports_none_of_its_modules() -> None:
    loaded = _modules_after("import prepaid_wallet")
    assert _package(loaded) == {"prepaid_wallet"}
    assert not loaded & set(HEAVY)


def test_one_export_imports_its_module_only() -> None:
    loaded = _modules_after("from prepaid_wallet import InvalidInputError")
    assert _package(loaded) == {"prepaid_wallet", "prepaid_wallet.errors"}


#: What parsing the arguments may import of the package: the command line's entry module and its
#: framework, the errors, and the text rules (which import only the errors); besides these, only
#: the module that defines the command given (see ``_commands``).
_PARSING = {"prepaid_wallet", "prepaid_wallet.cli", "prepaid_wallet.cli.framework",
            "prepaid_wallet.errors", "prepaid_wallet.text"}


def _commands(modules: set[str]) -> set[str]:
    """The command line's modules of commands among ``modules`` (and the helpers they share)."""
    return {m for m in modules if m.startswith("prepaid_wallet.cli.")} - _PARSING


def test_building_the_parser_imports_nothing_heavy() -> None:
    loaded = _modules_after("import prepaid_wallet.cli as c; c._build_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert _package(loaded) - _commands(loaded) <= _PARSING


@pytest.mark.parametrize(
    ("argv", "commands"),
    [(["--help"], set()), (["balance", "--help"], {"report", "output"}),
     (["no-such-command"], set()), (["balance"], {"report", "output"})],
    ids=["help", "command-help", "unknown-command", "missing-argument"],
)
def test_help_and_usage_errors_import_nothing_heavy(argv: list[str], commands: set[str]) -> None:
    code = (
        "import contextlib, io, prepaid_wallet.cli as c\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):"
        f"\n    c.main({argv!r})"
    )
    loaded = _modules_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert _package(loaded) - _commands(loaded) <= _PARSING
    # Only the module of the command given (none without one) is imported to parse it.
    assert _commands(loaded) == {f"prepaid_wallet.cli.{module}" for module in commands}


def test_the_table_of_commands_names_the_module_of_each() -> None:
    # A command is one line of the table and its registration in the module that line names.
    from prepaid_wallet import cli

    registered: dict[str, list[str]] = {}
    for name, _, module in cli._COMMANDS:
        family = importlib.import_module(f"prepaid_wallet.cli.{module}").COMMANDS
        registered.setdefault(module, family.names())
        assert name in registered[module] or any(
            key.startswith(f"{name} ") for key in registered[module]), (name, module)
    for module, names in registered.items():
        assert {key.split()[0] for key in names} == {
            name for name, _, home in cli._COMMANDS if home == module}, module


def test_the_command_lines_constants_match_the_library() -> None:
    # The command line spells these out so that it need not import the modules defining them.
    from prepaid_wallet.cli import payment, report
    from prepaid_wallet.ledger import EntryKind
    from prepaid_wallet.policies import PaymentMode

    assert max(len(kind.value) for kind in EntryKind) == report._KIND_WIDTH
    refundable = {EntryKind(kind) for kind in payment._REFUNDABLE}
    assert refundable == {EntryKind.SPEND, EntryKind.CAPTURE}
    assert {PaymentMode(mode) for mode in payment._MODES.values()} == set(PaymentMode)


# -- what a read imports ---------------------------------------------------------------------

#: Modules a read of a wallet on SQLite never needs: the other backends, the demo, the codec's
#: and command line's extras, and the rule modules of a tenant without rules.
NOT_FOR_READS = (
    "prepaid_wallet.demo",
    "prepaid_wallet.storage.memory",
    "prepaid_wallet.storage.postgres",
    "prepaid_wallet.rules.fees",
    "prepaid_wallet.rules.reminders",
    "prepaid_wallet.rules.tenant",
    "prepaid_wallet.rules.topup",
    "dateutil.rrule",
    "psycopg",
    "psycopg_pool",
    "pathlib",  # and the urllib.parse it brings
    "shutil",  # argparse's help formatter would bring it, with bz2 and lzma
)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A SQLite store with one wallet, two top-ups and a spend: its URL and the wallet's id."""
    url = f"sqlite:///{tmp_path_factory.mktemp('startup') / 'wallets.db'}"
    store = open_store(url)
    try:
        service = WalletService(store)
        wallet = service.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR")
        service.top_up(wallet.id, Money.of("20.00", "EUR"), method="card")
        service.top_up(wallet.id, Money.of("5.00", "EUR"), method="card")
        service.spend(wallet.id, SpendRequest(Money.of("3.50", "EUR")))
    finally:
        store.close()
    return url, wallet.id


@pytest.mark.parametrize(
    "command",
    [["balance"], ["--json", "balance"], ["wallet", "show"], ["statement"]],
    ids=["balance", "balance-json", "wallet-show", "statement"],
)
def test_a_read_imports_no_rule_module_nor_other_backend(
    store_url: tuple[str, str], command: list[str]
) -> None:
    url, wallet = store_url
    argv = ["--db", url, *command, wallet]
    code = (
        "import contextlib, io, prepaid_wallet.cli as c\n"
        "out = io.StringIO()\n"
        f"with contextlib.redirect_stdout(out):\n    assert c.main({argv!r}) == 0\n"
        f"assert {wallet!r} in out.getvalue()"
    )
    loaded = _modules_after(code)
    assert "prepaid_wallet.storage.sqlite" in loaded  # the read did happen, on SQLite
    assert not loaded & set(NOT_FOR_READS), sorted(loaded & set(NOT_FOR_READS))


@pytest.mark.parametrize(
    ("command", "module"),
    [(["balance"], "report"), (["wallet", "show"], "wallet"), (["statement"], "report")],
    ids=["balance", "wallet-show", "statement"],
)
def test_a_read_imports_the_module_of_its_command_only(
    store_url: tuple[str, str], command: list[str], module: str
) -> None:
    url, wallet = store_url
    argv = ["--db", url, *command, wallet]
    code = (
        "import contextlib, io, prepaid_wallet.cli as c\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert c.main({argv!r}) == 0"
    )
    assert _commands(_modules_after(code)) == {f"prepaid_wallet.cli.{module}",
                                               "prepaid_wallet.cli.output"}


def _is_command_side_or_query(module: str) -> bool:
    """Whether ``module`` holds command records, a handler or a query."""
    return module == "prepaid_wallet.app.commands" or module.startswith(
        ("prepaid_wallet.app.handlers.", "prepaid_wallet.app.queries."))


@pytest.mark.parametrize(
    ("command", "query"),
    [(["balance"], "balance"), (["--json", "balance"], "balance"),
     (["wallet", "show"], "wallet"), (["statement"], "statement")],
    ids=["balance", "balance-json", "wallet-show", "statement"],
)
def test_a_read_imports_its_query_module_only(
    store_url: tuple[str, str], command: list[str], query: str
) -> None:
    # Query and handler modules are imported on first use: a read loads the one query module
    # it runs, and no command record, handler, nor other query (verification, breakdown...).
    url, wallet = store_url
    argv = ["--db", url, *command, wallet]
    code = (
        "import contextlib, io, prepaid_wallet.cli as c\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert c.main({argv!r}) == 0"
    )
    loaded = {m for m in _modules_after(code) if _is_command_side_or_query(m)}
    assert loaded == {f"prepaid_wallet.app.queries.{query}"}


def test_the_service_imports_no_verification_and_keeps_progress() -> None:
    verification = "prepaid_wallet.app.queries.verification"
    assert verification not in _modules_after("import prepaid_wallet.service")
    from prepaid_wallet.app.queries.verification import Progress
    from prepaid_wallet.service import Progress as reexported

    assert reexported is Progress
