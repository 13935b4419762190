"""What every command, job and query runs with: the store and the dependencies injected once, at
start-up (the clock, the id factory, the spend order, the actor, the tenant scope, the tenants'
welcome awards, the payment gateway), and the tenants' rules as each unit of work reads them
from the store."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import (
    check_condition,
    check_optional_text,
    check_positive,
    check_priority,
)
from prepaid_wallet.app.ports import Store, UnitOfWork
from prepaid_wallet.app.tenant_rules import RULES
from prepaid_wallet.clock import Clock, require_aware
from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import (
    ConditionGroupNotFoundError,
    EntryNotFoundError,
    HoldNotFoundError,
    InvalidInputError,
    InvalidTimeError,
    LotNotFoundError,
    TenantMismatchError,
    WalletNotFoundError,
)
from prepaid_wallet.expiry import EndOfLocalDay, ExpiryPolicy, resolve_expiry
from prepaid_wallet.ids import IdFactory, check_name
from prepaid_wallet.ledger import Entry
from prepaid_wallet.money import Money, _trusted
from prepaid_wallet.policies import SpendOrder, SpendOrderFunction
from prepaid_wallet.wallet import EntryInfo, Hold, Lot, Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.payg_tokens import KeySource
    from prepaid_wallet.rules.tenant import TenantRules
    from prepaid_wallet.rules.topup import PaymentGateway, TopUpIntent

__all__ = ["Environment", "Groups", "WelcomeAward"]


@attrs.frozen
class WelcomeAward:
    """An award a tenant grants to every wallet it opens in the award's currency.

    It is granted in the same unit of work as the opening, so it is granted exactly once: a
    retried ``open_wallet`` with the same idempotency key replays the first outcome, and one
    without a key finds the wallet already there (``DuplicateWalletError``). The lot expires
    ``expires_after`` (elapsed time) after the opening, or at ``expires_at`` (an aware instant
    or an :class:`~prepaid_wallet.expiry.EndOfLocalDay`), or never; it may carry a
    ``condition`` or belong to condition group ``group_id`` (not both).
    """

    amount: Money
    reason: str = "welcome"
    expires_after: timedelta | None = None
    expires_at: datetime | EndOfLocalDay | None = None
    priority: int = 0
    condition: SpendCondition | None = None
    group_id: str | None = None

    def __attrs_post_init__(self) -> None:
        check_positive(self.amount, "welcome_award.amount")
        check_optional_text(self.reason, "welcome_award.reason")
        if self.expires_after is not None and self.expires_at is not None:
            raise InvalidInputError("welcome_award.expires_at",
                                    "give at most one of expires_after and expires_at")
        if self.expires_after is not None and (
            not isinstance(self.expires_after, timedelta) or self.expires_after <= timedelta(0)
        ):
            raise InvalidTimeError("welcome_award.expires_after", "must be a positive timedelta",
                                   self.expires_after)
        resolve_expiry(self.expires_at, "welcome_award.expires_at")
        check_priority(self.priority, "welcome_award.priority")
        check_condition(self.condition, "welcome_award.condition")
        if self.group_id is not None:
            check_name(self.group_id, "welcome_award.group_id")
            if self.condition is not None:
                raise InvalidInputError("welcome_award.condition",
                                        "give a condition or a condition group, not both")


class Groups(Mapping[str, ConditionGroup]):
    """The condition groups a unit of work reads while deciding, each read once on demand; a
    group that does not exist is simply absent."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._found: dict[str, ConditionGroup] = {}

    def __getitem__(self, group_id: str) -> ConditionGroup:
        found = self._found.get(group_id)
        if found is None:
            try:
                found = self._uow.get_condition_group(group_id)
            except ConditionGroupNotFoundError:
                raise KeyError(group_id) from None
            self._found[group_id] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


class _Drawing(threading.local):
    """What one thread records of the ids it draws (``drawn``: None when it records none); a
    class attribute, so a thread that never recorded reads None without a failed lookup."""

    drawn: list[tuple[str, str]] | None = None


class Ids:
    """The service's id factory, and the ids a command drew in a unit of work that wrote
    nothing and is run again (an optimistic unit whose guess failed: see
    :func:`prepaid_wallet.app.pipeline.run`): those are handed out again first, in the order
    they were drawn, so running a command again draws the same ids as running it once (and a
    replay, which draws none, leaves them to the next command). An id is never handed out
    twice to work that writes it: the unit that drew it first wrote nothing."""

    def __init__(self, ids: IdFactory) -> None:
        self.factory = ids
        self._returned: dict[str, deque[str]] = {}
        self._local = _Drawing()

    def new(self, prefix: str) -> str:
        """A new id with ``prefix``: one given back, else the factory's."""
        made = None
        returned = self._returned.get(prefix)
        if returned:
            with contextlib.suppress(IndexError):  # another thread took the last one
                made = returned.popleft()
        if made is None:
            made = self.factory.new(prefix)
        drawn = self._local.drawn
        if drawn is not None:
            drawn.append((prefix, made))
        return made

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, str]]]:
        """The ``(prefix, id)`` pairs this thread draws inside the block."""
        outer = self._local.drawn
        drawn: list[tuple[str, str]] = []
        self._local.drawn = drawn
        try:
            yield drawn
        finally:
            self._local.drawn = outer
            if outer is not None:
                outer.extend(drawn)

    def give_back(self, drawn: list[tuple[str, str]]) -> None:
        """Ids drawn by work that wrote none of them: handed out again first."""
        for prefix, made in drawn:
            self._returned.setdefault(prefix, deque()).append(made)


#: What every entry records besides its postings, built without attrs' frozen ``__init__``
#: (see :func:`~prepaid_wallet.money._trusted`).
_new_info = _trusted(EntryInfo)

#: The key of a tenant's rules in a unit's ``memo`` (with the tenant id).
_RULES = "tenant_rules"


class Environment:
    """The store and the dependencies every command, job and query is run with (built once by
    :class:`~prepaid_wallet.service.WalletService`, which checks them)."""

    #: Where pay-as-you-go devices' secret keys come from (None: no device tokens issued).
    device_keys: KeySource | None = None

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        ids: IdFactory,
        spend_order: SpendOrder | SpendOrderFunction | None,
        actor: Actor | None,
        tenant_id: str | None,
        welcome_awards: Mapping[str, WelcomeAward],
        gateway: PaymentGateway | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = Ids(ids)
        #: The spend order this process uses for every tenant, if one was given (None: each
        #: tenant's stored ``TenantRules.spend_order``).
        self.spend_order = spend_order
        #: The service's actor (its roles are what commands without one are authorized by)
        #: and its id (what entries and versions record when a call names no actor).
        self.principal = actor
        self.actor = None if actor is None else actor.id
        self.tenant_id = tenant_id
        self.welcome_awards = dict(welcome_awards)
        self.gateway = gateway
        #: Whether a spend may need a top-up first: a gateway to charge (whether the wallet's
        #: tenant allows automatic top-ups is read with its rules, in a unit of work).
        self.spend_top_ups = gateway is not None
        self.expiry = ExpiryPolicy()
        self._no_rules: TenantRules | None = None
        #: The last unit asked about, the last tenant asked about and its rules (one tuple,
        #: replaced whole, so threads sharing the environment never see one unit's rules
        #: paired with another unit).
        self._last_rules: tuple[UnitOfWork | None, str | None, TenantRules | None] = (
            None, None, None)

    def now(self) -> datetime:
        """The clock's instant (aware)."""
        return require_aware(self.clock.now(), "clock.now()")

    def info(
        self,
        at: datetime,
        key: str | None,
        actor: str | None,
        metadata: Mapping[str, str] | None,
    ) -> EntryInfo:
        """What a new entry records besides its postings: a fresh id, the instant, the key, the
        actor (the call's, else the service's) and the metadata."""
        return _new_info(self.ids.new("e"), at, key, actor if actor is not None else self.actor,
                         metadata)

    def tenant_rules(self, uow: UnitOfWork, tenant_id: str) -> TenantRules:
        """The tenant's rules as ``uow`` sees them: its current stored version (none stored:
        an empty :class:`TenantRules`). Read from the store once per unit of work and tenant
        (one primary-key lookup, kept in the unit's ``memo``), so the next unit of any process
        sees a change."""
        last = self._last_rules
        if last[0] is uow and last[1] == tenant_id and last[2] is not None:
            return last[2]  # most commands ask about one tenant, several times
        memo = uow.memo
        rules: TenantRules | None = memo.get((_RULES, tenant_id))
        if rules is None:
            stored = RULES.value(uow, tenant_id)
            rules = memo[(_RULES, tenant_id)] = self.no_rules() if stored is None else stored
        self._last_rules = (uow, tenant_id, rules)
        return rules

    def forget_rules(self, uow: UnitOfWork, tenant_id: str) -> None:
        """Read the tenant's rules again in ``uow`` (it has just stored new ones)."""
        uow.memo.pop((_RULES, tenant_id), None)
        last = self._last_rules
        if last[0] is uow and last[1] == tenant_id:
            self._last_rules = (None, None, None)

    def order(self, uow: UnitOfWork, tenant_id: str) -> SpendOrder | SpendOrderFunction:
        """The spend order of the tenant's wallets: this process's own, if it was given one,
        else the tenant's stored ``TenantRules.spend_order``."""
        if self.spend_order is not None:
            return self.spend_order
        return self.order_of(self.tenant_rules(uow, tenant_id))

    def order_of(self, rules: TenantRules) -> SpendOrder | SpendOrderFunction:
        """:meth:`order` for a tenant whose rules the caller has read already (``rules``)."""
        return rules.spend_order if self.spend_order is None else self.spend_order

    def no_rules(self) -> TenantRules:
        """The rules of a tenant that never set any: an empty :class:`TenantRules`."""
        if self._no_rules is None:
            from prepaid_wallet.rules.tenant import TenantRules

            self._no_rules = TenantRules()
        return self._no_rules

    # -- the tenant scope: one place decides what the service may see ---------------------------
    #
    # A service scoped to a tenant sees that tenant's objects only. Another tenant's wallet,
    # hold, lot, entry, condition group or top-up intent is answered exactly as an id that does
    # not exist (the same error, text and attributes), so a scoped caller can learn nothing of
    # what other tenants hold. Each lookup below reads the object, then the tenant of its
    # wallet only when the service is scoped (an unscoped service pays for no extra read).

    def sees(self, tenant_id: str) -> bool:
        """Whether the service may see what belongs to ``tenant_id`` (always, unscoped)."""
        return self.tenant_id is None or tenant_id == self.tenant_id

    def scoped(self, wallet: Wallet) -> Wallet:
        """``wallet``, if the service may see it; ``WalletNotFoundError`` otherwise, exactly
        as for an unknown id."""
        if self.tenant_id is not None and wallet.tenant_id != self.tenant_id:
            raise WalletNotFoundError(wallet.id)
        return wallet

    def wallet(self, uow: UnitOfWork, wallet_id: str) -> Wallet:
        """The wallet, without locking; ``WalletNotFoundError`` if unknown or not seen."""
        return self.scoped(uow.get_wallet(wallet_id))

    def sees_wallet(self, uow: UnitOfWork, wallet_id: str) -> bool:
        """Whether the service may see the wallet (read only when the service is scoped);
        ``WalletNotFoundError`` if unknown to a scoped service."""
        return self.tenant_id is None or uow.get_wallet(wallet_id).tenant_id == self.tenant_id

    def hold(self, uow: UnitOfWork, hold_id: str) -> Hold:
        """The hold; ``HoldNotFoundError`` if unknown or not seen."""
        held = uow.get_hold(hold_id)
        if not self.sees_wallet(uow, held.wallet_id):
            raise HoldNotFoundError(hold_id)
        return held

    def lot(self, uow: UnitOfWork, lot_id: str) -> Lot:
        """The lot; ``LotNotFoundError`` if unknown or not seen."""
        lot = uow.get_lot(lot_id)
        if not self.sees_wallet(uow, lot.wallet_id):
            raise LotNotFoundError(lot_id)
        return lot

    def entry(self, uow: UnitOfWork, entry_id: str) -> Entry:
        """The journal entry; ``EntryNotFoundError`` if unknown or if one of its wallets is
        not seen."""
        entry = uow.get_entry(entry_id)
        if self.tenant_id is not None and not all(
                self.sees_wallet(uow, wallet_id) for wallet_id in entry.wallet_ids):
            raise EntryNotFoundError(entry_id)
        return entry

    def condition_group(self, uow: UnitOfWork, group_id: str, *, lock: bool = False
                        ) -> ConditionGroup:
        """The condition group (locked for the rest of the unit with ``lock``);
        ``ConditionGroupNotFoundError`` if unknown or not seen. Another tenant's group is never
        locked."""
        if lock and self.tenant_id is None:
            return uow.lock_condition_group(group_id)
        group = uow.get_condition_group(group_id)
        if not self.sees(group.tenant_id):
            raise ConditionGroupNotFoundError(group_id)
        return uow.lock_condition_group(group_id) if lock else group

    def top_up_intent(self, uow: UnitOfWork, intent_id: str) -> TopUpIntent | None:
        """The automatic top-up intent; None if unknown or not seen (an intent is stored with
        its wallet's tenant)."""
        from prepaid_wallet.app.intents import TOP_UP_INTENTS

        stored = uow.get_record(TOP_UP_INTENTS, intent_id)
        if stored is None or not self.sees(stored.tenant_id):
            return None
        return stored.intent

    def check_tenant(self, tenant_id: str, field: str = "tenant_id") -> str:
        """``tenant_id``, a tenant the service may create something for
        (``TenantMismatchError`` naming ``field`` for another tenant than its scope: creating
        for another tenant is the caller's mistake, not a lookup)."""
        check_name(tenant_id, field)
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError(field, self.tenant_id, tenant_id)
        return tenant_id

    def lot_expiry(self, lot: Lot, groups: Mapping[str, ConditionGroup]) -> datetime | None:
        """When ``lot`` stops paying (its own expiry or its group's end); a lot whose group is
        unknown keeps its own expiry."""
        group = groups.get(lot.group_id) if lot.group_id else None
        if lot.group_id is not None and group is None:
            return lot.expires_at
        return self.expiry.expires_at(lot, group)
