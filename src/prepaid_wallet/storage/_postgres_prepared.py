"""The PostgreSQL store's reads of a unit's first statement, prepared on every pooled connection
(private).

A unit's first statement goes with its ``BEGIN`` as one simple query (one message, one round
trip, see :mod:`prepaid_wallet.storage.postgres`). Written out in full, the server parses and
plans the lock of the wallets and the read of their tenants' records anew each time, which costs
about as much as running them. So every pooled connection prepares them once when it is made
(:data:`PREPARE`, one round trip), and the simple query runs them with ``EXECUTE``, the ids
written as escaped literals: the same statements, read and locked the same way, planned once
per connection. PostgreSQL plans a prepared statement again by itself when a table it reads
changes.

The driver deallocates every prepared statement of a connection when it drops its own cache
(``DEALLOCATE ALL``), which it does when it sees a ``ROLLBACK`` (or a ``DROP``) go through its
``execute``. A unit's ``ROLLBACK`` goes past it (:func:`rollback`): a unit creates nothing a
rollback would take away, so the driver's statements and these stay prepared. Should a statement
be missing all the same, a query that needs it prepares them again and runs once more, and
a connection where they do not stay (a pooler in front of the server that hands every
transaction a server connection of its own) runs the statements written out (:func:`run_reads`).
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg

import prepaid_wallet.storage._schema as _schema

__all__ = ["LOCK", "PREPARE", "READ", "TENANT_RECORDS", "rollback", "run_reads"]

#: Wallets by id (``%s``, an array), in id order: read, and read and locked.
READ = f"SELECT {_schema.WALLET_COLS} FROM wallets WHERE id = ANY(%s::text[]) ORDER BY id"
LOCK = READ + " FOR UPDATE"
#: The records of some kinds (``%s``, an array) stored under the tenant ids of some wallets
#: (``%s``, an array of wallet ids): what ``lock_wallets(tenant_records=...)`` reads with the lock.
TENANT_RECORDS = (
    "SELECT kind, key, data FROM records WHERE kind = ANY(%s::text[])"
    " AND key IN (SELECT tenant_id FROM wallets WHERE id = ANY(%s::text[]))"
)

#: The name each statement is prepared under.
_NAMES = {
    READ: "prepaid_wallet_read",
    LOCK: "prepaid_wallet_lock",
    TENANT_RECORDS: "prepaid_wallet_records",
}


def _parameters(query: str) -> str:
    """``query`` with its ``%s`` numbered as ``$1``, ``$2``..."""
    parts = query.split("%s")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


_PREPARES = [
    f"PREPARE {name} ({', '.join(['text[]'] * query.count('%s'))}) AS {_parameters(query)}"
    .encode()
    for query, name in _NAMES.items()
]
#: Run once on every new pooled connection, after its ``search_path`` is set: one simple query.
PREPARE = b"; ".join(_PREPARES)
_MISSING = "26000"  # invalid_sql_statement_name
_DUPLICATE = "42P05"  # duplicate_prepared_statement
_IDLE = psycopg.pq.TransactionStatus.IDLE


#: Connections on which prepared statements do not stay (a pooler in front of the server that
#: hands each transaction a server connection of its own): they run the statements written out.
_UNPREPARED: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def run_reads(conn: psycopg.Connection[Any], head: bytes, query: str, ids: list[str],
              kinds: list[str], tail: bytes = b"") -> psycopg.Cursor[Any]:
    """Run ``head``, then ``query`` (:data:`READ` or :data:`LOCK`) on the wallets ``ids`` and,
    with ``kinds``, the read of their tenants' records of those kinds, then ``tail``, as one
    simple query (a unit's first statement: ``head`` may begin a transaction) that executes the
    prepared statements, the ids written as escaped literals.

    If a statement is missing, nothing has happened yet: the transaction the query began is
    rolled back, the statements are prepared again and the query runs once more; if one is
    missing again, prepared statements do not stay on this connection, and it runs the
    statements written out from then on. Driver errors are raised as they are."""
    if conn not in _UNPREPARED:
        for attempt in range(2):
            try:
                return conn.execute(head + _reads(conn, query, ids, kinds, True) + tail)
            except psycopg.Error as exc:
                if exc.sqlstate != _MISSING:
                    raise
            if conn.info.transaction_status != _IDLE:
                rollback(conn)
            if attempt == 0:
                for prepare in _PREPARES:  # one by one: some may be there still
                    try:
                        conn.execute(prepare)
                    except psycopg.Error as exc:
                        if exc.sqlstate != _DUPLICATE:
                            raise
        _UNPREPARED.add(conn)
    return conn.execute(head + _reads(conn, query, ids, kinds, False) + tail)


def _reads(conn: psycopg.Connection[Any], query: str, ids: list[str], kinds: list[str],
           prepared: bool) -> bytes:
    """The text of :func:`run_reads`' statements: ``EXECUTE`` of the prepared ones, or (not
    ``prepared``) the statements written out."""
    quote = psycopg.pq.Escaping(conn.pgconn).escape_literal
    encoding = conn.info.encoding

    def array(values: list[str]) -> bytes:
        return b"ARRAY[" + b",".join(quote(v.encode(encoding)) for v in values) + b"]::text[]"

    wallets = array(ids)
    if not prepared:
        text = query.encode(encoding).replace(b"%s", wallets, 1)
        if kinds:
            text += b"; " + TENANT_RECORDS.encode(encoding).replace(
                b"%s", array(kinds), 1).replace(b"%s", wallets, 1)
        return text
    text = b"EXECUTE " + _NAMES[query].encode() + b"(" + wallets + b")"
    if kinds:
        text += (b"; EXECUTE " + _NAMES[TENANT_RECORDS].encode() + b"(" + array(kinds) + b", "
                 + wallets + b")")
    return text


def rollback(conn: psycopg.Connection[Any]) -> None:
    """``ROLLBACK`` on ``conn``, sent straight through libpq: the driver does not see it go, so it
    keeps its prepared statements (and does not deallocate these with its own). Driver errors
    are raised as they are."""
    result = conn.pgconn.exec_(b"ROLLBACK")
    if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
