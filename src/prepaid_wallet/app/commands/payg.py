"""The commands of pay-as-you-go time credit: opening a contract, the device's reported state,
payments and conversion transactions, the upgrade call, paying a downpayment from past payments
(reconversion, supervisor only) or from a conversion (unlinking, admin only), and confirming an
upgrade installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import check_positive
from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.pipeline import Command
from prepaid_wallet.errors import CurrencyMismatchError, InvalidAmountError, InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money, plain_decimal
from prepaid_wallet.rules.payg import DeviceState, PaygOutcome

__all__ = [
    "CallUpgrade",
    "ConfirmUpgradeInstalled",
    "OpenContract",
    "PaygPay",
    "ReconvertPayments",
    "RecordConversion",
    "ReportDevice",
    "UnlinkConversionPayment",
]

_PAYG = f"{_HANDLERS}.payg"
#: The role the procedure lets reconvert past payments into a downpayment.
SYSTEM_PROCESS_OFFICER = "system_process_officer"
#: The role the procedure lets unlink a payment from a conversion transaction.
ADMIN = "admin"


def _distinct(value: object, field: str, what: str, each: str) -> tuple[str, ...]:
    """One or more ``what`` (names), none twice (``each``: one of them, in the message)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInputError(field, f"must be a non-empty sequence of {what}", value)
    names = tuple(check_name(item, field) for item in value)
    if len(set(names)) != len(names):
        raise InvalidInputError(field, f"must not name {each} twice", value)
    return names


def _plain(value: Any) -> Any:
    """A ``Decimal`` subclass as the plain ``Decimal`` it holds (its own methods may lie); any
    other value as it is, for ``validate`` to judge."""
    return plain_decimal(value) if isinstance(value, Decimal) else value


def _products(products: object) -> tuple[str, ...]:
    return _distinct(products, "products", "product names", "a product")


@attrs.frozen(kw_only=True)
class _OnContract(Command[PaygOutcome]):
    """A command on the wallet's pay-as-you-go contract."""

    result: ClassVar[Any] = PaygOutcome

    wallet_id: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "metadata": metadata, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        return {}


@attrs.frozen(kw_only=True)
class OpenContract(_OnContract):
    """Open a pay-as-you-go contract on the wallet for ``products`` at ``daily_rate``."""

    operation: ClassVar[str] = "open_contract"
    handler: ClassVar[str] = f"{_PAYG}:open_contract"

    products: Sequence[str]
    daily_rate: Money
    device_id: str | None = None
    starting_code: int | None = None

    def validate(self) -> None:
        _products(self.products)
        check_positive(self.daily_rate, "daily_rate")
        if self.device_id is not None:
            check_name(self.device_id, "device_id")
        code = self.starting_code
        if code is not None:
            if self.device_id is None:
                raise InvalidInputError("starting_code", "needs a device_id", code)
            if isinstance(code, bool) or not isinstance(code, int) \
                    or not 1 <= code <= 999_999_999:
                raise InvalidInputError("starting_code", "must be an int from 1 to 999999999",
                                        code)

    def _fields(self) -> dict[str, Any]:
        return {"products": list(self.products), "daily_rate": self.daily_rate,
                "device_id": self.device_id, "starting_code": self.starting_code}


@attrs.frozen(kw_only=True)
class ReportDevice(_OnContract):
    """Record the device's state as the host reports it."""

    operation: ClassVar[str] = "report_device"
    handler: ClassVar[str] = f"{_PAYG}:report_device"

    state: DeviceState

    def validate(self) -> None:
        if not isinstance(self.state, DeviceState):
            raise InvalidInputError("state", "must be a DeviceState", self.state)

    def _fields(self) -> dict[str, Any]:
        return {"state": self.state}


@attrs.frozen(kw_only=True)
class PaygPay(_OnContract):
    """A payment of ``amount`` by ``method`` (the host's reference ``payment_id``): turned
    into time, or held toward a waiting upgrade's downpayment."""

    operation: ClassVar[str] = "payg_payment"
    handler: ClassVar[str] = f"{_PAYG}:pay"

    payment_id: str
    amount: Money
    method: str = "mobile_money"

    def validate(self) -> None:
        check_name(self.payment_id, "payment_id")
        check_positive(self.amount)
        check_name(self.method, "method")

    def _fields(self) -> dict[str, Any]:
        return {"payment_id": self.payment_id, "amount": self.amount, "method": self.method}


@attrs.frozen(kw_only=True)
class RecordConversion(_OnContract):
    """A conversion transaction: ``payments`` (payment id -> amount) made before the customer
    went pay-as-you-go, turned into time together and linked to ``conversion_id``."""

    operation: ClassVar[str] = "record_conversion"
    handler: ClassVar[str] = f"{_PAYG}:record_conversion"

    conversion_id: str
    payments: Mapping[str, Money]
    method: str = "conversion"

    def validate(self) -> None:
        check_name(self.conversion_id, "conversion_id")
        payments = self.payments
        if not isinstance(payments, Mapping) or not payments:
            raise InvalidInputError("payments", "must map one or more payment ids to amounts",
                                    payments)
        currency = None
        for payment_id, amount in payments.items():
            check_name(payment_id, "payments")
            if payment_id == self.conversion_id:
                raise InvalidInputError("payments", "must not reuse the conversion's id",
                                        payment_id)
            if not isinstance(amount, Money):
                raise InvalidAmountError("payments", "amounts must be Money", amount)
            check_positive(amount, "payments")
            if currency is not None and amount.currency != currency:
                raise CurrencyMismatchError(currency, amount.currency, "payments")
            currency = amount.currency
        check_name(self.method, "method")

    def _fields(self) -> dict[str, Any]:
        return {"conversion_id": self.conversion_id, "method": self.method,
                "payments": {k: self.payments[k] for k in sorted(self.payments)}}


@attrs.frozen(kw_only=True)
class CallUpgrade(_OnContract):
    """The upgrade call: the new ``products`` and ``daily_rate`` and the ``downpayment`` to
    pay within the window; ``performance`` is the host's own figure (None: the library's)."""

    operation: ClassVar[str] = "call_upgrade"
    handler: ClassVar[str] = f"{_PAYG}:call_upgrade"

    products: Sequence[str]
    daily_rate: Money
    downpayment: Money
    performance: Decimal | None = attrs.field(default=None, converter=_plain)

    def validate(self) -> None:
        _products(self.products)
        rate = check_positive(self.daily_rate, "daily_rate")
        down = check_positive(self.downpayment, "downpayment")
        if down.currency != rate.currency:
            raise CurrencyMismatchError(rate.currency, down.currency, "downpayment")
        score = self.performance  # a Decimal subclass is held as the plain Decimal it holds
        if score is not None and (
                isinstance(score, bool) or not isinstance(score, Decimal)
                or not score.is_finite() or not Decimal(0) <= score <= Decimal(1)):
            raise InvalidInputError("performance", "must be a Decimal from 0 to 1 or None",
                                    score)

    def _fields(self) -> dict[str, Any]:
        return {"products": list(self.products), "daily_rate": self.daily_rate,
                "downpayment": self.downpayment,
                "performance": None if self.performance is None else str(self.performance)}


@attrs.frozen(kw_only=True)
class ReconvertPayments(_OnContract):
    """Turn the time of past payments ``payment_ids`` back into money and use it to pay the
    waiting upgrade's downpayment (a surplus becomes time again). System process officers
    only."""

    operation: ClassVar[str] = "reconvert_payments"
    handler: ClassVar[str] = f"{_PAYG}:reconvert_payments"
    required_roles: ClassVar[frozenset[str]] = frozenset({SYSTEM_PROCESS_OFFICER})

    payment_ids: Sequence[str]

    def validate(self) -> None:
        _distinct(self.payment_ids, "payment_ids", "ids", "a payment")

    def _fields(self) -> dict[str, Any]:
        return {"payment_ids": list(self.payment_ids)}


@attrs.frozen(kw_only=True)
class UnlinkConversionPayment(_OnContract):
    """Unlink one payment from conversion ``conversion_id`` (``payment_id``, or None: the
    first linked payment that covers what the downpayment still needs) and use it to pay the
    waiting upgrade's downpayment. Admins only."""

    operation: ClassVar[str] = "unlink_conversion_payment"
    handler: ClassVar[str] = f"{_PAYG}:unlink_conversion_payment"
    required_roles: ClassVar[frozenset[str]] = frozenset({ADMIN})

    conversion_id: str
    payment_id: str | None = None

    def validate(self) -> None:
        check_name(self.conversion_id, "conversion_id")
        if self.payment_id is not None:
            check_name(self.payment_id, "payment_id")

    def _fields(self) -> dict[str, Any]:
        return {"conversion_id": self.conversion_id, "payment_id": self.payment_id}


@attrs.frozen(kw_only=True)
class ConfirmUpgradeInstalled(_OnContract):
    """The paid upgrade's products were installed or collected: the contract is active
    again."""

    operation: ClassVar[str] = "confirm_upgrade_installed"
    handler: ClassVar[str] = f"{_PAYG}:confirm_upgrade_installed"
