"""``open_store(url)``: the one place that turns a URL into a store.

Only the backend that is asked for is imported, so a host that uses the memory store never
imports a database driver.
"""

from __future__ import annotations

from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.storage.base import Store

__all__ = ["open_store"]

_RULE = "must be a store URL such as 'memory:' or 'sqlite:///path/to/wallets.db'"
_SQLITE = "sqlite:///"


def open_store(url: str) -> Store:
    """Open the store that ``url`` names.

    * ``"memory:"`` -- a new, empty in-memory store (nothing survives the process).
    * ``"sqlite:///relative/path.db"`` -- a :class:`~prepaid_wallet.storage.sqlite.SQLiteStore`
      on that file, relative to the current directory; ``"sqlite:////absolute/path.db"`` (four
      slashes) for an absolute path. The file and its schema are created if missing; defaults
      apply (``synchronous=FULL``). No query string, no host, no in-memory database
      (``:memory:``): build :class:`~prepaid_wallet.storage.sqlite.SQLiteStore` directly for
      other settings.

    Raises ``InvalidInputError`` (field ``url``) for a URL no backend understands;
    ``StorageError`` (or its subclass ``SchemaVersionError``) if the database cannot be opened.
    """
    if not isinstance(url, str):
        raise InvalidInputError("url", _RULE, url)
    if url == "memory:":
        from prepaid_wallet.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE):]
        if path and path != ":memory:" and "?" not in path and "\x00" not in path:
            from prepaid_wallet.storage.sqlite import SQLiteStore

            return SQLiteStore(path)
    raise InvalidInputError("url", _RULE, url)
