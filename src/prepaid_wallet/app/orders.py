"""Orders' credit payments as the store keeps them: their record type, declared once, and
reading and writing them.

One record per order, under ``<tenant id>/<order id>`` (an order id is unique per tenant; a
tenant id holds no ``/``), belonging to the member's wallet, tagged with its status and
ordered by its creation instant.
"""

from __future__ import annotations

from prepaid_wallet.app.ports import RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.errors import OrderNotFoundError
from prepaid_wallet.rules.checkout import OrderPayment
from prepaid_wallet.wallet import Wallet

__all__ = ["ORDER_PAYMENTS", "find_order", "order_key", "order_of", "owned", "put_order"]


def order_key(tenant_id: str, order_id: str) -> str:
    """The key of an order's record."""
    return f"{tenant_id}/{order_id}"


#: Orders' credit payments (see the module docstring).
ORDER_PAYMENTS: RecordType[OrderPayment] = RecordType(
    kind="order_payment",
    type=OrderPayment,
    key=lambda p: order_key(p.tenant_id, p.order_id),
    tenant=lambda p: p.tenant_id,
    wallet=lambda p: p.wallet_id,
    tag=lambda p: p.status.value,
    order=lambda p: sortable_instant(p.created_at),
)


def find_order(uow: UnitOfWork, tenant_id: str, order_id: str) -> OrderPayment | None:
    """The order's credit payment at the tenant, if any, as the unit sees it."""
    return uow.get_record(ORDER_PAYMENTS, order_key(tenant_id, order_id))


def order_of(uow: UnitOfWork, wallet: Wallet, order_id: str) -> OrderPayment:
    """The order's credit payment, paid by ``wallet``; ``OrderNotFoundError`` when there is
    none, or when it is another wallet's."""
    return owned(find_order(uow, wallet.tenant_id, order_id), wallet, order_id)


def owned(found: OrderPayment | None, wallet: Wallet, order_id: str) -> OrderPayment:
    """``found``, the credit payment of order ``order_id`` read for ``wallet``'s tenant, if it
    is ``wallet``'s; ``OrderNotFoundError`` otherwise (none, or another wallet's)."""
    if found is None or found.wallet_id != wallet.id:
        raise OrderNotFoundError(order_id)
    return found


def put_order(uow: UnitOfWork, payment: OrderPayment) -> None:
    """Buffer the order's credit payment (new, or its new state)."""
    uow.put_record(ORDER_PAYMENTS, payment)
