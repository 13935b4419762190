"""The wallet service: the public facade of the library.

``WalletService`` holds the store and the dependencies injected once (the clock, the id
factory, the spend order, the actor, the tenant scope, the tenants' welcome awards, the payment
gateway); the tenants' rules live in the store (:meth:`WalletService.set_tenant_rules`).
Each write method builds a command record (:mod:`prepaid_wallet.app.commands`) and runs it
through the one pipeline (:mod:`prepaid_wallet.app.pipeline`): validate, lock the wallets in
sorted order, replay or store the idempotency key, run the capability's handler
(:mod:`prepaid_wallet.app.handlers`), commit the change with the events it causes. Each read
is a function of :mod:`prepaid_wallet.app.queries`; each batch job a function of its
capability's handler module. See docs/architecture.md.

A business refusal (:class:`~prepaid_wallet.errors.RefusedError`) under a key commits only the
idempotency record, so a retry refuses the same way; without a key it writes nothing. Any other
error writes nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from prepaid_wallet.app.bootstrap import bootstrap
from prepaid_wallet.app.checks import KEEP, Keep
from prepaid_wallet.app.environment import WelcomeAward
from prepaid_wallet.app.pipeline import Command, run
from prepaid_wallet.clock import Clock
from prepaid_wallet.ids import IdFactory
from prepaid_wallet.policies import SpendOrder, SpendOrderFunction
from prepaid_wallet.results import Progress

if TYPE_CHECKING:
    # Only the annotations need these: a method imports what it runs when it runs, so a
    # process pays only for the capabilities it uses.
    from prepaid_wallet.app.ports import Store
    from prepaid_wallet.conditions import ConditionGroup, SpendCondition
    from prepaid_wallet.expiry import EndOfLocalDay
    from prepaid_wallet.ledger import Entry
    from prepaid_wallet.money import Money
    from prepaid_wallet.policies import Decision, SpendRequest
    from prepaid_wallet.results import (
        Balance,
        Breakdown,
        CaptureResult,
        Expiry,
        ExpiryReport,
        FeeReport,
        LowBalanceEvent,
        LowBalanceLine,
        Problem,
        Receipt,
        RefundResult,
        SpendResult,
        Statement,
        StatementStream,
        TopUpReport,
        VerifyReport,
    )
    from prepaid_wallet.rules.limits import Limits
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion
    from prepaid_wallet.rules.topup import ChargeOutcome, PaymentGateway, TopUpIntent, TopUpRule
    from prepaid_wallet.wallet import Hold, Lot, Wallet

__all__ = ["Progress", "WalletService", "WelcomeAward"]

_R = TypeVar("_R")


class WalletService:
    """Prepaid wallets over a :class:`~prepaid_wallet.storage.base.Store`.

    ``clock`` gives "now" (default: the system clock); ``ids`` makes new ids (default: random);
    ``spend_order`` says which lot pays first in this process, for every tenant (a
    :class:`~prepaid_wallet.policies.SpendOrder` or a function; default: each tenant's stored
    ``TenantRules.spend_order``); ``actor`` is recorded on every entry unless a call names
    another; ``tenant_id``, when given, scopes the service to one tenant: another tenant's
    wallet, hold, lot, entry, condition group or top-up intent is answered exactly as an
    unknown id (the same ``NotFoundError``, message and attributes), a read naming another
    tenant as for a tenant with nothing, and creating something for another tenant (setting
    its rules too) raises :class:`~prepaid_wallet.errors.TenantMismatchError`; the jobs
    (``expire_due``, ``process_top_ups``...) touch its own tenant's objects only.
    ``welcome_awards`` maps a tenant id to the :class:`WelcomeAward` every new wallet of that
    tenant receives; ``gateway`` is the host's
    :class:`~prepaid_wallet.rules.topup.PaymentGateway`, charged by automatic top-ups.

    The tenants' rules (:class:`~prepaid_wallet.rules.tenant.TenantRules`: fees, periodic
    fees, limits, low-balance thresholds, automatic top-ups, spend order, default payment
    mode) live in the store, in versions set by :meth:`set_tenant_rules`: every command, job
    and query reads the current version in its own unit of work, so every process that opens
    the store -- a second server, a cron job, the command line -- applies the same rules, and
    a change from its next command on. ``rules``, mapping a tenant id to its rules, is a
    convenience that stores them: for each tenant whose current stored rules differ, the
    constructor runs :meth:`set_tenant_rules` (one new version, with the service's actor;
    equal rules write nothing; a scoped service stores its own tenant's only and leaves the
    others' alone). Two processes built with different ``rules`` for one tenant
    overwrite each other: the one started last stores its rules as the next version, and from
    then on every process -- the earlier one too -- applies them. Set rules that change with
    :meth:`set_tenant_rules` (or ``prepaid-wallet rules set``) rather than in the constructor
    of several processes.

    Every amount is a :class:`~prepaid_wallet.money.Money` in the wallet's currency; every
    instant is timezone-aware (naive ones raise ``InvalidTimeError``).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        spend_order: SpendOrder | SpendOrderFunction | None = None,
        actor: str | None = None,
        tenant_id: str | None = None,
        welcome_awards: Mapping[str, WelcomeAward] | None = None,
        rules: Mapping[str, TenantRules] | None = None,
        gateway: PaymentGateway | None = None,
    ) -> None:
        env = self._env = bootstrap(
            store, clock=clock, ids=ids, spend_order=spend_order, actor=actor,
            tenant_id=tenant_id, welcome_awards=welcome_awards, rules=rules, gateway=gateway)
        self.store, self.clock, self.ids = env.store, env.clock, env.ids
        self.spend_order, self.actor, self.tenant_id = env.spend_order, env.actor, env.tenant_id
        self.welcome_awards, self.gateway = env.welcome_awards, env.gateway
        #: The rules given to the constructor (stored by it); what applies is in the store.
        self.rules: dict[str, TenantRules] = dict(rules or {})
        self.expiry = env.expiry
        for tenant in sorted(self.rules):
            if env.sees(tenant) and self.tenant_rules(tenant) != self.rules[tenant]:
                self.set_tenant_rules(tenant, self.rules[tenant])

    def _run(self, command: Command[_R]) -> _R:
        """Run a write command through the pipeline (:mod:`prepaid_wallet.app.pipeline`)."""
        return run(self._env, command)

    # -- wallets ----------------------------------------------------------------------------

    def open_wallet(
        self,
        *,
        owner_id: str,
        tenant_id: str,
        currency: str,
        floor: Money | None = None,
        metadata: Mapping[str, str] | None = None,
        owner_groups: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Wallet:
        """Open an empty wallet for ``owner_id`` at ``tenant_id`` in ``currency``.

        ``floor`` (zero or negative, in ``currency``; default zero) is the lowest the open
        balance may go. One owner has at most one wallet per tenant and currency
        (``DuplicateWalletError``); the same owner at two tenants has two wallets. When the
        tenant has a :class:`WelcomeAward` in ``currency``, it is granted in the same unit of
        work and the wallet is returned with it. ``owner_groups`` are the classifications the
        host attaches to the owner (names; fee rules may apply to some groups only).
        """
        from prepaid_wallet.app.commands import OpenWallet

        return self._run(OpenWallet(
            owner_id=owner_id, tenant_id=tenant_id, currency=currency, floor=floor,
            metadata=metadata, owner_groups=owner_groups, idempotency_key=idempotency_key))

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet's current state; ``WalletNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import get_wallet

        return get_wallet(self._env, wallet_id)

    def find_wallet(self, *, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, or None (also for a tenant a scoped
        service does not serve)."""
        from prepaid_wallet.app.queries.wallet import find_wallet

        return find_wallet(self._env, tenant_id=tenant_id, owner_id=owner_id, currency=currency)

    def wallets(self, tenant_id: str | None = None) -> list[Wallet]:
        """Every wallet (of one tenant), by id. For very many, :meth:`iter_wallets`."""
        from prepaid_wallet.app.queries.wallet import wallets

        return wallets(self._env, tenant_id)

    def iter_wallets(self, tenant_id: str | None = None) -> Iterator[Wallet]:
        """:meth:`wallets` read lazily, a page at a time from one snapshot, in bounded memory.
        Bad arguments raise at the call. The snapshot's unit of work stays open while
        iterating: open no other unit of work on the same thread meanwhile."""
        from prepaid_wallet.app.queries.wallet import iter_wallets

        return iter_wallets(self._env, tenant_id)

    def set_owner_groups(self, wallet_id: str, owner_groups: Iterable[str]) -> frozenset[str]:
        """Replace the groups the owner of the wallet belongs to (names; empty removes them).
        Fee rules limited to some groups follow the change from the next operation on."""
        from prepaid_wallet.app.commands import SetOwnerGroups

        return self._run(SetOwnerGroups(wallet_id=wallet_id, owner_groups=owner_groups))

    def owner_groups(self, wallet_id: str) -> frozenset[str]:
        """The groups the owner of the wallet belongs to."""
        from prepaid_wallet.app.queries.wallet import owner_groups

        return owner_groups(self._env, wallet_id)

    def set_limits(self, wallet_id: str, limits: Limits | None) -> Limits:
        """Give the wallet its own limits on top of the tenant's: an override replaces the
        tenant rule of the same operation and window, adds new ones, and may lower the maximum
        balance -- only ever stricter (a looser override raises ``InvalidInputError`` naming
        ``limits`` and what is looser). Only a tenant with limits of its own
        (``TenantRules.limits``) has wallet overrides: its wallets' operations are the only ones
        that read them. ``None`` removes the overrides. Returns the wallet's effective
        limits."""
        from prepaid_wallet.app.commands import SetLimits

        return self._run(SetLimits(wallet_id=wallet_id, limits=limits))

    def limits(self, wallet_id: str) -> Limits:
        """The wallet's effective limits: the tenant's, with the wallet's overrides."""
        from prepaid_wallet.app.queries.wallet import limits

        return limits(self._env, wallet_id)

    # -- money in ---------------------------------------------------------------------------

    def top_up(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Credit ``amount`` (positive, in the wallet's currency), paid with ``method`` (e.g.
        ``"card"``), to the open balance. A negative open balance simply moves back up.

        With ``group_id`` (a condition group of the wallet's tenant) the money arrives as a
        conditioned commerce lot under the group's current conditions instead (``lot_id`` of
        the receipt), spendable only where the group allows and until the group ends.

        The tenant's top-up fees are taken from the open balance in the same entry (a top-up
        must be more than its fee); the wallet's top-up limits and maximum balance apply
        (``LimitExceededError``)."""
        from prepaid_wallet.app.commands import TopUp

        return self._run(TopUp(
            wallet_id=wallet_id, amount=amount, method=method, group_id=group_id,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def award(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        expires_at: datetime | EndOfLocalDay | None = None,
        priority: int = 0,
        condition: SpendCondition | None = None,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Lot:
        """Grant a commerce lot of ``amount`` that may expire at ``expires_at`` (an aware
        instant or an :class:`~prepaid_wallet.expiry.EndOfLocalDay`; must be in the future;
        None never expires). Lower ``priority`` spends first (default 0). ``reason`` is kept on
        the lot and the entry.

        The lot may pay only for what ``condition`` allows
        (:class:`~prepaid_wallet.conditions.SpendCondition`), or what condition group
        ``group_id`` allows (its current version, kept by the lot; the group's validity applies
        as it changes); give at most one. Conditioned lots pay before unconditioned ones."""
        from prepaid_wallet.app.commands import Award

        return self._run(Award(
            wallet_id=wallet_id, amount=amount, reason=reason, expires_at=expires_at,
            priority=priority, condition=condition, group_id=group_id,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    # -- spending ---------------------------------------------------------------------------

    def check_spend(self, wallet_id: str, request: SpendRequest) -> Decision:
        """Decide ``request`` now without writing anything: whether it is allowed, from which
        lots and the open balance (per line item when the request has lines), the shortfall, a
        suggested top-up and the remainder due. A refusal's ``covered`` is what is spendable
        for this request: what the lots may pay of its lines, then the open balance down to the
        floor."""
        from prepaid_wallet.app.handlers.spending import check_spend

        return check_spend(self._env, wallet_id, request)

    def spend(
        self,
        wallet_id: str,
        request: SpendRequest,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SpendResult:
        """Pay ``request`` from the wallet, in spend order; raises ``SpendDeniedError`` (with the
        decision) when a ``CREDIT_ONLY`` request is not covered. With ``CREDIT_FIRST``, credit
        pays what it can and ``remainder_due`` is left for another method.

        The tenant's spend fees are taken from the open balance in the same entry (the fee of
        the whole request is set aside before the open balance pays); a spend that would breach
        one of the wallet's limits is refused (``Reason.LIMIT_EXCEEDED``, with what is left of
        each allowance in ``decision.limits``).

        Conditioned lots pay only the lines they may pay for, at the request's merchant and
        instant (``request.at``, which must not be after now; expiry is judged now); see
        :func:`~prepaid_wallet.policies.decide_spend` for the order. A spend never takes more
        than is available."""
        from prepaid_wallet.app.commands import Spend

        return self._run(Spend(
            wallet_id=wallet_id, request=request, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    # -- holds ------------------------------------------------------------------------------

    def hold(
        self,
        wallet_id: str,
        amount: Money,
        *,
        expires_at: datetime | None = None,
        window: timedelta | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Hold:
        """Reserve ``amount`` for a later capture, decided and allocated like a credit-only
        spend of ``amount``.

        The hold is decided exactly as that spend (``check_spend(wallet_id,
        SpendRequest(amount))`` previews it): ``SpendDeniedError`` (``action`` ``"hold"``, with
        the spend's decision: its reasons, shortfall and the limits it would breach) when
        credit cannot cover ``amount`` plus the tenant's spend fee on it, or when the spend
        would breach one of the wallet's spend limits. It reserves ``amount`` and that fee
        (``Hold.reserved_fee``, a last open-balance part of ``Hold.allocation``), so the
        capture can always pay it. While it may be captured the hold counts as one spend of
        ``amount`` in the wallet's spend limits (so hold + capture passes no more limits than
        the spend); voided or ended, it counts for nothing.

        The hold ends at ``expires_at`` (aware, in the future) or after ``window`` of elapsed
        time (4 hours is 4 hours of UTC, also across a DST change); give exactly one."""
        from prepaid_wallet.app.commands import PlaceHold

        return self._run(PlaceHold(
            wallet_id=wallet_id, amount=amount, expires_at=expires_at, window=window,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def capture(
        self,
        hold_id: str,
        amount: Money | None = None,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CaptureResult:
        """Capture ``amount`` (default: all; at most the held amount) of an active hold and
        release the rest. Once only: ``HoldStateError`` if the hold is no longer active,
        ``HoldExpiredError`` at or after its expiry.

        The capture pays what a spend of the captured amount pays: the tenant's spend fee on
        it (``CaptureResult.fee``; at most the fee the hold reserved, so a partial capture pays
        the fee of what it captures and the rest of the reservation goes back), from the open
        balance to the tenant's fee account in the capture's own entry. It counts as one spend
        of the captured amount in the wallet's spend limits, instead of the hold; it is never
        refused for a limit (the hold was decided against them). A refund of the capture gives
        back the purchase, not the fee, as a spend's refund does."""
        from prepaid_wallet.app.commands import CaptureHold

        return self._run(CaptureHold(
            hold_id=hold_id, amount=amount, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    def void(
        self,
        hold_id: str,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Hold:
        """Release an active hold entirely back to where its money came from (a lot that has
        expired meanwhile books its part as breakage). ``HoldStateError`` if not active."""
        from prepaid_wallet.app.commands import VoidHold

        return self._run(VoidHold(
            hold_id=hold_id, idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def get_hold(self, hold_id: str) -> Hold:
        """The hold's current state; ``HoldNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import get_hold

        return get_hold(self._env, hold_id)

    def holds(self, wallet_id: str) -> list[Hold]:
        """Every hold of the wallet, oldest first."""
        from prepaid_wallet.app.queries.wallet import holds

        return holds(self._env, wallet_id)

    # -- transfers, refunds, reversals ------------------------------------------------------

    def transfer(
        self,
        from_wallet_id: str,
        to_wallet_id: str,
        amount: Money,
        *,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Move ``amount`` of open balance to another wallet of the same tenant and currency.

        Never to the same wallet; never below the source's floor (``InsufficientFundsError``).
        Commerce lots do not move. With ``group_id`` (a condition group of the tenant) the money
        arrives in the target as a conditioned commerce lot (``lot_id`` of the receipt) instead
        of open balance. The sender pays the tenant's transfer fees from its open balance in the
        same entry (the floor applies to amount plus fee); the sender's transfer limits and the
        target's maximum balance apply (``LimitExceededError``)."""
        from prepaid_wallet.app.commands import Transfer

        return self._run(Transfer(
            from_wallet_id=from_wallet_id, to_wallet_id=to_wallet_id, amount=amount,
            group_id=group_id, idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def payout(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Pay ``amount`` of the open balance out to the owner with ``method`` (e.g.
        ``"bank"``). Never below the floor, fee included (``InsufficientFundsError``); the
        tenant's payout fees and the wallet's payout limits apply."""
        from prepaid_wallet.app.commands import Payout

        return self._run(Payout(
            wallet_id=wallet_id, amount=amount, method=method, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def credit(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """An operator's manual credit of ``amount`` to the open balance (against the tenant's
        adjustment account), with its ``reason``. The tenant's credit fees and the wallet's
        maximum balance apply."""
        from prepaid_wallet.app.commands import Credit

        return self._run(Credit(
            wallet_id=wallet_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def debit(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """An operator's manual debit of ``amount`` from the open balance, with its ``reason``;
        never below the floor, fee included (``InsufficientFundsError``)."""
        from prepaid_wallet.app.commands import Debit

        return self._run(Debit(
            wallet_id=wallet_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def refund(
        self,
        entry_id: str,
        amount: Money | None = None,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundResult:
        """Give back ``amount`` (default: all that is left) of a spend or capture entry.

        The money returns to the lots and open balance it came from, keeping their expiry; the
        source paid last is refunded first. A part whose lot has expired meanwhile is booked as
        breakage. Refunds of one entry never add up to more than it took
        (``RefundExceedsOriginalError``)."""
        from prepaid_wallet.app.commands import Refund

        return self._run(Refund(
            entry_id=entry_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def reverse(
        self,
        entry_id: str,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Correct a top-up, award or transfer with a new entry that negates it (linked both
        ways; at most one per entry: ``AlreadyReversedError``). Refused with
        ``InsufficientFundsError`` when the reversal would take an open balance below its
        wallet's floor or a lot below zero, or when an awarded lot has expired (its remainder
        is breakage); with a floor below zero, a reversed top-up that was
        already spent leaves the open balance negative (the customer owes it). Spends and
        captures are corrected with :meth:`refund`, holds with :meth:`void`."""
        from prepaid_wallet.app.commands import Reverse

        return self._run(Reverse(
            entry_id=entry_id, reason=reason, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    # -- condition groups -------------------------------------------------------------------

    def define_condition_group(
        self,
        *,
        tenant_id: str,
        name: str,
        condition: SpendCondition,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        group_id: str | None = None,
    ) -> ConditionGroup:
        """Define a named, reusable set of conditions for ``tenant_id``, valid in
        ``[valid_from, valid_until)`` (aware; None: unbounded), at version 1. ``group_id``
        defaults to a new id; an id already used raises ``ConflictError``. Awards, top-ups and
        transfers may then name the group: their lots pay only for what it allows."""
        from prepaid_wallet.app.commands import DefineConditionGroup

        return self._run(DefineConditionGroup(
            tenant_id=tenant_id, name=name, condition=condition, valid_from=valid_from,
            valid_until=valid_until, group_id=group_id))

    def change_condition_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        condition: SpendCondition | None = None,
        valid_from: datetime | Keep | None = KEEP,
        valid_until: datetime | Keep | None = KEEP,
    ) -> ConditionGroup:
        """Change a condition group. A new ``condition`` makes a new version: lots granted
        before keep the conditions they were granted under, new lots get the new ones. A new
        validity (``valid_from``/``valid_until``; None removes that bound) applies at once to
        every lot of the group: they stop paying, and fall due for the expiry sweep, at the
        group's new end (or their own expiry, if sooner)."""
        from prepaid_wallet.app.commands import ChangeConditionGroup

        return self._run(ChangeConditionGroup(
            group_id=group_id, name=name, condition=condition, valid_from=valid_from,
            valid_until=valid_until))

    def condition_group(self, group_id: str) -> ConditionGroup:
        """The condition group; ``ConditionGroupNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import condition_group

        return condition_group(self._env, group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's condition groups, by name then id."""
        from prepaid_wallet.app.queries.wallet import condition_groups

        return condition_groups(self._env, tenant_id)

    # -- tenant rules ---------------------------------------------------------------------------

    def set_tenant_rules(
        self,
        tenant_id: str,
        rules: TenantRules,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TenantRulesVersion:
        """Store ``rules`` as the tenant's next version (1, 2, ...) and return it, with the
        instant, the actor (the call's, else the service's), the key and the metadata that set
        it. Every process that opens the store applies them from its next command on (each
        command reads the current version in its own unit of work); a job already running
        keeps the rules it read when it started. Rules equal to the current version's write
        nothing and return that version. Setting rules moves no money: no journal entry; the
        versions (:meth:`tenant_rules_history`) say who set what, when.

        Under ``idempotency_key`` a retry returns the version first stored (a different
        request: ``IdempotencyConflictError``). Two sets of one tenant's rules at once never
        both become version ``n``: on PostgreSQL the later commit raises ``ConflictError``
        (nothing written; run it again to store version ``n + 1``). A scoped service sets its
        own tenant's rules only (``TenantMismatchError``); ``rules`` that are not a
        ``TenantRules`` raise ``InvalidInputError``."""
        from prepaid_wallet.app.commands import SetTenantRules
        from prepaid_wallet.app.tenant_rules import public

        return public(self._run(SetTenantRules(
            tenant_id=tenant_id, rules=rules, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata)))

    def tenant_rules(self, tenant_id: str) -> TenantRules:
        """The rules that apply to the tenant now: its current stored version's (none stored:
        an empty ``TenantRules``, which charges no fee and limits nothing)."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules

        return tenant_rules(self._env, tenant_id)

    def tenant_rules_version(self, tenant_id: str) -> TenantRulesVersion | None:
        """The tenant's current stored version, with who set it, when and under which key;
        None when the tenant's rules were never set."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules_version

        return tenant_rules_version(self._env, tenant_id)

    def tenant_rules_history(self, tenant_id: str) -> list[TenantRulesVersion]:
        """Every version of the tenant's rules, oldest first (the last is the current one)."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules_history

        return tenant_rules_history(self._env, tenant_id)

    # -- automatic top-ups --------------------------------------------------------------------

    def set_top_up_rule(self, wallet_id: str, rule: TopUpRule | None) -> TopUpRule | None:
        """Give the wallet an automatic top-up rule (``None`` removes it); the tenant must have
        automatic top-ups enabled (``TenantRules.automatic_top_ups``). From then on an operation
        that leaves the open balance at or below the rule's threshold starts a top-up intent in
        its own unit of work (one in flight per wallet; a top-up's own credit never starts
        another); :meth:`process_top_ups` charges it."""
        from prepaid_wallet.app.commands import SetTopUpRule

        return self._run(SetTopUpRule(wallet_id=wallet_id, rule=rule))

    def top_up_rule(self, wallet_id: str) -> TopUpRule | None:
        """The wallet's automatic top-up rule, if any."""
        from prepaid_wallet.app.queries.wallet import top_up_rule

        return top_up_rule(self._env, wallet_id)

    def top_up_intent(self, intent_id: str) -> TopUpIntent | None:
        """An automatic top-up intent and its attempts, if any."""
        from prepaid_wallet.app.queries.wallet import top_up_intent

        return top_up_intent(self._env, intent_id)

    def process_top_ups(self, *, limit: int = 100) -> TopUpReport:
        """Drive every pending automatic top-up (at most ``limit``) as far as it can go now.

        Each state change is committed before and after every call to the gateway, so a process
        that dies anywhere leaves an intent this method picks up again: an attempt sent without
        an answer is *settled* (``gateway.lookup`` under the same key), never charged again and
        never followed by the backup method. The primary method is charged first, the backup
        only after the primary was definitely declined; a hard decline is never retried, a soft
        one after the rule's back-off. A succeeded charge is credited to the open balance
        exactly once (under an idempotency key made of the intent), also when its success is
        reported twice. Safe to run repeatedly and from several processes."""
        from prepaid_wallet.app.handlers.automatic_top_up import process_top_ups

        return process_top_ups(self._env, limit=limit)

    def report_charge(self, idempotency_key: str, outcome: ChargeOutcome) -> TopUpReport:
        """A report from the payment provider (a webhook) of the outcome of the charge made
        under ``idempotency_key``: recorded on its intent, and a success credited -- exactly
        once, however many times it is reported. A report for a charge already settled, or of
        an intent already finished, changes nothing; an unknown key (or, for a scoped service,
        another tenant's) raises ``InvalidInputError``."""
        from prepaid_wallet.app.handlers.automatic_top_up import report_charge

        return report_charge(self._env, idempotency_key, outcome)

    def start_scheduled_top_ups(self) -> tuple[str, ...]:
        """Start the automatic top-ups that wallets' rules schedule (``TopUpRule.schedule``, an
        RRULE in ``schedule_zone``, anchored at the wallet's opening): for each wallet of a
        tenant with automatic top-ups whose rule has a schedule, one intent for the latest
        occurrence that came since the last one started (missed occurrences are not charged one
        by one: a wallet is topped up once, up to its rule's amount or target), unless one is
        already in flight or the wallet is already at its target. Each wallet in a unit of
        work of its own; run it as a scheduled job, then :meth:`process_top_ups`. Reads every
        wallet of those tenants. Returns the ids of the intents started."""
        from prepaid_wallet.app.handlers.automatic_top_up import start_scheduled_top_ups

        return start_scheduled_top_ups(self._env)

    # -- low-balance reminders ----------------------------------------------------------------

    def events(self, tenant_id: str, *, limit: int = 100) -> list[LowBalanceEvent]:
        """The tenant's low-balance events not yet acknowledged, oldest first (at most
        ``limit``). Each is written in the same unit of work as the operation that took a
        wallet's open balance across thresholds (``TenantRules.low_balance``): none is lost.
        Acknowledge the ones handled with :meth:`ack_events`, so none is sent twice."""
        from prepaid_wallet.app.handlers.reminder import events

        return events(self._env, tenant_id, limit=limit)

    def ack_events(self, tenant_id: str, event_ids: Iterable[str]) -> int:
        """Acknowledge events of the tenant (handled: not returned again). Returns how many
        were pending; unknown or already acknowledged ids are ignored."""
        from prepaid_wallet.app.handlers.reminder import ack_events

        return ack_events(self._env, tenant_id, event_ids)

    def low_balance_report(self, tenant_id: str, threshold: str | Money) -> list[LowBalanceLine]:
        """The tenant's wallets whose open balance is at or below ``threshold`` (the label of
        one of the tenant's thresholds, or an amount), by wallet id, each with its owner, open
        balance, floor and the top-up it needs: the least that takes its open balance back
        above the threshold (for reminder e-mails). Wallets in another currency are left
        out."""
        from prepaid_wallet.app.handlers.reminder import low_balance_report

        return low_balance_report(self._env, tenant_id, threshold)

    # -- periodic fees ------------------------------------------------------------------------

    def charge_periodic_fees(self) -> FeeReport:
        """Charge every occurrence of every tenant's periodic fees (``TenantRules.periodic_fees``)
        that has come since each wallet was opened, each wallet at most once per occurrence.

        Each charge is one ``fee`` entry in its own unit of work, from the open balance to the
        tenant's fee account, recorded under an idempotency key made of the wallet and the
        occurrence (:meth:`~prepaid_wallet.rules.fees.PeriodicFee.occurrence_key`): running it
        twice, or from two processes at once, charges nothing more. A wallet also remembers the
        last occurrence charged, so a run reads only the occurrences since.

        The floor rule: a fee never takes the open balance below the wallet's floor. A fee the
        open balance cannot pay in full is charged down to the floor and the rest is waived
        (counted in ``FeeReport.waived``; a wallet already at its floor pays nothing for that
        occurrence). Wallets in another currency than the fee's, and owners outside the fee's
        groups, are not charged."""
        from prepaid_wallet.app.handlers.periodic_fee import charge_periodic_fees

        return charge_periodic_fees(self._env)

    # -- expiry -----------------------------------------------------------------------------

    def extend_expiry(
        self,
        lot_id: str,
        expires_at: datetime | EndOfLocalDay | None,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Lot:
        """Move ``amount`` (default: everything it holds) of a lot into a new lot that expires
        at ``expires_at`` (aware, in the future, or an
        :class:`~prepaid_wallet.expiry.EndOfLocalDay`; None: never) and keeps the lot's reason,
        priority, conditions and condition group (whose end, and the conditions' own validity,
        still apply). One entry moves the money; returns the new lot. Moving more than the lot
        holds raises ``InvalidAmountError``; a lot that has expired (swept or not: its remainder
        is breakage) raises ``InvalidTimeError``."""
        from prepaid_wallet.app.commands import ExtendExpiry

        return self._run(ExtendExpiry(
            lot_id=lot_id, expires_at=expires_at, amount=amount,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def expire_due(self) -> ExpiryReport:
        """Release every active hold whose window has ended and book every expired lot's
        remainder as breakage (a lot expires at its own expiry or at its condition group's
        end, whichever is first), each exactly once (one entry per hold and per lot, each in its
        own unit of work). Safe to run repeatedly and from several processes; its cost grows
        with what is due, not with all lots. :meth:`sweep_expired` does the same a row at a
        time."""
        from prepaid_wallet.app.handlers.expiry import expire_due

        return expire_due(self._env)

    def sweep_expired(self) -> Iterator[Expiry]:
        """:meth:`expire_due` as a stream: yields each :class:`~prepaid_wallet.results.Expiry`
        as soon as its unit of work has committed (holds first, then lots, soonest due first).
        Memory stays bounded however much is due: due rows are read a batch at a time and no
        unit of work is open while the caller handles a row. Stopping early is safe; the next
        sweep books the rest."""
        from prepaid_wallet.app.handlers.expiry import sweep_expired

        return sweep_expired(self._env)

    # -- reading ----------------------------------------------------------------------------

    def balance(self, wallet_id: str, *, as_of: datetime | None = None) -> Balance:
        """The wallet's balances now, or at ``as_of`` (aware) from the statement index -- a
        lookup, never a replay of the journal. See :class:`~prepaid_wallet.results.Balance`."""
        from prepaid_wallet.app.queries.balance import balance

        return balance(self._env, wallet_id, as_of=as_of)

    def lots(self, wallet_id: str, *, include_empty: bool = False) -> list[Lot]:
        """The wallet's lots by grant time: those with money left, or all with
        ``include_empty``."""
        from prepaid_wallet.app.queries.balance import lots

        return lots(self._env, wallet_id, include_empty=include_empty)

    def entry(self, entry_id: str) -> Entry:
        """One journal entry; ``EntryNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.balance import entry

        return entry(self._env, entry_id)

    def statement(
        self, wallet_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Statement:
        """The wallet's entries recorded in ``[since, until)`` (aware; either may be None), each
        with its effect on open, commerce and held balances, the lots it touched (with their
        expiry) and the balances after it; with opening and closing totals. For a long history
        read :meth:`stream_statement` instead, which keeps one line in memory at a time."""
        from prepaid_wallet.app.queries.statement import statement

        return statement(self._env, wallet_id, since=since, until=until)

    def stream_statement(
        self, wallet_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> StatementStream:
        """:meth:`statement` read lazily: the opening total at once, then the lines one at a
        time from one consistent snapshot, in bounded memory however long the history. Use the
        result in a ``with`` block (it holds a read-only unit of work until closed)::

            with service.stream_statement(wallet_id) as stream:
                for line in stream:
                    ...
        """
        from prepaid_wallet.app.queries.statement import stream_statement

        return stream_statement(self._env, wallet_id, since=since, until=until)

    def breakdown(
        self,
        wallet_id: str,
        *,
        at: datetime | None = None,
        request: SpendRequest | None = None,
        locale: str = "en_US",
    ) -> Breakdown:
        """What the wallet holds and what of it is spendable where and until when.

        The open balance; each lot with money left, in the order lots pay, with its remaining
        amount, when it stops paying, its conditions in words (in ``locale``, for day names and
        amounts; see :meth:`~prepaid_wallet.conditions.SpendCondition.describe`) and whether it
        is usable at ``at`` (aware; default now: the current balances judged at that instant);
        and, for a ``request``, what is spendable for it (``Breakdown.spendable``, the decision
        and each lot's share). Writes nothing."""
        from prepaid_wallet.app.queries.breakdown import breakdown

        return breakdown(self._env, wallet_id, at=at, request=request, locale=locale)

    # -- verification -----------------------------------------------------------------------

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Check the whole store: every entry balances and its hash is right, every wallet's
        chain is unbroken, stored balances equal a replay of the postings, lots and holds add
        up, no wallet is below its floor, refunds stay within their originals and no entry is
        reversed twice. Returns a report; never raises for what it finds. :meth:`iter_verify`
        does the same and yields each problem as it is found."""
        from prepaid_wallet.app.queries.verification import verify

        return verify(self._env, progress=progress)

    def iter_verify(self, *, progress: Progress | None = None) -> Iterator[Problem]:
        """:meth:`verify` as a stream of :class:`~prepaid_wallet.results.Problem`, read from one
        consistent snapshot in two passes: the journal entry by entry (balance and hash), then
        wallet by wallet (chain, replayed balances, lots, holds, refunds, reversals).

        Memory does not grow with the store: the first pass keeps nothing per entry, the second
        keeps only what one wallet needs (its lots' replayed sums). ``progress(phase, done)`` is
        called after every entry (``"entries"``) and wallet (``"wallets"``) checked, and once
        at the end of each phase. The snapshot's unit of work stays open while iterating: open
        no other unit of work on the same thread meanwhile."""
        from prepaid_wallet.app.queries.verification import iter_verify

        return iter_verify(self._env, progress=progress)
