"""The one pipeline every write command runs through.

    validate -> (prepare, authorized first) -> read the clock -> open the unit of work
    -> lock the wallets (the instant: not before their latest entries) -> authorize
    -> idempotency -> guards -> the handler -> rules and events -> commit

A command is a frozen record (:mod:`prepaid_wallet.app.commands`) that says what it is
(``operation``), how to check its arguments (``validate``), what its idempotency fingerprint
is (``request``), which wallets it locks (``locks``) and which handler runs it (``handler``, a
``"module:function"`` path imported on first use, so a process that never runs a command never
imports its module) and, rarely, what must be done before its unit of work (``prepare``, a
path too: e.g. a spend's automatic top-up, which charges the gateway in units of work of its
own). The handler is a plain function ``handle(ctx, command) -> result`` that
decides, builds the change with the domain's pure transitions and records it through
:meth:`Context.record`; everything else is done here, once:

* bad input raises before anything is read, and is never stored under a key;
* the tenant scope is checked once, by the lock spec, before anything is locked or the handler
  reads anything: another tenant's wallet, hold, lot, entry or condition group raises exactly
  what an unknown id raises (:meth:`Environment.scoped` and its lookups); then the wallets are
  locked in sorted id order;
* the command's instant (``Context.at``) is the clock's, read before the unit of work opens,
  or the latest recorded instant of the wallets it locked if that is later
  (:func:`not_before`): recorded time never goes backwards along a wallet's chain, whatever
  the clocks of the processes that write it say or the order they read them in;
* the actor is authorized once the tenant is known (:func:`authorize`: the roles the command
  requires, then the tenant's access policy, read with the locked wallets): a
  ``PermissionDeniedError`` writes nothing, not even under a key;
* an idempotency key already stored for the tenant replays its outcome (or refusal) when the
  request is the same, else raises ``IdempotencyConflictError``;
* a business refusal (``RefusedError``) under a key commits only the idempotency record, so a
  retry refuses the same way; without a key it writes nothing; any other error writes nothing;
* the change, the events and automatic top-ups it causes, and the idempotency record are
  committed together;
* on a store that can run a unit optimistically (an ``OptimisticStore`` of
  :mod:`prepaid_wallet.app.ports`: PostgreSQL), the command first runs in such a unit, which
  may decide on the state the store last saw without locking it first; if that state had
  moved (``StaleStateError``: nothing was written) the command runs again from the lock, in an
  ordinary unit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.actors import Actor
from prepaid_wallet.app.access import OUTSIDE_PIPELINE
from prepaid_wallet.app.access import authorize as _authorize
from prepaid_wallet.app.checks import check_common
from prepaid_wallet.app.effects import record as _record
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import IdempotencyRecord, UnitOfWork
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import InvalidInputError, RefusedError, StaleStateError
from prepaid_wallet.idempotency import (
    canonical_request,
    check_replay,
    decode_refusal,
    encode_refusal,
)
from prepaid_wallet.ids import check_name
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.wallet import Change, EntryInfo, Wallet

__all__ = [
    "ChargeWallet",
    "Command",
    "ConditionGroupLock",
    "Context",
    "EntryWallets",
    "HoldWallet",
    "LockSpec",
    "LotWallet",
    "NoWallet",
    "Wallets",
    "authorize",
    "command_classes",
    "idempotent",
    "lock",
    "not_before",
    "operations",
    "run",
]

_T = TypeVar("_T")
#: What a command's handler returns.
R = TypeVar("R")


class Context:
    """What a handler works with: the environment, the open unit of work, the instant of the
    command, its checked key, actor and metadata, and the wallets the pipeline locked."""

    def __init__(self, env: Environment, uow: UnitOfWork, at: datetime, key: str | None,
                 actor: str | None, metadata: Mapping[str, str],
                 wallets: Mapping[str, Wallet]) -> None:
        self.env = env
        self.uow = uow
        self.at = at
        self.key = key
        self.actor = actor
        self.metadata = metadata
        self.wallets = wallets

    def wallet(self, wallet_id: str) -> Wallet:
        """A locked wallet, as it was when it was locked."""
        return self.wallets[wallet_id]

    def info(self, **extra: str) -> EntryInfo:
        """The new entry's id, instant, key, actor and metadata (plus ``extra``)."""
        return self.env.info(self.at, self.key, self.actor, {**self.metadata, **extra})

    def record(self, change: Change) -> None:
        """Record ``change``, with the events and automatic top-ups it causes, in this unit of
        work (see :func:`prepaid_wallet.app.effects.record`)."""
        _record(self.env, self.uow, change)


# -- which wallets a command locks ----------------------------------------------------------------


@attrs.frozen
class Locked:
    """The wallets a command locked (by id) and the tenant its idempotency keys live in."""

    wallets: dict[str, Wallet]
    scope: str


class LockSpec:
    """Which wallets a command locks, read from its fields. A spec looks up what the command
    names through the environment's scoped lookups (:meth:`Environment.wallet`,
    :meth:`Environment.hold`...), so an object the service may not see raises as an unknown
    one before anything is locked."""

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        raise NotImplementedError


def lock(env: Environment, uow: UnitOfWork, *wallet_ids: str,
         fields: tuple[str, ...] = ("wallet_id",)) -> dict[str, Wallet]:
    """Lock the wallets (sorted by id), reading their tenants' rules with them; ``fields``
    names, per wallet id given, the argument a malformed id should name (the last one
    repeats). An unknown wallet and, for a scoped service, a wallet of another tenant both
    raise ``WalletNotFoundError``, before any wallet is locked."""
    for i, wallet_id in enumerate(wallet_ids):
        check_name(wallet_id, fields[min(i, len(fields) - 1)])
    if env.tenant_id is not None:
        for wallet_id in wallet_ids:
            env.wallet(uow, wallet_id)
    return uow.lock_wallets(sorted(set(wallet_ids)), tenant_records=WITH_LOCKS)


@attrs.frozen
class Wallets(LockSpec):
    """The wallets named by the command's attributes: ``(attribute, field name)`` pairs; the
    idempotency scope is the first wallet's tenant."""

    attributes: tuple[tuple[str, str], ...] = (("wallet_id", "wallet_id"),)
    #: The field names alone, as :func:`lock` takes them (made once, with the spec).
    _fields: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    @_fields.default
    def _field_names(self) -> tuple[str, ...]:
        return tuple(field for _, field in self.attributes)

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        ids = [getattr(command, attribute) for attribute, _ in self.attributes]
        wallets = lock(env, uow, *ids, fields=self._fields)
        return Locked(wallets, wallets[ids[0]].tenant_id)


@attrs.frozen
class HoldWallet(LockSpec):
    """The wallet of the hold the command names."""

    attribute: str = "hold_id"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        hold_id = check_name(getattr(command, self.attribute), self.attribute)
        wallet_id = env.hold(uow, hold_id).wallet_id
        wallets = uow.lock_wallets([wallet_id], tenant_records=WITH_LOCKS)
        return Locked(wallets, wallets[wallet_id].tenant_id)


@attrs.frozen
class LotWallet(LockSpec):
    """The wallet of the lot the command names."""

    attribute: str = "lot_id"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        lot_id = check_name(getattr(command, self.attribute), self.attribute)
        wallet_id = env.lot(uow, lot_id).wallet_id
        wallets = uow.lock_wallets([wallet_id], tenant_records=WITH_LOCKS)
        return Locked(wallets, wallets[wallet_id].tenant_id)


@attrs.frozen
class ChargeWallet(LockSpec):
    """The wallet of the spend or capture entry the command names (``InvalidInputError`` for
    an entry of any other kind the service may see)."""

    attribute: str = "entry_id"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        entry_id = check_name(getattr(command, self.attribute), self.attribute)
        entry = env.entry(uow, entry_id)
        charge = uow.get_charge(entry_id)
        if charge is None:
            raise InvalidInputError(
                self.attribute,
                f"must be a spend or capture entry (it is a {entry.kind.value})",
                entry_id,
            )
        wallets = uow.lock_wallets([charge.wallet_id], tenant_records=WITH_LOCKS)
        return Locked(wallets, wallets[charge.wallet_id].tenant_id)


@attrs.frozen
class EntryWallets(LockSpec):
    """Every wallet of the entry the command names; the scope is its first wallet's tenant.
    With ``kinds``, an entry of any other kind (that the service may see) raises
    ``InvalidInputError`` before a wallet is locked."""

    attribute: str = "entry_id"
    kinds: tuple[EntryKind, ...] = ()

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        entry_id = check_name(getattr(command, self.attribute), self.attribute)
        entry = env.entry(uow, entry_id)
        if self.kinds and entry.kind not in self.kinds:
            names = [kind.value for kind in self.kinds]
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            raise InvalidInputError(
                self.attribute, f"must be a {listed} entry (it is a {entry.kind.value})", entry_id)
        wallets = uow.lock_wallets(sorted(set(entry.wallet_ids)), tenant_records=WITH_LOCKS)
        return Locked(wallets, wallets[entry.wallet_ids[0]].tenant_id)


@attrs.frozen
class NoWallet(LockSpec):
    """No wallet yet (opening one): the scope is the tenant the command names
    (``TenantMismatchError`` naming the attribute when a scoped service is asked to create
    something for another tenant)."""

    attribute: str = "tenant_id"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        return Locked({}, env.check_tenant(getattr(command, self.attribute), self.attribute))


@attrs.frozen
class ConditionGroupLock(LockSpec):
    """No wallet: the condition group the command names, locked
    (``ConditionGroupNotFoundError`` if unknown or another tenant's, for a scoped service);
    the scope is the group's tenant. The handler reads the locked group with
    ``ctx.uow.get_condition_group``."""

    attribute: str = "group_id"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        group_id = check_name(getattr(command, self.attribute), self.attribute)
        group = env.condition_group(uow, group_id, lock=True)
        return Locked({}, group.tenant_id)


# -- commands -------------------------------------------------------------------------------------


class Command(Generic[R]):
    """A write command returning an ``R``: a frozen record of its arguments (subclasses are
    ``attrs`` classes).

    ``operation`` names it in idempotency records; ``locks`` says which wallets it locks;
    ``handler`` is the ``"module:function"`` that runs it; ``result`` is the type of what it
    returns (how a stored outcome is read back). Commands that take an idempotency key, an
    actor and metadata have those attributes; others have none of them.

    ``prepare``, when set, is the ``"module:function"`` of work the command needs done before
    its own unit of work opens: ``prepare(env, command, key, actor)`` is called with the
    checked idempotency key and actor once the arguments are checked, before the command's
    instant is read. It works in units of work of its own (what it commits stays committed if
    the command then fails or refuses) and may raise bad input it can only judge against the
    environment (e.g. an instant after now). A prepare that touches the store must authorize
    the actor first, in its first unit of work, before it writes or charges anything:
    ``authorize(env, uow, actor, command, tenant_id)`` (a prepare that does nothing with the
    store needs not: the command's own unit authorizes it). Most commands have none.

    ``required_roles``, when not empty, are roles the actor must hold one of to run the
    command at all, whatever the tenant's access policy says (which, if the tenant has one,
    must also permit the operation).

    Every subclass defined in :mod:`prepaid_wallet.app.commands` (or a module of it) with an
    ``operation`` is a command of the library: :func:`command_classes` lists them and
    :func:`operations` their operation names.
    """

    operation: ClassVar[str]
    locks: ClassVar[LockSpec] = Wallets()
    handler: ClassVar[str]
    prepare: ClassVar[str | None] = None
    result: ClassVar[Any]
    required_roles: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith(_COMMANDS + ".") or cls.__module__ == _COMMANDS:
            _CLASSES.append(cls)

    def validate(self) -> None:
        """Check the arguments (pure); raise ``InvalidInputError`` naming the field."""

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        """The fields of the idempotency fingerprint (with the checked ``metadata``)."""
        return {}


_COMMANDS = "prepaid_wallet.app.commands"
#: Every command class of :mod:`prepaid_wallet.app.commands`, as its modules define them.
_CLASSES: list[type[Command[Any]]] = []


def command_classes() -> list[type[Command[Any]]]:
    """Every write command of the library that has an ``operation`` (the modules of
    :mod:`prepaid_wallet.app.commands` are imported, every one of them), by operation then
    class name."""
    package = importlib.import_module(_COMMANDS)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{_COMMANDS}.{module.name}")
    found = {cls for cls in _CLASSES if isinstance(getattr(cls, "operation", None), str)}
    return sorted(found, key=lambda cls: (cls.operation, cls.__name__))


def operations() -> frozenset[str]:
    """Every operation name an access policy may name: the write commands' (see
    :func:`command_classes`) and those of the writes that authorize themselves outside the
    pipeline (:data:`prepaid_wallet.app.access.OUTSIDE_PIPELINE`)."""
    return frozenset(cls.operation for cls in command_classes()) | OUTSIDE_PIPELINE


_HANDLERS: dict[str, Callable[[Context, Any], Any]] = {}
_PREPARES: dict[str, Callable[[Environment, Any, str | None, Actor | None], None]] = {}


def _handler(path: str) -> Callable[[Context, Any], Any]:
    found = _HANDLERS.get(path)
    if found is None:
        module, _, name = path.partition(":")
        found = getattr(importlib.import_module(module), name)
        _HANDLERS[path] = found
    return found


def _prepare(path: str) -> Callable[[Environment, Any, str | None, Actor | None], None]:
    found = _PREPARES.get(path)
    if found is None:
        module, _, name = path.partition(":")
        found = getattr(importlib.import_module(module), name)
        _PREPARES[path] = found
    return found


def authorize(env: Environment, uow: UnitOfWork, actor: Actor | None, command: Command[Any],
              tenant_id: str) -> None:
    """Whether ``actor`` (None: the service's actor) may run ``command`` for ``tenant_id``:
    ``PermissionDeniedError`` when the command requires roles the actor holds none of, or the
    tenant has an access policy and none of the actor's roles permits the command's
    operation (:func:`prepaid_wallet.app.access.authorize`). A tenant without a policy lets
    every actor run every command."""
    _authorize(uow, actor, command.operation, tenant_id, command.required_roles,
               default=env.principal)


def run(env: Environment, command: Command[R]) -> R:
    """Run ``command`` through the pipeline and return its handler's result."""
    command.validate()
    metadata, key, actor = check_common(getattr(command, "metadata", None),
                                        getattr(command, "idempotency_key", None),
                                        getattr(command, "actor", None))
    request = () if key is None else canonical_request(
        command.operation, **command.request(metadata))
    handle = _handler(command.handler)
    if command.prepare is not None:
        _prepare(command.prepare)(env, command, key, actor)
    clock = env.now()

    def attempt(uow: UnitOfWork) -> R:
        locked = command.locks.lock(env, uow, command)
        at = not_before(clock, locked.wallets.values())
        authorize(env, uow, actor, command, locked.scope)
        ctx = Context(env, uow, at, key, None if actor is None else actor.id, metadata,
                      locked.wallets)
        result: R = idempotent(uow, locked.scope, key, request, command.result,
                               lambda: handle(ctx, command), at)
        return result

    optimistic = getattr(env.store, "optimistic_unit_of_work", None)
    if optimistic is not None:  # an OptimisticStore (see prepaid_wallet.app.ports)
        with env.ids.recording() as drawn:
            try:
                with optimistic() as uow:
                    return attempt(uow)
            except StaleStateError:
                # What it decided on had moved and nothing was written: run it again, locking,
                # with the ids it drew handed out again (the same ids as one run would draw).
                env.ids.give_back(drawn)
    with env.store.unit_of_work() as uow:
        return attempt(uow)


def not_before(at: datetime, wallets: Iterable[Wallet]) -> datetime:
    """The instant a unit that locked ``wallets`` records at: ``at`` (the clock's), or the
    latest recorded instant of the wallets if that is later (:attr:`Wallet.not_before`), so
    recorded time never goes backwards along a wallet's chain, even when clocks disagree or
    one goes back. A clock that moves forward gives its own instant."""
    for wallet in wallets:
        if wallet.not_before > at:
            at = wallet.not_before
    return at


def idempotent(
    uow: UnitOfWork,
    scope: str,
    key: str | None,
    request: tuple[tuple[str, str], ...],
    result_type: type[_T],
    body: Callable[[], _T],
    at: datetime,
) -> _T:
    """Run ``body`` once per key: replay a stored outcome, store a new one, commit."""
    if key is not None:
        stored = uow.get_idempotency(scope, key)
        if stored is not None:
            check_replay(stored, request)
            if stored.outcome == "refused":
                raise decode_refusal(stored.payload)
            return _codec.loads(result_type, stored.payload)  # type: ignore[no-any-return]
    try:
        result = body()
    except RefusedError as refusal:
        if key is not None:
            uow.put_idempotency(
                IdempotencyRecord(
                    scope, key, request[0][1], request, "refused", encode_refusal(refusal), at
                )
            )
            uow.commit()
        raise
    if key is not None:
        uow.put_outcome(scope, key, request[0][1], request, result, at)
    uow.commit()
    return result
