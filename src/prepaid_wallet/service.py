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

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prepaid_wallet import _codec
from prepaid_wallet import wallet as _w
from prepaid_wallet.clock import Clock, SystemClock, require_aware
from prepaid_wallet.errors import (
    AlreadyReversedError,
    CurrencyMismatchError,
    HoldExpiredError,
    HoldStateError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
    RefundExceedsOriginalError,
    RefusedError,
    SpendDeniedError,
    TenantMismatchError,
)
from prepaid_wallet.idempotency import (
    canonical_request,
    check_replay,
    decode_refusal,
    encode_refusal,
)
from prepaid_wallet.ids import IdFactory, RandomIds, check_name
from prepaid_wallet.ledger import GENESIS, Entry, EntryKind, lot_account, parse_account
from prepaid_wallet.ledger import AccountKind as _AccountKind
from prepaid_wallet.money import Money, currency_exponent
from prepaid_wallet.policies import (
    Decision,
    PaymentMode,
    SpendOrder,
    SpendOrderFunction,
    SpendRequest,
    decide_spend,
)
from prepaid_wallet.results import (
    Balance,
    CaptureResult,
    ExpiryReport,
    LotMovement,
    Problem,
    Receipt,
    RefundResult,
    SpendResult,
    Statement,
    StatementLine,
    VerifyReport,
)
from prepaid_wallet.storage.base import IdempotencyRecord, Store, UnitOfWork
from prepaid_wallet.wallet import Charge, EntryInfo, Hold, HoldStatus, Lot, Wallet

__all__ = ["WalletService"]

_T = TypeVar("_T")

_MAX_METADATA_ITEMS = 32
_MAX_TEXT = 500
_MAX_PRIORITY = 2**31 - 1
_SWEEP_BATCH = 200
_REVERSIBLE = frozenset({EntryKind.TOP_UP, EntryKind.AWARD, EntryKind.TRANSFER})


# -- argument checks (pure) ----------------------------------------------------------------------


def _check_positive(amount: object, field: str = "amount") -> Money:
    if not isinstance(amount, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", amount)
    if amount.minor_units <= 0:
        raise InvalidAmountError(field, "must be greater than zero", amount)
    return amount


def _check_text(value: object, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise InvalidInputError(field, f"must be non-blank text of at most {_MAX_TEXT} characters",
                                value)
    return value


def _check_metadata(metadata: object) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or len(metadata) > _MAX_METADATA_ITEMS:
        raise InvalidInputError(
            "metadata", f"must be a mapping of at most {_MAX_METADATA_ITEMS} items", metadata
        )
    out: dict[str, str] = {}
    for key, value in metadata.items():
        check_name(key, "metadata")
        if not isinstance(value, str) or len(value) > _MAX_TEXT:
            raise InvalidInputError(
                f"metadata[{key!r}]", f"must be text of at most {_MAX_TEXT} characters", value
            )
        out[key] = value
    return out


def _check_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 255 or not key.isprintable():
        raise InvalidInputError(
            "idempotency_key", "must be 1-255 printable characters", key
        )
    return key


def _request(key: str | None, operation: str, **fields: Any) -> tuple[tuple[str, str], ...]:
    """The canonical request stored with an idempotency key; nothing without a key (the
    request is only compared on a retry under the same key)."""
    return () if key is None else canonical_request(operation, **fields)


def _check_common(
    metadata: object, key: object, actor: object
) -> tuple[dict[str, str], str | None, str | None]:
    """Validate the arguments every writing command takes: metadata, idempotency key, actor."""
    return (
        _check_metadata(metadata),
        _check_key(key),
        _check_text(actor, "actor", required=False),
    )


def _check_currency(wallet: Wallet, amount: Money, field: str = "amount") -> None:
    if amount.currency != wallet.currency:
        raise CurrencyMismatchError(wallet.currency, amount.currency, field)


class WalletService:
    """Prepaid wallets over a :class:`~prepaid_wallet.storage.base.Store`.

    ``clock`` gives "now" (default: the system clock); ``ids`` makes new ids (default: random);
    ``spend_order`` says which lot pays first (a :class:`~prepaid_wallet.policies.SpendOrder` or
    a function); ``actor`` is recorded on every entry unless a call names another;
    ``tenant_id``, when given, scopes the service to one tenant: a wallet of another tenant
    raises :class:`~prepaid_wallet.errors.TenantMismatchError`.

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
    ) -> None:
        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ids: IdFactory = ids if ids is not None else RandomIds()
        self.spend_order = spend_order
        self.actor = None if actor is None else _check_text(actor, "actor")
        self.tenant_id = None if tenant_id is None else check_name(tenant_id, "tenant_id")

    # -- plumbing ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return require_aware(self.clock.now(), "clock.now()")

    def _info(
        self,
        at: datetime,
        key: str | None,
        actor: str | None,
        metadata: Mapping[str, str] | None,
    ) -> EntryInfo:
        return EntryInfo(
            entry_id=self.ids.new("e"),
            at=at,
            idempotency_key=key,
            actor=actor if actor is not None else self.actor,
            metadata=metadata,
        )

    def _scoped(self, wallet: Wallet, field: str = "wallet_id") -> Wallet:
        if self.tenant_id is not None and wallet.tenant_id != self.tenant_id:
            raise TenantMismatchError(field, self.tenant_id, wallet.tenant_id)
        return wallet

    def _lock(
        self, uow: UnitOfWork, *wallet_ids: str, fields: tuple[str, ...] = ("wallet_id",)
    ) -> dict[str, Wallet]:
        """Lock the wallets (sorted by id); ``fields`` names, per wallet id given, the argument
        that a tenant-scope error should name (the last one repeats)."""
        named = [(w, fields[min(i, len(fields) - 1)]) for i, w in enumerate(wallet_ids)]
        for wallet_id, field in named:
            check_name(wallet_id, field)
        wallets = uow.lock_wallets(sorted(set(wallet_ids)))
        for wallet_id, field in named:
            self._scoped(wallets[wallet_id], field)
        return wallets

    def _idempotent(
        self,
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
            uow.put_idempotency(
                IdempotencyRecord(scope, key, request[0][1], request, "ok", _codec.dumps(result),
                                  at)
            )
        uow.commit()
        return result

    # -- wallets ----------------------------------------------------------------------------

    def open_wallet(
        self,
        *,
        owner_id: str,
        tenant_id: str,
        currency: str,
        floor: Money | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Wallet:
        """Open an empty wallet for ``owner_id`` at ``tenant_id`` in ``currency``.

        ``floor`` (zero or negative, in ``currency``; default zero) is the lowest the open
        balance may go. One owner has at most one wallet per tenant and currency
        (``DuplicateWalletError``); the same owner at two tenants has two wallets.
        """
        check_name(owner_id, "owner_id")
        check_name(tenant_id, "tenant_id")
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        currency_exponent(currency)
        if floor is None:
            floor = Money.zero(currency)
        if not isinstance(floor, Money):
            raise InvalidAmountError("floor", "must be a Money (use Money.of)", floor)
        if floor.currency != currency:
            raise CurrencyMismatchError(currency, floor.currency, "floor")
        if floor.is_positive():
            raise InvalidAmountError("floor", "must be zero or negative", floor)
        meta, key, _ = _check_common(metadata, idempotency_key, None)
        request = _request(
            key, "open_wallet", owner_id=owner_id, tenant_id=tenant_id, currency=currency,
            floor=floor, metadata=meta,
        )
        at = self._now()
        with self.store.unit_of_work() as uow:

            def body() -> Wallet:
                wallet = _w.new_wallet(
                    wallet_id=self.ids.new("w"), tenant_id=tenant_id, owner_id=owner_id,
                    currency=currency, floor=floor, at=at, metadata=meta,
                )
                uow.add_wallet(wallet)
                return wallet

            return self._idempotent(uow, tenant_id, key, request, Wallet, body, at)

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet's current state; ``WalletNotFoundError`` if unknown."""
        check_name(wallet_id, "wallet_id")
        with self.store.unit_of_work(read_only=True) as uow:
            return self._scoped(uow.get_wallet(wallet_id))

    def find_wallet(self, *, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, or None."""
        check_name(tenant_id, "tenant_id")
        check_name(owner_id, "owner_id")
        currency_exponent(currency)
        if self.tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        with self.store.unit_of_work(read_only=True) as uow:
            return uow.find_wallet(tenant_id, owner_id, currency)

    def wallets(self, tenant_id: str | None = None) -> list[Wallet]:
        """Every wallet (of one tenant), by id."""
        if tenant_id is not None:
            check_name(tenant_id, "tenant_id")
            if self.tenant_id is not None and tenant_id != self.tenant_id:
                raise TenantMismatchError("tenant_id", self.tenant_id, tenant_id)
        scope = tenant_id if tenant_id is not None else self.tenant_id
        with self.store.unit_of_work(read_only=True) as uow:
            return list(uow.iter_wallets(scope))

    # -- money in ---------------------------------------------------------------------------

    def top_up(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Credit ``amount`` (positive, in the wallet's currency), paid with ``method`` (e.g.
        ``"card"``), to the open balance. A negative open balance simply moves back up."""
        _check_positive(amount)
        check_name(method, "method")
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(
            key, "top_up", wallet_id=wallet_id, amount=amount, method=method, metadata=meta
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet = self._lock(uow, wallet_id)[wallet_id]

            def body() -> Receipt:
                _check_currency(wallet, amount)
                change = _w.top_up(wallet, amount, method, self._info(at, key, actor, meta))
                uow.record(change)
                return Receipt(change.entry.id, EntryKind.TOP_UP, wallet.id, amount, at)

            return self._idempotent(uow, wallet.tenant_id, key, request, Receipt, body, at)

    def award(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        expires_at: datetime | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Lot:
        """Grant a commerce lot of ``amount`` that may expire at ``expires_at`` (aware; must be
        in the future; None never expires). Lower ``priority`` spends first (default 0).
        ``reason`` is kept on the lot and the entry."""
        _check_positive(amount)
        _check_text(reason, "reason")
        expiry = None if expires_at is None else require_aware(expires_at, "expires_at")
        if isinstance(priority, bool) or not isinstance(priority, int) or not (
            -_MAX_PRIORITY <= priority <= _MAX_PRIORITY
        ):
            raise InvalidInputError("priority", "must be an int within +/-(2**31 - 1)", priority)
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(
            key, "award", wallet_id=wallet_id, amount=amount, expires_at=expiry,
            priority=str(priority), reason=reason, metadata=meta,
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet = self._lock(uow, wallet_id)[wallet_id]

            def body() -> Lot:
                _check_currency(wallet, amount)
                if expiry is not None and expiry <= at:
                    raise InvalidTimeError("expires_at", "must be in the future", expires_at)
                change = _w.award(
                    wallet, lot_id=self.ids.new("lot"), amount=amount, expires_at=expiry,
                    priority=priority, reason=reason,
                    info=self._info(at, key, actor, {**meta, "reason": reason}),
                )
                uow.record(change)
                return change.lots[0]

            return self._idempotent(uow, wallet.tenant_id, key, request, Lot, body, at)

    # -- spending ---------------------------------------------------------------------------

    def _decide(self, uow: UnitOfWork, wallet: Wallet, request: SpendRequest, at: datetime
                ) -> Decision:
        # Lot remainders add up to commerce (I4): with none, there is no lot to read.
        lots = uow.live_lots(wallet.id) if wallet.commerce.is_positive() else iter(())
        return decide_spend(wallet, request, lots, at, self.spend_order)

    @staticmethod
    def _check_request(request: object) -> SpendRequest:
        if not isinstance(request, SpendRequest):
            raise InvalidInputError("request", "must be a SpendRequest", request)
        _check_positive(request.amount, "request.amount")
        if not isinstance(request.mode, PaymentMode):
            raise InvalidInputError("request.mode", "must be a PaymentMode", request.mode)
        _check_text(request.description, "request.description", required=False)
        return request

    def check_spend(self, wallet_id: str, request: SpendRequest) -> Decision:
        """Decide ``request`` now without writing anything: whether it is allowed, from which
        lots and the open balance, the shortfall, a suggested top-up and the remainder due."""
        self._check_request(request)
        at = self._now()
        with self.store.unit_of_work(read_only=True) as uow:
            check_name(wallet_id, "wallet_id")
            wallet = self._scoped(uow.get_wallet(wallet_id))
            _check_currency(wallet, request.amount, "request.amount")
            return self._decide(uow, wallet, request, at)

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
        pays what it can and ``remainder_due`` is left for another method."""
        self._check_request(request)
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request_fields = _request(
            key, "spend", wallet_id=wallet_id, amount=request.amount, mode=request.mode,
            description=request.description, metadata=meta,
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet = self._lock(uow, wallet_id)[wallet_id]

            def body() -> SpendResult:
                _check_currency(wallet, request.amount, "request.amount")
                decision = self._decide(uow, wallet, request, at)
                if not decision.allowed:
                    raise SpendDeniedError(decision)
                entry_id = None
                if decision.allocation:
                    lots = {p.lot_id: uow.get_lot(p.lot_id) for p in decision.allocation
                            if p.lot_id is not None}
                    extra = {} if request.description is None else {
                        "description": request.description}
                    change = _w.spend(wallet, decision.allocation, lots,
                                      self._info(at, key, actor, {**meta, **extra}))
                    uow.record(change)
                    entry_id = change.entry.id
                return SpendResult(entry_id, decision.allocation, decision.covered,
                                   decision.remainder_due, decision)

            return self._idempotent(uow, wallet.tenant_id, key, request_fields, SpendResult,
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
        _check_positive(amount)
        if (expires_at is None) == (window is None):
            raise InvalidInputError("expires_at", "give exactly one of expires_at and window")
        expiry = None if expires_at is None else require_aware(expires_at, "expires_at")
        if window is not None and (not isinstance(window, timedelta) or window <= timedelta(0)):
            raise InvalidTimeError("window", "must be a positive timedelta", window)
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(
            key, "hold", wallet_id=wallet_id, amount=amount, expires_at=expiry,
            window=None if window is None else str(window.total_seconds()), metadata=meta,
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet = self._lock(uow, wallet_id)[wallet_id]

            def body() -> Hold:
                _check_currency(wallet, amount)
                try:
                    ends = expiry if expiry is not None else at + window  # type: ignore[operator]
                except OverflowError as exc:
                    raise InvalidTimeError("window", "ends beyond the last representable instant",
                                           window) from exc
                if ends <= at:
                    raise InvalidTimeError("expires_at", "must be in the future", expires_at)
                decision = self._decide(uow, wallet, SpendRequest(amount), at)
                if not decision.allowed:
                    raise SpendDeniedError(decision)
                lots = {p.lot_id: uow.get_lot(p.lot_id) for p in decision.allocation
                        if p.lot_id is not None}
                change = _w.hold(
                    wallet, hold_id=self.ids.new("hold"), allocation=decision.allocation,
                    lots=lots, expires_at=ends, info=self._info(at, key, actor, meta),
                )
                uow.record(change)
                return change.holds[0]

            return self._idempotent(uow, wallet.tenant_id, key, request, Hold, body, at)

    def _locked_hold(self, uow: UnitOfWork, hold_id: str) -> tuple[Wallet, Hold]:
        check_name(hold_id, "hold_id")
        wallet_id = uow.get_hold(hold_id).wallet_id
        wallet = self._lock(uow, wallet_id, fields=("hold_id",))[wallet_id]
        return wallet, uow.get_hold(hold_id)

    @staticmethod
    def _lots_of(uow: UnitOfWork, parts: tuple[_w.AllocationPart, ...]) -> dict[str, Lot]:
        return {p.lot_id: uow.get_lot(p.lot_id) for p in parts if p.lot_id is not None}

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
            _check_positive(amount)
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(key, "capture", hold_id=hold_id, amount=amount, metadata=meta)
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet, held = self._locked_hold(uow, hold_id)

            def body() -> CaptureResult:
                take = held.amount if amount is None else amount
                _check_currency(wallet, take)
                if take > held.amount:
                    raise InvalidAmountError(
                        "amount", f"must not exceed the held amount ({held.amount})", amount
                    )
                if held.status is not HoldStatus.ACTIVE:
                    raise HoldStateError(held.id, held.status.value, "capture")
                if at >= held.expires_at:
                    raise HoldExpiredError(held.id)
                lots = self._lots_of(uow, held.allocation)
                change = _w.capture(wallet, held, take, lots, self._info(at, key, actor, meta))
                uow.record(change)
                charge = change.charges[0]
                breakage = _breakage_of(change.entry, wallet.tenant_id)
                return CaptureResult(
                    change.entry.id, held.id, take, held.amount - take, charge.allocation,
                    breakage,
                )

            return self._idempotent(uow, wallet.tenant_id, key, request, CaptureResult, body, at)

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
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(key, "void", hold_id=hold_id, metadata=meta)
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet, held = self._locked_hold(uow, hold_id)

            def body() -> Hold:
                if held.status is not HoldStatus.ACTIVE:
                    raise HoldStateError(held.id, held.status.value, "void")
                change = _w.release(
                    wallet, held, self._lots_of(uow, held.allocation), HoldStatus.VOIDED,
                    self._info(at, key, actor, meta),
                )
                uow.record(change)
                return change.holds[0]

            return self._idempotent(uow, wallet.tenant_id, key, request, Hold, body, at)

    def get_hold(self, hold_id: str) -> Hold:
        """The hold's current state; ``HoldNotFoundError`` if unknown."""
        check_name(hold_id, "hold_id")
        with self.store.unit_of_work(read_only=True) as uow:
            held = uow.get_hold(hold_id)
            self._scoped(uow.get_wallet(held.wallet_id), "hold_id")
            return held

    def holds(self, wallet_id: str) -> list[Hold]:
        """Every hold of the wallet, oldest first."""
        check_name(wallet_id, "wallet_id")
        with self.store.unit_of_work(read_only=True) as uow:
            self._scoped(uow.get_wallet(wallet_id))
            return list(uow.wallet_holds(wallet_id))

    # -- transfers, refunds, reversals ------------------------------------------------------

    def transfer(
        self,
        from_wallet_id: str,
        to_wallet_id: str,
        amount: Money,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Move ``amount`` of open balance to another wallet of the same tenant and currency.

        Never to the same wallet; never below the source's floor (``InsufficientFundsError``).
        Commerce lots do not move."""
        _check_positive(amount)
        check_name(from_wallet_id, "wallet_id")
        check_name(to_wallet_id, "to_wallet_id")
        if from_wallet_id == to_wallet_id:
            raise InvalidInputError("to_wallet_id", "must differ from the source wallet",
                                    to_wallet_id)
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(
            key, "transfer", wallet_id=from_wallet_id, to_wallet_id=to_wallet_id, amount=amount,
            metadata=meta,
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallets = self._lock(uow, from_wallet_id, to_wallet_id,
                                 fields=("wallet_id", "to_wallet_id"))
            source, target = wallets[from_wallet_id], wallets[to_wallet_id]

            def body() -> Receipt:
                if target.tenant_id != source.tenant_id:
                    raise TenantMismatchError("to_wallet_id", source.tenant_id, target.tenant_id)
                _check_currency(source, amount)
                _check_currency(target, amount, "to_wallet_id")
                headroom = source.open - source.floor
                if amount > headroom:
                    raise InsufficientFundsError(
                        source.id, amount, max(headroom, Money.zero(source.currency))
                    )
                change = _w.transfer(source, target, amount, self._info(at, key, actor, meta))
                uow.record(change)
                return Receipt(change.entry.id, EntryKind.TRANSFER, source.id, amount, at,
                               target.id)

            return self._idempotent(uow, source.tenant_id, key, request, Receipt, body, at)

    def _charge(self, uow: UnitOfWork, entry_id: str) -> tuple[Wallet, Charge]:
        check_name(entry_id, "entry_id")
        entry = uow.get_entry(entry_id)
        charge = uow.get_charge(entry_id)
        if charge is None:
            raise InvalidInputError(
                "entry_id", f"must be a spend or capture entry (it is a {entry.kind.value})",
                entry_id,
            )
        wallet = self._lock(uow, charge.wallet_id, fields=("entry_id",))[charge.wallet_id]
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
            _check_positive(amount)
        _check_text(reason, "reason")
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(
            key, "refund", entry_id=entry_id, amount=amount, reason=reason, metadata=meta
        )
        at = self._now()
        with self.store.unit_of_work() as uow:
            wallet, charge = self._charge(uow, entry_id)

            def body() -> RefundResult:
                give = charge.refundable if amount is None else amount
                _check_currency(wallet, give)
                if give > charge.refundable or give.is_zero():
                    raise RefundExceedsOriginalError(charge.entry_id, give, charge.refundable)
                parts = _w.refundable_parts(charge)
                lots = self._lots_of(uow, tuple(parts))
                change, refunded, breakage = _w.refund(
                    wallet, charge, give, lots,
                    self._info(at, key, actor, {**meta, "reason": reason}),
                )
                uow.record(change)
                return RefundResult(change.entry.id, charge.entry_id, give, refunded, breakage)

            return self._idempotent(uow, wallet.tenant_id, key, request, RefundResult, body, at)

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
        _check_text(reason, "reason")
        meta, key, actor = _check_common(metadata, idempotency_key, actor)
        request = _request(key, "reverse", entry_id=entry_id, reason=reason, metadata=meta)
        at = self._now()
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
            wallets = self._lock(uow, *original.wallet_ids, fields=("entry_id",))
            first = wallets[original.wallet_ids[0]]

            def body() -> Receipt:
                done = uow.reversal_of(original.id)
                if done is not None:
                    raise AlreadyReversedError(original.id, done)
                lots: dict[str, Lot] = {}
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
                        left = Money.zero(lot.remaining.currency) if lot.is_expired(at) \
                            else lot.remaining
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
                    self._info(at, key, actor, {**meta, "reason": reason}),
                )
                uow.record(change)
                moved = Money.sum(
                    (p.amount for p in original.postings
                     if parse_account(p.account).is_wallet and p.amount.is_positive()),
                    first.currency,
                )
                return Receipt(change.entry.id, EntryKind.REVERSAL, first.id, moved, at)

            return self._idempotent(uow, first.tenant_id, key, request, Receipt, body, at)

    # -- expiry -----------------------------------------------------------------------------

    def expire_due(self) -> ExpiryReport:
        """Release every active hold whose window has ended and book every expired lot's
        remainder as breakage, each exactly once (one entry per hold and per lot, each in its
        own unit of work). Safe to run repeatedly and from several processes; its cost grows
        with what is due, not with all lots."""
        at = self._now()
        entry_ids: list[str] = []
        holds_released = 0
        lots_expired = 0
        seen: set[str] = set()
        while True:
            with self.store.unit_of_work(read_only=True) as uow:
                due_holds = [h.id for h in uow.due_holds(at, _SWEEP_BATCH) if h.id not in seen]
            if not due_holds:
                break
            for hold_id in due_holds:
                seen.add(hold_id)
                with self.store.unit_of_work() as uow:
                    wallet, held = self._locked_hold(uow, hold_id)
                    if held.status is not HoldStatus.ACTIVE or at < held.expires_at:
                        continue
                    change = _w.release(
                        wallet, held, self._lots_of(uow, held.allocation), HoldStatus.EXPIRED,
                        self._info(at, None, None, None),
                    )
                    uow.record(change)
                    uow.commit()
                    entry_ids.append(change.entry.id)
                    holds_released += 1
        while True:
            with self.store.unit_of_work(read_only=True) as uow:
                due_lots = [lot.id for lot in uow.due_lots(at, _SWEEP_BATCH) if lot.id not in seen]
            if not due_lots:
                break
            for lot_id in due_lots:
                seen.add(lot_id)
                with self.store.unit_of_work() as uow:
                    wallet_id = uow.get_lot(lot_id).wallet_id
                    wallet = uow.lock_wallets([wallet_id])[wallet_id]
                    lot = uow.get_lot(lot_id)
                    if not lot.is_live or not lot.is_expired(at) or lot.expired_entry_id:
                        continue
                    change = _w.expire_lot(wallet, lot, self._info(at, None, None, None))
                    uow.record(change)
                    uow.commit()
                    entry_ids.append(change.entry.id)
                    lots_expired += 1
        return ExpiryReport(lots_expired, holds_released, tuple(entry_ids))

    # -- reading ----------------------------------------------------------------------------

    def balance(self, wallet_id: str, *, as_of: datetime | None = None) -> Balance:
        """The wallet's balances now, or at ``as_of`` (aware) from the statement index -- a
        lookup, never a replay of the journal. See :class:`~prepaid_wallet.results.Balance`."""
        check_name(wallet_id, "wallet_id")
        when = self._now() if as_of is None else require_aware(as_of, "as_of")
        with self.store.unit_of_work(read_only=True) as uow:
            wallet = self._scoped(uow.get_wallet(wallet_id))
            zero = Money.zero(wallet.currency)
            if as_of is None:
                expired = Money.sum(
                    (lot.remaining for lot in uow.due_lots(when, 2**62, wallet.id)),
                    wallet.currency,
                )
                return Balance(wallet.id, when, wallet.open, wallet.commerce - expired,
                               wallet.held, expired, wallet.floor)
            snapshot = uow.snapshot_at(wallet.id, when)
            if snapshot is None:
                return Balance(wallet.id, when, zero, zero, zero, zero, wallet.floor)
            expired = zero
            for lot in uow.wallet_lots(wallet.id):
                if lot.granted_at > when or not lot.is_expired(when):
                    continue
                remaining = uow.account_balance_at(lot_account(wallet.id, lot.id), when)
                if remaining is not None:
                    expired += remaining
            return Balance(wallet.id, when, snapshot.open, snapshot.commerce - expired,
                           snapshot.held, expired, wallet.floor)

    def lots(self, wallet_id: str, *, include_empty: bool = False) -> list[Lot]:
        """The wallet's lots by grant time: those with money left, or all with
        ``include_empty``."""
        check_name(wallet_id, "wallet_id")
        with self.store.unit_of_work(read_only=True) as uow:
            self._scoped(uow.get_wallet(wallet_id))
            return [lot for lot in uow.wallet_lots(wallet_id) if include_empty or lot.is_live]

    def entry(self, entry_id: str) -> Entry:
        """One journal entry; ``EntryNotFoundError`` if unknown."""
        check_name(entry_id, "entry_id")
        with self.store.unit_of_work(read_only=True) as uow:
            found = uow.get_entry(entry_id)
            if self.tenant_id is not None:
                for wallet_id in found.wallet_ids:
                    self._scoped(uow.get_wallet(wallet_id), "entry_id")
            return found

    def statement(
        self, wallet_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Statement:
        """The wallet's entries recorded in ``[since, until)`` (aware; either may be None), each
        with its effect on open, commerce and held balances, the lots it touched (with their
        expiry) and the balances after it; with opening and closing totals."""
        check_name(wallet_id, "wallet_id")
        start = None if since is None else require_aware(since, "since")
        end = None if until is None else require_aware(until, "until")
        if start is not None and end is not None and end < start:
            raise InvalidTimeError("until", "must not be before since", until)
        with self.store.unit_of_work(read_only=True) as uow:
            wallet = self._scoped(uow.get_wallet(wallet_id))
            zero = Money.zero(wallet.currency)
            before = None if start is None else uow.snapshot_at(
                wallet.id, start - timedelta(microseconds=1)
            )
            prev = (zero, zero, zero) if before is None else (
                before.open, before.commerce, before.held)
            opening = prev[0] + prev[1] + prev[2]
            lines: list[StatementLine] = []
            lot_prefix = f"wallet:{wallet.id}:lot:"
            for entry, snap in uow.wallet_history(wallet.id, start, end):
                movements = tuple(
                    LotMovement(p.account[len(lot_prefix):], p.amount,
                                uow.get_lot(p.account[len(lot_prefix):]).expires_at)
                    for p in entry.postings if p.account.startswith(lot_prefix)
                )
                meta = entry.meta
                lines.append(StatementLine(
                    entry_id=entry.id, kind=entry.kind, recorded_at=entry.recorded_at,
                    change=snap.total - (prev[0] + prev[1] + prev[2]),
                    open_change=snap.open - prev[0], commerce_change=snap.commerce - prev[1],
                    held_change=snap.held - prev[2], open_after=snap.open,
                    commerce_after=snap.commerce, held_after=snap.held, lots=movements,
                    description=meta.get("description") or meta.get("reason"),
                    refund_of=entry.refund_of, reverses=entry.reverses,
                    reversed_by=uow.reversal_of(entry.id),
                ))
                prev = (snap.open, snap.commerce, snap.held)
            closing = prev[0] + prev[1] + prev[2]
            return Statement(wallet.id, wallet.currency, start, end, opening, closing,
                             tuple(lines))

    # -- verification -----------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Check the whole store: every entry balances and its hash is right, every wallet's
        chain is unbroken, stored balances equal a replay of the postings, lots and holds add
        up, no wallet is below its floor, refunds stay within their originals and no entry is
        reversed twice. Returns a report; never raises for what it finds."""
        problems: list[Problem] = []
        sums: dict[str, int] = {}
        heads: dict[str, str] = {}
        reversals: dict[str, int] = {}
        refunded: dict[str, int] = {}
        breakage_entries: dict[str, int] = {}
        count = 0
        with self.store.unit_of_work(read_only=True) as uow:
            for entry in uow.iter_entries():
                count += 1
                totals: dict[str, int] = {}
                for p in entry.postings:
                    sums[p.account] = sums.get(p.account, 0) + p.amount.minor_units
                    totals[p.amount.currency] = totals.get(p.amount.currency, 0) + \
                        p.amount.minor_units
                if any(totals.values()) or len(entry.postings) < 2:
                    problems.append(Problem("unbalanced", entry.id, f"sums {totals}"))
                if entry.compute_hash() != entry.hash:
                    problems.append(Problem("hash", entry.id, "content does not match its hash"))
                for wallet_id, prev in zip(entry.wallet_ids, entry.prev_hashes, strict=True):
                    if heads.get(wallet_id, GENESIS) != prev:
                        problems.append(Problem("chain", entry.id,
                                                f"breaks the chain of wallet {wallet_id}"))
                    heads[wallet_id] = entry.hash
                if entry.reverses is not None:
                    reversals[entry.reverses] = reversals.get(entry.reverses, 0) + 1
                if entry.refund_of is not None:
                    revenue = sum(-p.amount.minor_units for p in entry.postings
                                  if p.account.endswith(":revenue"))
                    refunded[entry.refund_of] = refunded.get(entry.refund_of, 0) + revenue
                if entry.kind is EntryKind.BREAKAGE:
                    for p in entry.postings:
                        if ":lot:" in p.account:
                            breakage_entries[p.account] = breakage_entries.get(p.account, 0) + 1
            for original, n in reversals.items():
                if n > 1:
                    problems.append(Problem("reversal", original, f"reversed {n} times"))
            for original, total in refunded.items():
                charge = uow.get_charge(original)
                if charge is None or total > charge.amount.minor_units or \
                        total != charge.refunded_total.minor_units:
                    problems.append(Problem("refund", original,
                                            f"refunds add up to {total} minor units"))
            wallet_count = 0
            for wallet in uow.iter_wallets():
                wallet_count += 1
                problems.extend(self._verify_wallet(uow, wallet, sums, heads, breakage_entries))
        return VerifyReport(tuple(problems), count, wallet_count)

    @staticmethod
    def _verify_wallet(
        uow: UnitOfWork,
        wallet: Wallet,
        sums: dict[str, int],
        heads: dict[str, str],
        breakage_entries: dict[str, int],
    ) -> list[Problem]:
        found: list[Problem] = []
        prefix = f"wallet:{wallet.id}:"
        if heads.get(wallet.id, GENESIS) != wallet.head:
            found.append(Problem("chain", wallet.id, "stored head is not the last entry's hash"))
        checks = (("open", wallet.open), ("held", wallet.held))
        for name, stored in checks:
            replayed = sums.get(prefix + name, 0)
            if stored.minor_units != replayed:
                found.append(Problem("balance", wallet.id,
                                     f"{name} is {stored} but the journal gives {replayed}"))
        lot_total = 0
        for lot in uow.wallet_lots(wallet.id):
            account = lot_account(wallet.id, lot.id)
            replayed = sums.get(account, 0)
            lot_total += lot.remaining.minor_units
            if lot.remaining.minor_units != replayed:
                found.append(Problem("lot", lot.id,
                                     f"remaining {lot.remaining} but the journal gives {replayed}"))
            if lot.remaining.is_negative():
                found.append(Problem("lot", lot.id, "below zero"))
            booked = breakage_entries.get(account, 0)
            if booked > 1 or (lot.expired_entry_id is not None) != (booked == 1):
                found.append(Problem("lot", lot.id, f"breakage booked {booked} times"))
            if lot.expired_entry_id is not None and lot.is_live:
                found.append(Problem("lot", lot.id, "money left after its breakage"))
        if lot_total != wallet.commerce.minor_units:
            found.append(Problem("balance", wallet.id,
                                 f"commerce is {wallet.commerce} but its lots add up to "
                                 f"{lot_total} minor units"))
        if wallet.open < wallet.floor:
            found.append(Problem("floor", wallet.id, f"open {wallet.open} below {wallet.floor}"))
        active = sum(h.amount.minor_units for h in uow.wallet_holds(wallet.id)
                     if h.status is HoldStatus.ACTIVE)
        if active != wallet.held.minor_units:
            found.append(Problem("hold", wallet.id,
                                 f"held is {wallet.held} but active holds add up to {active}"))
        return found


def _breakage_of(entry: Entry, tenant_id: str) -> Money:
    account = f"tenant:{tenant_id}:breakage"
    amounts = [p.amount for p in entry.postings if p.account == account]
    return amounts[0] if amounts else Money.zero(entry.postings[0].amount.currency)

