"""A batch's reads of many keys on PostgreSQL read those keys, not everything their tenant or
kind holds: ``get_idempotencies`` and ``get_records`` look each key up in the primary key, so a
job's batch costs the same whether the tenant stored a hundred records or a million.

The statement the unit sends is captured and explained with the database's own count of the
rows it examined (``EXPLAIN ANALYZE``), as a prepared statement with a generic plan -- the
plan a statement the driver has prepared runs with, where a list of keys is no constant the
planner can hash, and each row of the tenant is compared with every key. No timing is
asserted.

Needs a server: ``PREPAID_WALLET_TEST_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prepaid_wallet.storage._sql_many import CHUNK
from prepaid_wallet.storage.base import Store
from tests.pg import one_connection_store, raw_connection
from tests.storage.contract import PLAIN, TENANT, Note, _record

#: Rows stored under one scope (or kind) beside the few a batch asks for.
STORED = 4000
#: Keys a batch asks for (a full chunk of one statement): half of them stored.
ASKED = CHUNK


@pytest.fixture
def store() -> Iterator[Store]:
    with one_connection_store() as made:
        yield made


def _fill(store: Store, *, analyzed: bool) -> None:
    """``STORED`` idempotency records of ``TENANT`` and records of ``PLAIN``'s kind written
    by hand (their seals are never checked: no key asked for below is among them), and, through
    the store, half of the keys :func:`_keys` asks for; the tables' statistics gathered if
    ``analyzed``, else none (as for tables a job is filling: the planner guesses)."""
    schema = store.schema  # type: ignore[attr-defined]
    with raw_connection(schema) as conn:
        for table in ("idempotency", "records"):  # no statistics unless ``analyzed``
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        conn.execute(
            "INSERT INTO idempotency (scope, key, operation, request, outcome, payload,"
            " created_at, seal) SELECT %s, 'filler-' || g, 'spend', '[]', 'ok',"
            " repeat('x', 400), now(), 'none' FROM generate_series(1, %s) AS g",
            (TENANT, STORED))
        conn.execute(
            "INSERT INTO records (kind, key, tenant_id, sort, data, seal)"
            " SELECT %s, 'filler-' || g, %s, 'filler-' || g, repeat('x', 400), 'none'"
            " FROM generate_series(1, %s) AS g",
            (PLAIN.kind, TENANT, STORED))
    with store.unit_of_work() as uow:
        for key in _keys():
            if key.startswith("stored"):
                uow.put_idempotency(_record(key))
                uow.put_record(PLAIN, Note(key, body=key))
        uow.commit()
    if analyzed:
        with raw_connection(schema) as conn:
            conn.execute("ANALYZE idempotency")
            conn.execute("ANALYZE records")


def _captured(store: Store, read: Callable[[Any], object]) -> list[tuple[str, list[Any]]]:
    """The statements (and their parameters) ``read(uow)`` sends through the unit's
    ``_all``."""
    sent: list[tuple[str, list[Any]]] = []
    with store.unit_of_work(read_only=True) as uow:
        inner = uow._all  # type: ignore[attr-defined]

        def recording(sql: str, params: Any) -> Any:
            sent.append((sql, list(params)))
            return inner(sql, params)

        uow._all = recording  # type: ignore[attr-defined]
        read(uow)
    return sent


def _examined(store: Store, sql: str, params: list[Any]) -> int:
    """Rows of the table a generic plan of ``sql``, run with ``params``, examined: over every
    node that read the table, the rows it returned and the rows its filters removed, times
    its loops."""
    count = iter(range(1, len(params) + 1))
    numbered = re.sub(r"%s", lambda _: f"${next(count)}", sql)
    with raw_connection(store.schema) as conn:  # type: ignore[attr-defined]
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE keyed AS {numbered}")
        literals = ", ".join(
            conn.execute("SELECT quote_literal(%s::text)", (_text(value),)).fetchone()[0]
            for value in params)
        (plan,) = conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE keyed({literals})").fetchone()
    return _rows_read((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])


def _rows_read(node: dict[str, Any]) -> int:
    own = 0
    if node.get("Relation Name") in ("idempotency", "records"):
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
               + node.get("Rows Removed by Index Recheck", 0)) * node["Actual Loops"]
    return own + sum(_rows_read(child) for child in node.get("Plans", ()))


def _text(value: Any) -> str:
    """A parameter as PostgreSQL's text input reads it (a list as an array literal)."""
    if isinstance(value, list):
        return "{" + ",".join(json.dumps(str(item)) for item in value) + "}"
    return str(value)


def _keys() -> list[str]:
    return [f"stored-{n}" if n % 2 else f"absent-{n}" for n in range(ASKED)]


#: Each keyed read a batch makes: the idempotency records of a tenant, the records of a kind.
READS: dict[str, Callable[[Any, list[str]], object]] = {
    "idempotency keys": lambda uow, keys: uow.get_idempotencies([(TENANT, k) for k in keys]),
    "record keys": lambda uow, keys: uow.get_records(PLAIN, keys),
}


@pytest.mark.parametrize("analyzed", [False, True])
@pytest.mark.parametrize("read", sorted(READS))
def test_a_batch_reads_its_keys_not_every_record_of_the_tenant_or_kind(
    store: Store, analyzed: bool, read: str
) -> None:
    _fill(store, analyzed=analyzed)
    keys = _keys()
    sent = _captured(store, lambda uow: READS[read](uow, keys))
    assert len(sent) == 1
    assert _examined(store, *sent[0]) <= ASKED // 2, sent[0][0]  # the keys stored


def test_the_keyed_reads_find_what_is_stored(store: Store) -> None:
    """What the lookups return: the stored keys asked for, and nothing of the rest."""
    _fill(store, analyzed=False)
    keys = _keys()
    stored = [key for key in keys if key.startswith("stored")]
    with store.unit_of_work(read_only=True) as uow:
        found = uow.get_idempotencies([(TENANT, key) for key in keys])
        assert found == {(TENANT, key): _record(key) for key in stored}
        assert uow.get_records(PLAIN, keys) == {key: Note(key, body=key) for key in stored}
