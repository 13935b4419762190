"""Every write command as a frozen record: its arguments, how they are checked, its idempotency
fingerprint, the wallets it locks and the handler that runs it.

:func:`prepaid_wallet.app.pipeline.run` runs any of them; ``WalletService`` builds them from its
keyword arguments. A new capability adds its records here and its handler module in
:mod:`prepaid_wallet.app.handlers` (docs/architecture.md has the recipe). The records are
``attrs`` classes with keyword-only fields named as the service's arguments, so a face (the
command line, an HTTP API) can be built from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import (
    KEEP,
    Keep,
    check_condition,
    check_groups,
    check_optional_text,
    check_positive,
    check_priority,
    check_request,
    purchase_fields,
)
from prepaid_wallet.app.pipeline import (
    ChargeWallet,
    Command,
    ConditionGroupLock,
    EntryWallets,
    HoldWallet,
    LockSpec,
    LotWallet,
    NoWallet,
    Wallets,
)
from prepaid_wallet.clock import require_aware
from prepaid_wallet.conditions import ConditionGroup, SpendCondition
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.expiry import EndOfLocalDay, resolve_expiry
from prepaid_wallet.ids import check_name
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.money import Money, currency_exponent
from prepaid_wallet.policies import SpendRequest
from prepaid_wallet.results import (
    CaptureResult,
    Receipt,
    RefundResult,
    SpendResult,
)
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.wallet import Hold, Lot, Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.topup import TopUpRule

__all__ = [
    "Award",
    "CaptureHold",
    "ChangeConditionGroup",
    "Credit",
    "Debit",
    "DefineConditionGroup",
    "ExtendExpiry",
    "OpenWallet",
    "Payout",
    "PlaceHold",
    "Refund",
    "Reverse",
    "SetLimits",
    "SetOwnerGroups",
    "SetTopUpRule",
    "Spend",
    "TopUp",
    "Transfer",
    "VoidHold",
]

_HANDLERS = "prepaid_wallet.app.handlers"


# -- wallets --------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OpenWallet(Command[Wallet]):
    """Open an empty wallet for ``owner_id`` at ``tenant_id`` in ``currency``, with its
    ``floor`` (zero or negative; default zero), ``owner_groups`` and ``metadata``."""

    operation: ClassVar[str] = "open_wallet"
    locks: ClassVar[LockSpec] = NoWallet("tenant_id")
    handler: ClassVar[str] = f"{_HANDLERS}.wallet:open_wallet"
    result: ClassVar[Any] = Wallet

    owner_id: str
    tenant_id: str
    currency: str
    floor: Money | None = None
    metadata: Mapping[str, str] | None = None
    owner_groups: Iterable[str] | None = None
    idempotency_key: str | None = None

    @property
    def opening_floor(self) -> Money:
        """The floor, zero when none was given."""
        return self.floor if self.floor is not None else Money.zero(self.currency)

    @property
    def groups(self) -> frozenset[str]:
        return check_groups(self.owner_groups)

    def validate(self) -> None:
        check_groups(self.owner_groups)
        check_name(self.owner_id, "owner_id")
        check_name(self.tenant_id, "tenant_id")
        currency_exponent(self.currency)
        floor = self.opening_floor
        if not isinstance(floor, Money):
            raise InvalidAmountError("floor", "must be a Money (use Money.of)", floor)
        if floor.currency != self.currency:
            raise CurrencyMismatchError(self.currency, floor.currency, "floor")
        if floor.is_positive():
            raise InvalidAmountError("floor", "must be zero or negative", floor)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        groups = self.groups
        extra: dict[str, Any] = {} if not groups else {"owner_groups": groups}
        return dict(owner_id=self.owner_id, tenant_id=self.tenant_id, currency=self.currency,
                    floor=self.opening_floor, metadata=metadata, **extra)


# -- money in -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TopUp(Command[Receipt]):
    """Credit ``amount`` paid with ``method`` to the wallet's open balance (or, with
    ``group_id``, to a new lot of that condition group)."""

    operation: ClassVar[str] = "top_up"
    handler: ClassVar[str] = f"{_HANDLERS}.money_in:top_up"
    result: ClassVar[Any] = Receipt

    wallet_id: str
    amount: Money
    method: str
    group_id: str | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_positive(self.amount)
        check_name(self.method, "method")
        if self.group_id is not None:
            check_name(self.group_id, "group_id")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        extra = {} if self.group_id is None else {"group_id": self.group_id}
        return dict(wallet_id=self.wallet_id, amount=self.amount, method=self.method,
                    metadata=metadata, **extra)


@attrs.frozen(kw_only=True)
class Award(Command[Lot]):
    """Grant a commerce lot of ``amount``: ``reason``, expiry, priority, and a ``condition``
    or a condition group (``group_id``), at most one."""

    operation: ClassVar[str] = "award"
    handler: ClassVar[str] = f"{_HANDLERS}.money_in:award"
    result: ClassVar[Any] = Lot

    wallet_id: str
    amount: Money
    reason: str
    expires_at: datetime | EndOfLocalDay | None = None
    priority: int = 0
    condition: SpendCondition | None = None
    group_id: str | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    @property
    def expiry(self) -> datetime | None:
        """The expiry as an instant (an end of a local day resolved)."""
        return resolve_expiry(self.expires_at)

    def validate(self) -> None:
        check_positive(self.amount)
        check_optional_text(self.reason, "reason")
        resolve_expiry(self.expires_at)
        check_priority(self.priority)
        check_condition(self.condition)
        if self.group_id is not None:
            check_name(self.group_id, "group_id")
            if self.condition is not None:
                raise InvalidInputError("condition",
                                        "give a condition or a condition group, not both")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        grant: dict[str, Any] = {}
        if self.condition is not None:
            grant["condition"] = self.condition
        if self.group_id is not None:
            grant["group_id"] = self.group_id
        return dict(wallet_id=self.wallet_id, amount=self.amount, expires_at=self.expiry,
                    priority=str(self.priority), reason=self.reason, metadata=metadata,
                    **grant)


# -- wallet settings: owner groups, limits --------------------------------------------------------


@attrs.frozen(kw_only=True)
class SetOwnerGroups(Command[frozenset[str]]):
    """Replace the groups the owner of the wallet belongs to (names; empty removes them)."""

    operation: ClassVar[str] = "set_owner_groups"
    handler: ClassVar[str] = f"{_HANDLERS}.wallet:set_owner_groups"
    result: ClassVar[Any] = frozenset[str]

    wallet_id: str
    owner_groups: Iterable[str]

    @property
    def groups(self) -> frozenset[str]:
        """The owner groups as a set of names."""
        return check_groups(self.owner_groups)

    def validate(self) -> None:
        check_groups(self.owner_groups)


@attrs.frozen(kw_only=True)
class SetLimits(Command[Limits]):
    """Give the wallet its own limits, stricter than its tenant's (``None`` removes them)."""

    operation: ClassVar[str] = "set_limits"
    handler: ClassVar[str] = f"{_HANDLERS}.wallet:set_limits"
    result: ClassVar[Any] = Limits

    wallet_id: str
    limits: Limits | None

    def validate(self) -> None:
        if self.limits is not None and not isinstance(self.limits, Limits):
            raise InvalidInputError("limits", "must be a Limits or None", self.limits)


# -- spending -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Spend(Command[SpendResult]):
    """Pay ``request`` (a :class:`~prepaid_wallet.policies.SpendRequest`) from the wallet, in
    spend order. The request is the ``request`` argument; its attribute is ``spend_request``
    (``request`` is the fingerprint method of every command)."""

    operation: ClassVar[str] = "spend"
    handler: ClassVar[str] = f"{_HANDLERS}.spending:spend"
    prepare: ClassVar[str | None] = f"{_HANDLERS}.spending:prepare"
    result: ClassVar[Any] = SpendResult

    wallet_id: str
    spend_request: SpendRequest = attrs.field(alias="request")
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_request(self.spend_request)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        purchase = self.spend_request
        return dict(wallet_id=self.wallet_id, amount=purchase.amount, mode=purchase.mode,
                    description=purchase.description, metadata=metadata,
                    **purchase_fields(purchase))


# -- holds ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlaceHold(Command[Hold]):
    """Reserve ``amount`` of the wallet for a later capture, until ``expires_at`` or for
    ``window`` of elapsed time (exactly one of them)."""

    operation: ClassVar[str] = "hold"
    handler: ClassVar[str] = f"{_HANDLERS}.hold:hold"
    result: ClassVar[Any] = Hold

    wallet_id: str
    amount: Money
    expires_at: datetime | None = None
    window: timedelta | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    @property
    def expiry(self) -> datetime | None:
        """``expires_at`` in UTC (None with a window)."""
        return None if self.expires_at is None else require_aware(self.expires_at, "expires_at")

    def until(self, at: datetime) -> datetime:
        """When the hold placed at ``at`` ends (``InvalidTimeError`` when its window runs past
        the last representable instant)."""
        if self.window is None:
            return require_aware(self.expires_at, "expires_at")
        try:
            return at + self.window
        except OverflowError as exc:
            raise InvalidTimeError("window", "ends beyond the last representable instant",
                                   self.window) from exc

    def validate(self) -> None:
        check_positive(self.amount)
        if (self.expires_at is None) == (self.window is None):
            raise InvalidInputError("expires_at", "give exactly one of expires_at and window")
        if self.expires_at is not None:
            require_aware(self.expires_at, "expires_at")
        window = self.window
        if window is not None and (not isinstance(window, timedelta) or window <= timedelta(0)):
            raise InvalidTimeError("window", "must be a positive timedelta", window)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        window = None if self.window is None else str(self.window.total_seconds())
        return {"wallet_id": self.wallet_id, "amount": self.amount, "expires_at": self.expiry,
                "window": window, "metadata": metadata}


@attrs.frozen(kw_only=True)
class CaptureHold(Command[CaptureResult]):
    """Capture ``amount`` (None: all) of an active hold and release the rest."""

    operation: ClassVar[str] = "capture"
    locks: ClassVar[LockSpec] = HoldWallet("hold_id")
    handler: ClassVar[str] = f"{_HANDLERS}.hold:capture"
    result: ClassVar[Any] = CaptureResult

    hold_id: str
    amount: Money | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        if self.amount is not None:
            check_positive(self.amount)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"hold_id": self.hold_id, "amount": self.amount, "metadata": metadata}


@attrs.frozen(kw_only=True)
class VoidHold(Command[Hold]):
    """Release an active hold entirely back to where its money came from."""

    operation: ClassVar[str] = "void"
    locks: ClassVar[LockSpec] = HoldWallet("hold_id")
    handler: ClassVar[str] = f"{_HANDLERS}.hold:void"
    result: ClassVar[Any] = Hold

    hold_id: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"hold_id": self.hold_id, "metadata": metadata}


# -- transfers and money out ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Transfer(Command[Receipt]):
    """Move ``amount`` of open balance from one wallet to another of the same tenant and
    currency (with ``group_id``, into a new lot of that condition group)."""

    operation: ClassVar[str] = "transfer"
    locks: ClassVar[LockSpec] = Wallets(
        (("from_wallet_id", "wallet_id"), ("to_wallet_id", "to_wallet_id")))
    handler: ClassVar[str] = f"{_HANDLERS}.transfer:transfer"
    result: ClassVar[Any] = Receipt

    from_wallet_id: str
    to_wallet_id: str
    amount: Money
    group_id: str | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_positive(self.amount)
        check_name(self.from_wallet_id, "wallet_id")
        check_name(self.to_wallet_id, "to_wallet_id")
        if self.group_id is not None:
            check_name(self.group_id, "group_id")
        if self.from_wallet_id == self.to_wallet_id:
            raise InvalidInputError("to_wallet_id", "must differ from the source wallet",
                                    self.to_wallet_id)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        extra = {} if self.group_id is None else {"group_id": self.group_id}
        return dict(wallet_id=self.from_wallet_id, to_wallet_id=self.to_wallet_id,
                    amount=self.amount, metadata=metadata, **extra)


@attrs.frozen(kw_only=True)
class Payout(Command[Receipt]):
    """Pay ``amount`` of the open balance out to the owner with ``method``."""

    operation: ClassVar[str] = Operation.PAYOUT.value
    handler: ClassVar[str] = f"{_HANDLERS}.transfer:payout"
    result: ClassVar[Any] = Receipt

    wallet_id: str
    amount: Money
    method: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_positive(self.amount)
        check_name(self.method, "method")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "amount": self.amount, "method": self.method,
                "reason": None, "metadata": metadata}


@attrs.frozen(kw_only=True)
class _Adjustment(Command[Receipt]):
    """An operator's manual change of ``amount`` to the open balance, with its ``reason``."""

    result: ClassVar[Any] = Receipt

    wallet_id: str
    amount: Money
    reason: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_positive(self.amount)
        check_optional_text(self.reason, "reason")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "amount": self.amount, "method": None,
                "reason": self.reason, "metadata": metadata}


@attrs.frozen(kw_only=True)
class Credit(_Adjustment):
    """An operator's manual credit of ``amount`` to the open balance, with its ``reason``."""

    operation: ClassVar[str] = Operation.CREDIT.value
    handler: ClassVar[str] = f"{_HANDLERS}.transfer:credit"


@attrs.frozen(kw_only=True)
class Debit(_Adjustment):
    """An operator's manual debit of ``amount`` from the open balance, with its ``reason``."""

    operation: ClassVar[str] = Operation.DEBIT.value
    handler: ClassVar[str] = f"{_HANDLERS}.transfer:debit"


# -- refunds and reversals ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Refund(Command[RefundResult]):
    """Give back ``amount`` (None: all that is left) of a spend or capture entry."""

    operation: ClassVar[str] = "refund"
    locks: ClassVar[LockSpec] = ChargeWallet("entry_id")
    handler: ClassVar[str] = f"{_HANDLERS}.refund:refund"
    result: ClassVar[Any] = RefundResult

    entry_id: str
    amount: Money | None = None
    reason: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        if self.amount is not None:
            check_positive(self.amount)
        check_optional_text(self.reason, "reason")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "amount": self.amount, "reason": self.reason,
                "metadata": metadata}


@attrs.frozen(kw_only=True)
class Reverse(Command[Receipt]):
    """Correct a top-up, award or transfer with a new entry that negates it."""

    operation: ClassVar[str] = "reverse"
    #: Only these entries are corrected by a reversal (spends and captures are refunded,
    #: holds voided); any other raises before a wallet is locked.
    locks: ClassVar[LockSpec] = EntryWallets(
        "entry_id", kinds=(EntryKind.TOP_UP, EntryKind.AWARD, EntryKind.TRANSFER))
    handler: ClassVar[str] = f"{_HANDLERS}.refund:reverse"
    result: ClassVar[Any] = Receipt

    entry_id: str
    reason: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_optional_text(self.reason, "reason")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "reason": self.reason, "metadata": metadata}


# -- condition groups -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DefineConditionGroup(Command[ConditionGroup]):
    """Define a named, reusable condition for ``tenant_id``, valid in ``[valid_from,
    valid_until)``, at version 1 (``group_id`` defaults to a new id)."""

    operation: ClassVar[str] = "define_condition_group"
    locks: ClassVar[LockSpec] = NoWallet("tenant_id")
    handler: ClassVar[str] = f"{_HANDLERS}.condition_group:define_condition_group"
    result: ClassVar[Any] = ConditionGroup

    tenant_id: str
    name: str
    condition: SpendCondition
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    group_id: str | None = None

    def validate(self) -> None:
        check_name(self.tenant_id, "tenant_id")
        check_optional_text(self.name, "name")
        if not isinstance(self.condition, SpendCondition):
            raise InvalidInputError("condition", "must be a SpendCondition", self.condition)
        if self.group_id is not None:
            check_name(self.group_id, "group_id")


@attrs.frozen(kw_only=True)
class ChangeConditionGroup(Command[ConditionGroup]):
    """Change a condition group's name, condition (a new version) or validity; :data:`KEEP`
    leaves a bound of the validity as it is, ``None`` removes it."""

    operation: ClassVar[str] = "change_condition_group"
    locks: ClassVar[LockSpec] = ConditionGroupLock("group_id")
    handler: ClassVar[str] = f"{_HANDLERS}.condition_group:change_condition_group"
    result: ClassVar[Any] = ConditionGroup

    group_id: str
    name: str | None = None
    condition: SpendCondition | None = None
    valid_from: datetime | Keep | None = KEEP
    valid_until: datetime | Keep | None = KEEP

    def validate(self) -> None:
        check_name(self.group_id, "group_id")
        check_optional_text(self.name, "name", required=False)
        if self.condition is not None and not isinstance(self.condition, SpendCondition):
            raise InvalidInputError("condition", "must be a SpendCondition", self.condition)


# -- automatic top-ups ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SetTopUpRule(Command["TopUpRule | None"]):
    """Give the wallet an automatic top-up rule (``None`` removes it)."""

    operation: ClassVar[str] = "set_top_up_rule"
    handler: ClassVar[str] = f"{_HANDLERS}.automatic_top_up:set_top_up_rule"
    #: It takes no idempotency key: nothing is read back (and the rule module is imported only
    #: when the command runs).
    result: ClassVar[Any] = None

    wallet_id: str
    rule: TopUpRule | None

    def validate(self) -> None:
        from prepaid_wallet.rules.topup import TopUpRule

        if self.rule is not None and not isinstance(self.rule, TopUpRule):
            raise InvalidInputError("rule", "must be a TopUpRule or None", self.rule)


# -- expiry ---------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExtendExpiry(Command[Lot]):
    """Move ``amount`` (None: everything) of a lot into a new lot that expires at
    ``expires_at`` (None: never) and keeps the lot's other terms."""

    operation: ClassVar[str] = "extend_expiry"
    locks: ClassVar[LockSpec] = LotWallet("lot_id")
    handler: ClassVar[str] = f"{_HANDLERS}.expiry:extend_expiry"
    result: ClassVar[Any] = Lot

    lot_id: str
    expires_at: datetime | EndOfLocalDay | None
    amount: Money | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    @property
    def expiry(self) -> datetime | None:
        """The new expiry as an instant (an end of a local day resolved)."""
        return resolve_expiry(self.expires_at)

    def validate(self) -> None:
        check_name(self.lot_id, "lot_id")
        resolve_expiry(self.expires_at)
        if self.amount is not None:
            check_positive(self.amount)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"lot_id": self.lot_id, "expires_at": self.expiry, "amount": self.amount,
                "metadata": metadata}
