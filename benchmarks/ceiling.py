"""The ceiling: the best library/raw ratio any store keeping the journal could reach here.

Run from the project root::

    python benchmarks/ceiling.py              # full mode: 7 rounds of 0.4 s windows
    python benchmarks/ceiling.py --quick      # 2 rounds of 0.05 s windows
    python benchmarks/ceiling.py --json       # one JSON object instead of the table
    python benchmarks/ceiling.py --dsn postgresql://user@host/db   # include PostgreSQL

``benchmarks/storage.py`` compares the library's spend on each durable backend with a "raw"
driver doing a minimal posting by hand, and judges the targets (library / raw): SQLite FULL
>= 0.70, SQLite NORMAL >= 0.40, PostgreSQL >= 0.50. This script says how high that ratio can go
at all: it measures, for SQLite at ``synchronous=FULL`` and at ``NORMAL`` and, when a DSN is
given (``--dsn`` or the environment variable ``PREPAID_WALLET_TEST_DSN``) and :mod:`psycopg` and
:mod:`prepaid_wallet.storage.postgres` import, for PostgreSQL, the time of one spend of 1.00 EUR
(microseconds) done four ways, in one process, one caller, one wallet:

* **raw** -- exactly the raw spend of ``benchmarks/storage.py`` (its code and schema, loaded
  from that file): ``balances`` and ``postings`` updated by hand, the fastest way the driver
  allows.
* **floor** -- the least work any store of the journal must do per spend, written by hand with
  the driver, the fastest way it allows. It is deliberately *less* than the journal requires: no
  balance history, no charge record (refunds), no idempotency record, no metadata. So it is a
  lower bound on the storage work of a spend. Tables: ``wallets`` (balance, version, head hash),
  ``entries`` (sequence, id, kind, time, hash) and ``postings`` (two per spend, the wallet's
  with its balance after), with one index of the wallet's postings in journal order (the least
  that finds a wallet's statement and its balance at an instant without replaying the
  journal); entries and postings are append-only (``UPDATE`` and ``DELETE`` raise).

  SQLite (WAL, the same ``synchronous`` as raw, autocommit driver): the database checks every
  entry's balance itself, as the journal requires -- a ``BEFORE INSERT`` trigger on ``entries``
  aborts an entry with fewer than two postings or whose postings do not sum to zero per
  currency. A spend is ``BEGIN IMMEDIATE``; one ``SELECT`` of the wallet's balance and version
  and of the last sequence number; the refusal when the balance cannot pay; one ``executemany``
  inserting the two postings; the ``INSERT`` of the entry (a time-ordered id ``e_`` + 32 hex
  digits; a SHA-256 hash); the ``UPDATE`` of the wallet (balance, version, head); ``COMMIT``.

  PostgreSQL (:mod:`psycopg`, autocommit, a scratch schema dropped at the end): the library's
  locking rule is ``SELECT ... FOR UPDATE`` on the wallet *before* deciding, so a spend is two
  round trips, each one simple query with its values written as literals: (1) ``BEGIN
  ISOLATION LEVEL READ COMMITTED; SELECT balance, version ... FOR UPDATE``; (2) ``SELECT
  floor_write(...); COMMIT``, a server-side function inserting the entry (its sequence number
  from a ``SEQUENCE``) and the two postings and updating the wallet row, checking its version.
  The database checks the balance in the cheapest form a trigger allows: once per statement,
  over the postings the statement inserted (an ``AFTER INSERT ... FOR EACH STATEMENT`` trigger
  with a transition table).
* **service** -- ``WalletService(MemoryStore()).spend(...)`` on a wallet topped up with
  ``BIG``: the library's own Python per spend, without any storage I/O.
* **library** -- ``WalletService(store).spend(wallet_id, SpendRequest(1.00 EUR))`` on the
  backend: ``SQLiteStore(path, synchronous=...)`` or ``PostgresStore(dsn, schema=<a scratch
  schema>)``, built as ``benchmarks/storage.py`` builds them.

A store of the journal must do at least the floor's SQL, and the library must at least run the
service's Python, so no implementation can spend faster than floor + service, and the
**ceiling** -- the best library/raw any store meeting the requirements could reach -- is
``raw / (floor + service)`` (times per spend). The floor's id and hash are made in Python like
the service's own (about a microsecond counted twice); everything else in the sum is work a
store cannot skip. **library/raw** is ``raw / library``: what the library reaches now in this
one-caller setting. A target above the ceiling cannot be met by any store on this machine
without changing the requirements (or the service's Python); a target within it can.

Method: each measurement does a few untimed warm-up spends, then spends in a loop for a fixed
window and reports the time per spend. A round measures, per backend, the four kinds back to
back (in reverse order every other round). The ceiling and library/raw are medians over the
rounds of the per-round values (each from numbers timed side by side, as in
``benchmarks/storage.py``); the times printed are medians over the rounds. After the run the
script checks that every wallet (raw, floor, service, library) shows exactly the spends made on
it; a failed check stops the script. The script judges nothing (``benchmarks/storage.py`` judges
the targets): its exit status is 0. ``--backend KEY`` (repeatable) measures only
``sqlite_full``, ``sqlite_normal`` or ``postgres``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from prepaid_wallet import SpendRequest, WalletService
from prepaid_wallet.storage.memory import MemoryStore

if TYPE_CHECKING:
    from benchmarks.storage import Backend, Target


def _load_storage() -> ModuleType:
    """``benchmarks/storage.py``, the raw spend and the library set-up this script reuses."""
    name = "_prepaid_wallet_storage_benchmark"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("storage.py"))
    if spec is None or spec.loader is None:
        raise ImportError("cannot load benchmarks/storage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building classes
    spec.loader.exec_module(module)
    return module


storage = _load_storage()

CURRENCY: str = storage.CURRENCY
SPEND = storage.SPEND
BIG = storage.BIG
DSN_ENV: str = storage.DSN_ENV
BACKENDS: tuple[Backend, ...] = (storage.SQLITE_FULL, storage.SQLITE_NORMAL, storage.POSTGRES)
BenchmarkSetupError: type[RuntimeError] = storage.BenchmarkSetupError
_require: Callable[[bool, str], None] = storage._require

#: The four ways of spending, in the order of the even rounds.
KINDS = ("raw", "floor", "service", "library")
FLOOR_WALLET = "floor-wallet"
FLOOR_REVENUE = f"{FLOOR_WALLET}:revenue"
#: The floor wallet's head before its first entry.
GENESIS = "0" * 64


@dataclass(frozen=True)
class Plan:
    """Rounds, the timed window of one measurement (seconds) and untimed warm-up spends."""

    mode: str
    rounds: int
    seconds: float
    warm_up: int


FULL = Plan("full", rounds=7, seconds=0.4, warm_up=20)
QUICK = Plan("quick", rounds=2, seconds=0.05, warm_up=3)


# -- the pure computations -------------------------------------------------------------------------


def ceiling(raw: float, floor: float, service: float) -> float:
    """The best library/raw a store could reach: raw over the least a spend can cost."""
    return raw / (floor + service)


def paired_median(values: Iterable[float]) -> float:
    """The median of per-round values (each computed from numbers timed side by side)."""
    return statistics.median(values)


def within(target: float, limit: float) -> bool:
    """Whether a target ratio can be reached at all under ``limit`` (the ceiling)."""
    return target <= limit


@dataclass
class Row:
    """One backend: microseconds per spend of each kind, one number per round."""

    backend: Backend
    raw: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    library: list[float] = field(default_factory=list)

    def times(self, kind: str) -> list[float]:
        times: list[float] = getattr(self, kind)
        return times

    def median(self, kind: str) -> float:
        return statistics.median(self.times(kind))

    @property
    def ceilings(self) -> list[float]:
        return [
            ceiling(r, f, s) for r, f, s in zip(self.raw, self.floor, self.service, strict=True)
        ]

    @property
    def ratios(self) -> list[float]:
        return [r / lib for r, lib in zip(self.raw, self.library, strict=True)]

    @property
    def ceiling(self) -> float:
        return paired_median(self.ceilings)

    @property
    def ratio(self) -> float:
        return paired_median(self.ratios)

    @property
    def target(self) -> float:
        target: float = self.backend.target
        return target

    @property
    def target_within_ceiling(self) -> bool:
        return within(self.target, self.ceiling)


# -- the floor on SQLite ---------------------------------------------------------------------------

FLOOR_SQLITE_SCHEMA = """
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    version INTEGER NOT NULL,
    head TEXT NOT NULL
);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE postings (
    entry_seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    account TEXT NOT NULL,
    minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    balance_after INTEGER,
    PRIMARY KEY (entry_seq, position)
) WITHOUT ROWID;
CREATE INDEX postings_by_wallet ON postings (account, entry_seq) WHERE balance_after IS NOT NULL;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'floor: the journal is append-only (entries)'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'floor: the journal is append-only (entries)'); END;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'floor: the journal is append-only (postings)'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'floor: the journal is append-only (postings)'); END;
CREATE TRIGGER entries_balanced BEFORE INSERT ON entries
BEGIN
    SELECT RAISE(ABORT, 'floor: an entry needs at least two postings')
    WHERE (SELECT count(*) FROM postings WHERE entry_seq = NEW.seq) < 2;
    SELECT RAISE(ABORT, 'floor: unbalanced entry: postings must sum to zero per currency')
    WHERE EXISTS (
        SELECT 1 FROM postings WHERE entry_seq = NEW.seq GROUP BY currency HAVING sum(minor) != 0
    );
END;
"""


def create_floor_sqlite(path: str, balance: int) -> None:
    """A fresh floor database at ``path`` holding ``FLOOR_WALLET`` with ``balance`` (minor)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(f"BEGIN;\n{FLOOR_SQLITE_SCHEMA}\nCOMMIT;")
        conn.execute(
            "INSERT INTO wallets (id, balance, version, head) VALUES (?, ?, 0, ?)",
            (FLOOR_WALLET, balance, GENESIS),
        )
    finally:
        conn.close()


def _entry_ids() -> Callable[[], str]:
    """Increasing entry ids shaped like the library's: ``e_`` and 32 lowercase hex digits, the
    first 48 bits the millisecond the sequence started."""
    base = (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0b10 << 62
    counter = itertools.count(1)
    return lambda: f"e_{base + next(counter):032x}"


def _entry_hash(entry_id: str, wallet: str, amount: int, version: int) -> str:
    return hashlib.sha256(f"{entry_id}|{wallet}|{amount}|{version}".encode()).hexdigest()


def floor_sqlite_spender(path: str, sync: str) -> Callable[[str], None]:
    """The floor's spend on a database made by :func:`create_floor_sqlite`."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    amount: int = SPEND.minor_units
    execute = conn.execute
    executemany = conn.executemany
    new_id = _entry_ids()
    read = (
        "SELECT balance, version, (SELECT coalesce(max(seq), 0) FROM entries)"
        " FROM wallets WHERE id = ?"
    )
    post = (
        "INSERT INTO postings (entry_seq, position, account, minor, currency, balance_after)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    record = "INSERT INTO entries (seq, id, kind, recorded_at, hash) VALUES (?, ?, 'spend', ?, ?)"
    move = "UPDATE wallets SET balance = ?, version = ?, head = ? WHERE id = ?"

    def spend(wallet: str) -> None:
        execute("BEGIN IMMEDIATE")
        try:
            row = execute(read, (wallet,)).fetchone()
            if row is None or row[0] < amount:
                raise BenchmarkSetupError(f"floor sqlite: {wallet} cannot pay {amount}")
            balance, version, last = row
            seq, after = last + 1, balance - amount
            executemany(
                post,
                (
                    (seq, 0, wallet, -amount, CURRENCY, after),
                    (seq, 1, f"{wallet}:revenue", amount, CURRENCY, None),
                ),
            )
            entry_id = new_id()
            digest = _entry_hash(entry_id, wallet, amount, version + 1)
            execute(record, (seq, entry_id, time.time_ns() // 1000, digest))
            execute(move, (after, version + 1, digest, wallet))
            execute("COMMIT")
        except BaseException:
            execute("ROLLBACK")
            raise

    return spend


def _check_floor(
    one: Callable[[str, tuple[Any, ...]], Any], prefix: str, mark: str, count: int
) -> None:
    """The floor wallet shows exactly ``count`` spends: balance, version, entries, postings."""
    amount: int = SPEND.minor_units
    balance, version = one(
        f"SELECT balance, version FROM {prefix}wallets WHERE id = {mark}", (FLOOR_WALLET,)
    )
    (entries,) = one(f"SELECT count(*) FROM {prefix}entries", ())
    (postings,) = one(f"SELECT count(*) FROM {prefix}postings", ())
    (debited,) = one(
        f"SELECT coalesce(sum(minor), 0) FROM {prefix}postings WHERE account = {mark}",
        (FLOOR_WALLET,),
    )
    (credited,) = one(
        f"SELECT coalesce(sum(minor), 0) FROM {prefix}postings WHERE account = {mark}",
        (FLOOR_REVENUE,),
    )
    _require(
        balance == BIG.minor_units - amount * count
        and version == count
        and debited == -amount * count
        and credited == amount * count,
        f"floor: wallet {FLOOR_WALLET} does not show the {count} spends made on it",
    )
    _require(
        entries == count and postings == 2 * count,
        f"floor: {entries} entries and {postings} postings, expected {count} and {2 * count}",
    )


def check_floor_sqlite(path: str, count: int) -> None:
    db = sqlite3.connect(path)
    try:
        _check_floor(lambda sql, p: db.execute(sql, p).fetchone(), "", "?", count)
    finally:
        db.close()


# -- the floor on PostgreSQL -----------------------------------------------------------------------


def floor_postgres_sql(schema: str) -> list[str]:
    s = schema
    return [
        f"CREATE SCHEMA {s}",
        f"""CREATE TABLE {s}.wallets (
    id text COLLATE "C" PRIMARY KEY,
    balance bigint NOT NULL,
    version bigint NOT NULL,
    head text COLLATE "C" NOT NULL
)""",
        f"CREATE SEQUENCE {s}.entry_seq",
        f"""CREATE TABLE {s}.entries (
    seq bigint PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    kind text COLLATE "C" NOT NULL,
    recorded_at bigint NOT NULL,
    hash text COLLATE "C" NOT NULL
)""",
        f"""CREATE TABLE {s}.postings (
    entry_seq bigint NOT NULL,
    position integer NOT NULL,
    account text COLLATE "C" NOT NULL,
    minor bigint NOT NULL,
    currency text COLLATE "C" NOT NULL,
    balance_after bigint,
    PRIMARY KEY (entry_seq, position)
)""",
        f"CREATE INDEX postings_by_wallet ON {s}.postings (account, entry_seq)"
        " WHERE balance_after IS NOT NULL",
        f"""CREATE FUNCTION {s}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'floor: the journal is append-only (%)', TG_TABLE_NAME;
END
$$""",
        *(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {s}.{table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {s}.append_only()"
            for table in ("entries", "postings")
        ),
        # The database's own balance check, in its cheapest form: once per statement, over the
        # postings that statement inserted (each spend inserts its postings in one statement).
        f"""CREATE FUNCTION {s}.postings_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_postings GROUP BY entry_seq, currency
        HAVING sum(minor) <> 0 OR count(*) < 2
    ) THEN
        RAISE EXCEPTION 'floor: unbalanced entry';
    END IF;
    RETURN NULL;
END
$$""",
        f"CREATE TRIGGER postings_balanced AFTER INSERT ON {s}.postings"
        " REFERENCING NEW TABLE AS new_postings"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {s}.postings_balanced()",
        f"""CREATE FUNCTION {s}.floor_write(
    wallet text, other text, amount bigint, entry_id text, hash text, version bigint
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    after bigint;
    seq bigint;
BEGIN
    UPDATE {s}.wallets AS w
        SET balance = w.balance - floor_write.amount, version = floor_write.version + 1,
            head = floor_write.hash
        WHERE w.id = floor_write.wallet AND w.version = floor_write.version
            AND w.balance >= floor_write.amount
        RETURNING w.balance INTO after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'floor postgres: % changed or cannot pay %', wallet, amount;
    END IF;
    seq := nextval('{s}.entry_seq');
    INSERT INTO {s}.entries (seq, id, kind, recorded_at, hash)
        VALUES (seq, floor_write.entry_id, 'spend',
                (extract(epoch FROM statement_timestamp()) * 1000000)::bigint,
                floor_write.hash);
    INSERT INTO {s}.postings (entry_seq, position, account, minor, currency, balance_after)
        VALUES (seq, 0, floor_write.wallet, -floor_write.amount, '{CURRENCY}', after),
               (seq, 1, floor_write.other, floor_write.amount, '{CURRENCY}', NULL);
    RETURN after;
END
$$""",
        f"INSERT INTO {s}.wallets (id, balance, version, head)"
        f" VALUES ('{FLOOR_WALLET}', {BIG.minor_units}, 0, '{GENESIS}')",
    ]


def floor_postgres_spender(dsn: str, schema: str) -> Callable[[str], None]:
    """The floor's spend on a schema made from :func:`floor_postgres_sql`: two simple queries."""
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    quote = psycopg.pq.Escaping(conn.pgconn).escape_literal
    encoding = conn.info.encoding
    cursor = conn.cursor()
    amount: int = SPEND.minor_units
    new_id = _entry_ids()
    lock = (
        f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT balance, version FROM {schema}.wallets"
        " WHERE id = "
    ).encode(encoding)
    write = f"SELECT {schema}.floor_write(".encode(encoding)

    def literal(text: str) -> bytes:
        return quote(text.encode(encoding))

    def spend(wallet: str) -> None:
        try:
            wallet_literal = literal(wallet)
            cursor.execute(lock + wallet_literal + b" FOR UPDATE")
            cursor.nextset()  # past BEGIN's result
            row = cursor.fetchone()
            if row is None or row[0] < amount:
                raise BenchmarkSetupError(f"floor postgres: {wallet} cannot pay {amount}")
            version: int = row[1]
            entry_id = new_id()
            digest = _entry_hash(entry_id, wallet, amount, version + 1)
            cursor.execute(
                write
                + b", ".join(
                    (
                        wallet_literal,
                        literal(f"{wallet}:revenue"),
                        str(amount).encode(),
                        literal(entry_id),
                        literal(digest),
                        str(version).encode(),
                    )
                )
                + b"); COMMIT"
            )
        except BaseException:
            cursor.execute("ROLLBACK")
            raise

    return spend


# -- set-up ----------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One way of spending, the account it spends from, and the spends made so far."""

    spend: Callable[[str], None]
    account: str
    check: Callable[[int], None]  # raises unless the account shows exactly that many spends
    spends: int = 0


@dataclass
class Bench:
    """One backend's four subjects (by kind) and how to drop what they set up."""

    backend: Backend
    subjects: dict[str, Subject]
    cleanup: Callable[[], None] = lambda: None

    def spent(self) -> dict[str, int]:
        return {kind: s.spends for kind, s in self.subjects.items()}

    def check(self, spent: Mapping[str, int]) -> None:
        """Every subject's account shows exactly ``spent[kind]`` spends (no lost spend)."""
        for kind, subject in self.subjects.items():
            subject.check(spent[kind])


def service_subject() -> Subject:
    """The library's Python alone: a service over a memory store."""
    store = MemoryStore()
    wallet = storage._open_wallets(store)[0]
    service = WalletService(store)
    request = SpendRequest(SPEND)

    def spend(wallet_id: str) -> None:
        service.spend(wallet_id, request)

    return Subject(spend, wallet, lambda n: storage._check_library(store, {wallet: n}))


def _library_and_raw(target: Target, raw: Callable[[str], None]) -> dict[str, Subject]:
    """The library and raw subjects of one of ``benchmarks/storage.py``'s targets."""
    return {
        "raw": Subject(
            raw,
            target.shared_account,
            lambda n: target.check({target.shared_account: n}),
        ),
        "library": Subject(
            storage._library_spender(target.library),
            target.shared_wallet,
            lambda n: target.check({target.shared_wallet: n}),
        ),
    }


def _in_order(subjects: Mapping[str, Subject]) -> dict[str, Subject]:
    return {kind: subjects[kind] for kind in KINDS}


def sqlite_bench(backend: Backend, directory: str) -> Bench:
    target: Target = storage.sqlite_target(backend, directory)
    floor_path = os.path.join(directory, f"{backend.key}-floor.db")
    create_floor_sqlite(floor_path, BIG.minor_units)
    subjects = _library_and_raw(target, storage._raw_sqlite_spender(target.raw[1], backend.sync))
    subjects["floor"] = Subject(
        floor_sqlite_spender(floor_path, backend.sync),
        FLOOR_WALLET,
        lambda n: check_floor_sqlite(floor_path, n),
    )
    subjects["service"] = service_subject()
    return Bench(backend, _in_order(subjects))


def postgres_bench(dsn: str) -> Bench:
    import psycopg

    floor_schema = f"bench_floor_{uuid.uuid4().hex[:12]}"
    made: list[Target] = []  # storage.py's target, once built (it drops its own schemas)

    def cleanup() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as db:
                db.execute(f"DROP SCHEMA IF EXISTS {floor_schema} CASCADE")
        finally:
            for target in made:
                target.cleanup()

    try:
        target: Target = storage.postgres_target(dsn)
        made.append(target)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in floor_postgres_sql(floor_schema):
                conn.execute(statement)

        def check_floor(count: int) -> None:
            with psycopg.connect(dsn, autocommit=True) as db:
                _check_floor(
                    lambda sql, p: db.execute(sql, p).fetchone(), f"{floor_schema}.", "%s", count
                )

        subjects = _library_and_raw(target, storage._raw_postgres_spender(dsn, target.raw[2]))
        subjects["floor"] = Subject(
            floor_postgres_spender(dsn, floor_schema), FLOOR_WALLET, check_floor
        )
        subjects["service"] = service_subject()
    except BaseException:
        cleanup()
        raise
    return Bench(storage.POSTGRES, _in_order(subjects), cleanup)


# -- measuring -------------------------------------------------------------------------------------


def measure_once(subject: Subject, plan: Plan) -> float:
    """Microseconds per spend over one window, after ``plan.warm_up`` untimed spends."""
    spend, account = subject.spend, subject.account
    for _ in range(plan.warm_up):
        spend(account)
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < plan.seconds:
        spend(account)
        done += 1
        elapsed = time.perf_counter() - start
    subject.spends += plan.warm_up + done
    return elapsed / done * 1e6


def measure(benches: Sequence[Bench], plan: Plan) -> list[Row]:
    rows = [Row(b.backend) for b in benches]
    for r in range(plan.rounds):
        kinds = KINDS if r % 2 == 0 else KINDS[::-1]
        for bench, row in zip(benches, rows, strict=True):
            for kind in kinds:
                row.times(kind).append(measure_once(bench.subjects[kind], plan))
    for bench in benches:
        bench.check(bench.spent())
    return rows


# -- reporting -------------------------------------------------------------------------------------


def verdict(row: Row) -> str:
    return "target within ceiling" if row.target_within_ceiling else "target above ceiling"


def as_json(
    plan: Plan, rows: Sequence[Row], skipped: Mapping[str, str], run_seconds: float
) -> dict[str, Any]:
    return {
        "mode": plan.mode,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "rounds": plan.rounds,
        "window_seconds": plan.seconds,
        "run_seconds": round(run_seconds, 3),
        "rows": [
            {
                "key": r.backend.key,
                "backend": r.backend.name,
                "sync": r.backend.sync,
                **{f"{kind}_us": r.median(kind) for kind in KINDS},
                "ceiling": r.ceiling,
                "ratio": r.ratio,
                "target": r.target,
                "target_within_ceiling": r.target_within_ceiling,
                **{f"rounds_{kind}": r.times(kind) for kind in KINDS},
            }
            for r in rows
        ],
        "skipped": dict(skipped),
    }


def as_table(
    plan: Plan, rows: Sequence[Row], skipped: Mapping[str, str], run_seconds: float
) -> str:
    lines = [
        f"prepaid_wallet spend ceiling -- {plan.mode} mode, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, {plan.rounds} rounds of "
        f"{plan.seconds} s windows (run {run_seconds:.1f} s)",
        "",
        f"{'backend':<9} {'sync':<7} {'raw us':>8} {'floor us':>9} {'service us':>10} "
        f"{'library us':>10} {'ceiling':>7} {'lib/raw':>7} {'target':>6}  verdict",
    ]
    for r in rows:
        lines.append(
            f"{r.backend.name:<9} {r.backend.sync:<7} {r.median('raw'):>8.1f} "
            f"{r.median('floor'):>9.1f} {r.median('service'):>10.1f} "
            f"{r.median('library'):>10.1f} {r.ceiling:>7.2f} {r.ratio:>7.2f} "
            f"{r.target:>6.2f}  {verdict(r)}"
        )
    for name, why in skipped.items():
        lines.append(f"{name}: skipped ({why})")
    lines += [
        "",
        "us: microseconds per spend, median over the rounds (one caller, one wallet).",
        "ceiling: median over the rounds of raw / (floor + service), the best library/raw any",
        "store of the journal could reach; lib/raw: median over the rounds of raw / library.",
        "Informational: benchmarks/storage.py judges the targets.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short windows and few rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--backend",
        action="append",
        choices=[b.key for b in BACKENDS],
        help="measure only this backend (repeatable; default: all)",
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get(DSN_ENV) or None,
        help=f"PostgreSQL DSN to include PostgreSQL (default: ${DSN_ENV})",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    skipped: dict[str, str] = {}
    chosen = set(args.backend or (b.key for b in BACKENDS))
    why = storage.postgres_status(args.dsn) if storage.POSTGRES.key in chosen else "not selected"
    if why is not None:
        skipped[storage.POSTGRES.key] = why
    directory = tempfile.mkdtemp(prefix="prepaid-wallet-ceiling-")
    benches: list[Bench] = []
    start = time.perf_counter()
    try:
        for backend in BACKENDS[:2]:
            if backend.key in chosen:
                benches.append(sqlite_bench(backend, directory))
        if why is None:
            benches.append(postgres_bench(args.dsn))
        rows = measure(benches, plan)
    finally:
        for bench in benches:
            bench.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
    run_seconds = time.perf_counter() - start

    if args.json:
        print(json.dumps(as_json(plan, rows, skipped, run_seconds), indent=2))
    else:
        print(as_table(plan, rows, skipped, run_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
