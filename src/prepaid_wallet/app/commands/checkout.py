"""The commands of credit at checkout (apply credit to an order, place, abandon it, credit
what is owed) and of a hub's settings for one member (payment mode, floor)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import check_optional_text
from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.pipeline import Command
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode
from prepaid_wallet.rules.checkout import OrderPayment
from prepaid_wallet.rules.hub import WalletTermChange

__all__ = [
    "AbandonOrder",
    "ApplyCredit",
    "CreditOwed",
    "PlaceOrder",
    "SetFloor",
    "SetPaymentMode",
]


# -- credit at checkout ---------------------------------------------------------------------------


def _order_total(total: object, field: str = "total") -> Money:
    """An order's total: a :class:`Money`, zero or positive."""
    if not isinstance(total, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", total)
    if total.minor_units < 0:
        raise InvalidAmountError(field, "must be zero or positive", total)
    return total


@attrs.frozen(kw_only=True)
class ApplyCredit(Command[OrderPayment]):
    """Apply the wallet's credit to order ``order_id`` of ``total``: the order's one pending
    credit payment, new or re-sized, for ``window`` (None: ``CHECKOUT_WINDOW``)."""

    operation: ClassVar[str] = "apply_credit"
    handler: ClassVar[str] = f"{_HANDLERS}.checkout:apply_credit"
    result: ClassVar[Any] = OrderPayment

    wallet_id: str
    order_id: str
    total: Money
    mode: PaymentMode | None = None
    window: timedelta | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_name(self.order_id, "order_id")
        _order_total(self.total)
        if self.mode is not None and not isinstance(self.mode, PaymentMode):
            raise InvalidInputError("mode", "must be a PaymentMode or None", self.mode)
        window = self.window
        if window is not None and (not isinstance(window, timedelta) or window <= timedelta(0)):
            raise InvalidTimeError("window", "must be a positive timedelta", window)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        window = None if self.window is None else str(self.window.total_seconds())
        return {"wallet_id": self.wallet_id, "order_id": self.order_id, "total": self.total,
                "mode": self.mode, "window": window, "metadata": metadata}


@attrs.frozen(kw_only=True)
class _OnOrder(Command[OrderPayment]):
    """A command on the credit payment of order ``order_id``, paid by ``wallet_id``."""

    result: ClassVar[Any] = OrderPayment

    wallet_id: str
    order_id: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_name(self.order_id, "order_id")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "order_id": self.order_id, "metadata": metadata}


@attrs.frozen(kw_only=True)
class PlaceOrder(_OnOrder):
    """Place order ``order_id``: capture its pending credit payment."""

    operation: ClassVar[str] = "place_order"
    handler: ClassVar[str] = f"{_HANDLERS}.checkout:place_order"


@attrs.frozen(kw_only=True)
class AbandonOrder(_OnOrder):
    """Abandon order ``order_id``: release its pending credit payment."""

    operation: ClassVar[str] = "abandon_order"
    handler: ClassVar[str] = f"{_HANDLERS}.checkout:abandon_order"


@attrs.frozen(kw_only=True)
class CreditOwed(Command[OrderPayment]):
    """Credit what placed order ``order_id`` was paid more than its final ``total`` (credit
    plus ``paid_by_other_methods``) to the wallet's open balance, once, by staff member
    ``actor`` (required)."""

    operation: ClassVar[str] = "credit_owed"
    handler: ClassVar[str] = f"{_HANDLERS}.checkout:credit_owed"
    result: ClassVar[Any] = OrderPayment

    wallet_id: str
    order_id: str
    total: Money
    paid_by_other_methods: Money
    reason: str | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_name(self.order_id, "order_id")
        total = _order_total(self.total)
        paid = _order_total(self.paid_by_other_methods, "paid_by_other_methods")
        if paid.currency != total.currency:
            raise CurrencyMismatchError(total.currency, paid.currency, "paid_by_other_methods")
        check_optional_text(self.reason, "reason", required=False)
        if self.actor is None:
            raise InvalidInputError("actor", "must name the staff member who credits it")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "order_id": self.order_id, "total": self.total,
                "paid_by_other_methods": self.paid_by_other_methods, "reason": self.reason,
                "metadata": metadata}


# -- hub settings: a member's payment mode and floor ----------------------------------------------


def _check_reason(reason: object) -> None:
    check_optional_text(reason, "reason", required=False)


@attrs.frozen(kw_only=True)
class SetPaymentMode(Command[WalletTermChange]):
    """Give the member its own payment mode (``None``: the hub's again), recording who did it
    and why."""

    operation: ClassVar[str] = "set_payment_mode"
    handler: ClassVar[str] = f"{_HANDLERS}.hub_settings:set_payment_mode"
    result: ClassVar[Any] = WalletTermChange

    wallet_id: str
    mode: PaymentMode | None
    reason: str | None = None
    idempotency_key: str | None = None
    actor: Actor | str | None = None

    def validate(self) -> None:
        if self.mode is not None and not isinstance(self.mode, PaymentMode):
            raise InvalidInputError("mode", "must be a PaymentMode or None", self.mode)
        _check_reason(self.reason)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "mode": self.mode, "reason": self.reason}


@attrs.frozen(kw_only=True)
class SetFloor(Command[WalletTermChange]):
    """Change the wallet's floor to ``floor`` (zero or negative, in its currency), recording
    ``actor`` and ``reason``."""

    operation: ClassVar[str] = "set_floor"
    handler: ClassVar[str] = f"{_HANDLERS}.hub_settings:set_floor"
    result: ClassVar[Any] = WalletTermChange

    wallet_id: str
    floor: Money
    actor: Actor | str | None
    reason: str | None
    idempotency_key: str | None = None

    def validate(self) -> None:
        floor = self.floor
        if not isinstance(floor, Money):
            raise InvalidAmountError("floor", "must be a Money (use Money.of)", floor)
        if floor.is_positive():
            raise InvalidAmountError("floor", "must be zero or negative", floor)
        if self.actor is None:
            raise InvalidInputError("actor", "is required: who changes the floor", None)
        _check_reason(self.reason)

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "floor": self.floor, "reason": self.reason}
