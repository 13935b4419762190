"""Copying a whole store into another (``copy_store``, ``prepaid-wallet copy``), backups of a
SQLite store and restores (``prepaid-wallet backup`` / ``restore``)."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prepaid_wallet import (
    InvalidInputError,
    Money,
    SpendDeniedError,
    SpendRequest,
    StorageError,
    Store,
    WalletService,
    demo,
    open_store,
)
from prepaid_wallet.cli import main
from prepaid_wallet.errors import StoreNotEmptyError, VerificationFailedError
from prepaid_wallet.storage import copy_store
from prepaid_wallet.storage.backup import backup_sqlite, restore
from tests import pg

BACKENDS = ("memory", "sqlite", "postgresql")


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """A new, empty store of a backend, by name (closed, and dropped, at the end)."""
    made: list[Store] = []

    def new(backend: str) -> Store:
        if backend == "memory":
            store = open_store("memory:")
        elif backend == "sqlite":
            store = open_store(f"sqlite:///{tmp_path}/store-{len(made)}.db")
        else:
            store = pg.fresh_store()
        made.append(store)
        return store

    yield new
    for store in made:
        if getattr(store, "schema", None) is not None:
            pg.close_and_drop(store)  # type: ignore[arg-type]
        else:
            store.close()


def fill(store: Store) -> Store:
    """A store holding something of every table: the demo's week (groups, lots, holds,
    charges, records, an event), acknowledged events, and idempotency records (a refusal
    too)."""
    demo.run(store, io.StringIO(), json=False, locale="en_US", db="test")
    svc = WalletService(store)
    wallet = svc.open_wallet(owner_id="copy-owner", tenant_id="copy", currency="EUR",
                             idempotency_key="open-1")
    svc.top_up(wallet.id, Money.of("10.00", "EUR"), method="card", idempotency_key="top-1")
    svc.spend(wallet.id, SpendRequest(Money.of("2.50", "EUR")), idempotency_key="spend-1")
    with pytest.raises(SpendDeniedError):
        svc.spend(wallet.id, SpendRequest(Money.of("99.00", "EUR")), idempotency_key="spend-2")
    events = store.export_state()["events"]
    assert events
    svc.ack_events(events[0][1], [events[0][0]])
    return store


def _seqs(store: Store) -> list[int] | None:
    """The entries' sequence numbers of a SQL store (None for the memory store)."""
    if hasattr(store, "path"):
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        try:
            return [row[0] for row in conn.execute("SELECT seq FROM entries ORDER BY seq")]
        finally:
            conn.close()
    schema = getattr(store, "schema", None)
    if schema is None:
        return None
    with pg.raw_connection(schema) as conn:
        return [row[0] for row in conn.execute("SELECT seq FROM entries ORDER BY seq")]


@pytest.mark.parametrize("source_backend", BACKENDS)
@pytest.mark.parametrize("target_backend", BACKENDS)
def test_copy_keeps_everything(make: Callable[[str], Store], source_backend: str,
                               target_backend: str) -> None:
    source = fill(make(source_backend))
    state = source.export_state()
    assert all(state[table] for table in state), [t for t in state if not state[t]]
    phases: list[str] = []
    target = make(target_backend)
    report = copy_store(source, target, progress=lambda phase, done: phases.append(phase))
    assert target.export_state() == state
    assert report.verified.ok
    assert report.rows["entries"] == len(state["entries"])
    assert report.rows["events"] == len(state["events"])
    assert phases[0].startswith("source ")
    assert phases[-1].startswith("copy ")
    assert "entries copied" in phases
    assert "wallet_history copied" in phases
    source_seqs, target_seqs = _seqs(source), _seqs(target)
    if source_seqs is not None and target_seqs is not None:
        assert target_seqs == source_seqs
    # The copy is a working store: its next entry follows the copied ones.
    svc = WalletService(target)
    wallet = svc.find_wallet(tenant_id="copy", owner_id="copy-owner", currency="EUR")
    assert wallet is not None
    svc.top_up(wallet.id, Money.of("1.00", "EUR"), method="card")
    assert svc.verify().ok
    after = _seqs(target)
    if after is not None:
        assert len(after) == len(state["entries"]) + 1
        assert after[-1] > after[-2]


@pytest.mark.parametrize("target_backend", BACKENDS)
def test_a_memory_stores_outcomes_never_read_are_copied_as_their_text(
        make: Callable[[str], Store], target_backend: str) -> None:
    """The memory store keeps a keyed command's result as a value until its record is read:
    a copy made before anything read it writes its text, and the copy replays it."""
    source = make("memory")
    svc = WalletService(source)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="copy", currency="EUR")
    top_up = svc.top_up(wallet.id, Money.of("5.00", "EUR"), method="card", idempotency_key="t1")
    from prepaid_wallet import _codec
    from prepaid_wallet.storage import _transfer

    with _transfer.read(source) as batches:  # what a copy reads, before anything else did
        (record,) = [row for table, rows in batches if table == "idempotency" for row in rows]
    assert record.payload == _codec.dumps(top_up)
    target = make(target_backend)
    copy_store(source, target)
    copied = WalletService(target)
    assert copied.top_up(wallet.id, Money.of("5.00", "EUR"), method="card",
                         idempotency_key="t1") == top_up
    assert target.export_state() == source.export_state()


def test_copy_keeps_when_events_were_acknowledged(make: Callable[[str], Store]) -> None:
    source = fill(make("sqlite"))
    target = make("sqlite")
    copy_store(source, target)
    query = "SELECT id, acked_at FROM events ORDER BY seq"
    rows = []
    for store in (source, target):
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        rows.append(conn.execute(query).fetchall())
        conn.close()
    assert rows[0] == rows[1]
    assert any(acked is not None for _, acked in rows[0])


@pytest.mark.parametrize("target_backend", BACKENDS)
def test_a_target_that_holds_anything_is_refused(make: Callable[[str], Store],
                                                 target_backend: str) -> None:
    source = fill(make("memory"))
    target = make(target_backend)
    svc = WalletService(target)
    svc.open_wallet(owner_id="someone", tenant_id="t", currency="EUR")
    before = target.export_state()
    with pytest.raises(StoreNotEmptyError, match="wallets"):
        copy_store(source, target)
    assert target.export_state() == before


def test_a_source_with_a_problem_is_refused(make: Callable[[str], Store]) -> None:
    source = fill(make("sqlite"))
    conn = sqlite3.connect(source.path)  # type: ignore[attr-defined]
    conn.execute("UPDATE wallets SET open = open + 1 WHERE owner_id = 'copy-owner'")
    conn.commit()
    conn.close()
    target = make("sqlite")
    with pytest.raises(VerificationFailedError, match="source") as raised:
        copy_store(source, target)
    assert raised.value.problems >= 1
    assert raised.value.first.startswith("seal ")
    assert target.export_state() == make("memory").export_state()  # nothing written


@pytest.mark.parametrize("target_backend", BACKENDS)
def test_a_copy_that_fails_half_way_leaves_the_target_empty(
        make: Callable[[str], Store], target_backend: str) -> None:
    source = fill(make("sqlite"))
    target = make(target_backend)
    empty = target.export_state()

    def fail(phase: str, done: int) -> None:
        if phase == "wallet_history copied":
            raise StorageError("the disk is gone")

    with pytest.raises(StorageError, match="the disk is gone"):
        copy_store(source, target, progress=fail)
    assert target.export_state() == empty
    copy_store(source, target)  # run again: it starts over
    assert target.export_state() == source.export_state()


# -- the command line ------------------------------------------------------------------------------


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    fill(open_store(a)).close()
    code, out, _ = _run("--json", "copy", "--from", a, "--to", b, capsys=capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["ok"]
    assert summary["rows"]["entries"] == summary["entries"] > 0
    source, target = open_store(a), open_store(b)
    assert target.export_state() == source.export_state()
    source.close()
    target.close()
    code, _, err = _run("copy", "--from", a, "--to", b, capsys=capsys)
    assert code == 6
    assert "is not empty" in err
    code, _, err = _run("copy", "--from", f"sqlite:///{tmp_path}/none.db", "--to", "memory:",
                        capsys=capsys)
    assert code == 3
    assert not (tmp_path / "none.db").exists()


def test_cli_backup_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    fill(open_store(url)).close()
    backup = str(tmp_path / "a.backup")
    code, out, _ = _run("--db", url, "backup", "--to", backup, capsys=capsys)
    assert code == 0
    assert "verified ok" in out
    code, _, err = _run("--db", url, "backup", "--to", backup, capsys=capsys)
    assert code == 6
    assert "already exists" in err
    restored = f"sqlite:///{tmp_path}/restored.db"
    code, out, _ = _run("--json", "--db", restored, "restore", "--from", backup, capsys=capsys)
    assert code == 0
    assert json.loads(out)["ok"]
    a, b = open_store(url), open_store(restored, create=False)
    assert b.export_state() == a.export_state()
    a.close()
    b.close()
    code, _, err = _run("--db", restored, "restore", "--from", backup, capsys=capsys)
    assert code == 6
    assert "already exists" in err
    code, _, err = _run("--db", "postgresql://host/db", "backup", "--to", str(tmp_path / "p"),
                        capsys=capsys)
    assert code == 2
    assert "pg_dump" in err


def test_backup_of_a_postgres_url_says_how() -> None:
    from prepaid_wallet.storage.backup import sqlite_path

    with pytest.raises(InvalidInputError, match="pg_dump") as raised:
        sqlite_path("postgresql://host/db", "--db")
    assert raised.value.field == "--db"


# -- backups while writers write, and restores that are refused ----------------------------------


def test_backup_while_a_writer_writes_is_a_committed_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    store = fill(open_store(url))
    svc = WalletService(store)
    wallet = svc.find_wallet(tenant_id="copy", owner_id="copy-owner", currency="EUR")
    assert wallet is not None
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        writer = WalletService(open_store(url))
        while not stop.is_set():
            writer.top_up(wallet.id, Money.of("0.01", "EUR"), method="card")
            written.append(1)
        writer.store.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        report = backup_sqlite(str(tmp_path / "live.db"), str(tmp_path / "live.backup"))
        while len(written) < 40:
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert report.ok
    backup = open_store(f"sqlite:///{tmp_path}/live.backup", create=False)
    assert WalletService(backup).verify().ok
    mine, theirs = backup.export_state()["entries"], store.export_state()["entries"]
    assert 0 < len(mine) < len(theirs)
    assert mine == theirs[: len(mine)]  # a prefix of the journal: a committed state
    backup.close()
    store.close()


def _tamper(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE wallets SET open = open + 1 WHERE owner_id = 'copy-owner'")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("target", ["sqlite", "memory"])
def test_a_backup_with_a_problem_is_not_restored(tmp_path: Path, target: str) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    fill(open_store(url)).close()
    backup = tmp_path / "a.backup"
    backup_sqlite(str(tmp_path / "a.db"), str(backup))
    _tamper(backup)
    before = backup.read_bytes()
    restored = f"sqlite:///{tmp_path}/r.db" if target == "sqlite" else "memory:"
    with pytest.raises(VerificationFailedError, match="seal"):
        restore(str(backup), restored)
    assert not (tmp_path / "r.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if not p.name.startswith("."))  # no partial left
    assert backup.read_bytes() == before  # the backup itself is never changed


def test_a_store_with_a_problem_is_not_backed_up(tmp_path: Path) -> None:
    fill(open_store(f"sqlite:///{tmp_path}/a.db")).close()
    _tamper(tmp_path / "a.db")
    with pytest.raises(VerificationFailedError):
        backup_sqlite(str(tmp_path / "a.db"), str(tmp_path / "a.backup"))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a.db")) == []


def test_restore_into_postgres(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    store = fill(open_store(url))
    backup_sqlite(str(tmp_path / "a.db"), str(tmp_path / "a.backup"))
    target_url = pg.fresh_postgres_dsn()
    assert restore(str(tmp_path / "a.backup"), target_url).ok
    target = open_store(target_url, create=False)
    try:
        assert target.export_state() == store.export_state()
        with pytest.raises(StoreNotEmptyError):
            restore(str(tmp_path / "a.backup"), target_url)
    finally:
        target.close()
        store.close()




def test_backup_and_restore_refuse_bad_arguments(tmp_path: Path) -> None:
    fill(open_store(f"sqlite:///{tmp_path}/a.db")).close()
    for call, field in (
        (lambda: backup_sqlite(str(tmp_path / "a.db"), ""), "to"),
        (lambda: backup_sqlite(7, str(tmp_path / "b")), "source"),
        (lambda: restore(str(tmp_path / "a.db"), 7), "url"),
        (lambda: restore(None, f"sqlite:///{tmp_path}/c.db"), "backup"),
    ):
        with pytest.raises(InvalidInputError) as raised:
            call()
        assert raised.value.field == field
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a.db")) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_copy_shows_progress_on_a_terminal_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    a = f"sqlite:///{tmp_path}/a.db"
    fill(open_store(a)).close()
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["copy", "--from", a, "--to", f"sqlite:///{tmp_path}/b.db"]) == 0
    shown = terminal.getvalue()
    assert "\rcopy: " in shown
    assert "source entries checked" in shown
    assert shown.endswith("\r\x1b[K")  # erased when the copy ends
    monkeypatch.undo()
    assert main(["copy", "--from", a, "--to", f"sqlite:///{tmp_path}/c.db"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: nothing on stderr


def test_a_store_sealed_with_a_key_is_copied_backed_up_and_restored_with_it(
        tmp_path: Path) -> None:
    from prepaid_wallet import SealKey, SealKeyError
    from prepaid_wallet.storage.backup import backup_sqlite, restore

    key = SealKey("k1", bytes(range(32)))
    live = str(tmp_path / "live.db")
    svc = WalletService(open_store(f"sqlite:///{live}", seal_key=key))
    wallet = svc.open_wallet(owner_id="ada", tenant_id="shop", currency="EUR")
    svc.top_up(wallet.id, Money.of("20.00", "EUR"), method="card")
    svc.store.close()
    with pytest.raises(SealKeyError):
        backup_sqlite(live, str(tmp_path / "nokey.backup"))
    backup = str(tmp_path / "keyed.backup")
    assert backup_sqlite(live, backup, seal_key=key).ok
    assert restore(backup, f"sqlite:///{tmp_path / 'back.db'}", seal_key=key).ok
    copied = open_store("memory:")
    source = open_store(f"sqlite:///{tmp_path / 'back.db'}", seal_key=key)
    try:
        assert copy_store(source, copied).verified.ok
        into = open_store(f"sqlite:///{tmp_path / 'into.db'}", seal_key=key)
        assert copy_store(source, into).verified.ok
        assert into.export_state() == source.export_state()
        into.close()
    finally:
        source.close()
    with pytest.raises(SealKeyError):
        open_store(f"sqlite:///{tmp_path / 'into.db'}")
