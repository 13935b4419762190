"""Money moved after the fact: transfers, payouts, an operator's credits and debits,
refunds and reversals.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Mapping

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.money import Money
    from prepaid_wallet.results import (
        Receipt,
        RefundResult,
    )

__all__ = ["Transfers"]


class Transfers(Facade):
    """Transfers, payouts, manual credits and debits, refunds and reversals."""

    # -- transfers, refunds, reversals ------------------------------------------------------

    def transfer(
        self,
        from_wallet_id: str,
        to_wallet_id: str,
        amount: Money,
        *,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Move ``amount`` of open balance to another wallet of the same tenant and currency.

        Never to the same wallet; never below the source's floor (``InsufficientFundsError``).
        Commerce lots do not move. With ``group_id`` (a condition group of the tenant) the money
        arrives in the target as a conditioned commerce lot (``lot_id`` of the receipt) instead
        of open balance. The sender pays the tenant's transfer fees from its open balance in the
        same entry (the floor applies to amount plus fee); the sender's transfer limits and the
        target's maximum balance apply (``LimitExceededError``)."""
        from prepaid_wallet.app.commands import Transfer

        return self._run(Transfer(
            from_wallet_id=from_wallet_id, to_wallet_id=to_wallet_id, amount=amount,
            group_id=group_id, idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def payout(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Pay ``amount`` of the open balance out to the owner with ``method`` (e.g.
        ``"bank"``). Never below the floor, fee included (``InsufficientFundsError``); the
        tenant's payout fees and the wallet's payout limits apply."""
        from prepaid_wallet.app.commands import Payout

        return self._run(Payout(
            wallet_id=wallet_id, amount=amount, method=method, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def credit(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """An operator's manual credit of ``amount`` to the open balance (against the tenant's
        adjustment account), with its ``reason``. The tenant's credit fees and the wallet's
        maximum balance apply."""
        from prepaid_wallet.app.commands import Credit

        return self._run(Credit(
            wallet_id=wallet_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def debit(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """An operator's manual debit of ``amount`` from the open balance, with its ``reason``;
        never below the floor, fee included (``InsufficientFundsError``)."""
        from prepaid_wallet.app.commands import Debit

        return self._run(Debit(
            wallet_id=wallet_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def refund(
        self,
        entry_id: str,
        amount: Money | None = None,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundResult:
        """Give back ``amount`` (default: all that is left) of a spend or capture entry.

        The money returns to the lots and open balance it came from, keeping their expiry; the
        source paid last is refunded first. A part whose lot has expired meanwhile is booked as
        breakage. Refunds of one entry never add up to more than it took
        (``RefundExceedsOriginalError``)."""
        from prepaid_wallet.app.commands import Refund

        return self._run(Refund(
            entry_id=entry_id, amount=amount, reason=reason, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def reverse(
        self,
        entry_id: str,
        *,
        reason: str,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Correct a top-up, award or transfer with a new entry that negates it (linked both
        ways; at most one per entry: ``AlreadyReversedError``). Refused with
        ``InsufficientFundsError`` when the reversal would take an open balance below its
        wallet's floor or a lot below zero, or when an awarded lot has expired (its remainder
        is breakage); with a floor below zero, a reversed top-up that was
        already spent leaves the open balance negative (the customer owes it). Spends and
        captures are corrected with :meth:`refund`, holds with :meth:`void`."""
        from prepaid_wallet.app.commands import Reverse

        return self._run(Reverse(
            entry_id=entry_id, reason=reason, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

