"""The layers of docs/architecture.md, read from the code: every import (at module level, under
``TYPE_CHECKING`` or inside a function) points to the same layer or a lower one, and no modules
import each other in a circle. A new module must be given a layer here.

    1 errors      2 values      3 domain      4 application      5 storage      6 entry points
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "prepaid_wallet"

#: Each module's layer, by name or by package prefix (the longest match wins).
LAYERS: dict[str, int] = {
    "errors": 1,
    "money": 2, "clock": 2, "ids": 2, "formatting": 2, "text": 2, "_data": 2, "actors": 2,
    "seals": 2, "wire": 2, "webhook_signature": 2,
    "ledger": 3, "conditions": 3, "wallet": 3, "holds": 3, "expiry": 3, "policies": 3, "rules": 3,
    "results": 3, "_codec": 3,
    # automatic top-ups: the gateway, the rule, the intent and the state machine
    "rules.topup._fields": 3, "rules.topup.gateway": 3, "rules.topup.rule": 3,
    "rules.topup.intent": 3, "rules.topup.steps": 3,
    "app": 4, "idempotency": 4, "service": 4, "facade": 4, "catalogue": 4,
    "storage": 5,
    "cli": 6, "demo": 6, "__main__": 6, "": 6,  # "" is the package itself: its re-exports
    "http": 6,  # the HTTP API (the server extra)
    # the command line: its framework, shared helpers, and one module per family of commands
    "cli.framework": 6, "cli.output": 6, "cli.wallet": 6, "cli.payment": 6, "cli.hold": 6,
    "cli.report": 6, "cli.maintenance": 6, "cli.integrity": 6, "cli.webhooks": 6,
}
NAMES = {1: "errors", 2: "values", 3: "domain", 4: "application", 5: "storage",
         6: "entry points"}


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__")


def layer(module: str) -> int:
    """The layer of ``module`` (relative to the package: ``"storage.sqlite"``)."""
    parts = module.split(".") if module else [""]
    for n in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:n]))
        if found is not None:
            return found
    raise AssertionError(f"prepaid_wallet.{module} has no layer: add it to LAYERS")


def _imports(path: Path, root: Path = SRC) -> list[tuple[str, int]]:
    """The package modules ``path`` imports (relative names) with the line of each import."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
                names = [f"prepaid_wallet.{target}" if target else "prepaid_wallet"]
            else:
                names = [node.module or ""]
            if names == ["prepaid_wallet"]:  # from prepaid_wallet import _codec, __version__
                names = [f"prepaid_wallet.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "prepaid_wallet" or name.startswith("prepaid_wallet."):
                relative = name.removeprefix("prepaid_wallet").removeprefix(".")
                if relative == "__version__":
                    relative = ""
                found.append((relative, node.lineno))
    return found


def _graph() -> dict[str, list[tuple[str, int]]]:
    modules = {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}
    graph = {}
    for module, path in modules.items():
        targets = []
        for target, line in _imports(path):
            while target and target not in modules:  # "from pkg import name": the package
                target = target.rpartition(".")[0]
            targets.append((target, line))
        graph[module] = targets
    return graph


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        layer(module)


def test_no_import_points_to_a_higher_layer() -> None:
    wrong = [
        f"prepaid_wallet.{module} ({NAMES[layer(module)]}) imports prepaid_wallet.{target} "
        f"({NAMES[layer(target)]}) at line {line}"
        for module, targets in _graph().items()
        for target, line in targets
        if layer(target) > layer(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_errors_import_nothing_from_the_package() -> None:
    assert _graph()["errors"] == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = {m: sorted({t for t, _ in targets if t != m and t != ""})
             for m, targets in _graph().items() if m != ""}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        seen[module] = 1
        path.append(module)
        for target in graph.get(module, []):
            if seen.get(target) == 1:
                circle = [*path[path.index(target):], target]
                pytest.fail("a circle of imports: " + " -> ".join(circle))
            if target not in seen:
                visit(target)
        path.pop()
        seen[module] = 2

    for module in graph:
        if module not in seen:
            visit(module)


def test_the_check_sees_an_arrow_that_goes_the_wrong_way(tmp_path: Path) -> None:
    """The reader of imports is not blind: a domain module importing storage is caught."""
    fake = tmp_path / "wallet.py"
    fake.write_text("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from prepaid_wallet.storage.base import Store\n"
                    "def f():\n    from ..service import WalletService\n")
    assert _imports(fake, tmp_path) == [("storage.base", 4), ("service", 6)]
    assert layer("storage.base") > layer("wallet")
    assert layer("service") > layer("wallet")


# -- the facade only delegates ---------------------------------------------------------------


def _is_delegation(call: ast.expr) -> bool:
    """``self._run(Command(...))``, ``f(self._env, ...)``, or a function of one of those
    (``public(self._run(...))``: the stored value as the service returns it)."""
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return (func.value.id, func.attr) == ("self", "_run") and len(call.args) == 1 \
            and isinstance(call.args[0], ast.Call) and not call.keywords
    if isinstance(func, ast.Name) and call.args:
        first = call.args[0]
        if isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name):
            return (first.value.id, first.attr) == ("self", "_env")
        return len(call.args) == 1 and not call.keywords and _is_delegation(first)
    return False


def _logic_in_facade(source: str) -> list[str]:
    """The methods of the classes in ``source`` whose body is more than a docstring, imports
    and ``return`` of a delegation (``__init__`` aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not isinstance(item, ast.FunctionDef) or item.name == "__init__":
                continue
            body = list(item.body)
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            while body and isinstance(body[0], ast.ImportFrom):
                body = body[1:]
            if not (len(body) == 1 and isinstance(body[0], ast.Return)
                    and body[0].value is not None and _is_delegation(body[0].value)):
                found.append(f"{node.name}.{item.name}")
    return found


FACADE = [SRC / "service.py", *sorted((SRC / "facade").glob("*.py"))]


@pytest.mark.parametrize("path", FACADE, ids=lambda path: path.name)
def test_the_facade_only_delegates(path: Path) -> None:
    assert _logic_in_facade(path.read_text("utf-8")) == []


def test_the_facade_check_sees_logic() -> None:
    assert _logic_in_facade(
        "class S:\n"
        "    def a(self, x):\n        '''Doc.'''\n        from m import C\n"
        "        return self._run(C(x=x))\n"
        "    def b(self, x):\n        return public(self._run(C(x=x)))\n"
        "    def c(self, x):\n        return q(self._env, x)\n"
        "    def d(self, x):\n        if x:\n            x = 1\n        return q(self._env, x)\n"
        "    def e(self, x):\n        return self._env.store.get(x)\n"
        "    def f(self, x):\n        return x + 1\n"
    ) == ["S.d", "S.e", "S.f"]


def test_the_service_is_made_of_the_facade_parts() -> None:
    from prepaid_wallet.facade import Facade
    from prepaid_wallet.service import WalletService

    own = {name for name, value in vars(WalletService).items() if callable(value)}
    assert own == {"__init__"}  # every method comes from a part
    parts = [base for base in WalletService.__mro__[1:] if issubclass(base, Facade)
             and base is not Facade]
    assert {base.__module__ for base in parts} == {
        f"prepaid_wallet.facade.{path.stem}" for path in FACADE[1:] if path.stem != "__init__"}
