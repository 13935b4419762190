"""The commands that look after the whole store: ``init`` (create or migrate it), ``expire``
(release ended holds, book expired lots, expire pending top-ups and pay-as-you-go upgrades),
``copy`` (into an empty store of any backend), ``backup`` and ``restore`` (a SQLite store,
verified) and ``demo`` (a store with a small hub's week). Checking it is in
:mod:`prepaid_wallet.cli.integrity`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from prepaid_wallet.cli.framework import _ONE, _STREAM, ExitCode, _Context, _Family, _OnFirstUse
from prepaid_wallet.cli.output import _Progress

if TYPE_CHECKING:
    import argparse
    import sqlite3

    from prepaid_wallet import _codec

if not TYPE_CHECKING:  # imported when first used
    sqlite3 = _OnFirstUse("sqlite3")
    _codec = _OnFirstUse("prepaid_wallet._codec")

_SQLITE = "sqlite:///"


def _schema_before(url: str) -> int | None:
    """The schema version of an existing SQLite file before it is opened (None: no file yet, or
    not SQLite)."""
    if not url.startswith(_SQLITE):
        return None
    from pathlib import Path

    path = Path(url[len(_SQLITE):])
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # opening the store reports what is wrong with the file
    return None if row is None else int(row[0])


def _init(ctx: _Context) -> ExitCode:
    before = _schema_before(ctx.url)
    store = ctx.service.store
    backend = type(store).__module__.rsplit(".", 1)[-1]
    module = sys.modules[type(store).__module__]
    version: int | None = getattr(module, "SCHEMA_VERSION", None)
    if version is None:
        state = "ready (in memory, nothing is kept)"
    elif before is None:
        state = f"ready at schema version {version}"
    elif before < version:
        state = f"migrated from schema version {before} to {version}"
    else:
        state = f"up to date at schema version {version}"
    if ctx.json:
        ctx.emit({"db": ctx.url, "backend": backend, "schema_version": version,
                  "previous_schema_version": before, "state": state})
    else:
        ctx.line(f"{ctx.url}: {backend} store {state}")
    return ExitCode.OK


def _expire(ctx: _Context) -> ExitCode:
    lots = holds = 0
    with _Progress("expire") as progress:
        # Ctrl-C: the sweep starts no new batch, and the rows of the one booked are printed.
        swept = ctx.service.sweep_expired(stop=lambda: ctx.interrupts.pending)
        for done in progress.each(swept, "booked"):
            if done.kind == "lot":
                lots += 1
            else:
                holds += 1
            if ctx.json:
                ctx.emit({"record": "expiry", **_codec.to_data(done)})
            elif done.kind == "lot":
                ctx.line(f"expired lot {done.subject_id} of {done.wallet_id}:"
                         f" {ctx.money(done.amount)} to breakage (entry {done.entry_id})")
            else:
                ctx.line(f"released hold {done.subject_id} of {done.wallet_id}:"
                         f" {ctx.money(done.amount)} (entry {done.entry_id})")
    top_ups = () if ctx.interrupts.pending else ctx.service.expire_top_ups()
    for top_up in top_ups:
        if ctx.json:
            ctx.emit({"record": "top_up_expired", "top_up_id": top_up})
        else:
            ctx.line(f"expired pending top-up {top_up}")
    upgrades = () if ctx.interrupts.pending else ctx.service.expire_upgrades()
    for upgrade in upgrades:
        if ctx.json:
            ctx.emit({"record": "upgrade_expired", "upgrade_id": upgrade})
        else:
            ctx.line(f"expired upgrade {upgrade}: its held payments turned into time at the"
                     " old rate")
    if ctx.json:
        ctx.emit({"record": "summary", "lots_expired": lots, "holds_released": holds,
                  "entries": lots + holds, "top_ups_expired": len(top_ups),
                  "upgrades_expired": len(upgrades)})
    else:
        ctx.line(f"expired {lots} lot(s), released {holds} hold(s) in {lots + holds}"
                 f" entry(ies), {len(top_ups)} pending top-up(s) expired,"
                 f" {len(upgrades)} upgrade(s) expired")
    return ExitCode.OK


def _copy(ctx: _Context) -> ExitCode:
    from prepaid_wallet.storage import copy_store, open_store

    source = open_store(ctx.args.source, create=False, seal_key=ctx.seal_key)
    try:
        target = open_store(ctx.args.target, seal_key=ctx.seal_key)
        try:
            with _Progress("copy") as progress:
                report = copy_store(source, target, progress=progress)
        finally:
            target.close()
    finally:
        source.close()
    rows = dict(report.rows)
    if ctx.json:
        ctx.emit({"record": "summary", "rows": rows, "entries": report.verified.entries,
                  "wallets": report.verified.wallets, "ok": True})
    else:
        ctx.line(f"copied {rows['wallets']} wallet(s) and {rows['entries']} entries"
                 f" ({sum(rows.values())} rows); the copy verifies: ok")
    return ExitCode.OK


def _verified(ctx: _Context, what: str, report: Any, extra: dict[str, str]) -> ExitCode:
    if ctx.json:
        ctx.emit({"record": "summary", **extra, "entries": report.entries,
                  "wallets": report.wallets, "ok": True})
    else:
        ctx.line(f"{what}: {report.entries} entries and {report.wallets} wallets, verified ok")
    return ExitCode.OK


def _backup(ctx: _Context) -> ExitCode:
    from prepaid_wallet.storage.backup import backup_sqlite, sqlite_path

    path = sqlite_path(ctx.url, "--db")
    with _Progress("backup") as progress:
        report = backup_sqlite(path, ctx.args.to, progress=progress, seal_key=ctx.seal_key)
    return _verified(ctx, f"backed up to {ctx.args.to}", report, {"backup": ctx.args.to})


def _restore(ctx: _Context) -> ExitCode:
    from prepaid_wallet.storage.backup import restore

    with _Progress("restore") as progress:
        report = restore(ctx.args.source, ctx.url, progress=progress, seal_key=ctx.seal_key)
    return _verified(ctx, f"restored {ctx.args.source} as {ctx.url}", report,
                     {"db": ctx.url})


def _demo(ctx: _Context) -> ExitCode:
    from prepaid_wallet import demo  # only this command needs it

    summary = demo.run(ctx.service.store, ctx.out, json=ctx.json, locale=ctx.args.locale,
                       db=ctx.url)
    return ExitCode.OK if summary.verified else ExitCode.STORAGE


# -- arguments -----------------------------------------------------------------------------------


COMMANDS = _Family()
COMMANDS.add("init", _init, _ONE, creates=True)
# The sweep books each expiry exactly once, so running it again is already harmless: the
# service takes no idempotency key for it.
COMMANDS.add("expire", _expire, _STREAM)
COMMANDS.add("demo", _demo, creates=True)


@COMMANDS.command("copy", _copy, _ONE)
def _copy_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", metavar="URL", required=True,
                   help="the store to copy (it must exist and verify)")
    p.add_argument("--to", dest="target", metavar="URL", required=True,
                   help="the store to copy into: created if missing, refused unless empty")


@COMMANDS.command("backup", _backup)
def _backup_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", metavar="FILE", required=True,
                   help="the backup file to write (never overwritten)")


@COMMANDS.command("restore", _restore, _ONE)
def _restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", metavar="FILE", required=True,
                   help="the backup file (verified before it is used; never changed)")
