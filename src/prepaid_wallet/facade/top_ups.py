"""Customer top-ups: a top-up the customer pays through the host's payment provider, credited
when the provider reports that the money was taken.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query, and does nothing else. The
provider's answer comes back through :meth:`~prepaid_wallet.service.WalletService.report_charge`,
the call automatic top-ups share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Mapping

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.money import Money
    from prepaid_wallet.rules.topup.customer import CustomerTopUp, TopUpRefund

__all__ = ["CustomerTopUps"]


class CustomerTopUps(Facade):
    """Customer top-ups: start one, read them back, give their money back."""

    def start_top_up(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CustomerTopUp:
        """Start a customer top-up of ``amount`` (positive, the wallet's currency) paid with
        the payment method ``method`` (the host's name for it: ``"card"``, ``"ideal"``...).

        It is *pending* and moves no money. Hand its ``id`` to the payment provider (as the
        payment's idempotency key or reference) and report the provider's answer with
        :meth:`report_charge` ``(top_up.id, outcome)``: a success is credited to the open
        balance exactly once (less the tenant's top-up fee), failure or cancellation credit
        nothing. A pending top-up expires ``TenantRules.customer_top_ups.lifetime`` after it
        started (``expire_due`` marks it); a success reported later still credits it. The
        credit entry carries ``actor`` and ``metadata``.

        Raises ``InvalidAmountError`` naming ``amount`` for an amount outside the tenant's
        ``customer_top_ups`` bounds or not above its top-up fee, ``CurrencyMismatchError``
        for another currency, ``InvalidInputError`` naming ``method``, and
        ``LimitExceededError`` when a top-up of ``amount`` now would breach the wallet's
        top-up limits or maximum balance (checked again at credit). Under an
        ``idempotency_key`` a retry returns the same top-up."""
        from prepaid_wallet.app.commands.top_ups import StartTopUp

        return self._run(StartTopUp(
            wallet_id=wallet_id, amount=amount, method=method,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def customer_top_up(self, top_up_id: str) -> CustomerTopUp | None:
        """The customer top-up, if any (none of another tenant, for a scoped service): its
        status, the provider's last answer, its credit entry and what was refunded."""
        from prepaid_wallet.app.queries.top_ups import customer_top_up

        return customer_top_up(self._env, top_up_id)

    def pending_top_ups(
        self, *, tenant_id: str | None = None, wallet_id: str | None = None, limit: int = 100
    ) -> list[CustomerTopUp]:
        """The pending customer top-ups of a tenant or of a wallet (give exactly one),
        soonest to expire first, at most ``limit``. A top-up past its time is listed until
        ``expire_due`` marks it expired."""
        from prepaid_wallet.app.queries.top_ups import pending_customer_top_ups

        return pending_customer_top_ups(self._env, tenant_id=tenant_id, wallet_id=wallet_id,
                                        limit=limit)

    def expire_top_ups(self) -> tuple[str, ...]:
        """Mark expired every pending customer top-up whose time is up (a scoped service: its
        own tenant's), each in a unit of work of its own; the ids expired. A success reported
        later still credits (the money was taken). :meth:`expire_due` does this after its
        sweep; ``prepaid-wallet expire`` too."""
        from prepaid_wallet.app.handlers.customer_top_up import expire_top_ups

        return expire_top_ups(self._env)

    def refund_top_up(
        self,
        top_up_id: str,
        amount: Money | None = None,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TopUpRefund:
        """Give ``amount`` (None: all that may be) of a customer top-up back to the payment
        method it came from, through the service's gateway (which must have a ``refund``
        method: :class:`~prepaid_wallet.rules.topup.RefundingGateway`; without one,
        ``InvalidInputError`` naming ``gateway`` and nothing written).

        *What is left* of a top-up is its amount less what was refunded (or is being refunded)
        and charged back before; for a credited top-up, also no more than the wallet's open
        balance (money already spent is not refunded: a wallet with 4.00 left of a 25.00
        top-up may get 4.00 back); a ``REFUND_DUE`` top-up (never credited) may get all of it
        back. More than that raises ``RefundExceedsOriginalError`` (``refundable`` says what is
        left).

        The money leaves the open balance first (a ``refund_out`` entry, in the unit of
        work that stores the refund as pending), then the gateway is asked, outside any lock.
        A refused refund puts the money back (a reversal of that entry) and is ``FAILED``; an
        unknown answer (or a process that dies) leaves it ``PENDING``: call again with the
        same ``idempotency_key`` to send it again under the same gateway key, which never
        refunds twice. Returns the :class:`~prepaid_wallet.rules.topup.customer.TopUpRefund`."""
        from prepaid_wallet.app.handlers.customer_top_up import refund_top_up

        return refund_top_up(self._env, top_up_id, amount, reason=reason,
                             idempotency_key=idempotency_key, actor=actor, metadata=metadata)

    def charge_back_top_up(
        self,
        top_up_id: str,
        amount: Money | None = None,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CustomerTopUp:
        """Book the provider taking back ``amount`` (None: all that is left) of a customer
        top-up -- a dispute the merchant lost -- after its money may have been spent.

        For a credited top-up it is a ``chargeback`` entry from the open balance back to the
        method's funding account, which may take the open balance below zero and below the
        wallet's floor: a debt. Nothing can be spent while the open balance is at or below the
        floor, and the next top-up repays the debt first (it is credited to the same open
        balance). For a ``REFUND_DUE`` top-up (never credited) nothing leaves the wallet: what
        is owed back shrinks. At most what is left of the top-up (its amount less refunds and
        earlier chargebacks: ``RefundExceedsOriginalError`` beyond it). Returns the top-up
        (``charged_back``, ``chargeback_ids``)."""
        from prepaid_wallet.app.commands.top_ups import ChargeBackTopUp

        return self._run(ChargeBackTopUp(
            top_up_id=top_up_id, amount=amount, reason=reason,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))
