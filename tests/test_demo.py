"""``prepaid-wallet demo``: the demo hub's week, checked against amounts worked out by hand, on
the memory and SQLite stores, as JSON Lines, on a store that is not fresh and through the
command line."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import (
    ConflictError,
    EntryKind,
    InvalidInputError,
    InvalidTimeError,
    Money,
    WalletService,
    format_money,
    open_store,
)
from prepaid_wallet.cli import ExitCode
from prepaid_wallet.demo import DemoSummary, run
from prepaid_wallet.storage.base import Store
from tests.json_convention import check_json_convention

#: Monday 2026-05-11, 10:30 in Berlin: the week is Monday 4 to Sunday 10 May 2026.
NOW = datetime(2026, 5, 11, 8, 30, tzinfo=UTC)
DAYS = ("Day 1 · Monday 2026-05-04", "Day 2 · Tuesday 2026-05-05",
        "Day 3 · Wednesday 2026-05-06", "Day 4 · Thursday 2026-05-07",
        "Day 5 · Friday 2026-05-08", "Day 6 · Saturday 2026-05-09",
        "Day 7 · Sunday 2026-05-10")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def shown(text: str) -> str:
    """An amount of euros as the demo tells it (``format_money`` in its default locale)."""
    return format_money(eur(text), "en_US")


# Worked out by hand from the scenario (card top-ups cost 0.30; vouchers pay bakery lines only):
#   ana : 50.00 - 0.30 (fee) - 9.50 (basket: 13.00, voucher paid the 3.50 sourdough)
#         - 10.00 (to ben) + 5.30 (tomatoes refunded)                              = 35.50
#   ben : 30.00 - 0.30 - 8.00 (basket 18.00, produce thank-you paid 10.00 of 12.00 produce)
#         + 10.00 (from ana) - 6.00 (plums; voucher paid the 4.50 bread)           = 25.70
#   cleo: 40.00 - 0.30 - 12.40 (15.00 held, 12.40 captured, 2.60 released;
#         the 4.00 loaf paid by her voucher)                                       = 27.30
#   dev : 10.00 - 0.30 + 10.00 - 0.30 - 16.00 (pantry order, refused once for
#         6.30 short: 16.00 - 9.70; the 2.00 bun paid by his voucher)              =  3.40
#   revenue  = 18.00 + 13.00 + 16.00 + 10.50 + 4.00 + 2.00 (spends) + 12.40 (capture)
#              - 5.30 (refund)                                                     = 70.60
#   fees     = 5 card top-ups x 0.30                                               =  1.50
#   breakage = what the four 5.00 vouchers had left at the end of the week:
#              1.50 (ana) + 0.50 (ben) + 1.00 (cleo) + 3.00 (dev)                  =  6.00
#   check: money in 140.00 (top-ups) + 20.00 (vouchers) + 10.00 (thank-you) = 170.00
#          = 91.90 (balances) + 70.60 + 1.50 + 6.00
#   entries: 4 vouchers + 5 top-ups + 1 award + 6 spends + hold + transfer + refund + capture
#            + 4 breakages                                                         = 24
BALANCES = {"ana": eur("35.50"), "ben": eur("25.70"), "cleo": eur("27.30"), "dev": eur("3.40")}
REVENUE, FEES, BREAKAGE, ENTRIES = eur("70.60"), eur("1.50"), eur("6.00"), 24


def amounts(summary: DemoSummary) -> tuple[Any, ...]:
    """What must not depend on the backend or the run (ids are random)."""
    return (dict(summary.balances), summary.revenue, summary.fees, summary.breakage,
            summary.entries, summary.verified, summary.tenant_id, sorted(summary.wallet_ids),
            summary.start, summary.end)


def test_the_week_on_the_memory_store() -> None:
    store = open_store("memory:")
    out = io.StringIO()
    summary = run(store, out, now=NOW)

    assert dict(summary.balances) == BALANCES
    assert (summary.revenue, summary.fees, summary.breakage) == (REVENUE, FEES, BREAKAGE)
    assert summary.entries == ENTRIES
    assert summary.verified is True
    assert summary.tenant_id == "demo-hub"
    # 09:00 in Berlin (UTC+2) on day 1; the end of day 7, which is not after "now".
    assert summary.start == datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
    assert summary.end == datetime(2026, 5, 10, 22, 0, tzinfo=UTC) <= NOW

    text = out.getvalue()
    positions = [text.index(day) for day in DAYS]
    assert positions == sorted(positions)
    assert (f"dev's pantry order ({shown('16.00')}) is refused: credit covers {shown('9.70')}, "
            f"{shown('6.30')} short; suggested top-up {shown('6.60')}"
            ) in text  # 6.30 grossed up for the 0.30 card fee
    assert (f"reminder to dev: open balance {shown('3.40')} crossed the 'low' threshold"
            ) in text
    assert f"4 lot(s) expired, {shown('6.00')} booked as breakage" in text
    assert f"revenue {shown('70.60')}, fees {shown('1.50')}, breakage {shown('6.00')}" in text
    assert "prepaid-wallet --db URL wallet list --tenant demo-hub" in text
    assert (f"prepaid-wallet --db URL statement {summary.wallet_ids['ana']} --format csv"
            in text)

    # What the store holds, read back through a service of its own.
    hub = WalletService(store)
    assert hub.verify().ok
    assert {w.owner_id: w.id for w in hub.wallets("demo-hub")} == dict(summary.wallet_ids)
    breakage_lines = 0
    for name, wallet_id in summary.wallet_ids.items():
        wallet = hub.get_wallet(wallet_id)
        assert wallet.total == wallet.open == BALANCES[name]
        assert wallet.commerce.is_zero()
        assert wallet.held.is_zero()
        # Every voucher expired at the end of the week with its remainder booked once.
        vouchers = [lot for lot in hub.lots(wallet_id, include_empty=True)
                    if lot.reason == "welcome bakery voucher"]
        assert len(vouchers) == 1
        assert vouchers[0].expires_at == summary.end
        statement = hub.statement(wallet_id)
        breakage_lines += sum(1 for line in statement.lines if line.kind is EntryKind.BREAKAGE)
        assert all(summary.start <= line.recorded_at <= summary.end for line in statement.lines)
    assert breakage_lines == 4  # every voucher had something left (see the next test)


def test_every_voucher_remainder_is_breakage() -> None:
    store = open_store("memory:")
    summary = run(store, io.StringIO(), now=NOW)
    hub = WalletService(store)
    left = {}
    for name, wallet_id in summary.wallet_ids.items():
        breakage = [line for line in hub.statement(wallet_id).lines
                    if line.kind is EntryKind.BREAKAGE]
        assert len(breakage) == 1
        assert breakage[0].recorded_at == summary.end
        left[name] = -breakage[0].commerce_change
    assert left == {"ana": eur("1.50"), "ben": eur("0.50"), "cleo": eur("1.00"),
                    "dev": eur("3.00")}
    assert Money.sum(left.values(), "EUR") == summary.breakage == BREAKAGE


def test_sqlite_gives_the_same_week_as_memory(tmp_path: Path) -> None:
    memory = run(open_store("memory:"), io.StringIO(), now=NOW)
    sqlite: Store = open_store(f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        on_file = run(sqlite, io.StringIO(), now=NOW)
    finally:
        sqlite.close()
    assert amounts(on_file) == amounts(memory)
    assert on_file.wallet_ids != memory.wallet_ids  # random ids, as the command line makes


def test_json_lines() -> None:
    out = io.StringIO()
    summary = run(open_store("memory:"), out, json=True, now=NOW)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[-1]["action"] == "summary"
    assert all(r["action"] != "summary" for r in records[:-1])
    happenings = records[:-1]
    assert {r["day"] for r in happenings} == set(range(1, 8))
    for record in happenings:
        at = datetime.fromisoformat(record["at"])
        assert at.utcoffset() == timedelta(0)
        assert summary.start <= at <= summary.end
    actions = {r["action"] for r in happenings}
    assert actions >= {"define_condition_group", "open_wallet", "top_up", "award", "spend",
                       "spend_refused", "hold", "capture", "refund", "transfer", "low_balance",
                       "expire_due"}
    refused = next(r for r in happenings if r["action"] == "spend_refused")
    assert (refused["member"], refused["amount"], refused["shortfall"],
            refused["suggested_top_up"]) == ("dev", "16.00 EUR", "6.30 EUR", "6.60 EUR")
    top_up = next(r for r in happenings if r["action"] == "top_up")
    assert (top_up["member"], top_up["amount"], top_up["fee"]) == (
        "ana", "50.00 EUR", "0.30 EUR")
    assert top_up["wallet_id"] == summary.wallet_ids["ana"]
    last = records[-1]
    assert last["balances"] == {name: str(m) for name, m in BALANCES.items()}
    assert (last["revenue"], last["fees"], last["breakage"]) == (
        "70.60 EUR", "1.50 EUR", "6.00 EUR")
    # One convention for every JSON output: amounts with their currency, instants in UTC.
    assert sum(check_json_convention(record) for record in records) > 100
    assert (last["entries"], last["verified"]) == (ENTRIES, True)
    assert last["wallet_ids"] == dict(summary.wallet_ids)


def test_a_store_that_holds_wallets_is_refused_and_left_alone() -> None:
    store = open_store("memory:")
    WalletService(store).open_wallet(owner_id="zoe", tenant_id="other-hub", currency="EUR")
    before = store.export_state()
    out = io.StringIO()
    with pytest.raises(ConflictError, match="fresh store"):
        run(store, out, now=NOW)
    assert store.export_state() == before
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"locale": "xx_NOPE"}, InvalidInputError),
     ({"now": datetime(2026, 5, 11, 8, 30)}, InvalidTimeError)],  # naive
)
def test_bad_arguments_write_nothing(kwargs: dict[str, Any], error: type[Exception]) -> None:
    store = open_store("memory:")
    before = store.export_state()
    with pytest.raises(error):
        run(store, io.StringIO(), **{"now": NOW, **kwargs})
    assert store.export_state() == before


def test_any_offset_for_now() -> None:
    # The same instant as NOW, given in another zone, is the same week.
    shifted = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert amounts(run(open_store("memory:"), io.StringIO(), now=shifted)) == amounts(
        run(open_store("memory:"), io.StringIO(), now=NOW))


# -- through the command line ------------------------------------------------------------------


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``prepaid-wallet ARGS`` in a subprocess, as tests/test_cli.py runs it."""
    environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
    environ["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "prepaid_wallet", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, encoding="utf-8", timeout=60,
                          check=False)


def test_the_demo_command_on_a_sqlite_file(tmp_path: Path) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'demo.db'}"]
    first = cli(tmp_path, *db, "demo")
    assert first.returncode == ExitCode.OK, first.stderr
    assert first.stderr == ""
    for number in range(1, 8):
        assert f"Day {number} · " in first.stdout
    assert "verified, nothing wrong" in first.stdout

    again = cli(tmp_path, *db, "demo")
    assert again.returncode == ExitCode.CONFLICT
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1, again.stderr
    assert "fresh store" in again.stderr
    assert "Traceback" not in again.stderr

    verified = cli(tmp_path, *db, "verify")
    assert verified.returncode == ExitCode.OK, verified.stderr
    listed = cli(tmp_path, *db, "--json", "wallet", "list", "--tenant", "demo-hub")
    assert listed.returncode == ExitCode.OK, listed.stderr
    wallets = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {w["owner_id"]: w["open"] for w in wallets} == {
        "ana": "35.50 EUR", "ben": "25.70 EUR", "cleo": "27.30 EUR", "dev": "3.40 EUR"}

    # The "explore it" hints work as printed, from any directory: they name the store.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hints = [shlex.split(line) for line in first.stdout.splitlines()
             if line.strip().startswith("prepaid-wallet ")]
    assert [hint[:3] for hint in hints] == [["prepaid-wallet", *db]] * 2
    listed_again = cli(elsewhere, *hints[0][1:])
    assert listed_again.returncode == ExitCode.OK, listed_again.stderr
    assert len(listed_again.stdout.splitlines()) == 4
    statement = cli(elsewhere, *hints[1][1:])
    assert statement.returncode == ExitCode.OK, statement.stderr
    assert not list(elsewhere.iterdir())  # no store was made there
    assert len(statement.stdout.splitlines()) == 1 + 6  # header + ana's six entries:
    # voucher, top-up, basket, transfer, refund, breakage
