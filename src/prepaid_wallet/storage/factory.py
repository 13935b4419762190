"""``open_store(url)``: the one place that turns a URL into a store.

Only the backend that is asked for is imported, so a host that uses the memory store never
imports a database driver.
"""

from __future__ import annotations

from prepaid_wallet.errors import InvalidInputError, StorageError
from prepaid_wallet.seals import SealKey, check_seal_key
from prepaid_wallet.storage.base import Store

__all__ = ["open_store"]

_RULE = (
    "must be a store URL such as 'memory:', 'sqlite:///path/to/wallets.db' or"
    " 'postgresql://host/dbname'"
)
_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")
_NO_DRIVER = (
    "the PostgreSQL backend needs psycopg 3 and psycopg_pool:"
    " pip install 'prepaid_wallet[postgres]'"
)


def _names_a_database(url: str) -> bool:
    """Whether a PostgreSQL URL names its database (in the path or as ``dbname=``)."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
    except ValueError:
        return False
    return bool(parts.path.strip("/")) or bool(query.get("dbname", [""])[0])


def open_store(url: str, *, create: bool = True, seal_key: SealKey | None = None) -> Store:
    """Open the store that ``url`` names.

    With ``create=True`` (the default) a store that does not exist yet is created; with
    ``create=False`` a missing SQLite file, or a file or database without the library's tables,
    raises ``StoreNotFoundError`` and nothing is created -- so a mistyped path cannot silently
    open a new, empty store. (``"memory:"`` is always new.)

    * ``"memory:"`` -- a new, empty in-memory store (nothing survives the process).
    * ``"sqlite:///relative/path.db"`` -- a :class:`~prepaid_wallet.storage.sqlite.SQLiteStore`
      on that file, relative to the current directory; ``"sqlite:////absolute/path.db"`` (four
      slashes) for an absolute path. The file and its schema are created if missing; defaults
      apply (``synchronous=FULL``). No query string, no host, no in-memory database
      (``:memory:``): build :class:`~prepaid_wallet.storage.sqlite.SQLiteStore` directly for
      other settings.
    * ``"postgresql://user@host:5432/dbname"`` (or ``postgres://``; any libpq URL, e.g.
      ``"postgresql:///dbname?host=/run/postgresql"`` for a Unix socket) -- a
      :class:`~prepaid_wallet.storage.postgres.PostgresStore` with a connection pool and default
      settings; the URL must name the database. The tables are created in the connection's
      current schema if missing. Needs ``pip install 'prepaid_wallet[postgres]'``.

    ``seal_key`` (a :class:`~prepaid_wallet.storage.SealKey` from the host) seals every row the
    SQL stores write with an HMAC under that key (see docs/integrity.md); a store sealed with a
    key must be opened with it, and one sealed without a key without one (``SealKeyError``).
    A new store records the key it is created with. The memory store keeps no rows: it ignores
    the key.

    Raises ``InvalidInputError`` (field ``url``) for a URL no backend understands;
    ``StoreNotFoundError`` as above;
    ``StorageError`` (or its subclass ``SchemaVersionError``) if the database cannot be opened
    or its driver is not installed.
    """
    if not isinstance(url, str):
        raise InvalidInputError("url", _RULE, url)
    check_seal_key(seal_key)
    if url == "memory:":
        from prepaid_wallet.storage.memory import MemoryStore

        return MemoryStore()
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE):]
        if path and path != ":memory:" and "?" not in path and "\x00" not in path:
            from prepaid_wallet.storage.sqlite import SQLiteStore

            return SQLiteStore(path, create=create, seal_key=seal_key)
    if url.startswith(_POSTGRES) and "\x00" not in url and _names_a_database(url):
        try:
            from prepaid_wallet.storage.postgres import PostgresStore
        except ImportError as exc:
            raise StorageError(_NO_DRIVER) from exc
        return PostgresStore(url, create=create, seal_key=seal_key)
    raise InvalidInputError("url", _RULE, url)
