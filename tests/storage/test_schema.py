"""The SQL schemas, version by version, against snapshots of the databases they build.

``schema_snapshots/sqlite.json`` holds, for each schema version, what SQLite records of a file
built by that version's DDL (``sqlite_master``: every table, index and trigger with the text
that created it); ``schema_snapshots/postgres.json`` the same for PostgreSQL (columns,
constraints, indexes, functions with their source, triggers, sequences; the schema's own name
written as ``S``). The snapshots were taken from the DDL each backend ran when that version was
current, so a change to how the DDL is declared or rendered that builds anything else -- a
column type, a collation, an index, a trigger, a function body -- fails here. A new schema
version adds its snapshot (``python -m tests.storage.test_schema --add``); an existing one is
never rewritten. The migration list's own rules (the hooks a dialect gives, which versions a
stored database runs) are checked at the end.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet.storage import sqlite as sqlite_module
from prepaid_wallet.storage.sqlite import SQLiteStore

_SNAPSHOTS = Path(__file__).parent / "schema_snapshots"

Catalog = dict[str, list[list[Any]]]


def _load(backend: str) -> dict[int, Catalog]:
    data = json.loads((_SNAPSHOTS / f"{backend}.json").read_text(encoding="utf-8"))
    return {int(version): catalog for version, catalog in data.items()}


def _as_lists(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as JSON keeps them, in a fixed order."""
    return sorted(([*row] for row in rows), key=lambda row: json.dumps(row))


# -- SQLite ----------------------------------------------------------------------------------------


def _sqlite_catalog(conn: sqlite3.Connection) -> Catalog:
    """Every table, index and trigger of the file with the text that created it (automatic
    indexes of keys and unique constraints included, without text)."""
    return {
        "sqlite_master": _as_lists(conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
        ).fetchall()),
    }


def _sqlite_versions(path: str) -> Iterator[tuple[int, Catalog]]:
    """Build a file with version 1's DDL, then each migration in turn; the catalog after
    each."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        scripts = {1: sqlite_module._SCHEMA_V1, **sqlite_module._MIGRATIONS}
        for version in sorted(scripts):
            for statement in sqlite_module._statements(scripts[version]):
                conn.execute(statement)
            yield version, _sqlite_catalog(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_sqlite_ddl_of_every_version_builds_its_snapshot(tmp_path: Path) -> None:
    expected = _load("sqlite")
    built = dict(_sqlite_versions(str(tmp_path / "versions.db")))
    assert sorted(built) == list(range(1, sqlite_module.SCHEMA_VERSION + 1))
    assert sorted(expected) == sorted(built)
    for version, catalog in built.items():
        assert catalog == expected[version], f"schema version {version}"


def test_a_new_sqlite_store_has_the_latest_snapshot(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        catalog = _sqlite_catalog(conn)
        meta = conn.execute("SELECT key, value FROM meta").fetchall()
    finally:
        conn.close()
    assert catalog == _load("sqlite")[sqlite_module.SCHEMA_VERSION]
    assert meta == [("schema_version", str(sqlite_module.SCHEMA_VERSION))]


# -- PostgreSQL ------------------------------------------------------------------------------------


def _postgres_catalog(conn: Any, schema: str) -> Catalog:
    """What defines a schema -- relations, columns, constraints, indexes, functions, triggers,
    sequences -- with its own name written as ``S``."""

    def rows(sql: str) -> list[list[Any]]:
        found = conn.execute(sql, {"schema": schema}).fetchall()
        return _as_lists([
            tuple(v.replace(schema, "S") if isinstance(v, str) else v for v in row)
            for row in found
        ])

    return {
        "relations": rows(
            "SELECT relname, relkind::text, relpersistence::text FROM pg_class"
            " WHERE relnamespace = %(schema)s::regnamespace"
        ),
        "columns": rows(
            "SELECT table_name, column_name, ordinal_position, data_type, collation_name,"
            " is_nullable, column_default, is_identity, identity_generation"
            " FROM information_schema.columns WHERE table_schema = %(schema)s"
        ),
        "constraints": rows(
            "SELECT conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid),"
            " condeferrable, condeferred FROM pg_constraint"
            " WHERE connamespace = %(schema)s::regnamespace"
        ),
        "indexes": rows(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s"
        ),
        "functions": rows(
            "SELECT p.proname, pg_get_function_arguments(p.oid), p.prorettype::regtype::text,"
            " p.prosrc, p.provolatile::text, l.lanname FROM pg_proc p"
            " JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.pronamespace = %(schema)s::regnamespace"
        ),
        "triggers": rows(
            "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal"
        ),
        "sequences": rows(
            "SELECT sequencename, data_type::text, start_value, increment_by, cycle"
            " FROM pg_sequences WHERE schemaname = %(schema)s"
        ),
    }


def _postgres_versions(connect: Callable[[], Any], schema: str) -> Iterator[tuple[int, Catalog]]:
    """Build ``schema`` with version 1's DDL, then each migration in turn; the catalog after
    each. Nothing stays: the transaction is rolled back."""
    from prepaid_wallet.storage import postgres as postgres_module

    quoted = f'"{schema}"'
    with connect() as conn:
        conn.execute("BEGIN")
        try:
            conn.execute(f"CREATE SCHEMA {quoted}")
            scripts = {1: postgres_module._SCHEMA, **postgres_module._MIGRATIONS}
            for version in sorted(scripts):
                conn.execute(scripts[version].format(s=quoted))
                yield version, _postgres_catalog(conn, schema)
        finally:
            conn.execute("ROLLBACK")


def test_postgres_ddl_of_every_version_builds_its_snapshot() -> None:
    from prepaid_wallet.storage import postgres as postgres_module
    from tests.pg import fresh_schema, raw_connection

    expected = _load("postgres")
    built = dict(_postgres_versions(raw_connection, fresh_schema()))
    assert sorted(built) == list(range(1, postgres_module.SCHEMA_VERSION + 1))
    assert sorted(expected) == sorted(built)
    for version, catalog in built.items():
        assert catalog == expected[version], f"schema version {version}"


def test_a_new_postgres_store_has_the_latest_snapshot() -> None:
    from prepaid_wallet.storage import postgres as postgres_module
    from tests.pg import close_and_drop, fresh_store, raw_connection

    store = fresh_store()
    try:
        assert store.schema is not None
        with raw_connection() as conn:  # no search path: names come out qualified
            catalog = _postgres_catalog(conn, store.schema)
            meta = conn.execute(f'SELECT key, value FROM "{store.schema}".meta').fetchall()
    finally:
        close_and_drop(store)
    assert catalog == _load("postgres")[postgres_module.SCHEMA_VERSION]
    assert meta == [("schema_version", str(postgres_module.SCHEMA_VERSION))]


# -- adding the snapshot of a new version ----------------------------------------------------------


def _add_missing(backend: str, built: dict[int, Catalog]) -> list[int]:
    """Write the snapshots of versions the file does not hold yet; never rewrite one."""
    path = _SNAPSHOTS / f"{backend}.json"
    known = _load(backend) if path.exists() else {}
    added = [version for version in sorted(built) if version not in known]
    merged = {**known, **{version: built[version] for version in added}}
    path.parent.mkdir(exist_ok=True)
    path.write_text(_dumps(merged), encoding="utf-8")
    return added


def _dumps(snapshots: dict[int, Catalog]) -> str:
    """The snapshots as JSON, one row a line (so a change reads as a short diff)."""

    def text(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    versions = []
    for version in sorted(snapshots):
        parts = []
        for name, rows in snapshots[version].items():
            lines = ",\n".join(f"   {text(row)}" for row in rows)
            parts.append(f"  {text(name)}: [\n{lines}\n  ]")
        versions.append(f" {text(str(version))}: {{\n" + ",\n".join(parts) + "\n }")
    return "{\n" + ",\n".join(versions) + "\n}\n"


def main(argv: list[str]) -> int:
    """``--add``: snapshot the schema versions that have none yet (PostgreSQL needs
    ``PREPAID_WALLET_TEST_DSN``)."""
    import tempfile

    if argv != ["--add"]:
        print("usage: python -m tests.storage.test_schema --add", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as workdir:
        built = dict(_sqlite_versions(str(Path(workdir) / "versions.db")))
    print("sqlite: added", _add_missing("sqlite", built))
    from tests.pg import fresh_schema, raw_connection

    print("postgres: added",
          _add_missing("postgres", dict(_postgres_versions(raw_connection, fresh_schema()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# -- the migration list ----------------------------------------------------------------------------


def test_a_dialect_must_give_exactly_the_hooks_of_the_migration_list() -> None:
    from prepaid_wallet.storage._dialect import SQLITE
    from prepaid_wallet.storage._schema import HOOKS, render

    assert sorted(HOOKS) == ["journal", "write_path", "write_unit", "write_unit_6",
                             "write_unit_7", "write_unit_8", "write_unit_9"]
    with pytest.raises(ValueError, match="must give the hooks"):
        render(SQLITE, {"journal": "", "write_path": "", "write_unit": "", "write_unit_6": ""})
    with pytest.raises(ValueError, match="must give the hooks"):
        render(SQLITE, {"journal": "", "write_path": "", "write_unit": "", "write_unit_6": "",
                        "write_unit_7": "", "write_unit_8": "", "write_unit_9": "", "extra": ""})
    scripts = render(SQLITE, {"journal": "-- j\n", "write_path": "-- w\n", "write_unit": "",
                              "write_unit_6": "-- 6\n", "write_unit_7": "-- 7\n",
                              "write_unit_8": "", "write_unit_9": ""})
    assert sorted(scripts) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert scripts[1].endswith(");\n-- j\n")  # the hook follows the version's own DDL
    assert scripts[2] == "-- w\n"
    assert scripts[6].endswith(";\n-- 6\n")
    assert scripts[7].endswith(";\n-- 7\n")


@pytest.mark.parametrize(
    ("found", "expected"),
    [(1, [2, 3, 4, 5, 6, 7, 8, 9, 10]), (4, [5, 6, 7, 8, 9, 10]), (6, [7, 8, 9, 10]),
     (8, [9, 10]), (9, [10]), (10, [])],
)
def test_versions_to_run_are_the_steps_after_the_stored_one(
    found: int, expected: list[int]
) -> None:
    from prepaid_wallet.storage._schema import versions_to_run

    assert list(versions_to_run(found, sqlite_module._MIGRATIONS)) == expected


def test_a_newer_or_unusable_version_is_refused() -> None:
    from prepaid_wallet.errors import SchemaVersionError, StorageError
    from prepaid_wallet.storage._schema import SCHEMA_VERSION, versions_to_run

    with pytest.raises(SchemaVersionError) as newer:
        versions_to_run(SCHEMA_VERSION + 1, sqlite_module._MIGRATIONS)
    assert (newer.value.found, newer.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    for found in (0, -1):
        with pytest.raises(StorageError, match="no usable schema version"):
            versions_to_run(found, sqlite_module._MIGRATIONS)
    missing = {v: s for v, s in sqlite_module._MIGRATIONS.items() if v != 4}
    with pytest.raises(StorageError, match="no usable schema version"):
        versions_to_run(2, missing)
