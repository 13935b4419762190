"""PostgreSQL test helpers: the server's DSN and fresh, isolated stores.

The DSN comes from ``PREPAID_WALLET_TEST_DSN`` (``.ci/postgres.sh`` starts a throwaway server and
exports it). Without it the PostgreSQL tests skip locally, but fail in CI (``CI=true``): there
they must run, not skip.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    import psycopg

    from prepaid_wallet.storage.postgres import PostgresStore

__all__ = [
    "close_and_drop",
    "drop_schema",
    "fresh_postgres_dsn",
    "fresh_schema",
    "fresh_store",
    "one_connection_store",
    "postgres_dsn",
    "raw_connection",
    "sent_messages",
]

ENV = "PREPAID_WALLET_TEST_DSN"


def postgres_dsn() -> str:
    """The test server's DSN; skips (fails in CI) when none is configured."""
    dsn = os.environ.get(ENV, "").strip()
    if dsn:
        return dsn
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{ENV} is not set: CI must run the PostgreSQL tests (see .ci/postgres.sh)")
    pytest.skip(f"{ENV} is not set (start a server with: eval \"$(bash .ci/postgres.sh start)\")")


def fresh_schema() -> str:
    """A schema name no other test uses."""
    return f"t_{uuid.uuid4().hex[:16]}"


def fresh_store(**kwargs: Any) -> PostgresStore:
    """A new, empty :class:`PostgresStore` in a schema of its own (drop it with
    :func:`close_and_drop`)."""
    from prepaid_wallet.storage.postgres import PostgresStore

    return PostgresStore(postgres_dsn(), schema=fresh_schema(), **kwargs)


def raw_connection(schema: str | None = None) -> psycopg.Connection[Any]:
    """A plain autocommit psycopg connection to the test server, outside the library."""
    import psycopg

    conn = psycopg.connect(postgres_dsn(), autocommit=True)
    if schema is not None:
        conn.execute(f'SET search_path TO "{schema}"')
    return conn


def drop_schema(schema: str) -> None:
    """Drop a test schema and everything in it."""
    with raw_connection() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_url_schemas: list[str] = []
_url_guard = threading.Lock()


def fresh_postgres_dsn() -> str:
    """A store URL naming a fresh, empty store that ``open_store`` in any process can open: a
    new (empty) schema, put first on the search path through libpq's ``options``. The schemas
    are dropped when this process exits (best effort)."""
    schema = fresh_schema()
    with raw_connection() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    with _url_guard:
        if not _url_schemas:
            atexit.register(_drop_url_schemas)
        _url_schemas.append(schema)
    dsn = postgres_dsn()
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-c search_path={schema}', safe='')}"


def _drop_url_schemas() -> None:
    try:
        with raw_connection() as conn:
            conn.execute("SET lock_timeout = '2s'")
            for schema in _url_schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:  # cleanup at exit is best effort: the server is a throwaway one
        pass


def close_and_drop(store: PostgresStore) -> None:
    """Close a store made by :func:`fresh_store` and drop its schema."""
    store.close()
    if store.schema is not None:
        drop_schema(store.schema)


@contextlib.contextmanager
def one_connection_store() -> Iterator[PostgresStore]:
    """A :func:`fresh_store` whose pool holds one connection (so every unit uses it), closed
    and dropped at the end."""
    made = fresh_store(min_size=1, max_size=1)
    try:
        yield made
    finally:
        close_and_drop(made)


def sent_messages(store: Any, action: Any) -> list[list[str]]:
    """The messages the client sent to the server while ``action`` ran on the store's
    one-connection pool, each as the fields of its line in libpq's protocol trace
    (``[time, "F", length, type, ...]``); skips the test where libpq cannot trace."""
    import tempfile

    import psycopg

    pool = store._pool
    conn = pool.getconn()
    fd, path = tempfile.mkstemp(suffix=".trace")
    try:
        try:
            conn.pgconn.trace(fd)
        except psycopg.NotSupportedError:  # pragma: no cover - libpq older than 14
            pytest.skip("libpq cannot trace the protocol")
        finally:
            pool.putconn(conn)
        try:
            action()
        finally:
            conn.pgconn.untrace()
        with open(path, encoding="utf-8", errors="replace") as trace:
            lines = trace.read().splitlines()
    finally:
        os.close(fd)
        os.unlink(path)
    return [f for f in (line.split("\t") for line in lines) if len(f) > 3 and f[1] == "F"]
