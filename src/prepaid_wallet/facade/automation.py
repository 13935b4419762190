"""What a tenant's rules and time set going: automatic top-ups, low-balance events,
periodic fees and expiry (and a lot's expiry moved).

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from datetime import datetime

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.expiry import EndOfLocalDay
    from prepaid_wallet.money import Money
    from prepaid_wallet.results import (
        Expiry,
        ExpiryReport,
        FeeReport,
        LowBalanceEvent,
        LowBalanceLine,
        TopUpReport,
    )
    from prepaid_wallet.rules.topup import ChargeOutcome, TopUpIntent, TopUpRule
    from prepaid_wallet.wallet import Lot

__all__ = ["Automation"]


class Automation(Facade):
    """Automatic top-ups, low-balance events, periodic fees and expiry."""

    # -- automatic top-ups --------------------------------------------------------------------

    def set_top_up_rule(self, wallet_id: str, rule: TopUpRule | None) -> TopUpRule | None:
        """Give the wallet an automatic top-up rule (``None`` removes it); the tenant must have
        automatic top-ups enabled (``TenantRules.automatic_top_ups``). From then on an operation
        that leaves the open balance at or below the rule's threshold starts a top-up intent in
        its own unit of work (one in flight per wallet; a top-up's own credit never starts
        another); :meth:`process_top_ups` charges it."""
        from prepaid_wallet.app.commands import SetTopUpRule

        return self._run(SetTopUpRule(wallet_id=wallet_id, rule=rule))

    def top_up_rule(self, wallet_id: str) -> TopUpRule | None:
        """The wallet's automatic top-up rule, if any."""
        from prepaid_wallet.app.queries.wallet import top_up_rule

        return top_up_rule(self._env, wallet_id)

    def top_up_intent(self, intent_id: str) -> TopUpIntent | None:
        """An automatic top-up intent and its attempts, if any."""
        from prepaid_wallet.app.queries.wallet import top_up_intent

        return top_up_intent(self._env, intent_id)

    def process_top_ups(self, *, limit: int = 100) -> TopUpReport:
        """Drive every pending automatic top-up (at most ``limit``) as far as it can go now.

        Each state change is committed before and after every call to the gateway, so a process
        that dies anywhere leaves an intent this method picks up again: an attempt sent without
        an answer is *settled* (``gateway.lookup`` under the same key), never charged again and
        never followed by the backup method. The primary method is charged first, the backup
        only after the primary was definitely declined; a hard decline is never retried, a soft
        one after the rule's back-off. A succeeded charge is credited to the open balance
        exactly once (under an idempotency key made of the intent), also when its success is
        reported twice; intents that succeeded but whose credit is not posted yet are credited
        first. An intent whose step raises (the gateway or the store failed on it) is left for
        the next run and listed in ``TopUpReport.stalled``; it never blocks the others. Safe to
        run repeatedly and from several processes."""
        from prepaid_wallet.app.handlers.automatic_top_up import process_top_ups

        return process_top_ups(self._env, limit=limit)

    def report_charge(self, idempotency_key: str, outcome: ChargeOutcome) -> TopUpReport:
        """A report from the payment provider (a webhook) of the outcome of the charge made
        under ``idempotency_key``: recorded on its intent, and a success credited -- exactly
        once, however many times it is reported, also on a service built without a gateway
        (the credit needs none; a charge or a lookup is left to :meth:`process_top_ups`). A
        report for a charge already settled, or of an intent already finished, changes
        nothing; an unknown key (or, for a scoped service, another tenant's) raises
        ``InvalidInputError``."""
        from prepaid_wallet.app.handlers.automatic_top_up import report_charge

        return report_charge(self._env, idempotency_key, outcome)

    def start_scheduled_top_ups(self) -> tuple[str, ...]:
        """Start the automatic top-ups that wallets' rules schedule (``TopUpRule.schedule``, an
        RRULE in ``schedule_zone``, anchored at the wallet's opening): for each wallet of a
        tenant with automatic top-ups whose rule has a schedule, one intent for the latest
        occurrence that came since the last one started (missed occurrences are not charged one
        by one: a wallet is topped up once, up to its rule's amount or target), unless one is
        already in flight or the wallet is already at its target. Each wallet in a unit of
        work of its own; run it as a scheduled job, then :meth:`process_top_ups`. Reads every
        wallet of those tenants. Returns the ids of the intents started."""
        from prepaid_wallet.app.handlers.automatic_top_up import start_scheduled_top_ups

        return start_scheduled_top_ups(self._env)

    # -- low-balance reminders ----------------------------------------------------------------

    def events(self, tenant_id: str, *, limit: int = 100) -> list[LowBalanceEvent]:
        """The tenant's low-balance events not yet acknowledged, oldest first (at most
        ``limit``). Each is written in the same unit of work as the operation that took a
        wallet's open balance across thresholds (``TenantRules.low_balance``): none is lost.
        Acknowledge the ones handled with :meth:`ack_events`, so none is sent twice. A tenant
        with an enabled webhook endpoint gets its events by webhook instead
        (:meth:`deliver_webhooks` acknowledges them; docs/webhooks.md)."""
        from prepaid_wallet.app.handlers.reminder import events

        return events(self._env, tenant_id, limit=limit)

    def ack_events(self, tenant_id: str, event_ids: Iterable[str]) -> int:
        """Acknowledge events of the tenant (handled: not returned again). Returns how many
        were pending; unknown or already acknowledged ids are ignored."""
        from prepaid_wallet.app.handlers.reminder import ack_events

        return ack_events(self._env, tenant_id, event_ids)

    def low_balance_report(self, tenant_id: str, threshold: str | Money) -> list[LowBalanceLine]:
        """The tenant's wallets whose open balance is at or below ``threshold`` (the label of
        one of the tenant's thresholds, or an amount), by wallet id, each with its owner, open
        balance, floor and the top-up it needs: the least that takes its open balance back
        above the threshold (for reminder e-mails). Wallets in another currency are left
        out."""
        from prepaid_wallet.app.handlers.reminder import low_balance_report

        return low_balance_report(self._env, tenant_id, threshold)

    # -- periodic fees ------------------------------------------------------------------------

    def charge_periodic_fees(self, *, batch_size: int = 500) -> FeeReport:
        """Charge every occurrence of every tenant's periodic fees (``TenantRules.periodic_fees``)
        that has come since each wallet was opened, each wallet at most once per occurrence.

        Each charge is one ``fee`` entry, from the open balance to the tenant's fee account,
        recorded under an idempotency key made of the wallet and the occurrence
        (:meth:`~prepaid_wallet.rules.fees.PeriodicFee.occurrence_key`): running it twice, or
        from two processes at once, or again after a crash, charges nothing more. The wallets
        are read ``batch_size`` at a time (1 to 10,000) and their charges booked
        ``batch_size`` per unit of work; a charge that cannot be booked is reported in
        ``FeeReport.failed`` (its key and typed error) and the others are booked. A wallet
        also remembers the last occurrence charged, so a run reads only the occurrences
        since.

        The floor rule: a fee never takes the open balance below the wallet's floor. A fee the
        open balance cannot pay in full is charged down to the floor and the rest is waived
        (counted in ``FeeReport.waived``; a wallet already at its floor pays nothing for that
        occurrence). Wallets in another currency than the fee's, and owners outside the fee's
        groups, are not charged."""
        from prepaid_wallet.app.handlers.periodic_fee import charge_periodic_fees

        return charge_periodic_fees(self._env, batch_size=batch_size)

    # -- expiry -----------------------------------------------------------------------------

    def extend_expiry(
        self,
        lot_id: str,
        expires_at: datetime | EndOfLocalDay | None,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Lot:
        """Move ``amount`` (default: everything it holds) of a lot into a new lot that expires
        at ``expires_at`` (aware, in the future, or an
        :class:`~prepaid_wallet.expiry.EndOfLocalDay`; None: never) and keeps the lot's reason,
        priority, conditions and condition group (whose end, and the conditions' own validity,
        still apply). One entry moves the money; returns the new lot. Moving more than the lot
        holds raises ``InvalidAmountError``; a lot that has expired (swept or not: its remainder
        is breakage) raises ``InvalidTimeError``."""
        from prepaid_wallet.app.commands import ExtendExpiry

        return self._run(ExtendExpiry(
            lot_id=lot_id, expires_at=expires_at, amount=amount,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def expire_due(self, *, batch_size: int = 500) -> ExpiryReport:
        """Release every active hold whose window has ended and book every expired lot's
        remainder as breakage (a lot expires at its own expiry or at its condition group's
        end, whichever is first), each exactly once (one entry per hold and per lot). Rows are
        booked ``batch_size`` at a time (1 to 10,000), each batch in one unit of work that
        locks its wallets; a crash leaves whole batches booked and the next run books the
        rest. A row that cannot be booked is reported in ``failed`` (its id and typed error)
        and the others are booked. Safe to run repeatedly and from several processes; its
        cost grows with what is due, not with all lots. :meth:`sweep_expired` does the same a
        row at a time."""
        from prepaid_wallet.app.handlers.expiry import expire_due

        return expire_due(self._env, batch_size=batch_size)

    def sweep_expired(self, *, batch_size: int = 500,
                      stop: Callable[[], bool] | None = None) -> Iterator[Expiry]:
        """:meth:`expire_due` as a stream: yields each :class:`~prepaid_wallet.results.Expiry`
        as soon as its batch (``batch_size`` rows, one unit of work) has committed (holds
        first, then lots, soonest due first). Memory stays bounded however much is due: due
        rows are read a batch at a time and no unit of work is open while the caller handles a
        row. Stopping early is safe; the next sweep books the rest. A row that cannot be
        booked is passed over and the rest booked; then the first such row's error is
        raised. ``stop``, if given, is asked before each batch: once it returns true the sweep
        ends after yielding every row booked (a command line stops at Ctrl-C this way, every
        booked row printed)."""
        from prepaid_wallet.app.handlers.expiry import sweep_expired

        return sweep_expired(self._env, batch_size=batch_size, stop=stop)

