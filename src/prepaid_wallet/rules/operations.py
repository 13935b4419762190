"""The kinds of operation that limits and fees apply to."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Operation"]


class Operation(StrEnum):
    """A kind of operation on a wallet, as limit and fee rules name it.

    ``TOP_UP`` money paid in; ``SPEND`` a purchase paid from credit (a capture counts as a
    spend, and so does a hold while it may be captured); ``TRANSFER_OUT`` money sent to another
    wallet (``TRANSFER_IN`` received); ``PAYOUT`` money paid out of the wallet to its owner;
    ``CREDIT`` and ``DEBIT`` manual adjustments by an operator.
    """

    TOP_UP = "top_up"
    SPEND = "spend"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    PAYOUT = "payout"
    CREDIT = "credit"
    DEBIT = "debit"
