"""Every operation of the library a face offers, read from the library's own definitions.

The faces that talk to programs (the HTTP API, the command line's ``call``) are not written
command by command: they are generated from this catalogue, which reads the public methods of
:class:`~prepaid_wallet.service.WalletService` -- their parameters, type hints, return types and
docstrings -- and the write commands of :mod:`prepaid_wallet.app.commands` (a method named like
a command's ``operation`` runs that command, through the pipeline: authorized, idempotent). A
new command (a record, a handler, its facade method: docs/architecture.md) therefore appears on
every face without a line of face code.

Each parameter is given a place on the wire:

* ``tenant_id`` -- the caller's tenant (an API key is bound to one); never sent;
* ``actor`` -- the caller (the key, its roles); never sent;
* ``idempotency_key`` of a command -- the request's idempotency key (a header);
* the first parameter, when it names an object (``wallet_id``, ``hold_id``, ``entry_id``, ...)
  -- part of the path;
* every other one -- a field of the request's JSON body (writes, and reads that take a
  structured value) or a query parameter (other reads).

Methods that are not offered: the jobs and the store's upkeep (:data:`NOT_OFFERED`), which a
host runs on a schedule or from the command line.
"""

from __future__ import annotations

import ast
import functools
import inspect
import operator
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs

__all__ = ["NOT_OFFERED", "RESOURCES", "Operation", "Param", "catalogue"]

#: Methods of the service no face offers, and why: jobs and upkeep run on a schedule or from
#: the command line; a secret is handed out only there; a refund needs the host's gateway.
NOT_OFFERED: Mapping[str, str] = {
    "award_many": "a bulk job (many awards, read from an iterable a batch at a time)",
    "charge_periodic_fees": "a job",
    "expire_due": "a job",
    "expire_top_ups": "a job",
    "expire_upgrades": "a job",
    "process_top_ups": "a job (charges the host's gateway)",
    "start_scheduled_top_ups": "a job",
    "sweep_expired": "a job",
    "verify": "upkeep of the store",
    "iter_verify": "upkeep of the store",
    "checkpoint": "upkeep of the store",
    "reseal": "upkeep of the store",
    "statement": "the streamed statement is offered instead",
    "credit_owed_many": "credit_owed is offered, one order a request",
    "refund_top_up": "needs the host's payment gateway",
    "create_api_key": "a key's secret is handed out by the command line only",
    "rotate_api_key": "a key's secret is handed out by the command line only",
    "revoke_api_key": "keys are managed from the command line",
    "api_keys": "keys are managed from the command line",
    "authenticate": "what the HTTP API does with a request's key",
    "fan_out_events": "a job (the server's --webhooks runs it)",
    "deliver_webhooks": "a job (the server's --webhooks runs it)",
}

#: Writes that do not run through the pipeline but are offered (answered as writes: POST).
_OTHER_WRITES = frozenset({
    "ack_events", "report_charge", "add_webhook_endpoint", "remove_webhook_endpoint",
    "rotate_webhook_secret", "replay_webhooks",
})

#: The objects a first parameter may name: the parameter, the path's collection.
RESOURCES: Mapping[str, str] = {
    "wallet_id": "wallets",
    "hold_id": "holds",
    "entry_id": "entries",
    "lot_id": "lots",
    "top_up_id": "top-ups",
    "group_id": "condition-groups",
    "intent_id": "top-up-intents",
}

#: A read named after the object it returns answers at the object's own path.
_OWN = {"get_wallet": "wallet_id", "get_hold": "hold_id", "entry": "entry_id",
        "condition_group": "group_id", "customer_top_up": "top_up_id",
        "top_up_intent": "intent_id"}

_SIMPLE = (str, int, bool, datetime, date, time, timedelta, Decimal)


@attrs.frozen
class Param:
    """One parameter of an operation: its ``name``, type, whether it must be given, its
    default, and where it travels (``where``: ``path``, ``body``, ``query``, ``tenant``,
    ``actor`` or ``key``)."""

    name: str
    type: Any
    required: bool
    default: Any
    where: str


@attrs.frozen
class Operation:
    """One operation a face offers: the service method ``name``; ``write`` (it changes the
    store: a POST), ``command`` (it runs a command through the pipeline), its parameters, its
    result type, its summary and description, its family (``tag``) and its ``path``."""

    name: str
    write: bool
    command: bool
    params: tuple[Param, ...]
    result: Any
    summary: str
    description: str
    tag: str
    path: str

    @property
    def method(self) -> str:
        """``POST`` for a write or a read that takes a JSON body, else ``GET``."""
        return "POST" if self.write or any(p.where == "body" for p in self.params) else "GET"

    def param(self, where: str) -> Param | None:
        """The first parameter that travels ``where``, if any."""
        return next((p for p in self.params if p.where == where), None)

    def bind(self, given: Mapping[str, Any], decode: Callable[[Param, Any], Any], *,
             tenant_id: str | None, actor: Any, key: str | None) -> dict[str, Any]:
        """The call's keyword arguments: the tenant, the actor and the idempotency key where
        the operation takes them (when given), and every other parameter from ``given`` by
        name, read by ``decode(param, value)``; ``InvalidInputError`` naming a required
        parameter that ``given`` lacks."""
        from prepaid_wallet.errors import InvalidInputError

        supplied = {"tenant": tenant_id, "actor": actor, "key": key}
        arguments: dict[str, Any] = {}
        for p in self.params:
            if p.where in supplied:
                if supplied[p.where] is not None:
                    arguments[p.name] = supplied[p.where]
            elif p.name in given:
                arguments[p.name] = decode(p, given[p.name])
            elif p.required:
                raise InvalidInputError(p.name, "is required")
        return arguments

    def call(self, service: Any, arguments: Mapping[str, Any]) -> Any:
        """Run the operation on ``service`` with ``arguments`` (by parameter name)."""
        return getattr(service, self.name)(**arguments)


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _simple(tp: Any) -> bool:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(_simple(a) for a in typing.get_args(tp) if a is not type(None))
    return tp in _SIMPLE or (isinstance(tp, type) and issubclass(tp, Enum))


def _where(name: str, index: int, parameter: inspect.Parameter, tp: Any,
           command: bool) -> str:
    if name == "tenant_id":
        return "tenant"
    if name == "actor":
        return "actor"
    if name == "idempotency_key" and parameter.default is None:
        return "key"
    if index == 0 and name in RESOURCES:
        return "path"
    return "body" if command or not _simple(tp) else "query"


def _without_sentinels(tp: Any) -> Any:
    """``tp`` without the marker classes a parameter's default may be (``KEEP``: leave the
    value as it is), which are what leaving the field out means on the wire."""
    from prepaid_wallet.app.checks import Keep

    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = tuple(a for a in typing.get_args(tp) if a is not Keep)
        return functools.reduce(operator.or_, arms)
    return tp


#: A method offered under another name than its own: the statement is offered streamed only,
#: and every wallet of the tenant, streamed, is the wallets' export.
_NAMES = {"stream_statement": "statement", "iter_wallets": "export-wallets"}


def _path(name: str, params: tuple[Param, ...]) -> str:
    first = next((p for p in params if p.where == "path"), None)
    dashed = _dashed(_NAMES.get(name, name))
    if first is None:
        return f"/v1/{dashed}"
    base = f"/v1/{RESOURCES[first.name]}/{{{first.name}}}"
    return base if _OWN.get(name) == first.name else f"{base}/{dashed}"


def _doc(function: Any) -> tuple[str, str]:
    text = inspect.getdoc(function) or ""
    first, _, _rest = text.partition("\n\n")
    summary = " ".join(first.split())
    sentence = re.split(r"(?<=\.)\s", summary, maxsplit=1)[0]
    return sentence[:120], text


def _tag(service: type, name: str) -> str:
    for part in service.__mro__[1:]:
        if name in vars(part):
            return part.__name__.lower()
    return "service"


@functools.cache
def catalogue() -> tuple[Operation, ...]:
    """Every operation the faces offer, by name."""
    from prepaid_wallet.app.pipeline import command_classes
    from prepaid_wallet.service import WalletService

    commands = {cls.operation for cls in command_classes()}
    found = []
    for name, function in sorted(vars_of(WalletService)):
        if name in NOT_OFFERED:
            continue
        hints = typing.get_type_hints(function, localns=_typing_names(function.__module__))
        signature = inspect.signature(function)
        command = name in commands
        params = []
        for index, parameter in enumerate(list(signature.parameters.values())[1:]):
            tp = _without_sentinels(hints[parameter.name])
            required = parameter.default is inspect.Parameter.empty
            params.append(Param(
                parameter.name, tp, required, None if required else parameter.default,
                _where(parameter.name, index, parameter, tp, command or name in _OTHER_WRITES),
            ))
        if any(p.where == "body" for p in params):  # a read with a structured argument
            params = [attrs.evolve(p, where="body") if p.where == "query" else p
                      for p in params]
        summary, description = _doc(function)
        found.append(Operation(
            name=name, write=command or name in _OTHER_WRITES, command=command,
            params=tuple(params), result=hints.get("return", Any), summary=summary,
            description=description, tag=_tag(WalletService, name),
            path=_path(name, tuple(params)),
        ))
    return tuple(found)


@functools.cache
def _typing_names(module_name: str) -> dict[str, Any]:
    """What the module imports only for its annotations (under ``TYPE_CHECKING``), imported,
    so that its methods' type hints can be read."""
    module = sys.modules[module_name]
    names: dict[str, Any] = {}
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            imports: list[ast.stmt] = [
                n for n in node.body if isinstance(n, ast.Import | ast.ImportFrom)]
            code = compile(ast.Module(body=imports, type_ignores=[]), module_name, "exec")
            exec(code, {"__name__": module_name, "__package__": module.__package__}, names)
    return names


def vars_of(service: type) -> Iterator[tuple[str, Any]]:
    """The public methods of ``service`` (its facade parts' included), by name."""
    seen = set()
    for part in service.__mro__:
        for name, value in vars(part).items():
            if name.startswith("_") or name in seen or not inspect.isfunction(value):
                continue
            seen.add(name)
            yield name, value
