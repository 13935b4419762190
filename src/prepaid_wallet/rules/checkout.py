"""Credit at checkout: the credit payment of a host's order, and what the host tells the library
about payments by other methods.

An order is the host's: the library keeps one :class:`OrderPayment` per order id and tenant,
the part of the order's total that the member's credit pays. While the order is open the credit
is *pending*: it is reserved by a hold underneath (so fees and limits apply as they do for
holds) that lives :data:`CHECKOUT_WINDOW` unless the host asks for another window. Placing the
order captures it, abandoning it releases it. Every state says what remains due for another
payment method (:attr:`OrderPayment.remainder_due`).

Once placed, an order paid more than its (final) total -- credit plus what other methods paid
-- is owed the difference (:func:`credit_owed`), credited once to the member's open balance.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode

__all__ = [
    "CHECKOUT_WINDOW",
    "CreditClaim",
    "OrderPayment",
    "OrderStatus",
    "credit_owed",
]

#: How long a pending credit payment lives when the host names no window: two hours of
#: elapsed time from the last time credit was applied to the order.
CHECKOUT_WINDOW = timedelta(hours=2)


class OrderStatus(StrEnum):
    """Where an order's credit payment is: pending (credit reserved), placed (captured) or
    abandoned (released)."""

    PENDING = "pending"
    PLACED = "placed"
    ABANDONED = "abandoned"


@attrs.frozen(kw_only=True)
class OrderPayment:
    """The credit payment of one order.

    * ``order_id``, ``tenant_id``, ``wallet_id`` -- the host's order (its id is unique per
      tenant) and the member's wallet that pays it;
    * ``total`` -- the order's total as the host last gave it;
    * ``credit`` -- what credit pays of it (reserved while pending, captured once placed);
      never more than ``total``, zero when credit can pay nothing;
    * ``mode`` -- the payment mode the order was sized under: with ``CREDIT_ONLY`` an order
      whose credit does not cover its total cannot be placed;
    * ``status``, ``hold_id`` (the hold underneath, None when ``credit`` is zero),
      ``expires_at`` (the end of the pending payment), ``created_at``, ``updated_at``;
    * ``entry_id`` -- the capture entry, once placed with credit;
    * ``paid_by_other_methods``, ``final_total``, ``credited``, ``credited_entry_id``,
      ``credited_by``, ``credited_at`` -- the credit owed, once credited, and who did it.
    """

    order_id: str
    tenant_id: str
    wallet_id: str
    total: Money
    credit: Money
    mode: PaymentMode
    status: OrderStatus
    hold_id: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    entry_id: str | None = None
    paid_by_other_methods: Money | None = None
    final_total: Money | None = None
    credited: Money | None = None
    credited_entry_id: str | None = None
    credited_by: str | None = None
    credited_at: datetime | None = None

    @property
    def remainder_due(self) -> Money:
        """What of the total another payment method must pay: ``total - credit``."""
        return self.total - self.credit

    def is_expired(self, at: datetime) -> bool:
        """True for a pending payment at or after its end."""
        return self.status is OrderStatus.PENDING and at >= self.expires_at


@attrs.frozen(kw_only=True)
class CreditClaim:
    """What the host tells the library about one placed order that may have been paid more
    than its total: the member's ``wallet_id``, the ``order_id``, the order's final ``total``
    (e.g. lower than at checkout when an item could not be delivered) and what other payment
    methods paid for it (``paid_by_other_methods``, zero or positive)."""

    wallet_id: str
    order_id: str
    total: Money
    paid_by_other_methods: Money


def credit_owed(payment: OrderPayment, total: Money, paid_by_other_methods: Money) -> Money:
    """What the order was paid more than ``total``: its captured credit plus
    ``paid_by_other_methods``, less ``total`` (zero or negative: nothing is owed)."""
    return payment.credit + paid_by_other_methods - total
