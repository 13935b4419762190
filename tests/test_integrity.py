"""Every stored fact proven: each kind of direct edit of a store (triggers bypassed, as an
attacker or a careless script would) is found by ``verify()`` and named, on SQLite and on
PostgreSQL; a clean store never reports a problem.

Two tables of edits: the named kinds (an entry swapped in the journal, an idempotency record
altered or deleted, an expiry extended, a floor lowered, a wallet moved, the balance history
edited, ...), and every column of every row of every table that is not the journal, changed
one at a time: nothing the library stores escapes ``verify``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import (
    Checkpoint,
    FixedClock,
    IntegrityError,
    InvalidInputError,
    Money,
    SealKey,
    SealKeyError,
    SequentialIds,
    SpendRequest,
    Store,
    TenantRules,
    WalletService,
    open_store,
)
from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.results import Problem
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.seals import Sealer
from prepaid_wallet.storage._dialect import SQLITE
from prepaid_wallet.storage._rows import Rows
from prepaid_wallet.storage._schema import WALLET_COLS
from prepaid_wallet.storage.sqlite import SQLiteStore
from tests import pg
from tests.backends import available_backends
from tests.test_service import T0

DAY = timedelta(days=1)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


class Raw:
    """Direct SQL on a store's database, with the library's triggers out of the way."""

    dialect: str

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def later(self, column: str) -> str:
        """An SQL expression: the instant ``column`` one day later."""
        raise NotImplementedError

    def columns(self, table: str) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLiteRaw(Raw):
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for (name,) in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            self.conn.execute(f"DROP TRIGGER {name}")

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql, params)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def later(self, column: str) -> str:
        return f"{column} + 86400000000"

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")]

    def close(self) -> None:
        self.conn.close()


class PostgresRaw(Raw):
    dialect = "postgres"

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.conn = pg.raw_connection(schema)
        self.conn.execute("SET session_replication_role = replica")  # no triggers

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.conn.execute(sql.replace("?", "%s"), params)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.replace("?", "%s"), params).fetchall()

    def later(self, column: str) -> str:
        return f"{column} + interval '1 day'"

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = %s ORDER BY ordinal_position", (self.schema, table)).fetchall()]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Raw]]:
    """A store on a backend that keeps rows, and direct access to its database."""
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")
        store: Store = SQLiteStore(path)
        raw: Raw = SQLiteRaw(path)
    else:
        pg.postgres_dsn()
        store = pg.fresh_store()
        raw = PostgresRaw(store.schema)  # type: ignore[attr-defined]
    try:
        yield store, raw
    finally:
        raw.close()
        if request.param == "postgres":
            pg.close_and_drop(store)  # type: ignore[arg-type]
        else:
            store.close()


def _history(svc: WalletService) -> dict[str, str]:
    """A store with a row in every table: two tenants' wallets, keyed top-ups and spends, an
    award that expires, a conditioned award of a group, a hold, a refund, a floor set by
    hand, tenant rules and a low-balance event. Returns the ids the edits name."""
    ann = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
    ben = svc.open_wallet(owner_id="ben", tenant_id="hub", currency="EUR").id
    cat = svc.open_wallet(owner_id="cat", tenant_id="shop", currency="EUR").id
    svc.set_tenant_rules("hub", TenantRules(low_balance=LowBalanceRule(
        (Threshold(eur("5.00"), "low"),))), reason="reminders")
    svc.top_up(ann, eur("50.00"), method="card", idempotency_key="k-top-up")
    svc.top_up(cat, eur("9.00"), method="card")
    lot = svc.award(ann, eur("10.00"), reason="promo", expires_at=T0 + 30 * DAY)
    group = svc.define_condition_group(
        tenant_id="hub", name="bakery", condition=SpendCondition(merchants=frozenset({"bakery"})),
        valid_until=T0 + 60 * DAY)
    svc.award(ben, eur("4.00"), reason="bread", group_id=group.id)
    spent = svc.spend(ann, SpendRequest(eur("12.00")), idempotency_key="k-spend")
    hold = svc.hold(ann, eur("3.00"), expires_at=T0 + 2 * DAY)
    svc.refund(spent.entry_id, eur("1.00"), reason="stale bread")
    svc.set_floor(ben, eur("-5.00"), actor="staff", reason="trusted member")
    svc.transfer(ann, ben, eur("44.00"))  # ann crosses the low-balance threshold
    assert svc.events("hub"), "the scenario must write an event"
    report = svc.verify()
    assert report.ok, report.problems
    return {"ann": ann, "ben": ben, "cat": cat, "lot": lot.id, "hold": hold.id,
            "spend": spent.entry_id, "group": group.id}


def _service(store: Store) -> WalletService:
    return WalletService(store, clock=FixedClock(T0))


def _found(svc: WalletService) -> list[Problem]:
    return list(svc.verify().problems)


def _swap_entries(raw: Raw, ids: dict[str, str]) -> str:
    """Swap two consecutive entries of ann in the journal (every row that carries their
    numbers), as if the later had been written first."""
    (a, b) = raw.rows(
        "SELECT e.seq FROM entries e JOIN wallet_history h ON h.entry_seq = e.seq"
        " WHERE h.wallet_id = ? ORDER BY e.seq LIMIT 2", (ids["ann"],))
    first, second = a[0], b[0]
    for table, column in (("entries", "seq"), ("postings", "entry_seq"),
                          ("wallet_history", "entry_seq")):
        raw.run(f"UPDATE {table} SET {column} = -1 WHERE {column} = ?", (first,))
        raw.run(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (first, second))
        raw.run(f"UPDATE {table} SET {column} = ? WHERE {column} = -1", (second,))
    (entry,) = raw.rows("SELECT id FROM entries WHERE seq = ?", (first,))
    return str(entry[0])


#: Each kind of edit: what it does (``edit(raw, ids)`` returns the subject verify must name,
#: or its key in ``ids``) and the problem code that names it.
EDITS: dict[str, tuple[Callable[[Raw, dict[str, str]], str], str]] = {
    "two entries swapped in the journal": (_swap_entries, "order"),
    "an idempotency record's outcome altered": (
        lambda raw, ids: raw.run("UPDATE idempotency SET payload = replace(payload, '12.00',"
                                 " '2.00') WHERE key = 'k-spend'") or "hub/k-spend", "seal"),
    "an idempotency record deleted": (
        lambda raw, ids: raw.run("DELETE FROM idempotency WHERE key = 'k-spend'")
        or "hub/k-spend", "idempotency"),
    "a lot's expiry extended": (
        lambda raw, ids: raw.run(f"UPDATE lots SET expires_at = {raw.later('expires_at')}"
                                 " WHERE id = ?", (ids["lot"],)) or "lot", "seal"),
    "a lot's expiry and every derived column extended": (
        lambda raw, ids: raw.run(
            f"UPDATE lots SET expires_at = {raw.later('expires_at')}, ends_at ="
            f" {raw.later('ends_at')}, due_at = {raw.later('due_at')} WHERE id = ?",
            (ids["lot"],)) or "lot", "seal"),
    "a hold's expiry extended": (
        lambda raw, ids: raw.run(f"UPDATE holds SET expires_at = {raw.later('expires_at')}"
                                 " WHERE id = ?", (ids["hold"],)) or "hold", "seal"),
    "a wallet's floor lowered": (
        lambda raw, ids: raw.run("UPDATE wallets SET floor = -100000 WHERE id = ?",
                                 (ids["ann"],)) or "ann", "seal"),
    "a wallet moved to another tenant": (
        lambda raw, ids: raw.run("UPDATE wallets SET tenant_id = 'shop' WHERE id = ?",
                                 (ids["ann"],)) or "ann", "seal"),
    "a wallet moved to another owner": (
        lambda raw, ids: raw.run("UPDATE wallets SET owner_id = 'mallory' WHERE id = ?",
                                 (ids["ann"],)) or "ann", "seal"),
    "the balance history edited": (
        lambda raw, ids: raw.run("UPDATE wallet_history SET open = open + 100000"
                                 " WHERE wallet_id = ?", (ids["ann"],)) or "ann", "history"),
    "a posting's balance after edited": (
        lambda raw, ids: raw.run("UPDATE postings SET balance_after = balance_after + 1"
                                 " WHERE account = ?", (f"wallet:{ids['ann']}:open",))
        or "spend", "posting"),
    "a posting's instant edited": (
        lambda raw, ids: raw.run(f"UPDATE postings SET recorded_at = {raw.later('recorded_at')}"
                                 " WHERE account = ?", (f"wallet:{ids['cat']}:open",))
        or "cat-entry", "posting"),
    "a condition group's end extended": (
        lambda raw, ids: raw.run(
            f"UPDATE condition_groups SET valid_until = {raw.later('valid_until')}"
            " WHERE id = ?", (ids["group"],)) or "group", "seal"),
    "a tenant's rules edited": (
        lambda raw, ids: raw.run("UPDATE records SET data = replace(data, ':500', ':5')"
                                 " WHERE kind = 'tenant_rules'") or "tenant_rules", "seal"),
    "an event's payload edited": (
        lambda raw, ids: raw.run("UPDATE events SET payload = replace(payload, 'low', 'ok')")
        or "", "seal"),
    "a charge's refunds erased": (
        lambda raw, ids: raw.run("UPDATE charges SET refunded = '[]'") or "spend", "seal"),
    "a seal removed": (
        lambda raw, ids: raw.run("UPDATE wallets SET seal = NULL WHERE id = ?", (ids["cat"],))
        or "cat", "seal"),
}


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_each_kind_of_edit_is_found_and_named(stored: tuple[Store, Raw], kind: str) -> None:
    store, raw = stored
    svc = _service(store)
    ids = _history(svc)
    (cat_entry,) = raw.rows("SELECT entry_id FROM wallet_history WHERE wallet_id = ?",
                            (ids["cat"],))
    ids["cat-entry"] = str(cat_entry[0])
    edit, code = EDITS[kind]
    named = edit(raw, ids)
    subject = ids.get(named, named)
    problems = _found(svc)
    assert problems, f"{kind}: not found"
    assert any(p.code == code and subject in p.subject for p in problems), (kind, problems)


def _changed(raw: Raw, table: str, column: str, value: Any) -> str:
    """An SQL expression of ``column`` that differs from its ``value``."""
    if value is None:
        return "'1'" if table != "lots" or column not in ("expires_at", "ends_at", "due_at") \
            else raw.later("granted_at")
    if isinstance(value, bool):
        return f"NOT {column}"
    if isinstance(value, int):
        return f"{column} + 1"
    if isinstance(value, str):
        return f"{column} || 'x'"
    return raw.later(column)  # an instant (PostgreSQL)


#: The tables that are not the journal, with the columns of their keys.
SEALED = {"wallets": ("id",), "lots": ("id",), "holds": ("id",), "charges": ("entry_id",),
          "idempotency": ("scope", "key"), "condition_groups": ("id",), "events": ("id",),
          "records": ("kind", "key")}


def test_every_column_of_every_stored_row_is_proven(stored: tuple[Store, Raw]) -> None:
    """Change each column of each row of every table but the journal, one at a time (then
    put it back): verify names a problem every time; once each is put back, none. (Keys are
    left alone, and so are an event's commit order and the instant it was acknowledged, and
    when a spent lot would fall due.)"""
    store, raw = stored
    svc = _service(store)
    _history(svc)
    missed = []
    tried = 0
    for table, keys in SEALED.items():
        columns = raw.columns(table)
        where = " AND ".join(f"{c} = ?" for c in keys)
        for row in raw.rows(f"SELECT {', '.join(columns)} FROM {table}"):
            values = dict(zip(columns, row, strict=True))
            params = tuple(values[c] for c in keys)
            for column, value in values.items():
                if column in keys or column in ("seq", "acked_at"):
                    continue
                if column == "due_at" and values["remaining"] == 0:
                    continue  # a spent lot never falls due: when is nobody's fact
                try:
                    raw.run(f"UPDATE {table} SET {column} = {_changed(raw, table, column, value)}"
                            f" WHERE {where}", params)
                except Exception:
                    continue
                tried += 1
                if not _found(svc):
                    missed.append(f"{table}.{column}")
                raw.run(f"UPDATE {table} SET {column} = ? WHERE {where}", (value, *params))
        assert svc.verify().ok, (table, svc.verify().problems)
    assert tried > 60
    assert not missed, missed


# -- checkpoints: an anchor outside the store ---------------------------------------------------


@pytest.fixture(params=sorted(available_backends()))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory of fresh stores on one backend (each closed at the end)."""
    made: list[Store] = []

    def new() -> Store:
        made.append(available_backends()[request.param](tmp_path))
        return made[-1]

    yield new
    for store in made:
        store.close()


def _run(store: Store, first_top_up: str) -> WalletService:
    """The same history every time (fixed clock, sequential ids), but for one amount."""
    svc = WalletService(store, clock=FixedClock(T0), ids=SequentialIds())
    ann = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
    ben = svc.open_wallet(owner_id="ben", tenant_id="hub", currency="EUR").id
    svc.top_up(ann, eur(first_top_up), method="card")
    svc.transfer(ann, ben, eur("5.00"))
    svc.spend(ben, SpendRequest(eur("1.00")), idempotency_key="k")
    return svc


def test_a_checkpoint_round_trips_as_one_line_and_bad_text_is_refused() -> None:
    point = Checkpoint(3, "e_1", "a" * 64, T0)
    assert Checkpoint.from_text(point.to_text()) == point
    empty = Checkpoint(0, None, "b" * 64, T0)
    assert Checkpoint.from_text(empty.to_text()) == empty
    for text in ("", "x", point.to_text().replace("/1", "/2"), point.to_text() + " extra",
                 point.to_text().replace("a" * 64, "A" * 64),
                 point.to_text().replace(" 3 ", " -3 ")):
        with pytest.raises(InvalidInputError) as info:
            Checkpoint.from_text(text)
        assert info.value.field == "checkpoint"
    svc = WalletService(open_store("memory:"), clock=FixedClock(T0))
    for bad in ("text", [point.to_text()], 3):
        with pytest.raises(InvalidInputError) as info:
            svc.verify(against=bad)  # type: ignore[arg-type]
        assert info.value.field == "against"


def test_the_journal_extends_every_checkpoint_taken_as_it_grew(
        backend: Callable[[], Store]) -> None:
    store = backend()
    svc = WalletService(store, clock=FixedClock(T0))
    points = [svc.checkpoint()]  # of the empty journal
    assert (points[0].entries, points[0].last_entry_id) == (0, None)
    ann = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
    for amount in ("1.00", "2.00", "3.00"):
        svc.top_up(ann, eur(amount), method="card")
        points.append(svc.checkpoint())
    assert [p.entries for p in points] == [0, 1, 2, 3]
    report = svc.verify(against=reversed(points))
    assert report.ok, report.problems
    assert points[-1] == svc.checkpoint().__class__(3, points[-1].last_entry_id,
                                                   points[-1].digest, points[-1].taken_at)


def test_a_forged_history_with_every_hash_and_seal_recomputed_fails_its_checkpoint(
        backend: Callable[[], Store]) -> None:
    """Whoever can write the store and knows the format can rewrite the whole history
    consistently (here: the same commands with a larger first top-up, so every hash, chain,
    balance and seal after it is recomputed): only an anchor kept elsewhere catches it."""
    real = _run(backend(), "50.00")
    point = real.checkpoint()
    forged = _run(backend(), "90.00")
    assert forged.verify().ok  # consistent in itself
    problems = forged.verify(against=[point]).problems
    assert [p.code for p in problems] == ["checkpoint"]
    assert str(point.entries) in problems[0].subject
    # the real store, grown since, still extends it; a shorter one does not
    real.top_up(real.wallets()[0].id, eur("1.00"), method="card")
    assert real.verify(against=[point]).ok
    short = WalletService(backend(), clock=FixedClock(T0), ids=SequentialIds())
    short.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR")
    (problem,) = short.verify(against=[point]).problems
    assert problem.code == "checkpoint"
    assert "holds 0" in problem.detail


def test_checkpoints_taken_while_commands_commit_at_once_are_all_extended(
        stored: tuple[Store, Raw]) -> None:
    """(On the SQL stores: the memory store runs one unit at a time.)"""
    store, _ = stored
    svc = WalletService(store)
    wallets = [svc.open_wallet(owner_id=f"o{i}", tenant_id="hub", currency="EUR").id
               for i in range(4)]
    points: list[Checkpoint] = []
    errors: list[BaseException] = []

    def write(wallet_id: str) -> None:
        try:
            for _ in range(25):
                svc.top_up(wallet_id, eur("1.00"), method="card")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in wallets]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        points.append(svc.checkpoint())
    for thread in threads:
        thread.join()
    assert not errors, errors
    points.append(svc.checkpoint())
    assert points[-1].entries == 100
    report = svc.verify(against=points)
    assert report.ok, report.problems


# -- keyed seals: whoever cannot read the key cannot seal a row ---------------------------------

KEY = SealKey("k1", bytes(range(32)))
OTHER_SECRET = SealKey("k1", bytes(range(1, 33)))


class Reopen:
    """One SQL store opened again and again (SQLite: one file; PostgreSQL: one schema), with a
    key or without: ``reopen(seal_key=...)``; ``reopen.raw()`` is its database."""

    def __init__(self, path: str | None, schema: str | None) -> None:
        self.path, self.schema = path, schema
        self.opened: list[Store] = []

    def __call__(self, seal_key: SealKey | None = None) -> Store:
        if self.path is not None:
            store: Store = SQLiteStore(self.path, seal_key=seal_key)
        else:
            from prepaid_wallet.storage.postgres import PostgresStore

            store = PostgresStore(pg.postgres_dsn(), schema=self.schema, seal_key=seal_key)
        self.opened.append(store)
        return store

    def raw(self) -> Raw:
        return SQLiteRaw(self.path) if self.path is not None else PostgresRaw(str(self.schema))


@pytest.fixture(params=["sqlite", "postgres"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reopen]:
    if request.param == "sqlite":
        made = Reopen(str(tmp_path / "keyed.db"), None)
    else:
        pg.postgres_dsn()
        made = Reopen(None, pg.fresh_schema())
    yield made
    for store in made.opened:
        store.close()
    if made.schema is not None:
        pg.drop_schema(made.schema)


def test_a_keyed_store_opens_only_with_its_key(reopen: Reopen) -> None:
    svc = _service(reopen(seal_key=KEY))
    _history(svc)  # verified clean with the key inside
    svc.store.close()
    for wrong in (None, SealKey("k2", bytes(range(32)))):
        with pytest.raises(SealKeyError) as info:
            reopen(seal_key=wrong)
        assert (info.value.stored, info.value.given) == ("k1", None if wrong is None else "k2")
    # the same key id with another secret: nothing verifies
    problems = _found(_service(reopen(seal_key=OTHER_SECRET)))
    assert problems
    assert {p.code for p in problems} == {"seal"}
    assert all("does not match its seal" in p.detail for p in problems)
    assert _service(reopen(seal_key=KEY)).verify().ok


def test_with_a_key_a_row_resealed_by_someone_without_it_is_found(
        reopen: Reopen) -> None:
    """The attack a plain checksum cannot stop: change a row and seal it again as the
    library would without a key, or with a guessed key."""
    svc = _service(reopen(seal_key=KEY))
    ids = _history(svc)
    raw = reopen.raw()
    try:
        row = raw.rows(f"SELECT {WALLET_COLS} FROM wallets WHERE id = ?", (ids["ann"],))[0]
        lowered = list(row)
        lowered[4] = -100000  # the floor
        rows = Rows(SQLITE)
        lowered = [rows.instant(v) if isinstance(v, datetime) else v for v in lowered]
        for sealer in (Sealer(), Sealer(OTHER_SECRET)):
            seal = sealer.seal("wallets", tuple(lowered))
            raw.run("UPDATE wallets SET floor = -100000, seal = ? WHERE id = ?",
                    (seal, ids["ann"]))
            (problem,) = _found(svc)
            assert (problem.code, problem.subject) == ("seal", ids["ann"])
    finally:
        raw.close()


def test_reseal_puts_a_store_under_a_key_only_when_it_verifies(
        reopen: Reopen) -> None:
    svc = _service(reopen())
    ids = _history(svc)
    raw = reopen.raw()
    try:
        raw.run("UPDATE holds SET expires_at = " + raw.later("expires_at") + " WHERE id = ?",
                (ids["hold"],))
        with pytest.raises(IntegrityError):
            svc.reseal(KEY)
        svc.store.close()
        with pytest.raises(SealKeyError):  # nothing was sealed with the key
            reopen(seal_key=KEY)
    finally:
        raw.close()
    svc = _service(reopen())
    # put the hold back as it was: the store verifies again, then takes the key
    raw = reopen.raw()
    try:
        back = "expires_at - 86400000000" if raw.dialect == "sqlite" else \
            "expires_at - interval '1 day'"
        raw.run(f"UPDATE holds SET expires_at = {back} WHERE id = ?", (ids["hold"],))
    finally:
        raw.close()
    assert svc.verify().ok
    assert svc.reseal(KEY) > 10
    assert svc.verify().ok
    svc.top_up(ids["cat"], eur("1.00"), method="card")  # sealed with the key from now on
    svc.store.close()
    with pytest.raises(SealKeyError):
        reopen()
    assert _service(reopen(seal_key=KEY)).verify().ok


def test_a_seal_key_is_checked_and_never_shown() -> None:
    secret = "ab" * 32
    key = SealKey.from_text(f" k1:{secret}\n")
    assert key == SealKey("k1", bytes.fromhex(secret))
    assert secret not in repr(key)
    for text in ("k1", f"k1:{secret[:-2]}", f"k1:{secret[:-1]}z", f":{secret}",
                 f"a:b:{secret}"):
        with pytest.raises(InvalidInputError) as info:
            SealKey.from_text(text)
        assert info.value.field in ("seal_key", "key_id")
        assert secret not in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        SealKey("k1", b"short")
    assert info.value.field == "secret"
    with pytest.raises(InvalidInputError):
        open_store("memory:", seal_key="k1:00")  # type: ignore[arg-type]


def test_a_replay_never_returns_an_outcome_changed_in_the_store(
        stored: tuple[Store, Raw]) -> None:
    store, raw = stored
    svc = _service(store)
    ids = _history(svc)
    first = svc.spend(ids["ben"], SpendRequest(eur("1.00")), idempotency_key="k-again")
    assert svc.spend(ids["ben"], SpendRequest(eur("1.00")), idempotency_key="k-again") == first
    raw.run("UPDATE idempotency SET payload = replace(payload, '1.00', '0.01')"
            " WHERE key = 'k-again'")
    before = store.export_state()
    with pytest.raises(IntegrityError, match="hub/k-again"):
        svc.spend(ids["ben"], SpendRequest(eur("1.00")), idempotency_key="k-again")
    assert store.export_state() == before
