"""What differs between the SQL dialects the stores speak (private).

The SQL stores share one logical schema (:mod:`prepaid_wallet.storage._schema`), one set of row
mappers (:mod:`prepaid_wallet.storage._rows`) and one set of statements
(:mod:`prepaid_wallet.storage._sql`). Each backend describes its dialect once, as a
:class:`Dialect`: how a parameter is written, how an instant is stored, how a list of values is
matched and what the logical column types of the schema become. The two dialects are declared
here side by side, :data:`SQLITE` and :data:`POSTGRES`. Everything else the backends do in
their own modules: the DDL that exists in one dialect only (the schema's hooks: triggers,
functions, a physical layout of its own), connections, transactions, how a unit's writes are
sent, and the translation of driver errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

__all__ = ["POSTGRES", "SQLITE", "Dialect", "micros"]


@functools.cache
def _marked(sql: str, mark: str) -> str:
    return sql if mark == "?" else sql.replace("?", mark)


@attrs.frozen
class Dialect:
    """One SQL dialect, as the shared schema, row mappers and statements need it.

    * ``mark`` -- how a statement writes a parameter (``?`` or ``%s``); shared statements are
      written with ``?`` and converted by :meth:`sql`;
    * ``instant`` / ``instant_of`` -- an aware instant as the column value the dialect stores,
      and back (an aware UTC instant);
    * ``arrays`` -- whether one parameter can carry a list of values (``= ANY(%s)``) instead of
      one parameter per value (``IN (?, ?)``);
    * ``types`` -- what each logical column type and dialect token of the schema's DDL becomes
      (see :mod:`prepaid_wallet.storage._schema`);
    * ``first_end`` -- :func:`prepaid_wallet.expiry.first_end` (the first of two ends, NULL
      being no end) as an SQL expression of ``{end}`` and ``{other}``.
    """

    name: str
    mark: str
    instant: Callable[[datetime], Any]
    instant_of: Callable[[Any], datetime]
    arrays: bool
    types: Mapping[str, str]
    first_end: str

    def sql(self, statement: str) -> str:
        """``statement`` (written with ``?`` placeholders) with this dialect's placeholder."""
        return _marked(statement, self.mark)

    def any_of(self, column: str, values: Sequence[Any], array_type: str) -> tuple[str, list[Any]]:
        """A condition that ``column`` is one of ``values``, and its parameters: one array
        parameter of ``array_type`` where the dialect has arrays, else one parameter a value."""
        if self.arrays:
            return f"{column} = ANY({self.mark}::{array_type}[])", [list(values)]
        return f"{column} IN ({','.join([self.mark] * len(values))})", list(values)

    def keyed(self, columns: str, table: str, scope: str, scope_value: Any,
              keys: Sequence[str]) -> tuple[str, list[Any]]:
        """A query of ``columns`` of the rows of ``table`` whose ``scope`` column holds
        ``scope_value`` and whose ``key`` is one of ``keys`` (a primary key ``(scope, key)``),
        and its parameters. Where the dialect has arrays, each key is looked up in the primary
        key on its own (a lateral join on the keys): a list of keys as a filter would let the
        planner read every row of the scope instead -- the more so once the statement is
        prepared, where the list is no constant to hash -- so that a job's batch would read
        all the records a tenant ever stored."""
        if self.arrays:
            mark = self.mark
            return (f"SELECT found.* FROM unnest({mark}::text[]) AS wanted (key)"
                    f" CROSS JOIN LATERAL (SELECT {columns} FROM {table} AS t"
                    f" WHERE t.{scope} = {mark} AND t.key = wanted.key) AS found",
                    [list(keys), scope_value])
        where, params = self.any_of("key", keys, "text")
        return (f"SELECT {columns} FROM {table} WHERE {scope} = {self.mark} AND {where}",
                [scope_value, *params])


# -- the two dialects ------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """An instant as SQLite stores it: integer microseconds since the Unix epoch."""
    return (at - _EPOCH) // _MICRO


def _instant(micros: int) -> datetime:
    return _EPOCH + micros * _MICRO


def _utc(at: datetime) -> datetime:
    """An instant as PostgreSQL takes and gives it (``timestamptz``), in UTC."""
    return at.astimezone(UTC)


#: The logical types and tokens of the schema's DDL, ``token: (SQLite, PostgreSQL)``.
_TYPES: dict[str, tuple[str, str]] = {
    "id": ("TEXT", 'TEXT COLLATE "C"'),
    "int": ("INTEGER", "BIGINT"),
    "instant": ("INTEGER", "TIMESTAMPTZ"),
    "flag": ("INTEGER", "BOOLEAN"),
    "false": ("0", "false"),
    "serial": ("INTEGER", "BIGINT GENERATED ALWAYS AS IDENTITY"),
    "p": ("", "{s}."),
    "clustered": (" WITHOUT ROWID", ""),
    "no_expiry": ("expires_at IS NULL", "(expires_at IS NULL)"),
    "expiry_or_grant": ("coalesce(expires_at, granted_at)", "(coalesce(expires_at, granted_at))"),
    # JSON built in the DDL (version 7's move of rows into records): an object of key-value
    # arguments, and JSON text as a value inside it.
    "json_object": ("json_object", "jsonb_build_object"),
    "json": ("json", "jsonb"),
    # ``created_at`` as RecordType orders instants (app.ports.sortable_instant).
    "sortable_created_at": (
        "strftime('%Y-%m-%dT%H:%M:%S', created_at / 1000000, 'unixepoch')"
        " || printf('.%06dZ', created_at % 1000000)",
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    ),
}

#: SQLite: ``?`` placeholders, instants as integer microseconds (UTC), no array parameters.
SQLITE = Dialect(name="sqlite", mark="?", instant=micros, instant_of=_instant, arrays=False,
                 types={token: pair[0] for token, pair in _TYPES.items()},
                 first_end="CASE WHEN {other} IS NULL THEN {end}"
                           " WHEN {end} IS NULL OR {end} > {other} THEN {other} ELSE {end} END")
#: PostgreSQL (psycopg): ``%s`` placeholders, ``timestamptz`` instants, array parameters; the
#: DDL's ``{s}`` is the quoted schema name, filled in when a script is sent.
POSTGRES = Dialect(name="postgres", mark="%s", instant=_utc, instant_of=_utc, arrays=True,
                   types={token: pair[1] for token, pair in _TYPES.items()},
                   first_end="least({end}, {other})")  # least() passes over NULLs
