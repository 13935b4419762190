"""The wallet service: the one place where a policy, a unit of work and the clock meet.

Every writing command follows the same steps, so every one of them behaves the same way:

1. validate the arguments (types, signs, currencies) -- bad input raises
   :class:`~prepaid_wallet.errors.InvalidInputError` before anything is read;
2. open a unit of work and lock the wallets the command touches (sorted by id);
3. if an ``idempotency_key`` was given and is already stored for this tenant: replay the stored
   outcome (or refusal) when the request is the same, else raise
   :class:`~prepaid_wallet.errors.IdempotencyConflictError`;
4. decide (pure policy), then build the change (pure transition) and record it;
5. commit, together with the idempotency record.

A business refusal (:class:`~prepaid_wallet.errors.RefusedError`) under a key commits only the
idempotency record, so a retry refuses the same way; without a key it writes nothing. Any other
error writes nothing at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from prepaid_wallet import _codec
from prepaid_wallet import wallet as _w
from prepaid_wallet.app import charges
from prepaid_wallet.app.charges import (
    check_headroom,
    check_limits,
    check_max_balance,
    effective_limits,
)
from prepaid_wallet.app.checks import (
    KEEP,
    Keep,
    check_common,
    check_currency,
    check_groups,
    check_optional_text,
    check_positive,
    check_purchase_time,
    check_request,
    less,
    purchase_fields,
    request_fields,
)
from prepaid_wallet.app.decision import decide
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment, Groups, WelcomeAward
from prepaid_wallet.app.lots import breakage_of, ends, group_lot, lots_of
from prepaid_wallet.app.pipeline import Command, idempotent, lock, run
from prepaid_wallet.app.ports import IdempotencyRecord, Store, UnitOfWork
from prepaid_wallet.app.settings import (
    LIMITS,
    OWNER_GROUPS,
    TOP_UP_RULE,
    TOP_UP_SCHEDULE,
    periodic_fee_setting,
    stored_groups,
    top_up_rule,
)
from prepaid_wallet.clock import Clock, SystemClock, require_aware
from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import (
    AlreadyReversedError,
    ConditionGroupNotFoundError,
    ConflictError,
    CurrencyMismatchError,
    HoldExpiredError,
    HoldStateError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
    RefundExceedsOriginalError,
    SpendDeniedError,
    TenantMismatchError,
)
from prepaid_wallet.expiry import EndOfLocalDay, resolve_expiry
from prepaid_wallet.idempotency import (
    canonical_request,
)
from prepaid_wallet.ids import IdFactory, RandomIds, check_name
from prepaid_wallet.ledger import AccountKind as _AccountKind
from prepaid_wallet.ledger import Entry, EntryKind, parse_account
from prepaid_wallet.money import Money
from prepaid_wallet.policies import (
    Decision,
    PaymentMode,
    Reason,
    SpendOrder,
    SpendOrderFunction,
    SpendRequest,
)
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
from prepaid_wallet.rules.limits import (
    Limits,
    check_override,
)
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.wallet import Charge, Hold, HoldStatus, Lot, Wallet

if TYPE_CHECKING:
    # Imported where they are used: a service whose tenants have no rules, and a read, never
    # load the fee, reminder, tenant-rule and automatic top-up modules.
    from prepaid_wallet.rules.fees import PeriodicFee
    from prepaid_wallet.rules.reminders import Threshold
    from prepaid_wallet.rules.tenant import TenantRules
    from prepaid_wallet.rules.topup import (
        ChargeOutcome,
        Credit,
        PaymentGateway,
        TopUpIntent,
        TopUpRule,
    )

__all__ = ["WalletService", "WelcomeAward"]

_R = TypeVar("_R")

_SWEEP_BATCH = 200

if TYPE_CHECKING:
    # verify's progress callback type lives with verify; it is re-exported here on first use,
    # so that a service that never verifies never imports the verification module.
    from prepaid_wallet.app.queries.verification import Progress as Progress


def _lazy_export(name: str) -> object:
    """``Progress`` (:mod:`prepaid_wallet.app.queries.verification`), imported on first use and
    kept in this module's namespace; ``AttributeError`` for any other name."""
    if name != "Progress":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prepaid_wallet.app.queries.verification import Progress

    globals()[name] = Progress
    return Progress


if not TYPE_CHECKING:  # mypy reads the import above, so it still rejects an unknown name
    __getattr__ = _lazy_export

_REVERSIBLE = frozenset({EntryKind.TOP_UP, EntryKind.AWARD, EntryKind.TRANSFER})
#: At most this many state changes per intent in one run (a run never loops forever).
_MAX_STEPS = 12


class WalletService:
    """Prepaid wallets over a :class:`~prepaid_wallet.storage.base.Store`.

    ``clock`` gives "now" (default: the system clock); ``ids`` makes new ids (default: random);
    ``spend_order`` says which lot pays first (a :class:`~prepaid_wallet.policies.SpendOrder` or
    a function); ``actor`` is recorded on every entry unless a call names another;
    ``tenant_id``, when given, scopes the service to one tenant: a wallet of another tenant
    raises :class:`~prepaid_wallet.errors.TenantMismatchError`; ``welcome_awards`` maps a
    tenant id to the :class:`WelcomeAward` every new wallet of that tenant receives; ``rules``
    maps a tenant id to its :class:`~prepaid_wallet.rules.tenant.TenantRules` (fees, periodic
    fees, limits, low-balance thresholds, automatic top-ups); ``gateway`` is the host's
    :class:`~prepaid_wallet.rules.topup.PaymentGateway`, charged by automatic top-ups.

    Every amount is a :class:`~prepaid_wallet.money.Money` in the wallet's currency; every
    instant is timezone-aware (naive ones raise ``InvalidTimeError``).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        spend_order: SpendOrder | SpendOrderFunction = SpendOrder.DEFAULT,
        actor: str | None = None,
        tenant_id: str | None = None,
        welcome_awards: Mapping[str, WelcomeAward] | None = None,
        rules: Mapping[str, TenantRules] | None = None,
        gateway: PaymentGateway | None = None,
    ) -> None:
        clock = clock if clock is not None else SystemClock()
        ids = ids if ids is not None else RandomIds()
        actor = None if actor is None else check_optional_text(actor, "actor")
        tenant_id = None if tenant_id is None else check_name(tenant_id, "tenant_id")
        if welcome_awards is not None and not isinstance(welcome_awards, Mapping):
            raise InvalidInputError("welcome_awards", "must map tenant ids to WelcomeAward",
                                    welcome_awards)
        for tenant, welcome in (welcome_awards or {}).items():
            check_name(tenant, "welcome_awards")
            if not isinstance(welcome, WelcomeAward):
                raise InvalidInputError(f"welcome_awards[{tenant!r}]", "must be a WelcomeAward",
                                        welcome)
        if rules is not None and not isinstance(rules, Mapping):
            raise InvalidInputError("rules", "must map tenant ids to TenantRules", rules)
        if rules:  # a service without tenant rules never imports their modules
            from prepaid_wallet.rules.tenant import TenantRules
        for tenant, tenant_rules in (rules or {}).items():
            check_name(tenant, "rules")
            if not isinstance(tenant_rules, TenantRules):
                raise InvalidInputError(f"rules[{tenant!r}]", "must be a TenantRules",
                                        tenant_rules)
        if gateway is not None:  # likewise the top-up module, without a gateway
            from prepaid_wallet.rules.topup import PaymentGateway
        if gateway is not None and not isinstance(gateway, PaymentGateway):
            raise InvalidInputError("gateway", "must implement PaymentGateway (charge, lookup)",
                                    gateway)
        self._env = Environment(
            store=store, clock=clock, ids=ids, spend_order=spend_order, actor=actor,
            tenant_id=tenant_id, welcome_awards=welcome_awards or {}, rules=rules or {},
            gateway=gateway,
        )
        env = self._env
        self.store = env.store
        self.clock = env.clock
        self.ids = env.ids
        self.spend_order = env.spend_order
        self.actor = env.actor
        self.tenant_id = env.tenant_id
        self.welcome_awards = env.welcome_awards
        self.rules = env.rules
        self.gateway = env.gateway
        self.expiry = env.expiry

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
        """The owner's wallet at the tenant in the currency, or None."""
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
        groups = check_groups(owner_groups)
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]
            uow.put_setting(wallet.id, OWNER_GROUPS,
                            json.dumps(sorted(groups)) if groups else None)
            uow.commit()
        return groups

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
        if limits is not None and not isinstance(limits, Limits):
            raise InvalidInputError("limits", "must be a Limits or None", limits)
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]
            base = self._env.tenant_rules(wallet.tenant_id).limits
            if limits is not None and not base.rules and base.max_balance is None:
                raise InvalidInputError(
                    "limits", "must override the tenant's limits: the tenant has none "
                    "(give it lenient ones in TenantRules.limits)", limits)
            if limits is not None:
                if limits.currency not in (None, wallet.currency):
                    raise CurrencyMismatchError(wallet.currency, limits.currency or "", "limits")
                check_override(base, limits)
            uow.put_setting(wallet.id, LIMITS,
                            None if limits is None else json.dumps(limits.to_data(),
                                                                   sort_keys=True))
            effective = effective_limits(self._env, uow, wallet)
            uow.commit()
        return effective

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

    def _stored(self, wallet_id: str, key: str) -> bool:
        """Whether an outcome is already stored under ``key`` for the wallet's tenant (then a
        spend replays it and must not top up first)."""
        check_name(wallet_id, "wallet_id")
        with self.store.unit_of_work(read_only=True) as uow:
            wallet = uow.get_wallet(wallet_id)
            return uow.get_idempotency(wallet.tenant_id, key) is not None

    def check_spend(self, wallet_id: str, request: SpendRequest) -> Decision:
        """Decide ``request`` now without writing anything: whether it is allowed, from which
        lots and the open balance (per line item when the request has lines), the shortfall, a
        suggested top-up and the remainder due. A refusal's ``covered`` is what is spendable
        for this request: what the lots may pay of its lines, then the open balance down to the
        floor."""
        check_request(request)
        at = self._env.now()
        check_purchase_time(request, at)
        with self.store.unit_of_work(read_only=True) as uow:
            check_name(wallet_id, "wallet_id")
            wallet = self._env.scoped(uow.get_wallet(wallet_id))
            check_currency(wallet, request.amount, "request.amount")
            return decide(self._env, uow, wallet, request, at)

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
        check_request(request)
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        fingerprint = request_fields(
            key, "spend", wallet_id=wallet_id, amount=request.amount, mode=request.mode,
            description=request.description, metadata=meta, **purchase_fields(request),
        )
        check_purchase_time(request, self._env.now())
        if self._env.spend_top_ups and (key is None or not self._stored(wallet_id, key)):
            self._spend_top_up(wallet_id, request)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]

            def body() -> SpendResult:
                check_currency(wallet, request.amount, "request.amount")
                decision = decide(self._env, uow, wallet, request, at)
                if not decision.allowed:
                    raise SpendDeniedError(decision)
                entry_id = None
                if decision.allocation:
                    lots = {p.lot_id: uow.get_lot(p.lot_id) for p in decision.allocation
                            if p.lot_id is not None}
                    extra = {} if request.description is None else {
                        "description": request.description}
                    change = _w.spend(wallet, decision.allocation, lots,
                                      self._env.info(at, key, actor, {**meta, **extra}),
                                      decision.fee)
                    record(self._env, uow, change)
                    entry_id = change.entry.id
                return SpendResult(entry_id, decision.allocation, decision.covered,
                                   decision.remainder_due, decision,
                                   decision.fee if entry_id is not None else None)

            return idempotent(uow, wallet.tenant_id, key, fingerprint, SpendResult,
                                    body, at)

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
        """Reserve ``amount`` for a later capture, allocated like a credit-only spend.

        The hold ends at ``expires_at`` (aware, in the future) or after ``window`` of elapsed
        time (4 hours is 4 hours of UTC, also across a DST change); give exactly one. Raises
        ``SpendDeniedError`` when credit cannot cover it."""
        check_positive(amount)
        if (expires_at is None) == (window is None):
            raise InvalidInputError("expires_at", "give exactly one of expires_at and window")
        expiry = None if expires_at is None else require_aware(expires_at, "expires_at")
        if window is not None and (not isinstance(window, timedelta) or window <= timedelta(0)):
            raise InvalidTimeError("window", "must be a positive timedelta", window)
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(
            key, "hold", wallet_id=wallet_id, amount=amount, expires_at=expiry,
            window=None if window is None else str(window.total_seconds()), metadata=meta,
        )
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]

            def body() -> Hold:
                check_currency(wallet, amount)
                try:
                    ends = expiry if expiry is not None else at + window  # type: ignore[operator]
                except OverflowError as exc:
                    raise InvalidTimeError("window", "ends beyond the last representable instant",
                                           window) from exc
                if ends <= at:
                    raise InvalidTimeError("expires_at", "must be in the future", expires_at)
                decision = decide(self._env, uow, wallet, SpendRequest(amount), at, rules=False)
                if not decision.allowed:
                    raise SpendDeniedError(decision, "hold")
                lots = {p.lot_id: uow.get_lot(p.lot_id) for p in decision.allocation
                        if p.lot_id is not None}
                change = _w.hold(
                    wallet, hold_id=self._env.ids.new("hold"), allocation=decision.allocation,
                    lots=lots, expires_at=ends, info=self._env.info(at, key, actor, meta),
                )
                record(self._env, uow, change)
                return change.holds[0]

            return idempotent(uow, wallet.tenant_id, key, request, Hold, body, at)

    def _locked_hold(self, uow: UnitOfWork, hold_id: str) -> tuple[Wallet, Hold]:
        check_name(hold_id, "hold_id")
        wallet_id = uow.get_hold(hold_id).wallet_id
        wallet = lock(self._env, uow, wallet_id, fields=("hold_id",))[wallet_id]
        return wallet, uow.get_hold(hold_id)

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
        ``HoldExpiredError`` at or after its expiry."""
        if amount is not None:
            check_positive(amount)
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(key, "capture", hold_id=hold_id, amount=amount, metadata=meta)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet, held = self._locked_hold(uow, hold_id)

            def body() -> CaptureResult:
                take = held.amount if amount is None else amount
                check_currency(wallet, take)
                if take > held.amount:
                    raise InvalidAmountError(
                        "amount", f"must not exceed the held amount ({held.amount})", amount
                    )
                if held.status is not HoldStatus.ACTIVE:
                    raise HoldStateError(held.id, held.status.value, "capture")
                if at >= held.expires_at:
                    raise HoldExpiredError(held.id)
                lots = lots_of(uow, held.allocation)
                change = _w.capture(wallet, held, take, lots, self._env.info(at, key, actor, meta),
                                    ends(self._env, uow, lots))
                record(self._env, uow, change)
                charge = change.charges[0]
                breakage = breakage_of(change.entry, wallet.tenant_id)
                return CaptureResult(
                    change.entry.id, held.id, take, held.amount - take, charge.allocation,
                    breakage,
                )

            return idempotent(uow, wallet.tenant_id, key, request, CaptureResult, body, at)

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
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(key, "void", hold_id=hold_id, metadata=meta)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet, held = self._locked_hold(uow, hold_id)

            def body() -> Hold:
                if held.status is not HoldStatus.ACTIVE:
                    raise HoldStateError(held.id, held.status.value, "void")
                lots = lots_of(uow, held.allocation)
                change = _w.release(
                    wallet, held, lots, HoldStatus.VOIDED, self._env.info(at, key, actor, meta),
                    ends(self._env, uow, lots),
                )
                record(self._env, uow, change)
                return change.holds[0]

            return idempotent(uow, wallet.tenant_id, key, request, Hold, body, at)

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
        check_positive(amount)
        check_name(from_wallet_id, "wallet_id")
        check_name(to_wallet_id, "to_wallet_id")
        if group_id is not None:
            check_name(group_id, "group_id")
        if from_wallet_id == to_wallet_id:
            raise InvalidInputError("to_wallet_id", "must differ from the source wallet",
                                    to_wallet_id)
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        extra = {} if group_id is None else {"group_id": group_id}
        request = request_fields(
            key, "transfer", wallet_id=from_wallet_id, to_wallet_id=to_wallet_id, amount=amount,
            metadata=meta, **extra,
        )
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallets = lock(self._env, uow, from_wallet_id, to_wallet_id,
                                 fields=("wallet_id", "to_wallet_id"))
            source, target = wallets[from_wallet_id], wallets[to_wallet_id]

            def body() -> Receipt:
                if target.tenant_id != source.tenant_id:
                    raise TenantMismatchError("to_wallet_id", source.tenant_id, target.tenant_id)
                check_currency(source, amount)
                check_currency(target, amount, "to_wallet_id")
                fee = charges.fee(self._env, uow, source, Operation.TRANSFER_OUT, amount)
                check_headroom(source, amount if fee is None else amount + fee)
                check_limits(self._env, uow, source, Operation.TRANSFER_OUT, amount, at)
                check_max_balance(self._env, uow, target, Operation.TRANSFER_IN,
                                        target.total + amount)
                info = self._env.info(at, key, actor, meta)
                lot = group_lot(self._env, uow, target, amount, group_id, info, "transfer")
                change = _w.transfer(source, target, amount, info, lot=lot, fee=fee)
                record(self._env, uow, change)
                return Receipt(change.entry.id, EntryKind.TRANSFER, source.id, amount, at,
                               target.id, lot_id=None if lot is None else lot.id, fee=fee)

            return idempotent(uow, source.tenant_id, key, request, Receipt, body, at)

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
        return self._move_out(wallet_id, amount, Operation.PAYOUT, method, None,
                              idempotency_key, actor, metadata)

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
        return self._move_out(wallet_id, amount, Operation.CREDIT, None, reason,
                              idempotency_key, actor, metadata)

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
        return self._move_out(wallet_id, amount, Operation.DEBIT, None, reason,
                              idempotency_key, actor, metadata)

    def _move_out(
        self,
        wallet_id: str,
        amount: Money,
        operation: Operation,
        method: str | None,
        reason: str | None,
        idempotency_key: str | None,
        actor: str | None,
        metadata: Mapping[str, str] | None,
    ) -> Receipt:
        """A payout, credit or debit: one posting against a tenant account, fees, limits."""
        check_positive(amount)
        if method is not None:
            check_name(method, "method")
        if reason is not None:
            check_optional_text(reason, "reason")
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(key, operation.value, wallet_id=wallet_id, amount=amount,
                           method=method, reason=reason, metadata=meta)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]

            def body() -> Receipt:
                check_currency(wallet, amount)
                fee = charges.fee(self._env, uow, wallet, operation, amount)
                extra = {} if reason is None else {"reason": reason}
                info = self._env.info(at, key, actor, {**meta, **extra})
                if operation is Operation.CREDIT:
                    if fee is not None and fee >= amount:
                        raise InvalidAmountError(
                            "amount", f"must be more than its fee ({fee})", amount)
                    check_max_balance(self._env, uow, wallet, operation,
                                            less(wallet.total + amount, fee))
                    change = _w.adjust(wallet, amount, info, fee=fee)
                else:
                    check_headroom(wallet, amount if fee is None else amount + fee)
                    if method is not None:  # a payout
                        check_limits(self._env, uow, wallet, operation, amount, at)
                        change = _w.payout(wallet, amount, method, info, fee=fee)
                    else:
                        change = _w.adjust(wallet, -amount, info, fee=fee)
                record(self._env, uow, change)
                return Receipt(change.entry.id, change.entry.kind, wallet.id, amount, at,
                               fee=fee)

            return idempotent(uow, wallet.tenant_id, key, request, Receipt, body, at)

    def _charge(self, uow: UnitOfWork, entry_id: str) -> tuple[Wallet, Charge]:
        check_name(entry_id, "entry_id")
        entry = uow.get_entry(entry_id)
        charge = uow.get_charge(entry_id)
        if charge is None:
            raise InvalidInputError(
                "entry_id", f"must be a spend or capture entry (it is a {entry.kind.value})",
                entry_id,
            )
        wallet = lock(self._env, uow, charge.wallet_id, fields=("entry_id",))[charge.wallet_id]
        current = uow.get_charge(entry_id)
        assert current is not None
        return wallet, current

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
        if amount is not None:
            check_positive(amount)
        check_optional_text(reason, "reason")
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(
            key, "refund", entry_id=entry_id, amount=amount, reason=reason, metadata=meta
        )
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet, charge = self._charge(uow, entry_id)

            def body() -> RefundResult:
                give = charge.refundable if amount is None else amount
                check_currency(wallet, give)
                if give > charge.refundable or give.is_zero():
                    raise RefundExceedsOriginalError(charge.entry_id, give, charge.refundable)
                parts = _w.refundable_parts(charge)
                lots = lots_of(uow, tuple(parts))
                change, refunded, breakage = _w.refund(
                    wallet, charge, give, lots,
                    self._env.info(at, key, actor, {**meta, "reason": reason}),
                    ends(self._env, uow, lots),
                )
                record(self._env, uow, change)
                return RefundResult(change.entry.id, charge.entry_id, give, refunded, breakage)

            return idempotent(uow, wallet.tenant_id, key, request, RefundResult, body, at)

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
        check_optional_text(reason, "reason")
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(key, "reverse", entry_id=entry_id, reason=reason, metadata=meta)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            check_name(entry_id, "entry_id")
            original = uow.get_entry(entry_id)
            if original.kind not in _REVERSIBLE:
                raise InvalidInputError(
                    "entry_id",
                    "must be a top_up, award or transfer entry"
                    f" (it is a {original.kind.value})",
                    entry_id,
                )
            wallets = lock(self._env, uow, *original.wallet_ids, fields=("entry_id",))
            first = wallets[original.wallet_ids[0]]

            def body() -> Receipt:
                done = uow.reversal_of(original.id)
                if done is not None:
                    raise AlreadyReversedError(original.id, done)
                lots: dict[str, Lot] = {}
                groups = Groups(uow)
                for posting in original.postings:
                    ref = parse_account(posting.account)
                    if not ref.is_wallet:
                        continue
                    wallet = wallets[ref.owner]
                    if ref.kind is _AccountKind.LOT:
                        assert ref.name is not None
                        lot = uow.get_lot(ref.name)
                        lots[lot.id] = lot
                        # An expired remainder belongs to breakage (the sweep books it).
                        end = self._env.lot_expiry(lot, groups)
                        expired = end is not None and at >= end
                        left = Money.zero(lot.remaining.currency) if expired else lot.remaining
                        if left < posting.amount:
                            raise InsufficientFundsError(wallet.id, posting.amount, left)
                    elif ref.kind is _AccountKind.OPEN and posting.amount.is_positive():
                        headroom = wallet.open - wallet.floor
                        if posting.amount > headroom:
                            raise InsufficientFundsError(
                                wallet.id, posting.amount,
                                max(headroom, Money.zero(wallet.currency)),
                            )
                change = _w.reverse(
                    original, list(wallets.values()), lots,
                    self._env.info(at, key, actor, {**meta, "reason": reason}),
                )
                record(self._env, uow, change)
                moved = Money.sum(
                    (p.amount for p in original.postings
                     if parse_account(p.account).is_wallet and p.amount.is_positive()),
                    first.currency,
                )
                return Receipt(change.entry.id, EntryKind.REVERSAL, first.id, moved, at)

            return idempotent(uow, first.tenant_id, key, request, Receipt, body, at)

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
        check_name(tenant_id, "tenant_id")
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        check_optional_text(name, "name")
        if not isinstance(condition, SpendCondition):
            raise InvalidInputError("condition", "must be a SpendCondition", condition)
        if group_id is not None:
            check_name(group_id, "group_id")
        group = ConditionGroup(
            id=group_id if group_id is not None else self._env.ids.new("cg"), tenant_id=tenant_id,
            name=name, condition=condition, version=1, valid_from=valid_from,
            valid_until=valid_until,
        )
        with self.store.unit_of_work() as uow:
            try:
                uow.lock_condition_group(group.id)
            except ConditionGroupNotFoundError:
                pass
            else:
                raise ConflictError(f"condition group {group.id!r} already exists")
            uow.put_condition_group(group)
            uow.commit()
        return group

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
        check_name(group_id, "group_id")
        check_optional_text(name, "name", required=False)
        if condition is not None and not isinstance(condition, SpendCondition):
            raise InvalidInputError("condition", "must be a SpendCondition", condition)
        with self.store.unit_of_work() as uow:
            group = uow.lock_condition_group(group_id)
            if self.tenant_id is not None and group.tenant_id != self.tenant_id:
                raise TenantMismatchError("group_id", self.tenant_id, group.tenant_id)
            changed = group if condition is None else group.with_condition(condition)
            updates: dict[str, Any] = {}
            if name is not None:
                updates["name"] = name
            if not isinstance(valid_from, Keep):
                updates["valid_from"] = valid_from
            if not isinstance(valid_until, Keep):
                updates["valid_until"] = valid_until
            changed = attrs.evolve(changed, **updates)
            if changed != group:
                uow.put_condition_group(changed)
                uow.commit()
            return changed

    def condition_group(self, group_id: str) -> ConditionGroup:
        """The condition group; ``ConditionGroupNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import condition_group

        return condition_group(self._env, group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's condition groups, by name then id."""
        from prepaid_wallet.app.queries.wallet import condition_groups

        return condition_groups(self._env, tenant_id)

    # -- automatic top-ups --------------------------------------------------------------------

    def set_top_up_rule(self, wallet_id: str, rule: TopUpRule | None) -> TopUpRule | None:
        """Give the wallet an automatic top-up rule (``None`` removes it); the tenant must have
        automatic top-ups enabled (``TenantRules.automatic_top_ups``). From then on an operation
        that leaves the open balance at or below the rule's threshold starts a top-up intent in
        its own unit of work (one in flight per wallet; a top-up's own credit never starts
        another); :meth:`process_top_ups` charges it."""
        from prepaid_wallet.rules.topup import TopUpRule

        if rule is not None and not isinstance(rule, TopUpRule):
            raise InvalidInputError("rule", "must be a TopUpRule or None", rule)
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]
            if rule is not None:
                if not self._env.tenant_rules(wallet.tenant_id).automatic_top_ups:
                    raise InvalidInputError("rule", "needs a tenant with automatic top-ups "
                                            "(TenantRules.automatic_top_ups)", rule)
                if rule.currency != wallet.currency:
                    raise CurrencyMismatchError(wallet.currency, rule.currency, "rule")
            uow.put_setting(wallet.id, TOP_UP_RULE,
                            None if rule is None else _codec.dumps(rule))
            uow.commit()
        return rule

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
        from prepaid_wallet.rules.topup import IntentStatus

        gateway = self._require_gateway()
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit", "must be a positive int", limit)
        with self.store.unit_of_work(read_only=True) as uow:
            pending = uow.pending_top_up_intents(limit)
        credited: list[str] = []
        given_up: list[str] = []
        still: list[str] = []
        for _, intent in pending:
            final, entry_id = self._drive(gateway, intent.id)
            if entry_id is not None:
                credited.append(entry_id)
            if final is not None and final.status is IntentStatus.FAILED:
                given_up.append(final.id)
            elif final is not None and final.status is IntentStatus.PENDING:
                still.append(final.id)
        return TopUpReport(tuple(credited), tuple(given_up), tuple(still))

    def report_charge(self, idempotency_key: str, outcome: ChargeOutcome) -> TopUpReport:
        """A report from the payment provider (a webhook) of the outcome of the charge made
        under ``idempotency_key``: recorded on its intent, and a success credited -- exactly
        once, however many times it is reported. A report for a charge already settled, or of
        an intent already finished, changes nothing; an unknown key raises
        ``InvalidInputError``."""
        from prepaid_wallet.rules.topup import (
            ChargeOutcome,
            ChargeStatus,
            IntentStatus,
            record_outcome,
        )

        if not isinstance(outcome, ChargeOutcome):
            raise InvalidInputError("outcome", "must be a ChargeOutcome", outcome)
        if not isinstance(idempotency_key, str) or ":" not in idempotency_key:
            raise InvalidInputError("idempotency_key", "must be the key of a top-up attempt",
                                    idempotency_key)
        intent_id = idempotency_key.split(":", 1)[0]
        with self.store.unit_of_work(read_only=True) as uow:
            intent = uow.get_top_up_intent(intent_id)
        if intent is None or intent.attempt(idempotency_key) is None:
            raise InvalidInputError("idempotency_key", "must be the key of a top-up attempt",
                                    idempotency_key)
        if outcome.status is not ChargeStatus.UNKNOWN:
            self._save_intent(intent_id, functools.partial(
                record_outcome, idempotency_key=idempotency_key, outcome=outcome,
                now=self._env.now()))
        if self.gateway is None:
            return TopUpReport((), (), (intent_id,))
        final, entry_id = self._drive(self.gateway, intent_id)
        failed = final is not None and final.status is IntentStatus.FAILED
        pending = final is not None and final.status is IntentStatus.PENDING
        return TopUpReport(() if entry_id is None else (entry_id,),
                           (intent_id,) if failed else (), (intent_id,) if pending else ())

    def start_scheduled_top_ups(self) -> tuple[str, ...]:
        """Start the automatic top-ups that wallets' rules schedule (``TopUpRule.schedule``, an
        RRULE in ``schedule_zone``, anchored at the wallet's opening): for each wallet of a
        tenant with automatic top-ups whose rule has a schedule, one intent for the latest
        occurrence that came since the last one started (missed occurrences are not charged one
        by one: a wallet is topped up once, up to its rule's amount or target), unless one is
        already in flight or the wallet is already at its target. Each wallet in a unit of
        work of its own; run it as a scheduled job, then :meth:`process_top_ups`. Reads every
        wallet of those tenants. Returns the ids of the intents started."""
        at = self._env.now()
        started: list[str] = []
        for tenant_id in sorted(self.rules):
            if not self.rules[tenant_id].automatic_top_ups or (
                self.tenant_id is not None and tenant_id != self.tenant_id
            ):
                continue
            with self.store.unit_of_work(read_only=True) as uow:
                wallet_ids = [w.id for w in uow.iter_wallets(tenant_id)]
            for wallet_id in wallet_ids:
                intent_id = self._scheduled_intent(wallet_id, at)
                if intent_id is not None:
                    started.append(intent_id)
        return tuple(started)

    def _scheduled_intent(self, wallet_id: str, at: datetime) -> str | None:
        from prepaid_wallet.rules.topup import (
            TopUpIntent,
            TopUpReason,
            next_occurrence,
            scheduled_top_up,
        )

        with self.store.unit_of_work() as uow:
            wallet = uow.lock_wallets([wallet_id])[wallet_id]
            rule = top_up_rule(self._env, uow, wallet)
            if rule is None or rule.schedule is None or rule.currency != wallet.currency:
                return None
            last_text = uow.get_setting(wallet.id, TOP_UP_SCHEDULE)
            after = wallet.created_at if last_text is None else datetime.fromisoformat(last_text)
            due = None
            occurrence = next_occurrence(rule, after, anchor=wallet.created_at)
            while occurrence is not None and occurrence <= at:
                due = occurrence
                occurrence = next_occurrence(rule, occurrence, anchor=wallet.created_at)
            if due is None:
                return None
            uow.put_setting(wallet.id, TOP_UP_SCHEDULE, due.isoformat())
            amount = scheduled_top_up(rule, wallet.open)
            intent_id = None
            if amount is not None and uow.pending_top_up_intent(wallet.id) is None:
                intent_id = self._env.ids.new("tu")
                uow.put_top_up_intent(wallet.tenant_id, TopUpIntent(
                    id=intent_id, wallet_id=wallet.id, amount=amount,
                    reason=TopUpReason.SCHEDULE, created_at=at))
            uow.commit()
            return intent_id

    def _require_gateway(self) -> PaymentGateway:
        if self.gateway is None:
            raise InvalidInputError("gateway", "automatic top-ups need the service to have a "
                                    "payment gateway (WalletService(gateway=...))")
        return self.gateway

    @staticmethod
    def _locked_intent(uow: UnitOfWork, intent_id: str) -> tuple[Wallet, TopUpIntent] | None:
        """The intent's wallet, locked, and the intent as it is under that lock; None if the
        intent is unknown."""
        stored = uow.get_top_up_intent(intent_id)
        if stored is None:
            return None
        wallet = uow.lock_wallets([stored.wallet_id])[stored.wallet_id]
        return wallet, uow.get_top_up_intent(intent_id) or stored

    def _save_intent(self, intent_id: str, change: Callable[[TopUpIntent], TopUpIntent]
                     ) -> TopUpIntent | None:
        """Apply ``change`` to the stored intent in a unit of work of its own (wallet locked)."""
        with self.store.unit_of_work() as uow:
            locked = self._locked_intent(uow, intent_id)
            if locked is None:
                return None
            wallet, current = locked
            updated = change(current)
            if updated != current:
                uow.put_top_up_intent(wallet.tenant_id, updated)
                uow.commit()
            return updated

    def _drive(self, gateway: PaymentGateway, intent_id: str
               ) -> tuple[TopUpIntent | None, str | None]:
        """Run one intent's state machine until it waits or ends; returns its last state and
        the credit entry posted by this run, if any."""
        from prepaid_wallet.rules.topup import Charge as _Charge
        from prepaid_wallet.rules.topup import (
            ChargeStatus,
            Credit,
            Done,
            GiveUp,
            Settle,
            give_up,
            next_step,
            record_outcome,
            start_attempt,
        )

        entry_id: str | None = None
        intent: TopUpIntent | None = None
        for _ in range(_MAX_STEPS):
            now = self._env.now()
            with self.store.unit_of_work(read_only=True) as uow:
                intent = uow.get_top_up_intent(intent_id)
                if intent is None:
                    return None, entry_id
                wallet = uow.get_wallet(intent.wallet_id)
                rule = top_up_rule(self._env, uow, wallet)
            if rule is None:
                return intent, entry_id  # the rule was removed: left as it is
            step = next_step(intent, rule, now)
            if isinstance(step, _Charge):
                started = self._save_intent(
                    intent_id, functools.partial(start_attempt, step=step, now=now))
                if started is None or started.attempt(step.idempotency_key) is None:
                    continue
                outcome = gateway.charge(method=step.method, amount=step.amount,
                                         idempotency_key=step.idempotency_key)
                self._save_intent(intent_id, functools.partial(
                    record_outcome, idempotency_key=step.idempotency_key, outcome=outcome,
                    now=self._env.now()))
            elif isinstance(step, Settle):
                outcome = gateway.lookup(idempotency_key=step.idempotency_key)
                if outcome.status is ChargeStatus.UNKNOWN:
                    # The request may never have arrived: send it again under the same key (the
                    # gateway never charges a key twice), never on another method.
                    outcome = gateway.charge(method=step.method, amount=intent.amount,
                                             idempotency_key=step.idempotency_key)
                if outcome.status is ChargeStatus.UNKNOWN:
                    return intent, entry_id  # still unknown: settled by a later run
                self._save_intent(intent_id, functools.partial(
                    record_outcome, idempotency_key=step.idempotency_key, outcome=outcome,
                    now=self._env.now()))
            elif isinstance(step, Credit):
                posted = self._credit_intent(intent_id, step, now)
                entry_id = posted if posted is not None else entry_id
            elif isinstance(step, GiveUp):
                self._save_intent(intent_id, functools.partial(give_up, step=step, now=now))
            elif isinstance(step, Done):
                return intent, entry_id
            else:  # Wait: a back-off is running
                return intent, entry_id
        return intent, entry_id

    def _credit_intent(self, intent_id: str, step: Credit, at: datetime) -> str | None:
        """Post a succeeded automatic top-up to the open balance exactly once (idempotency key
        of the intent) and mark the intent credited, in one unit of work."""
        from prepaid_wallet.rules.topup import credit_key, mark_credited

        with self.store.unit_of_work() as uow:
            locked = self._locked_intent(uow, intent_id)
            if locked is None:
                return None
            wallet, intent = locked
            if intent.credited:
                return None
            key = credit_key(intent)
            entry_id: str | None = None
            if uow.get_idempotency(wallet.tenant_id, key) is None:
                method = step.attempt.method
                fee = charges.fee(self._env, uow, wallet, Operation.TOP_UP, step.amount)
                if fee is not None and fee >= step.amount:
                    fee = None  # a fee may never swallow an automatic top-up
                change = _w.top_up(wallet, step.amount, method,
                                   self._env.info(at, key, None, {"top_up_intent": intent.id}),
                                   fee=fee)
                record(self._env, uow, change)
                entry_id = change.entry.id
                uow.put_idempotency(IdempotencyRecord(
                    wallet.tenant_id, key, "automatic_top_up",
                    canonical_request("automatic_top_up", intent=intent.id), "ok",
                    json.dumps(entry_id), at))
            uow.put_top_up_intent(wallet.tenant_id, mark_credited(intent))
            uow.commit()
            return entry_id

    def _spend_top_up(self, wallet_id: str, request: SpendRequest) -> None:
        """Before a credit-only spend: when credit falls short and the wallet's rule tops up at
        spend time, charge the shortfall (at least the rule's minimum) and credit it, so the
        spend can go through; nothing when no top-up may start or the charge does not
        succeed (the spend is then refused as usual)."""
        gateway = self.gateway
        if gateway is None or request.mode is not PaymentMode.CREDIT_ONLY:
            return
        from prepaid_wallet.rules.topup import TopUpIntent, TopUpReason, spend_top_up

        with self.store.unit_of_work(read_only=True) as uow:
            # Most spends: no rule that tops up at spend time, so nothing to lock or decide.
            found = top_up_rule(self._env, uow, uow.get_wallet(wallet_id))
            if found is None or not found.at_spend:
                return
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet = lock(self._env, uow, wallet_id)[wallet_id]
            rule = top_up_rule(self._env, uow, wallet)
            if rule is None or not rule.at_spend or rule.currency != wallet.currency:
                return
            if request.amount.currency != wallet.currency:
                return
            decision = decide(self._env, uow, wallet, request, at)
            if decision.allowed or decision.reasons != (Reason.INSUFFICIENT_CREDIT,):
                return
            amount = spend_top_up(rule, decision.shortfall)
            if amount is None or uow.pending_top_up_intent(wallet.id) is not None:
                return
            intent = TopUpIntent(id=self._env.ids.new("tu"), wallet_id=wallet.id, amount=amount,
                                 reason=TopUpReason.SPEND, created_at=at)
            uow.put_top_up_intent(wallet.tenant_id, intent)
            uow.commit()
        self._drive(gateway, intent.id)

    # -- low-balance reminders ----------------------------------------------------------------

    def events(self, tenant_id: str, *, limit: int = 100) -> list[LowBalanceEvent]:
        """The tenant's low-balance events not yet acknowledged, oldest first (at most
        ``limit``). Each is written in the same unit of work as the operation that took a
        wallet's open balance across thresholds (``TenantRules.low_balance``): none is lost.
        Acknowledge the ones handled with :meth:`ack_events`, so none is sent twice."""
        check_name(tenant_id, "tenant_id")
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit", "must be a positive int", limit)
        with self.store.unit_of_work(read_only=True) as uow:
            found = uow.pending_events(tenant_id, limit)
        out = []
        for event in found:
            data = json.loads(event.payload)
            out.append(LowBalanceEvent(
                id=event.id, tenant_id=event.tenant_id, wallet_id=event.wallet_id,
                owner_id=data["owner_id"], entry_id=data["entry_id"], at=event.created_at,
                open=_codec.from_data(Money, data["open"]),
                floor=_codec.from_data(Money, data["floor"]),
                thresholds=tuple(data["thresholds"]),
            ))
        return out

    def ack_events(self, tenant_id: str, event_ids: Iterable[str]) -> int:
        """Acknowledge events of the tenant (handled: not returned again). Returns how many
        were pending; unknown or already acknowledged ids are ignored."""
        check_name(tenant_id, "tenant_id")
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        if isinstance(event_ids, str | bytes) or not isinstance(event_ids, Iterable):
            raise InvalidInputError("event_ids", "must be a collection of event ids", event_ids)
        ids = [check_name(i, "event_ids") for i in event_ids]
        with self.store.unit_of_work() as uow:
            done = uow.ack_events(tenant_id, ids)
            uow.commit()
        return done

    def low_balance_report(self, tenant_id: str, threshold: str | Money) -> list[LowBalanceLine]:
        """The tenant's wallets whose open balance is at or below ``threshold`` (the label of
        one of the tenant's thresholds, or an amount), by wallet id, each with its owner, open
        balance, floor and the top-up it needs: the least that takes its open balance back
        above the threshold (for reminder e-mails). Wallets in another currency are left
        out."""
        check_name(tenant_id, "tenant_id")
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        if isinstance(threshold, str):
            rule = self._env.tenant_rules(tenant_id).low_balance
            if rule is None:
                raise InvalidInputError("threshold", "must be an amount: the tenant has no "
                                        "low-balance thresholds", threshold)
            level: Threshold = rule.threshold(threshold)
            limit = level.amount
        elif isinstance(threshold, Money):
            limit = threshold
        else:
            raise InvalidInputError("threshold", "must be a threshold label or a Money",
                                    threshold)
        step = Money(1, limit.currency)
        with self.store.unit_of_work(read_only=True) as uow:
            return [
                LowBalanceLine(wallet.id, wallet.owner_id, wallet.open, wallet.floor,
                               limit - wallet.open + step)
                for wallet in uow.iter_wallets(tenant_id)
                if wallet.currency == limit.currency and wallet.open <= limit
            ]

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
        at = self._env.now()
        entry_ids: list[str] = []
        waived = 0
        for tenant_id in sorted(self.rules):
            if self.tenant_id is not None and tenant_id != self.tenant_id:
                continue
            fees = self._env.tenant_rules(tenant_id).periodic_fees
            if not fees:
                continue
            with self.store.unit_of_work(read_only=True) as uow:
                wallet_ids = [w.id for w in uow.iter_wallets(tenant_id)]
            for wallet_id in wallet_ids:
                for fee in fees:
                    charged, short = self._charge_periodic(wallet_id, fee, at)
                    entry_ids.extend(charged)
                    waived += short
        return FeeReport(tuple(entry_ids), waived)

    def _charge_periodic(self, wallet_id: str, fee: PeriodicFee, at: datetime
                         ) -> tuple[list[str], int]:
        """Charge ``fee``'s occurrences due on one wallet, one unit of work each."""
        setting = periodic_fee_setting(fee.name)
        with self.store.unit_of_work(read_only=True) as uow:
            wallet = uow.get_wallet(wallet_id)
            last = uow.get_setting(wallet_id, setting)
            groups = stored_groups(uow, wallet_id) if fee.owner_groups else frozenset()
        if wallet.currency != fee.amount.currency or not fee.applies(groups):
            return [], 0
        since = wallet.created_at if last is None else max(
            wallet.created_at, datetime.fromisoformat(last))
        entry_ids: list[str] = []
        waived = 0
        for occurrence in fee.occurrences(since, at):
            key = f"periodic-fee:{wallet_id}:{fee.occurrence_key(occurrence)}"
            request = canonical_request("periodic_fee", wallet_id=wallet_id, fee=fee.name,
                                        occurrence=occurrence)
            with self.store.unit_of_work() as uow:
                wallet = uow.lock_wallets([wallet_id])[wallet_id]
                if uow.get_idempotency(wallet.tenant_id, key) is not None:
                    continue  # charged by another run
                headroom = max(wallet.open - wallet.floor, Money.zero(wallet.currency))
                amount = min(fee.amount, headroom)
                payload: str | None = None
                if amount.is_positive():
                    change = _w.charge_fee(wallet, amount, self._env.info(
                        at, key, None, {"fee": fee.name, "occurrence": occurrence.isoformat()}))
                    record(self._env, uow, change)
                    entry_ids.append(change.entry.id)
                    payload = change.entry.id
                if amount < fee.amount:
                    waived += 1
                uow.put_idempotency(IdempotencyRecord(
                    wallet.tenant_id, key, "periodic_fee", request, "ok",
                    json.dumps(payload), at))
                uow.put_setting(wallet_id, setting, occurrence.isoformat())
                uow.commit()
        return entry_ids, waived

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
        check_name(lot_id, "lot_id")
        expiry = resolve_expiry(expires_at)
        if amount is not None:
            check_positive(amount)
        meta, key, actor = check_common(metadata, idempotency_key, actor)
        request = request_fields(key, "extend_expiry", lot_id=lot_id, expires_at=expiry,
                           amount=amount, metadata=meta)
        at = self._env.now()
        with self.store.unit_of_work() as uow:
            wallet_id = uow.get_lot(lot_id).wallet_id
            wallet = lock(self._env, uow, wallet_id, fields=("lot_id",))[wallet_id]
            lot = uow.get_lot(lot_id)

            def body() -> Lot:
                moved = lot.remaining if amount is None else amount
                check_currency(wallet, moved)
                if expiry is not None and expiry <= at:
                    raise InvalidTimeError("expires_at", "must be in the future", expires_at)
                ends = self._env.lot_expiry(lot, Groups(uow))
                if ends is not None and at >= ends:
                    raise InvalidTimeError(
                        "lot_id", "must name a lot that has not expired (an expired remainder "
                        "is breakage)", lot_id)
                if not moved.is_positive() or moved > lot.remaining:
                    raise InvalidAmountError(
                        "amount", f"must be positive and at most what lot {lot.id!r} holds "
                        f"({lot.remaining})", moved,
                    )
                new_id = self._env.ids.new("lot")
                change = _w.extend_lot(
                    wallet, lot, new_lot_id=new_id, amount=moved, expires_at=expiry,
                    info=self._env.info(at, key, actor, {**meta, "reason": lot.reason}),
                )
                record(self._env, uow, change)
                return next(x for x in change.lots if x.id == new_id)

            return idempotent(uow, wallet.tenant_id, key, request, Lot, body, at)

    def expire_due(self) -> ExpiryReport:
        """Release every active hold whose window has ended and book every expired lot's
        remainder as breakage (a lot expires at its own expiry or at its condition group's
        end, whichever is first), each exactly once (one entry per hold and per lot, each in its
        own unit of work). Safe to run repeatedly and from several processes; its cost grows
        with what is due, not with all lots. :meth:`sweep_expired` does the same a row at a
        time."""
        entry_ids: list[str] = []
        holds_released = 0
        for done in self.sweep_expired():
            entry_ids.append(done.entry_id)
            holds_released += done.kind == "hold"
        return ExpiryReport(len(entry_ids) - holds_released, holds_released, tuple(entry_ids))

    def sweep_expired(self) -> Iterator[Expiry]:
        """:meth:`expire_due` as a stream: yields each :class:`~prepaid_wallet.results.Expiry`
        as soon as its unit of work has committed (holds first, then lots, soonest due first).
        Memory stays bounded however much is due: due rows are read a batch at a time and no
        unit of work is open while the caller handles a row. Stopping early is safe; the next
        sweep books the rest."""
        at = self._env.now()
        yield from self._sweep(
            lambda uow: [h.id for h in uow.due_holds(at, _SWEEP_BATCH)],
            lambda hold_id: self._release_due_hold(hold_id, at),
        )
        yield from self._sweep(
            lambda uow: [lot.id for lot in uow.due_lots(at, _SWEEP_BATCH)],
            lambda lot_id: self._expire_due_lot(lot_id, at),
        )

    def _sweep(
        self, due: Callable[[UnitOfWork], list[str]], book: Callable[[str], Expiry | None]
    ) -> Iterator[Expiry]:
        """Book what ``due`` lists, a batch at a time, until it lists nothing new. A row that
        turns out not to be due after all (or was booked by another sweep) is remembered so
        the next batch skips it; rows that are booked leave the due index."""
        skipped: set[str] = set()
        while True:
            with self.store.unit_of_work(read_only=True) as uow:
                batch = [row_id for row_id in due(uow) if row_id not in skipped]
            if not batch:
                return
            for row_id in batch:
                done = book(row_id)
                if done is None:
                    skipped.add(row_id)
                else:
                    yield done

    def _release_due_hold(self, hold_id: str, at: datetime) -> Expiry | None:
        with self.store.unit_of_work() as uow:
            wallet, held = self._locked_hold(uow, hold_id)
            if held.status is not HoldStatus.ACTIVE or at < held.expires_at:
                return None
            lots = lots_of(uow, held.allocation)
            change = _w.release(
                wallet, held, lots, HoldStatus.EXPIRED,
                self._env.info(at, None, None, None), ends(self._env, uow, lots),
            )
            record(self._env, uow, change)
            uow.commit()
        return Expiry("hold", hold_id, wallet.id, held.amount, change.entry.id, at)

    def _expire_due_lot(self, lot_id: str, at: datetime) -> Expiry | None:
        with self.store.unit_of_work() as uow:
            wallet_id = uow.get_lot(lot_id).wallet_id
            wallet = uow.lock_wallets([wallet_id])[wallet_id]
            lot = uow.get_lot(lot_id)
            group = None if lot.group_id is None else uow.get_condition_group(lot.group_id)
            if not lot.is_live or lot.expired_entry_id or not self._env.expiry.is_expired(
                lot, at, group
            ):
                return None
            change = _w.expire_lot(wallet, lot, self._env.info(at, None, None, None))
            record(self._env, uow, change)
            uow.commit()
        return Expiry("lot", lot_id, wallet_id, lot.remaining, change.entry.id, at)

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
