"""The payment gateway automatic top-ups charge: the host's :class:`PaymentGateway`, and what
it answers about a charge (:class:`ChargeOutcome`, :class:`ChargeStatus`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import attrs

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup._fields import _enum, _mapping
from prepaid_wallet.text import printable

__all__ = ["ChargeOutcome", "ChargeStatus", "PaymentGateway", "RefundingGateway"]


class ChargeStatus(StrEnum):
    """What became of a charge.

    ``SUCCEEDED`` the money moved; ``DECLINED_HARD`` refused for good (a closed account, a
    stolen card): the method is not charged again for this top-up; ``DECLINED_SOFT`` refused for
    now (insufficient funds, rate limit): the same method may be charged again after a back-off;
    ``UNKNOWN`` no answer (a timeout): the money may have moved, so the charge must be settled
    under its key before anything else is charged; ``CANCELED`` the customer or the provider
    canceled the payment before any money moved (a customer top-up ends ``CANCELED``; an
    automatic top-up's attempt counts as hard-declined: the method is not charged again for it).
    """

    SUCCEEDED = "succeeded"
    DECLINED_HARD = "declined_hard"
    DECLINED_SOFT = "declined_soft"
    UNKNOWN = "unknown"
    CANCELED = "canceled"


def _status(value: object) -> ChargeStatus:
    return _enum(ChargeStatus, value, "status")


def _optional_text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be a string or None", value)
    # The provider's text is kept, but never as text a store refuses or a terminal obeys:
    # lone surrogates, NUL and the other characters ``text.check_text`` refuses are escaped.
    return printable(value)


def _reference(value: object) -> str | None:
    return _optional_text(value, "reference")


def _message(value: object) -> str | None:
    return _optional_text(value, "message")


@attrs.frozen
class ChargeOutcome:
    """The gateway's answer about one charge: ``status``, the provider's ``reference`` for the
    charge (if any) and a human-readable ``message`` (if any).

    The provider's text is taken as it comes, with the characters no store or terminal should
    get (lone surrogates, NUL and other control characters, bidirectional overrides: see
    :mod:`prepaid_wallet.text`) written as escapes (``"\\ud800"``, ``"\\x00"``), so any
    answer can be stored on every backend."""

    status: ChargeStatus = attrs.field(converter=_status)
    reference: str | None = attrs.field(default=None, converter=_reference)
    message: str | None = attrs.field(default=None, converter=_message)

    @property
    def is_definite(self) -> bool:
        """True for every status but ``UNKNOWN``."""
        return self.status is not ChargeStatus.UNKNOWN

    def to_data(self) -> dict[str, Any]:
        """``{"status": "succeeded", "reference": "ch_1", "message": None}``."""
        return {"status": self.status.value, "reference": self.reference, "message": self.message}

    @classmethod
    def from_data(cls, data: object) -> ChargeOutcome:
        """Rebuild an outcome from :meth:`to_data` output; ``InvalidInputError`` naming the
        field for malformed data."""
        fields = _mapping(data, "outcome", frozenset({"status", "reference", "message"}))
        return cls(fields["status"], fields["reference"], fields["message"])


@runtime_checkable
class PaymentGateway(Protocol):
    """The host's payment provider, as automatic top-ups use it.

    **Contract.** ``charge`` under an idempotency key the gateway has already seen must never
    charge again: it returns the outcome of the first charge under that key (or ``UNKNOWN``
    while that is still unknown), so re-sending a charge whose answer was lost is always safe.
    A key is only ever reused with the same method and amount.
    """

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        """Charge ``amount`` (positive) to the payment method ``method`` under
        ``idempotency_key``, and return what became of it. A timeout is returned as
        ``UNKNOWN``, not raised."""
        ...

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        """The current outcome of the charge made under ``idempotency_key``, to settle an
        ``UNKNOWN`` one: ``UNKNOWN`` while the provider does not know yet (or never received
        the charge: re-send it under the same key)."""
        ...


@runtime_checkable
class RefundingGateway(Protocol):
    """A gateway that can also give money back to the payment method a charge took it from
    (what ``WalletService.refund_top_up`` needs; a :class:`PaymentGateway` without a ``refund``
    method still serves automatic top-ups, and a refund then raises ``InvalidInputError``
    naming ``gateway``).

    **Contract.** As for charges: a refund under an idempotency key already seen never
    refunds again and answers the first one's outcome (``UNKNOWN`` while unknown), so
    re-sending a refund whose answer was lost is safe.
    """

    def refund(self, *, charge_key: str, reference: str | None, amount: Money,
               idempotency_key: str) -> ChargeOutcome:
        """Give ``amount`` (positive, at most what the charge took) of the charge made under
        ``charge_key`` (the provider's ``reference`` for it, if it gave one) back to its
        payment method, under ``idempotency_key``; ``SUCCEEDED`` once given back, a decline
        when refused, ``UNKNOWN`` for a timeout (not raised)."""
        ...
