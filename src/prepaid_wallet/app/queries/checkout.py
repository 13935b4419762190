"""Reading orders' credit payments, and a member's hub settings."""

from __future__ import annotations

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.orders import ORDER_PAYMENTS, order_of
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.policies import PaymentMode
from prepaid_wallet.rules.checkout import OrderPayment
from prepaid_wallet.rules.hub import WalletTerm, WalletTermChange

__all__ = ["order_payment", "order_payments", "payment_mode", "wallet_term_changes"]


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


def payment_mode(env: Environment, wallet_id: str) -> PaymentMode:
    """The payment mode a spend of the wallet without a mode of its own is decided in: the
    member's own, when its hub allows member modes and it has one, else the hub's."""
    from prepaid_wallet.app.decision import payment_mode as effective

    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return effective(env, uow, env.wallet(uow, wallet_id), None)


def wallet_term_changes(env: Environment, wallet_id: str, term: str | None = None
                        ) -> list[WalletTermChange]:
    """The changes of the wallet's floor and payment mode (of ``term`` only, if given), oldest
    first."""
    from prepaid_wallet.app.wallet_terms import term_changes

    check_name(wallet_id, "wallet_id")
    if term is not None and term not in {item.value for item in WalletTerm}:
        raise InvalidInputError("term", "must be one of "
                                + ", ".join(item.value for item in WalletTerm), term)
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return term_changes(uow, wallet_id, term)
