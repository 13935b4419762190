"""A hub's settings of one member's wallet: its payment mode and its floor, and the history of
their changes.

A change of a wallet's terms moves no money: it is not a journal entry. Each one is kept as a
:class:`WalletTermChange` -- which term, from what to what, when, by whom and why -- so that a
hub can tell who changed a member's floor or payment mode.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import attrs

__all__ = ["WalletTerm", "WalletTermChange"]


class WalletTerm(StrEnum):
    """A term of a wallet a hub may change: its ``floor`` (the lowest its open balance may go)
    or its ``payment_mode`` (the member's own, overriding the hub's)."""

    FLOOR = "floor"
    PAYMENT_MODE = "payment_mode"


@attrs.frozen(kw_only=True)
class WalletTermChange:
    """One change of one term of a wallet.

    ``before`` and ``after`` are text: for ``FLOOR`` the amount in the wallet's currency as a
    decimal string (``"-100.00"``), for ``PAYMENT_MODE`` the mode's value (``"credit_first"``)
    or None for "the hub's". ``at`` is the instant of the command (aware, UTC), ``actor`` who
    made it and ``reason`` why.
    """

    id: str
    wallet_id: str
    tenant_id: str
    term: WalletTerm
    before: str | None
    after: str | None
    at: datetime
    actor: str | None = None
    reason: str | None = None
