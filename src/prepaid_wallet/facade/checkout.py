"""Credit at checkout: applying a member's credit to a host's order, placing or abandoning
the order, and crediting what a placed order was paid more than its total.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.errors import PrepaidWalletError
    from prepaid_wallet.money import Money
    from prepaid_wallet.policies import PaymentMode
    from prepaid_wallet.rules.checkout import CreditClaim, OrderPayment
    from prepaid_wallet.rules.hub import WalletTermChange

__all__ = ["Checkout"]


class Checkout(Facade):
    """Orders' credit payments and the credit owed on them."""

    def apply_credit(
        self,
        wallet_id: str,
        *,
        order_id: str,
        total: Money,
        mode: PaymentMode | None = None,
        window: timedelta | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> OrderPayment:
        """Apply the wallet's credit to the host's order ``order_id`` (a name, unique per
        tenant) of ``total`` (zero or positive, in the wallet's currency) and return the
        order's credit payment; its ``remainder_due`` is what another payment method must pay.

        The order has one pending credit payment: credit pays the least of what it can and
        ``total``, decided as a credit-first spend of ``total`` (the tenant's spend fee set
        aside, the wallet's floor and spend limits kept; when a limit would be breached credit
        pays nothing), reserved by a hold underneath that lives ``window`` (default
        :data:`~prepaid_wallet.rules.checkout.CHECKOUT_WINDOW`, two hours) from now.
        Applying again with the same total (and mode) before it ends changes nothing; a
        changed total, or a payment that has ended, re-sizes the same payment (its hold
        released and a new one placed in one unit of work), up or down, never below zero.

        ``mode`` (None: the member's own, else the hub's ``TenantRules.payment_mode``) is
        kept: an order sized ``CREDIT_ONLY`` whose credit does not pay all of it cannot be
        placed (``OrderNotCoveredError``). ``OrderStateError`` for an order already placed or
        abandoned; ``InvalidInputError`` (``order_id``) for another wallet's order."""
        from prepaid_wallet.app.commands.checkout import ApplyCredit

        return self._run(ApplyCredit(
            wallet_id=wallet_id, order_id=order_id, total=total, mode=mode, window=window,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def place_order(
        self,
        wallet_id: str,
        *,
        order_id: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> OrderPayment:
        """Place the order: capture its pending credit payment (a capture of its hold, with
        the spend fee it reserved; ``entry_id`` of the result) and return it, placed.

        Refused, changing nothing: ``OrderStateError`` when it is not pending,
        ``OrderExpiredError`` at or after the end of its pending payment (apply credit again,
        which reserves credit anew, then place it), ``OrderNotCoveredError`` for an order sized
        ``CREDIT_ONLY`` that credit does not pay in full. ``OrderNotFoundError`` when the
        wallet has no such order."""
        from prepaid_wallet.app.commands.checkout import PlaceOrder

        return self._run(PlaceOrder(
            wallet_id=wallet_id, order_id=order_id, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def abandon_order(
        self,
        wallet_id: str,
        *,
        order_id: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> OrderPayment:
        """Abandon the order: release its pending credit payment back where it came from and
        return it, abandoned (its credit no longer reserved: ``credit`` stays what it was).
        ``OrderStateError`` when it is not pending; ``OrderNotFoundError`` when unknown."""
        from prepaid_wallet.app.commands.checkout import AbandonOrder

        return self._run(AbandonOrder(
            wallet_id=wallet_id, order_id=order_id, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def credit_owed(
        self,
        wallet_id: str,
        *,
        order_id: str,
        total: Money,
        paid_by_other_methods: Money,
        actor: Actor | str,
        reason: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> OrderPayment:
        """Credit what the placed order was paid more than its final ``total``: its credit
        plus ``paid_by_other_methods`` (what the host's other payment methods took for it),
        less ``total`` (both zero or positive, in the wallet's currency), to the member's open
        balance, once, in one entry (a credit against the tenant's adjustment account, no fee,
        no limit), recording ``actor`` (the staff member; required) and ``reason``.

        Asking again, or for an order not paid more than its total, is refused with
        ``NoCreditOwedError`` and changes nothing; ``OrderStateError`` for an order not
        placed. An order credit was never applied to (paid by other methods only) is owed
        ``paid_by_other_methods - total``; it is recorded as placed with no credit, so it too is
        credited once."""
        from prepaid_wallet.app.commands.checkout import CreditOwed

        return self._run(CreditOwed(
            wallet_id=wallet_id, order_id=order_id, total=total,
            paid_by_other_methods=paid_by_other_methods, reason=reason,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def credit_owed_many(
        self,
        claims: Sequence[CreditClaim],
        *,
        actor: Actor | str,
        reason: str | None = None,
    ) -> list[OrderPayment | PrepaidWalletError]:
        """:meth:`credit_owed` for each claim (a
        :class:`~prepaid_wallet.rules.checkout.CreditClaim`), in order, one unit of work and
        one entry per order credited. Returns, per claim, the order credited or the error that
        changed nothing for it (``NoCreditOwedError`` for one already credited, so running the
        same claims again credits nothing twice). Bad arguments in any claim raise
        ``InvalidInputError`` naming ``claims[<index>].<field>`` before any claim runs."""
        from prepaid_wallet.app.handlers.checkout import credit_owed_many

        return credit_owed_many(self._env, claims, actor=actor, reason=reason)

    def order_payment(self, wallet_id: str, order_id: str) -> OrderPayment:
        """The order's credit payment as it is now; ``OrderNotFoundError`` if the wallet has
        none for ``order_id``. A pending one past its end (``is_expired``) still reserves its
        credit until it is abandoned, applied again or its hold is released by
        :meth:`expire_due`."""
        from prepaid_wallet.app.queries.checkout import order_payment

        return order_payment(self._env, wallet_id, order_id)

    def order_payments(self, wallet_id: str) -> list[OrderPayment]:
        """Every order's credit payment of the wallet, oldest first."""
        from prepaid_wallet.app.queries.checkout import order_payments

        return order_payments(self._env, wallet_id)

    # -- hub settings: a member's payment mode and floor -------------------------------------

    def set_payment_mode(
        self,
        wallet_id: str,
        mode: PaymentMode | None,
        *,
        actor: Actor | str | None = None,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> WalletTermChange:
        """Give the member its own payment mode, which a spend, hold or order of the wallet
        that names no mode is decided in instead of the hub's ``TenantRules.payment_mode``;
        ``None`` removes it (the hub's mode applies again). The hub must allow member modes
        (``TenantRules.member_payment_modes``; else ``InvalidInputError`` naming ``mode``, and
        while it does not, a stored member mode is not applied). Moves no money; returns the
        change (from what to what, when, ``actor`` -- else the service's -- and ``reason``),
        kept in :meth:`wallet_term_changes`."""
        from prepaid_wallet.app.commands.checkout import SetPaymentMode

        return self._run(SetPaymentMode(
            wallet_id=wallet_id, mode=mode, actor=actor, reason=reason,
            idempotency_key=idempotency_key))

    def set_floor(
        self,
        wallet_id: str,
        floor: Money,
        *,
        actor: Actor | str,
        reason: str | None,
        idempotency_key: str | None = None,
    ) -> WalletTermChange:
        """Change the wallet's floor -- the lowest its open balance may go -- to ``floor``
        (zero or negative, in the wallet's currency). ``actor`` (who changes it) is required,
        ``reason`` says why (None: no reason given). Moves no money; returns the change (from
        what to what, as decimal strings, and when), kept in :meth:`wallet_term_changes`.

        A floor above the wallet's open balance is refused (``FloorAboveBalanceError``,
        nothing changed): the wallet would be below its floor. ``InvalidAmountError`` naming
        ``floor`` for a positive floor or one that is not ``Money``, ``CurrencyMismatchError``
        for another currency. Under ``idempotency_key`` a retry returns the first change."""
        from prepaid_wallet.app.commands.checkout import SetFloor

        return self._run(SetFloor(
            wallet_id=wallet_id, floor=floor, actor=actor, reason=reason,
            idempotency_key=idempotency_key))

    def payment_mode(self, wallet_id: str) -> PaymentMode:
        """The payment mode the wallet's requests without a mode are decided in: the member's
        own (:meth:`set_payment_mode`) while its hub allows member modes, else the hub's."""
        from prepaid_wallet.app.queries.checkout import payment_mode

        return payment_mode(self._env, wallet_id)

    def wallet_term_changes(self, wallet_id: str, term: str | None = None
                            ) -> list[WalletTermChange]:
        """Every change of the wallet's floor and payment mode (``term``: ``"floor"`` or
        ``"payment_mode"`` only), oldest first: who changed what, when, from what to what and
        why."""
        from prepaid_wallet.app.queries.checkout import wallet_term_changes

        return wallet_term_changes(self._env, wallet_id, term)
