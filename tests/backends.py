"""A small registry of store backends for the cross-backend tests.

* :data:`BACKENDS` -- name -> ``factory(tmp_dir) -> Store``: a fresh, empty store per call.
  ``tmp_dir`` is a directory the caller owns and removes (SQLite puts its file there; memory
  ignores it).
* :data:`DURABLE_URLS` -- name -> ``url(tmp_dir) -> str``: a store URL that ``open_store`` in
  *another process* can open, naming a fresh empty store. The multi-process tests (bank, crash)
  pass the URL to their worker processes.
* :func:`available_backends` / :func:`durable_backends` -- the registries above plus PostgreSQL
  when ``tests/pg.py`` gives a DSN.

PostgreSQL is one more entry: :func:`tests.pg.postgres_dsn` returns the test server's DSN, skips
when none is configured, and fails instead when ``CI=true`` (there the PostgreSQL runs are
required); :func:`tests.pg.fresh_postgres_dsn` names a fresh, empty schema on that server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from prepaid_wallet import Store, open_store
from tests import pg

__all__ = [
    "BACKENDS",
    "DURABLE_URLS",
    "StoreFactory",
    "UrlFactory",
    "available_backends",
    "durable_backends",
]

StoreFactory = Callable[[Path], Store]
UrlFactory = Callable[[Path], str]


def _sqlite_url(tmp_dir: Path) -> str:
    # Four slashes: an absolute path. A new file name per call, so one directory can hold many.
    path = Path(tmp_dir).resolve()
    existing = len(list(path.glob("store-*.db")))
    return f"sqlite:///{path}/store-{existing}.db"


def _memory(tmp_dir: Path) -> Store:
    del tmp_dir
    return open_store("memory:")


def _sqlite(tmp_dir: Path) -> Store:
    return open_store(_sqlite_url(tmp_dir))


BACKENDS: dict[str, StoreFactory] = {"memory": _memory, "sqlite": _sqlite}
DURABLE_URLS: dict[str, UrlFactory] = {"sqlite": _sqlite_url}


def _postgres_url_factory() -> UrlFactory | None:
    """The PostgreSQL URL factory, or None when no DSN is configured (outside CI)."""
    try:
        pg.postgres_dsn()  # skips (raises pytest.skip.Exception) when no DSN and CI is not set
    except pytest.skip.Exception:
        return None

    def url(tmp_dir: Path) -> str:
        del tmp_dir
        return pg.fresh_postgres_dsn()

    return url


def durable_backends() -> dict[str, UrlFactory]:
    """Backends that several processes can share, by name: SQLite, plus PostgreSQL if
    available."""
    found = dict(DURABLE_URLS)
    postgres = _postgres_url_factory()
    if postgres is not None:
        found["postgresql"] = postgres
    return found


def available_backends() -> dict[str, StoreFactory]:
    """Every backend to compare, by name: memory, SQLite, plus PostgreSQL if available."""
    found = dict(BACKENDS)
    postgres = _postgres_url_factory()
    if postgres is not None:
        found["postgresql"] = lambda tmp_dir: open_store(postgres(tmp_dir))
    return found
