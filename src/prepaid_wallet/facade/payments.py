"""Money in (top-ups, awards), spending (a check and a spend) and holds (place, capture,
void).

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime, timedelta

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.app.commands.bulk import BulkAward
    from prepaid_wallet.conditions import SpendCondition
    from prepaid_wallet.expiry import EndOfLocalDay
    from prepaid_wallet.money import Money
    from prepaid_wallet.policies import Decision, SpendRequest
    from prepaid_wallet.results import (
        AwardReport,
        CaptureResult,
        Receipt,
        SpendResult,
    )
    from prepaid_wallet.wallet import Hold, Lot

__all__ = ["Payments"]


class Payments(Facade):
    """Money in, spending and holds."""

    # -- money in ---------------------------------------------------------------------------

    def top_up(
        self,
        wallet_id: str,
        amount: Money,
        *,
        method: str,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Receipt:
        """Credit ``amount`` (positive, in the wallet's currency), paid with ``method`` (e.g.
        ``"card"``), to the open balance. A negative open balance simply moves back up.

        With ``group_id`` (a condition group of the wallet's tenant) the money arrives as a
        conditioned commerce lot under the group's current conditions instead (``lot_id`` of
        the receipt), spendable only where the group allows and until the group ends.

        The tenant's top-up fees are taken from the open balance in the same entry (a top-up
        must be more than its fee); the wallet's top-up limits and maximum balance apply
        (``LimitExceededError``)."""
        from prepaid_wallet.app.commands import TopUp

        return self._run(TopUp(
            wallet_id=wallet_id, amount=amount, method=method, group_id=group_id,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def award(
        self,
        wallet_id: str,
        amount: Money,
        *,
        reason: str,
        expires_at: datetime | EndOfLocalDay | None = None,
        priority: int = 0,
        condition: SpendCondition | None = None,
        group_id: str | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Lot:
        """Grant a commerce lot of ``amount`` that may expire at ``expires_at`` (an aware
        instant or an :class:`~prepaid_wallet.expiry.EndOfLocalDay`; must be in the future;
        None never expires). Lower ``priority`` spends first (default 0). ``reason`` is kept on
        the lot and the entry.

        The lot may pay only for what ``condition`` allows
        (:class:`~prepaid_wallet.conditions.SpendCondition`), or what condition group
        ``group_id`` allows (its current version, kept by the lot; the group's validity applies
        as it changes); give at most one. Conditioned lots pay before unconditioned ones."""
        from prepaid_wallet.app.commands import Award

        return self._run(Award(
            wallet_id=wallet_id, amount=amount, reason=reason, expires_at=expires_at,
            priority=priority, condition=condition, group_id=group_id,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def award_many(
        self,
        awards: Iterable[BulkAward],
        *,
        batch_key: str,
        batch_size: int = 500,
        actor: Actor | str | None = None,
    ) -> AwardReport:
        """Grant many awards in one call: each :class:`~prepaid_wallet.BulkAward` (a wallet,
        an amount and the terms :meth:`award` takes) is granted as :meth:`award` grants it,
        under the idempotency key ``<batch_key>:<wallet id>``, so running the same call again
        (after a crash, say) grants only what was not granted yet and reports the rest as
        ``already_done``; a wallet appears at most once per batch key.

        The input is read ``batch_size`` awards at a time (1 to 10,000; memory stays flat
        however many there are), each batch granted in one unit of work that locks its
        wallets. A row that cannot be granted (bad input, an unknown wallet, a key already
        stored for another award...) is reported in ``AwardReport.failed`` with its typed
        error (``field`` names the argument) and the others are granted. The actor must be
        allowed to ``award`` for each wallet's tenant (``PermissionDeniedError`` ends the call;
        batches granted before stay granted). ``batch_key`` is 1-128 printable characters."""
        from prepaid_wallet.app.handlers.bulk_award import award_many

        return award_many(self._env, awards, batch_key=batch_key, batch_size=batch_size,
                          actor=actor)

    # -- spending ---------------------------------------------------------------------------

    def check_spend(self, wallet_id: str, request: SpendRequest) -> Decision:
        """Decide ``request`` now without writing anything: whether it is allowed, from which
        lots and the open balance (per line item when the request has lines), the shortfall, a
        suggested top-up and the remainder due. A refusal's ``covered`` is what is spendable
        for this request: what the lots may pay of its lines, then the open balance down to the
        floor."""
        from prepaid_wallet.app.handlers.spending import check_spend

        return check_spend(self._env, wallet_id, request)

    def spend(
        self,
        wallet_id: str,
        request: SpendRequest,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SpendResult:
        """Pay ``request`` from the wallet, in spend order; raises ``SpendDeniedError`` (with the
        decision) when a ``CREDIT_ONLY`` request is not covered. With ``CREDIT_FIRST``, credit
        pays what it can and ``remainder_due`` is left for another method.

        The tenant's spend fees are taken from the open balance in the same entry (the fee of
        the whole request is set aside before the open balance pays); a spend that would breach
        one of the wallet's limits is refused (``Reason.LIMIT_EXCEEDED``, with what is left of
        each allowance in ``decision.limits``).

        Conditioned lots pay only the lines they may pay for, at the request's merchant and
        instant (``request.at``, which must not be after now; expiry is judged now); see
        :func:`~prepaid_wallet.policies.decide_spend` for the order. A spend never takes more
        than is available."""
        from prepaid_wallet.app.commands import Spend

        return self._run(Spend(
            wallet_id=wallet_id, request=request, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    # -- holds ------------------------------------------------------------------------------

    def hold(
        self,
        wallet_id: str,
        amount: Money,
        *,
        expires_at: datetime | None = None,
        window: timedelta | None = None,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Hold:
        """Reserve ``amount`` for a later capture, decided and allocated like a credit-only
        spend of ``amount``.

        The hold is decided exactly as that spend (``check_spend(wallet_id,
        SpendRequest(amount))`` previews it): ``SpendDeniedError`` (``action`` ``"hold"``, with
        the spend's decision: its reasons, shortfall and the limits it would breach) when
        credit cannot cover ``amount`` plus the tenant's spend fee on it, or when the spend
        would breach one of the wallet's spend limits. It reserves ``amount`` and that fee
        (``Hold.reserved_fee``, a last open-balance part of ``Hold.allocation``), so the
        capture can always pay it. While it may be captured the hold counts as one spend of
        ``amount`` in the wallet's spend limits (so hold + capture passes no more limits than
        the spend); voided or ended, it counts for nothing.

        The hold ends at ``expires_at`` (aware, in the future) or after ``window`` of elapsed
        time (4 hours is 4 hours of UTC, also across a DST change); give exactly one."""
        from prepaid_wallet.app.commands import PlaceHold

        return self._run(PlaceHold(
            wallet_id=wallet_id, amount=amount, expires_at=expires_at, window=window,
            idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def capture(
        self,
        hold_id: str,
        amount: Money | None = None,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CaptureResult:
        """Capture ``amount`` (default: all; at most the held amount) of an active hold and
        release the rest. Once only: ``HoldStateError`` if the hold is no longer active,
        ``HoldExpiredError`` at or after its expiry.

        The capture pays what a spend of the captured amount pays: the tenant's spend fee on
        it (``CaptureResult.fee``; at most the fee the hold reserved, so a partial capture pays
        the fee of what it captures and the rest of the reservation goes back), from the open
        balance to the tenant's fee account in the capture's own entry. It counts as one spend
        of the captured amount in the wallet's spend limits, instead of the hold; it is never
        refused for a limit (the hold was decided against them). A refund of the capture gives
        back the purchase, not the fee, as a spend's refund does."""
        from prepaid_wallet.app.commands import CaptureHold

        return self._run(CaptureHold(
            hold_id=hold_id, amount=amount, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata))

    def void(
        self,
        hold_id: str,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Hold:
        """Release an active hold entirely back to where its money came from (a lot that has
        expired meanwhile books its part as breakage). ``HoldStateError`` if not active."""
        from prepaid_wallet.app.commands import VoidHold

        return self._run(VoidHold(
            hold_id=hold_id, idempotency_key=idempotency_key, actor=actor, metadata=metadata))

    def get_hold(self, hold_id: str) -> Hold:
        """The hold's current state; ``HoldNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import get_hold

        return get_hold(self._env, hold_id)

    def holds(self, wallet_id: str) -> list[Hold]:
        """Every hold of the wallet, oldest first."""
        from prepaid_wallet.app.queries.wallet import holds

        return holds(self._env, wallet_id)

