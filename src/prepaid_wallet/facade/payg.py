"""Pay-as-you-go time credit: contracts whose payments become days of service at a daily
rate, upgrades with a downpayment window, and paying a downpayment from past payments.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else.
The rules (rounding, which rate values what, the window) are in :mod:`prepaid_wallet.rules.payg`
and ``docs/payg.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from decimal import Decimal

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.money import Money
    from prepaid_wallet.rules.payg import (
        Contract,
        Conversion,
        DeviceState,
        OnTime,
        PaygOutcome,
        PaygPayment,
        Upgrade,
    )

__all__ = ["PayAsYouGo"]


class PayAsYouGo(Facade):
    """Pay-as-you-go contracts, payments, upgrades and their history."""

    def open_contract(
        self,
        wallet_id: str,
        *,
        products: Sequence[str],
        daily_rate: Money,
        device_id: str | None = None,
        starting_code: int | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Open a pay-as-you-go contract on the wallet: ``products`` (names) at ``daily_rate``
        (positive, in the wallet's currency) per day of service, for the device ``device_id``
        if any (unique per tenant: ``InvalidInputError`` for another contract's device), whose
        OpenPAYGO ``starting_code`` is given or derived from its key (the service's
        ``device_keys``). Service starts ended (no time yet): the first payment buys it. One
        contract per wallet (``ContractStateError`` for a second)."""
        from prepaid_wallet.app.commands.payg import OpenContract

        return self._run(OpenContract(
            wallet_id=wallet_id, products=products, daily_rate=daily_rate, device_id=device_id,
            starting_code=starting_code, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    def report_device(
        self,
        wallet_id: str,
        *,
        state: DeviceState,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Record the device's ``state`` as the host reports it (an upgrade needs it on)."""
        from prepaid_wallet.app.commands.payg import ReportDevice

        return self._run(ReportDevice(
            wallet_id=wallet_id, state=state, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    def payg_payment(
        self,
        wallet_id: str,
        *,
        payment_id: str,
        amount: Money,
        method: str = "mobile_money",
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Record a payment of ``amount`` (positive, in the wallet's currency) made with
        ``method``; ``payment_id`` is the host's reference, unique per tenant
        (``InvalidInputError`` for one already recorded).

        The money comes into the open balance (a ``top_up`` entry). While an upgrade waits for
        its downpayment (before its deadline) the payment is held toward it, and the upgrade
        completes the moment the held payments reach the downpayment; otherwise the payment
        is turned into time at the contract's daily rate (a ``time`` entry to the tenant's
        prepaid-service account), running from the later of now and the current service end,
        in whole seconds rounded down. A payment at or after a waiting upgrade's deadline
        expires the upgrade first."""
        from prepaid_wallet.app.commands.payg import PaygPay

        return self._run(PaygPay(
            wallet_id=wallet_id, payment_id=payment_id, amount=amount, method=method,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def record_conversion(
        self,
        wallet_id: str,
        *,
        conversion_id: str,
        payments: Mapping[str, Money],
        method: str = "conversion",
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Record the conversion of a customer who paid monthly to pay-as-you-go:
        ``payments`` (payment id -> amount) made before, linked to ``conversion_id``, their
        money turned into time together at the contract's rate (each payment buying what its
        amount buys). Linked payments cannot be reconverted; an admin may unlink one
        (:meth:`unlink_conversion_payment`)."""
        from prepaid_wallet.app.commands.payg import RecordConversion

        return self._run(RecordConversion(
            wallet_id=wallet_id, conversion_id=conversion_id, payments=payments, method=method,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def call_upgrade(
        self,
        wallet_id: str,
        *,
        products: Sequence[str],
        daily_rate: Money,
        downpayment: Money,
        performance: Decimal | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """The upgrade call: the customer wants ``products`` (the whole new package) at
        ``daily_rate`` and must pay ``downpayment`` within four hours of elapsed time.

        Refused (``NotEligibleError``, nothing changed) unless the contract performance is
        strictly above 95 % (``performance``: the host's own figure, a Decimal from 0 to 1;
        None: the library's, :meth:`contract_performance`), the device is reported on and
        service ends after now; ``ContractStateError`` while another upgrade waits or waits to
        be installed. The upgrade (``outcome.upgrade``) says the time the customer will have
        left after upgrading (``time_left_after``) and its ``deadline``."""
        from prepaid_wallet.app.commands.payg import CallUpgrade

        return self._run(CallUpgrade(
            wallet_id=wallet_id, products=products, daily_rate=daily_rate,
            downpayment=downpayment, performance=performance,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def reconvert_payments(
        self,
        wallet_id: str,
        *,
        payment_ids: Sequence[str],
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Use past payments already turned into time to pay the waiting upgrade's
        downpayment (system process officers only): the time their amounts buy at the
        current rate is removed and the money comes back (a ``time_return`` entry), pays the
        downpayment with any payments held toward it (a ``downpayment`` entry), the time left
        is re-valued at the new rate and a surplus becomes time at it; the contract moves to
        install or collect the upgrade.

        Refused, nothing changed: ``ContractStateError`` when no upgrade waits for its
        downpayment; ``PaymentStateError`` for a payment already reconverted, held, linked to
        a conversion or used; ``DownpaymentNotCoveredError`` when the money falls short;
        ``NotEnoughTimeError`` when the time to remove exceeds the time left."""
        from prepaid_wallet.app.commands.payg import ReconvertPayments

        return self._run(ReconvertPayments(
            wallet_id=wallet_id, payment_ids=payment_ids, idempotency_key=idempotency_key,
            actor=actor, metadata=metadata))

    def unlink_conversion_payment(
        self,
        wallet_id: str,
        *,
        conversion_id: str,
        payment_id: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """Unlink one payment from conversion ``conversion_id`` and use it to pay the waiting
        upgrade's downpayment (admins only), with the outcome of :meth:`reconvert_payments`.
        ``payment_id`` names it; None takes the first linked payment (by id) that covers what
        the downpayment still needs. Refused like :meth:`reconvert_payments`, and
        ``PaymentStateError`` for a payment not linked to that conversion."""
        from prepaid_wallet.app.commands.payg import UnlinkConversionPayment

        return self._run(UnlinkConversionPayment(
            wallet_id=wallet_id, conversion_id=conversion_id, payment_id=payment_id,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def confirm_upgrade_installed(
        self,
        wallet_id: str,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PaygOutcome:
        """The paid upgrade's products were installed or collected: the contract is active
        again (``ContractStateError`` unless its upgrade was paid and waiting for that)."""
        from prepaid_wallet.app.commands.payg import ConfirmUpgradeInstalled

        return self._run(ConfirmUpgradeInstalled(
            wallet_id=wallet_id, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    def expire_upgrades(self) -> tuple[str, ...]:
        """Expire every upgrade whose window has ended without its downpayment (each in a
        unit of work of its own): its held payments become time at the old rate. The ids."""
        from prepaid_wallet.app.handlers.payg import expire_upgrades

        return expire_upgrades(self._env)

    def contract(self, wallet_id: str) -> Contract:
        """The wallet's pay-as-you-go contract (``ContractNotFoundError`` without one)."""
        from prepaid_wallet.app.queries.payg import contract

        return contract(self._env, wallet_id)

    def contract_performance(self, wallet_id: str, *, at: datetime | None = None) -> Decimal:
        """The share of the contract's time since it started, at ``at`` (None: now), during
        which service ran, to six places rounded down: the figure an upgrade call is judged
        on."""
        from prepaid_wallet.app.queries.payg import contract_performance

        return contract_performance(self._env, wallet_id, at)

    def payg_payments(self, wallet_id: str) -> list[PaygPayment]:
        """The wallet's pay-as-you-go payments, in the order they were paid."""
        from prepaid_wallet.app.queries.payg import payg_payments

        return payg_payments(self._env, wallet_id)

    def on_time(self, wallet_id: str) -> list[OnTime]:
        """The contract's on-time history, oldest first: every payment turned into time,
        reconversion, downpayment, re-valuation and surplus."""
        from prepaid_wallet.app.queries.payg import on_time

        return on_time(self._env, wallet_id)

    def upgrades(self, wallet_id: str) -> list[Upgrade]:
        """The wallet's upgrades, by deadline."""
        from prepaid_wallet.app.queries.payg import upgrades

        return upgrades(self._env, wallet_id)

    def conversions(self, wallet_id: str) -> list[Conversion]:
        """The wallet's conversion transactions, oldest first."""
        from prepaid_wallet.app.queries.payg import conversions

        return conversions(self._env, wallet_id)
