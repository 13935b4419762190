"""Storage: the unit-of-work contract and its backends. See :mod:`prepaid_wallet.storage.base`."""

from prepaid_wallet.storage._seal import SealKey
from prepaid_wallet.storage.base import IdempotencyRecord, Store, UnitOfWork, WalletSnapshot
from prepaid_wallet.storage.factory import open_store

__all__ = ["IdempotencyRecord", "SealKey", "Store", "UnitOfWork", "WalletSnapshot", "open_store"]
