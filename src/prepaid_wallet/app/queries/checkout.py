"""Reading orders' credit payments."""

from __future__ import annotations

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.orders import ORDER_PAYMENTS, order_of
from prepaid_wallet.ids import check_name
from prepaid_wallet.rules.checkout import OrderPayment

__all__ = ["order_payment", "order_payments"]


def order_payment(env: Environment, wallet_id: str, order_id: str) -> OrderPayment:
    """The order's credit payment as it is now; ``OrderNotFoundError`` when the wallet has
    none for ``order_id`` (``WalletNotFoundError`` for an unknown wallet)."""
    check_name(wallet_id, "wallet_id")
    check_name(order_id, "order_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return order_of(uow, env.wallet(uow, wallet_id), order_id)


def order_payments(env: Environment, wallet_id: str) -> list[OrderPayment]:
    """Every order's credit payment of the wallet, oldest first."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return uow.find_records(ORDER_PAYMENTS, wallet_id=wallet_id)
