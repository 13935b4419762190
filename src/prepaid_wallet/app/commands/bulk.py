"""The rows of a bulk job: one award of :meth:`~prepaid_wallet.service.WalletService.award_many`
(each booked like :meth:`~prepaid_wallet.service.WalletService.award`, with the arguments of
that method)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.expiry import EndOfLocalDay
from prepaid_wallet.money import Money

__all__ = ["BulkAward"]


@attrs.frozen(kw_only=True)
class BulkAward:
    """One award of a bulk award: a commerce lot of ``amount`` for wallet ``wallet_id``, with
    the terms :meth:`~prepaid_wallet.service.WalletService.award` takes (``reason``, an expiry,
    a priority, a ``condition`` or a condition group, and ``metadata`` for its entry). The
    values are checked when the row is booked: a bad one fails that row only, with the typed
    error naming the field."""

    wallet_id: str
    amount: Money
    reason: str
    expires_at: datetime | EndOfLocalDay | None = None
    priority: int = 0
    condition: SpendCondition | None = None
    group_id: str | None = None
    metadata: Mapping[str, str] | None = None
