"""``open_store(url)``: the one place that turns a URL into a store.

Only the backend that is asked for is imported, so a host that uses the memory store never
imports a database driver.
"""

from __future__ import annotations

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.storage.base import Store

__all__ = ["open_store"]


def open_store(url: str) -> Store:
    """Open the store that ``url`` names.

    * ``"memory:"`` -- a new, empty in-memory store (nothing survives the process).

    Raises ``InvalidInputError`` (field ``url``) for a URL no backend understands.
    """
    if not isinstance(url, str):
        raise InvalidInputError("url", "must be a store URL such as 'memory:'", url)
    if url == "memory:":
        from prepaid_wallet.storage.memory import MemoryStore

        return MemoryStore()
    raise InvalidInputError("url", "must be a store URL such as 'memory:'", url)
