"""Storage: the unit-of-work contract and its backends. See :mod:`prepaid_wallet.storage.base`.

``copy_store`` (:mod:`prepaid_wallet.storage.copy`) copies a whole store into another; it is
imported when first used."""

from typing import Any

from prepaid_wallet.seals import SealKey
from prepaid_wallet.storage.base import IdempotencyRecord, Store, UnitOfWork, WalletSnapshot
from prepaid_wallet.storage.factory import open_store

__all__ = [
    "IdempotencyRecord", "SealKey", "Store", "UnitOfWork", "WalletSnapshot", "copy_store",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """``copy_store``, from :mod:`prepaid_wallet.storage.copy` (imported on first use)."""
    if name == "copy_store":
        from prepaid_wallet.storage.copy import copy_store

        return copy_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
