"""When a lot falls due is one rule of the domain (``expiry.first_end``: the first of its own end
and its group's, ``None`` being no end); the SQL stores keep it in their due index, rendered
from the dialect (``_schema.first_end_sql``). Here the rendered SQL, run by each database, is
compared with the domain's function on every kind of pair."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.expiry import first_end
from prepaid_wallet.storage._dialect import POSTGRES, SQLITE, micros
from prepaid_wallet.storage._schema import first_end_sql
from tests.pg import raw_connection

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ENDS = st.one_of(st.none(), st.integers(-1000, 1000).map(lambda n: T0 + timedelta(minutes=n)))
#: Each kind of pair: no end, one end either side, the first on either side, equal ends.
PAIRS = [(None, None), (T0, None), (None, T0), (T0, T0 + timedelta(seconds=1)),
         (T0 + timedelta(seconds=1), T0), (T0, T0)]


def test_the_domain_rule_is_the_first_end_none_being_no_end() -> None:
    assert [first_end(a, b) for a, b in PAIRS] == [None, T0, T0, T0, T0, T0]


def _sqlite(end: datetime | None, other: datetime | None) -> datetime | None:
    as_micros = [None if at is None else micros(at) for at in (end, other)]
    with sqlite3.connect(":memory:") as conn:
        found = conn.execute(f"SELECT {first_end_sql(SQLITE, ':end', ':other')}",
                             dict(zip(("end", "other"), as_micros, strict=True))).fetchone()[0]
    return None if found is None else SQLITE.instant_of(found)


@given(ENDS, ENDS)
def test_sqlite_keeps_the_domain_rule(end: datetime | None, other: datetime | None) -> None:
    assert _sqlite(end, other) == first_end(end, other)


@pytest.mark.parametrize(("end", "other"), PAIRS)
def test_sqlite_keeps_the_domain_rule_on_each_kind_of_pair(
    end: datetime | None, other: datetime | None
) -> None:
    assert _sqlite(end, other) == first_end(end, other)


def test_postgres_keeps_the_domain_rule() -> None:
    sql = first_end_sql(POSTGRES, "%(end)s::timestamptz", "%(other)s::timestamptz")
    pairs = [*PAIRS, *((T0 + timedelta(minutes=a), T0 - timedelta(minutes=b))
                       for a in (-5, 0, 5) for b in (-5, 0, 5))]
    with raw_connection() as conn:
        for end, other in pairs:
            found = conn.execute(f"SELECT {sql}", {"end": end, "other": other}).fetchone()
            assert found is not None
            assert found[0] == first_end(end, other), (end, other)
