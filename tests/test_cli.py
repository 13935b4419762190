"""The command line, driven as a user drives it: ``python -m prepaid_wallet`` in a subprocess, on
a real SQLite file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import FixedClock, Money, WalletService, format_money
from prepaid_wallet.cli import CSV_COLUMNS, ExitCode, _build_parser
from prepaid_wallet.storage.sqlite import SQLiteStore
from tests.json_convention import check_json_convention


def _ahead(delta: timedelta) -> str:
    """The instant ``delta`` from now, to the second, as ISO 8601 text in UTC."""
    return (datetime.now(UTC) + delta).replace(microsecond=0).isoformat()


def eur(amount: str, locale: str = "en_US") -> str:
    """An amount of euros as the text output shows it: ``format_money`` in ``locale`` (what that
    looks like is babel's CLDR data, tested in test_formatting)."""
    return format_money(Money.of(amount, "EUR"), locale)


class Cli:
    """Runs ``prepaid-wallet`` in ``cwd`` against one store file."""

    def __init__(self, cwd: Path, db: str | None) -> None:
        self.cwd = cwd
        self.db = db

    def run(self, *args: str, env: dict[str, str] | None = None, db: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "prepaid_wallet"]
        if db and self.db is not None:
            argv += ["--db", self.db]
        environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
        environ["PYTHONIOENCODING"] = "utf-8"
        environ.update(env or {})
        return subprocess.run([*argv, *args], cwd=self.cwd, env=environ, capture_output=True,
                              text=True, encoding="utf-8", timeout=60, check=False,
                              input=stdin)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (done.returncode, done.stderr)
        assert done.stderr == ""
        return done.stdout

    def json(self, *args: str) -> Any:
        out = self.ok("--json", *args)
        assert out.endswith("\n")
        assert out.count("\n") == 1, out
        data = json.loads(out)
        check_json_convention(data)
        return data

    def jsonl(self, *args: str) -> list[Any]:
        rows = [json.loads(line) for line in self.ok("--json", *args).splitlines()]
        check_json_convention(rows)
        return rows

    def fails(self, code: ExitCode, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == code, (done.returncode, done.stderr)
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr
        return done.stderr.strip()

    def wallet(self, owner: str, currency: str = "EUR", tenant: str = "hub-1",
               *extra: str) -> str:
        data = self.json("wallet", "open", "--tenant", tenant, "--owner", owner,
                         "--currency", currency, *extra)
        return str(data["id"])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A store made with ``init``, as a user makes one."""
    made = Cli(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    made.ok("init")
    return made


def test_every_command_with_json(tmp_path: Path) -> None:
    cli = Cli(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    init = cli.json("init")
    assert init["backend"] == "sqlite"
    assert init["schema_version"] >= 1
    assert init["previous_schema_version"] is None
    again = cli.json("init")
    assert again["previous_schema_version"] == init["schema_version"]
    assert "up to date" in again["state"]

    opened = cli.json("wallet", "open", "--tenant", "hub-1", "--owner", "ann",
                      "--currency", "EUR", "--floor", "-10.00")
    ann = opened["id"]
    assert (opened["owner_id"], opened["tenant_id"], opened["currency"]) == ("ann", "hub-1", "EUR")
    assert opened["floor"] == "-10.00 EUR"
    assert opened["open"] == "0.00 EUR"
    bob = cli.wallet("bob")
    other = cli.wallet("cid", "EUR", "hub-2")
    assert cli.json("wallet", "show", ann)["id"] == ann

    listed = cli.jsonl("wallet", "list")
    assert sorted(w["id"] for w in listed) == sorted([ann, bob, other])
    assert sorted(w["id"] for w in cli.jsonl("wallet", "list", "--tenant", "hub-1")) == sorted(
        [ann, bob])

    receipt = cli.json("top-up", ann, "50.00", "--method", "card", "--idempotency-key", "psp-1")
    assert receipt["kind"] == "top_up"
    assert receipt["wallet_id"] == ann
    assert receipt["amount"] == "50.00 EUR"
    assert cli.json("top-up", ann, "50.00", "--method", "card",
                    "--idempotency-key", "psp-1") == receipt  # replayed, nothing written

    expires = _ahead(timedelta(days=365))
    lot = cli.json("award", ann, "5.00", "--reason", "welcome", "--expires", expires)
    assert lot["amount"] == lot["remaining"] == "5.00 EUR"
    assert lot["expires_at"] == expires
    assert lot["reason"] == "welcome"

    decision = cli.json("check", ann, "12.00")
    assert decision["allowed"] is True
    assert decision["allocation"][0]["lot_id"] == lot["id"]

    paid = cli.json("spend", ann, "12.00", "--description", "veg box")
    assert paid["amount"] == "12.00 EUR"
    assert paid["remainder_due"] == "0.00 EUR"
    assert [(p["lot_id"], p["amount"]) for p in paid["allocation"]] == [
        (lot["id"], "5.00 EUR"), (None, "7.00 EUR")]

    first = cli.json("spend", bob, "4.00", "--mode", "credit-first")
    assert first["entry_id"] is None
    assert (first["amount"], first["remainder_due"]) == ("0.00 EUR", "4.00 EUR")

    moved = cli.json("transfer", ann, bob, "3.00", "--idempotency-key", "t-1")
    assert (moved["wallet_id"], moved["counterparty_id"]) == (ann, bob)
    assert moved["amount"] == "3.00 EUR"

    balance = cli.json("balance", ann)
    assert balance["open"] == "40.00 EUR"
    assert balance["commerce"] == "0.00 EUR"
    assert balance["total"] == balance["available"] == "40.00 EUR"
    assert balance["spendable"] == "50.00 EUR"  # down to the -10.00 floor
    assert cli.json("balance", bob)["open"] == "3.00 EUR"

    statement = cli.json("statement", ann)
    assert [line["kind"] for line in statement["lines"]] == [
        "top_up", "award", "spend", "transfer"]
    assert (statement["opening"], statement["closing"]) == ("0.00 EUR", "40.00 EUR")
    lines = cli.jsonl("statement", ann, "--format", "jsonl")
    assert [line["entry_id"] for line in lines] == [
        line["entry_id"] for line in statement["lines"]]
    assert lines[-1]["total_after"] == "40.00 EUR"
    later = cli.json("statement", ann, "--since", lines[2]["recorded_at"])
    assert [line["kind"] for line in later["lines"]] == ["spend", "transfer"]
    assert later["opening"] == "55.00 EUR"
    before = cli.json("statement", ann, "--until", lines[1]["recorded_at"])
    assert [line["kind"] for line in before["lines"]] == ["top_up"]

    assert cli.json("expire") == {"record": "summary", "lots_expired": 0, "holds_released": 0,
                                  "entries": 0, "top_ups_expired": 0, "upgrades_expired": 0}
    report = cli.json("verify")
    assert report["record"] == "summary"
    assert report["ok"] is True
    assert report["problems"] == 0
    assert report["wallets"] == 3


def test_text_output(cli: Cli) -> None:
    ann = cli.wallet("ann")
    assert "$" not in cli.ok("top-up", ann, "1234.50", "--method", "card")
    assert eur("1234.50") in cli.ok("balance", ann)
    assert eur("1234.50", "de_DE") in cli.ok("--locale", "de_DE", "balance", ann)
    # The BCP 47 spelling names the same locale; "C" and "POSIX" (the process's) are refused.
    assert eur("1234.50", "de_DE") in cli.ok("--locale", "de-DE", "balance", ann)
    assert cli.fails(ExitCode.USAGE, "--locale", "C", "balance", ann).startswith("error: locale:")
    table = cli.ok("statement", ann, "--locale", "fr_FR")
    assert "top_up" in table
    assert f"closing balance {eur('1234.50', 'fr_FR')}" in table
    assert ann in cli.ok("wallet", "list")
    assert "ok" in cli.ok("verify")
    assert cli.ok("--help").startswith("usage: prepaid-wallet")


def test_exit_codes_and_one_line_errors(cli: Cli) -> None:
    ann = cli.wallet("ann")
    assert int(ExitCode.USAGE) == 2
    assert "invalid choice" in cli.fails(ExitCode.USAGE, "bogus")
    assert "--method" in cli.fails(ExitCode.USAGE, "top-up", ann, "5.00")
    message = cli.fails(ExitCode.USAGE, "top-up", ann, "5.001", "--method", "card")
    assert message.startswith("error: amount: ")
    assert "decimal" in message
    assert "--expires" in cli.fails(ExitCode.USAGE, "award", ann, "1.00", "--reason", "x",
                                    "--expires", "2099-01-01T00:00:00")
    assert "currency" in cli.fails(ExitCode.USAGE, "wallet", "open", "--tenant", "t",
                                   "--owner", "o", "--currency", "eur")
    assert "'w_nope' not found" in cli.fails(ExitCode.NOT_FOUND, "balance", "w_nope")
    assert "not found" in cli.fails(ExitCode.NOT_FOUND, "top-up", "w_nope", "1.00",
                                    "--method", "card")
    refused = cli.fails(ExitCode.REFUSED, "spend", ann, "5.00")
    assert "shortfall 5.00 EUR" in refused
    assert "suggested top-up 5.00 EUR" in refused
    done = cli.run("check", ann, "5.00")
    assert done.returncode == ExitCode.REFUSED
    assert "no" in done.stdout

    cli.ok("top-up", ann, "5.00", "--method", "card", "--idempotency-key", "k-1")
    conflict = cli.fails(ExitCode.CONFLICT, "top-up", ann, "6.00", "--method", "card",
                         "--idempotency-key", "k-1")
    assert "idempotency_key 'k-1'" in conflict
    assert "amount" in conflict
    assert "already has" in cli.fails(ExitCode.CONFLICT, "wallet", "open", "--tenant",
                                      "hub-1", "--owner", "ann", "--currency", "EUR")
    assert cli.json("balance", ann)["open"] == "5.00 EUR"  # the conflict wrote nothing


def test_storage_error_and_debug_traceback(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    junk = f"sqlite:///{tmp_path / 'junk.db'}"
    message = cli.fails(ExitCode.STORAGE, "--db", junk, "init")
    assert message.startswith("error: ")
    done = cli.run("--db", junk, "--debug", "init", db=False)
    assert done.returncode == ExitCode.STORAGE
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith("error: ")
    debug = cli.run("--debug", "wallet", "show", "w_nope")
    assert debug.returncode == ExitCode.NOT_FOUND
    assert "WalletNotFoundError" in debug.stderr
    assert "Traceback" in debug.stderr


def test_default_store_and_environment(tmp_path: Path) -> None:
    plain = Cli(tmp_path, None)
    plain.ok("init")
    assert (tmp_path / "wallets.db").is_file()
    ann = plain.wallet("ann")
    assert plain.json("wallet", "show", ann)["id"] == ann

    other = tmp_path / "env.db"
    env = {"PREPAID_WALLET_DB": f"sqlite:///{other}"}
    assert plain.run("init", env=env).returncode == 0
    done = plain.run("--json", "wallet", "open", "--tenant", "hub-1", "--owner", "bob",
                     "--currency", "EUR", env=env)
    assert done.returncode == 0, done.stderr
    bob = json.loads(done.stdout)["id"]
    assert other.is_file()
    assert plain.run("wallet", "show", bob).returncode == ExitCode.NOT_FOUND  # not wallets.db
    assert plain.run("wallet", "show", bob, env=env).returncode == 0
    # --db wins over the environment
    assert plain.run("--db", "sqlite:///wallets.db", "wallet", "show", ann,
                     env=env).returncode == 0


def test_scripted_session(cli: Cli) -> None:
    wallet = cli.json("wallet", "open", "--tenant", "hub-1", "--owner", "ann",
                      "--currency", "EUR")
    ann = wallet["id"]
    assert cli.ok("top-up", ann, "20.00", "--method", "card").startswith(
        f"topped up {eur('20.00')} to {ann} (entry e_")

    refused = cli.run("spend", ann, "30.00")
    assert refused.returncode == ExitCode.REFUSED
    assert refused.stdout == ""
    assert refused.stderr == (
        "error: spend of 30.00 EUR refused (insufficient_credit); shortfall 10.00 EUR;"
        " suggested top-up 10.00 EUR\n"
    )

    cli.ok("top-up", ann, "15.00", "--method", "card")
    spent = cli.ok("spend", ann, "30.00", "--description", "order 7").splitlines()
    assert spent[0].startswith("entry          e_")
    assert spent[1:] == [
        f"paid           {eur('30.00')}",
        f"remainder due  {eur('0.00')}",
        f"paid from      open balance {eur('30.00')}",
    ]

    rows = list(csv.reader(io.StringIO(cli.ok("statement", ann, "--format", "csv"))))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[0] == ["recorded_at", "entry_id", "kind", "description", "change",
                       "open_after", "commerce_after", "held_after", "total_after", "currency"]
    body = [row[2:] for row in rows[1:]]
    assert body == [
        ["top_up", "", "20.00", "20.00", "0.00", "0.00", "20.00", "EUR"],
        ["top_up", "", "15.00", "35.00", "0.00", "0.00", "35.00", "EUR"],
        ["spend", "order 7", "-30.00", "5.00", "0.00", "0.00", "5.00", "EUR"],
    ]
    assert all(row[1].startswith("e_") for row in rows[1:])
    assert [row[0] for row in rows[1:]] == sorted(row[0] for row in rows[1:])


def test_holds_refunds_and_lots_with_json(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "50.00", "--method", "card")
    lot = cli.json("award", ann, "10.00", "--reason", "welcome",
                   "--expires", _ahead(timedelta(days=365)))
    listed = cli.jsonl("lots", ann)
    assert [(x["id"], x["remaining"], x["reason"]) for x in listed] == [
        (lot["id"], "10.00 EUR", "welcome")]

    before = datetime.now(UTC)
    held = cli.json("hold", ann, "8.00", "--window", "4h", "--idempotency-key", "h-1")
    assert held["id"].startswith("hold_")
    assert (held["wallet_id"], held["amount"], held["status"]) == (ann, "8.00 EUR", "active")
    assert [(p["lot_id"], p["amount"]) for p in held["allocation"]] == [(lot["id"], "8.00 EUR")]
    ends = datetime.fromisoformat(held["expires_at"])
    assert before + timedelta(hours=4) <= ends <= datetime.now(UTC) + timedelta(hours=4)
    assert cli.json("hold", ann, "8.00", "--window", "4h",
                    "--idempotency-key", "h-1") == held  # replayed, nothing written
    assert cli.json("balance", ann)["held"] == "8.00 EUR"

    captured = cli.json("capture", held["id"], "5.00", "--idempotency-key", "c-1")
    assert captured["hold_id"] == held["id"]
    assert captured["entry_id"].startswith("e_")
    assert (captured["captured"], captured["released"]) == ("5.00 EUR", "3.00 EUR")
    assert [(p["lot_id"], p["amount"]) for p in captured["allocation"]] == [
        (lot["id"], "5.00 EUR")]
    assert "captured" in cli.fails(ExitCode.REFUSED, "capture", held["id"])

    ends_at = _ahead(timedelta(days=7))  # within a tenant's default hold horizon (31 days)
    other = cli.json("hold", ann, "2.00", "--expires", ends_at.replace("+00:00", "Z"))
    assert other["expires_at"] == ends_at
    voided = cli.json("void", other["id"], "--idempotency-key", "v-1")
    assert (voided["id"], voided["status"], voided["amount"]) == (
        other["id"], "voided", "2.00 EUR")
    assert voided["resolved_entry_id"].startswith("e_")
    assert "voided" in cli.fails(ExitCode.REFUSED, "void", other["id"])
    assert cli.json("balance", ann)["held"] == "0.00 EUR"
    assert [x["remaining"] for x in cli.jsonl("lots", ann)] == ["5.00 EUR"]

    spent = cli.json("spend", ann, "20.00")
    assert cli.jsonl("lots", ann) == []  # the award is spent
    empty = cli.jsonl("lots", ann, "--all")
    assert [(x["id"], x["amount"], x["remaining"]) for x in empty] == [
        (lot["id"], "10.00 EUR", "0.00 EUR")]

    part = cli.json("refund", spent["entry_id"], "4.00", "--reason", "damaged",
                    "--idempotency-key", "r-1")
    assert part["refund_of"] == spent["entry_id"]
    assert part["entry_id"].startswith("e_")
    assert (part["amount"], part["breakage"]) == ("4.00 EUR", "0.00 EUR")
    assert [(p["lot_id"], p["amount"]) for p in part["allocation"]] == [(None, "4.00 EUR")]
    refused = cli.fails(ExitCode.REFUSED, "refund", spent["entry_id"], "16.01",
                        "--reason", "too much")
    assert refused == (f"error: entry {spent['entry_id']!r}: refund of 16.01 EUR exceeds the"
                       " 16.00 EUR still refundable")
    rest = cli.json("refund", spent["entry_id"], "--reason", "cancelled")
    assert rest["amount"] == "16.00 EUR"
    assert [(p["lot_id"], p["amount"]) for p in rest["allocation"]] == [
        (None, "11.00 EUR"), (lot["id"], "5.00 EUR")]
    assert [(x["id"], x["remaining"]) for x in cli.jsonl("lots", ann)] == [
        (lot["id"], "5.00 EUR")]
    refunded = cli.json("refund", captured["entry_id"], "1.00", "--reason", "late")
    assert refunded["refund_of"] == captured["entry_id"]

    balance = cli.json("balance", ann)
    assert (balance["open"], balance["commerce"], balance["held"]) == (
        "50.00 EUR", "6.00 EUR", "0.00 EUR")  # the capture's refund went back to the lot
    assert [line["kind"] for line in cli.json("statement", ann)["lines"]] == [
        "top_up", "award", "hold", "capture", "hold", "void", "spend", "refund", "refund",
        "refund"]
    assert cli.json("verify")["ok"] is True


def test_holds_refunds_and_lots_as_text_and_errors(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "1000.00", "--method", "card")
    assert cli.ok("lots", ann) == "no lots\n"
    cli.ok("award", ann, "5.00", "--reason", "welcome")
    table = cli.ok("--locale", "de_DE", "lots", ann).splitlines()
    assert table[0].split() == ["id", "remaining", "expires", "priority", "reason"]
    assert [cell.strip() for cell in table[1].split("  ") if cell][1:] == [
        eur("5.00", "de_DE"), "never", "0", "welcome"]

    held = cli.ok("hold", ann, "1005.00", "--window", "30m").splitlines()
    hold_id = held[0].split()[1]
    assert hold_id.startswith("hold_")
    assert "status     active" in held
    assert f"amount     {eur('1005.00')}" in held
    captured = cli.ok("capture", hold_id, "1000.00")
    assert f"captured   {eur('1000.00')}" in captured
    assert f"released   {eur('5.00')}" in captured
    entry = captured.splitlines()[0].split()[1]
    other = cli.ok("hold", ann, "1.00", "--window", "90s").splitlines()[0].split()[1]
    assert "status       voided" in cli.ok("void", other)
    refund = cli.ok("refund", entry, "2.50", "--reason", "damaged")
    assert f"refunded     {eur('2.50')}" in refund
    assert f"refund of    {entry}" in refund

    for bad in ("4x", "0h", "4 h", "-4h", "4.5h", "1h30m", "9999999999d"):
        message = cli.fails(ExitCode.USAGE, "hold", ann, "1.00", f"--window={bad}")
        assert message.startswith("error: --window: "), bad
    assert "--window" in cli.fails(ExitCode.USAGE, "hold", ann, "1.00")
    assert "not allowed" in cli.fails(ExitCode.USAGE, "hold", ann, "1.00", "--window", "4h",
                                      "--expires", "2099-01-01T00:00:00Z")
    assert "--expires" in cli.fails(ExitCode.USAGE, "hold", ann, "1.00",
                                    "--expires", "2099-01-01T00:00:00")
    assert "shortfall" in cli.fails(ExitCode.REFUSED, "hold", ann, "5000.00", "--window", "4h")
    assert "not found" in cli.fails(ExitCode.NOT_FOUND, "capture", "hold_nope", "1.00")
    assert "not found" in cli.fails(ExitCode.NOT_FOUND, "void", "hold_nope")
    assert "not found" in cli.fails(ExitCode.NOT_FOUND, "refund", "e_nope", "--reason", "x")
    assert "not found" in cli.fails(ExitCode.NOT_FOUND, "lots", "w_nope")
    top_up = cli.json("top-up", ann, "1.00", "--method", "card")["entry_id"]
    assert "spend or capture" in cli.fails(ExitCode.USAGE, "refund", top_up, "1.00",
                                           "--reason", "x")
    assert "amount: " in cli.fails(ExitCode.USAGE, "capture", hold_id, "1.001")

def test_console_script_points_at_main() -> None:
    import importlib
    import tomllib

    from prepaid_wallet import cli

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    target = tomllib.loads(pyproject.read_text("utf-8"))["project"]["scripts"]["prepaid-wallet"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_expire_streams_one_row_per_booking(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    ends = datetime.now(UTC) + timedelta(seconds=3)
    held = cli.json("hold", ann, "4.00", "--expires", ends.isoformat())  # from the open balance
    lot = cli.json("award", ann, "2.50", "--reason", "promo", "--expires", ends.isoformat())
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.05)

    rows = cli.jsonl("expire")
    assert [(r["record"], r.get("kind"), r.get("subject_id")) for r in rows] == [
        ("expiry", "hold", held["id"]), ("expiry", "lot", lot["id"]),
        ("summary", None, None)]
    assert [r["amount"] for r in rows[:2]] == ["4.00 EUR", "2.50 EUR"]
    assert rows[2] == {"record": "summary", "lots_expired": 1, "holds_released": 1,
                       "entries": 2, "top_ups_expired": 0, "upgrades_expired": 0}
    kinds = [line["kind"] for line in cli.jsonl("statement", ann, "--format", "jsonl")]
    assert kinds[-2:] == ["hold_expiry", "breakage"]
    assert {line["entry_id"] for line in cli.jsonl("statement", ann, "--format", "jsonl")} >= {
        rows[0]["entry_id"], rows[1]["entry_id"]}
    assert cli.ok("expire") == ("expired 0 lot(s), released 0 hold(s) in 0 entry(ies),"
                                " 0 pending top-up(s) expired, 0 upgrade(s) expired\n")


def test_expire_as_text_names_each_booking(cli: Cli) -> None:
    ann = cli.wallet("ann")
    ends = datetime.now(UTC) + timedelta(seconds=2)
    lot = cli.json("award", ann, "1.25", "--reason", "promo", "--expires", ends.isoformat())
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.05)
    out = cli.ok("expire").splitlines()
    assert out[0].startswith(
        f"expired lot {lot['id']} of {ann}: {eur('1.25')} to breakage (entry e_")
    assert out[1] == ("expired 1 lot(s), released 0 hold(s) in 1 entry(ies),"
                      " 0 pending top-up(s) expired, 0 upgrade(s) expired")


def test_verify_streams_problems_and_exits_storage(cli: Cli, tmp_path: Path) -> None:
    ann = cli.wallet("ann")
    ben = cli.wallet("ben")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    cli.ok("top-up", ben, "5.00", "--method", "card")
    conn = sqlite3.connect(tmp_path / "hub.db")
    with conn:
        conn.execute("UPDATE wallets SET open = open + 100 WHERE id = ?", (ann,))
    conn.close()

    done = cli.run("--json", "verify")
    assert done.returncode == ExitCode.STORAGE
    assert done.stderr == ""
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[:2] == [
        {"record": "problem", "code": "seal", "subject": ann,
         "detail": "the wallet row does not match its seal"},
        {"record": "problem", "code": "balance", "subject": ann,
         "detail": "open is 11.00 EUR but the journal gives 10.00 EUR"}]
    assert rows[-1] == {"record": "summary", "entries": 2, "wallets": 2, "checkpoints": 0,
                        "problems": 2, "ok": False}
    text = cli.run("verify")
    assert text.returncode == ExitCode.STORAGE
    assert text.stdout.splitlines() == [
        f"seal {ann}: the wallet row does not match its seal",
        f"balance {ann}: open is 11.00 EUR but the journal gives 10.00 EUR",
        "checked 2 entries and 2 wallets: 2 problem(s)",
    ]


def test_checkpoints_kept_in_a_file_anchor_verify(cli: Cli, tmp_path: Path) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    kept = tmp_path / "checkpoints.txt"
    first = cli.run("checkpoint", "--append", str(kept))
    assert first.returncode == ExitCode.OK
    assert first.stdout.startswith("prepaid-wallet-checkpoint/1 1 e_")
    cli.ok("top-up", ann, "2.00", "--method", "card")
    cli.ok("checkpoint", "--append", str(kept))
    assert len(kept.read_text().splitlines()) == 2
    done = cli.run("--json", "verify", "--against", str(kept))
    assert done.returncode == ExitCode.OK
    assert json.loads(done.stdout.splitlines()[-1])["checkpoints"] == 2
    # a store whose journal no longer begins with what was checkpointed
    forged = tmp_path / "forged.txt"
    line = kept.read_text().splitlines()[0].split()
    line[3] = "0" * 64
    forged.write_text(" ".join(line) + "\n")
    done = cli.run("verify", "--against", str(forged))
    assert done.returncode == ExitCode.STORAGE
    assert done.stdout.startswith("checkpoint checkpoint of 1 entries at ")
    bad = tmp_path / "bad.txt"
    bad.write_text("not a checkpoint\n")
    assert cli.run("verify", "--against", str(bad)).returncode == ExitCode.USAGE


def test_a_store_sealed_with_a_key_file_opens_only_with_it(cli: Cli, tmp_path: Path) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    key = tmp_path / "seal.key"
    key.write_text("hub-2026:" + "5a" * 32 + "\n")
    done = cli.run("seal", "--with-key-file", str(key))
    assert done.returncode == ExitCode.OK
    assert "with key 'hub-2026'" in done.stdout
    refused = cli.run("balance", ann)
    assert refused.returncode == ExitCode.STORAGE
    assert "sealed with key 'hub-2026'" in refused.stderr
    assert "5a5a" not in refused.stderr
    assert cli.run("--seal-key-file", str(key), "verify").returncode == ExitCode.OK
    assert cli.run("--seal-key-file", str(key), "seal", "--without-key").returncode == 0
    assert cli.run("verify").returncode == ExitCode.OK
    key.write_text("not a key")
    done = cli.run("--seal-key-file", str(key), "verify")
    assert done.returncode == ExitCode.USAGE
    assert "not a key" not in done.stderr


def test_spend_and_check_take_line_items_from_json(cli: Cli, tmp_path: Path) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    produce = cli.json("award", ann, "5.00", "--reason", "veg", "--category", "produce")
    market = cli.json("award", ann, "2.00", "--reason", "market", "--merchant", "m-market")
    basket = ('[{"product_id": "carrots", "amount": "4.00", "category": "produce"},'
              ' {"product_id": "soap", "amount": "3.00"}]')

    decision = cli.json("check", ann, "--lines", basket)
    assert decision["amount"] == "7.00 EUR"
    assert [(p["lot_id"], p["amount"], p["line"]) for p in decision["allocation"]] == [
        (produce["id"], "4.00 EUR", 0), (None, "3.00 EUR", 1)]
    (tmp_path / "basket.json").write_text(basket, encoding="utf-8")
    at_market = cli.json("check", ann, "--lines", "@basket.json", "--merchant", "m-market")
    assert [(p["lot_id"], p["amount"]) for p in at_market["allocation"]] == [
        (produce["id"], "4.00 EUR"), (market["id"], "2.00 EUR"), (None, "1.00 EUR")]

    paid = json.loads(cli.run("--json", "spend", ann, "7.00", "--lines", "@-",
                              stdin=basket).stdout)
    assert [(p["lot_id"], p["amount"]) for p in paid["allocation"]] == [
        (produce["id"], "4.00 EUR"), (None, "3.00 EUR")]
    assert cli.json("balance", ann)["open"] == "7.00 EUR"


@pytest.mark.parametrize(("lines", "field"), [
    ("not json", "--lines"),
    ("[]", "--lines"),
    ('{"product_id": "x", "amount": "1.00"}', "--lines"),
    ('[{"product_id": "x"}]', "--lines[0]"),
    ('[{"product_id": "x", "amount": "1.00", "colour": "red"}]', "--lines[0]"),
    ('[{"product_id": "x", "amount": 1.5}]', "--lines[0].amount"),
    ('[{"product_id": "x", "amount": "1.001"}]', "--lines[0].amount"),
    ('[{"product_id": "", "amount": "1.00"}]', "--lines[0].product_id"),
    ('[{"product_id": "x", "amount": "1.00", "category": 7}]', "--lines[0].category"),
    ("@missing.json", "--lines"),
])
def test_bad_line_items_are_usage_errors_naming_the_field(cli: Cli, lines: str,
                                                          field: str) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "10.00", "--method", "card")
    message = cli.fails(ExitCode.USAGE, "spend", ann, "--lines", lines)
    assert message.startswith(f"error: {field}: "), message
    assert cli.json("balance", ann)["open"] == "10.00 EUR"


def test_spend_needs_an_amount_or_lines(cli: Cli) -> None:
    ann = cli.wallet("ann")
    assert "amount" in cli.fails(ExitCode.USAGE, "spend", ann)


def test_json_errors_are_one_object_on_stderr(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "5.00", "--method", "card")
    refused = cli.run("--json", "spend", ann, "8.00")
    assert (refused.returncode, refused.stdout) == (ExitCode.REFUSED, "")
    assert refused.stderr.count("\n") == 1
    error = json.loads(refused.stderr)["error"]
    assert (error["exit_code"], error["category"], error["type"]) == (
        4, "refused", "SpendDeniedError")
    assert error["decision"]["shortfall"] == "3.00 EUR"
    assert error["decision"]["suggested_top_up"] == "3.00 EUR"

    bad = cli.run("--json", "top-up", ann, "1.5.0", "--method", "card")
    error = json.loads(bad.stderr)["error"]
    assert (bad.returncode, error["category"], error["field"]) == (2, "usage", "amount")
    assert error["rule"] in error["message"]

    missing = json.loads(cli.run("--json", "balance", "w_nope").stderr)["error"]
    assert (missing["exit_code"], missing["category"]) == (3, "not_found")
    usage = cli.run("--json", "frobnicate")
    assert usage.returncode == ExitCode.USAGE
    assert json.loads(usage.stderr)["error"]["type"] == "UsageError"


def test_progress_is_shown_only_on_a_terminal(cli: Cli, tmp_path: Path) -> None:
    import pty  # POSIX only

    ann = cli.wallet("ann")
    for _ in range(3):
        cli.ok("top-up", ann, "1.00", "--method", "card")
    assert cli.run("verify").stderr == ""  # not a terminal: nothing on stderr
    primary, secondary = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "prepaid_wallet", "--db", str(cli.db), "verify"],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=secondary, text=True,
        timeout=60, check=False,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(primary)
    assert done.returncode == 0
    assert done.stdout == "checked 3 entries and 1 wallets: ok\n"
    assert b"\rverify: " in seen
    assert seen.endswith(b"\r\x1b[K")  # the progress line is erased at the end


def test_holds_lists_active_holds_and_all_with_all(cli: Cli) -> None:
    ann = cli.wallet("ann")
    assert cli.ok("holds", ann) == "no holds\n"
    cli.ok("top-up", ann, "20.00", "--method", "card")
    first = cli.json("hold", ann, "5.00", "--window", "4h")
    second = cli.json("hold", ann, "3.00", "--window", "2d")
    cli.ok("void", first["id"])
    assert [h["id"] for h in cli.jsonl("holds", ann)] == [second["id"]]
    both = cli.jsonl("holds", ann, "--all")
    assert [(h["id"], h["status"]) for h in both] == [
        (first["id"], "voided"), (second["id"], "active")]
    table = cli.ok("holds", ann, "--all").splitlines()
    assert table[0].split() == ["id", "status", "amount", "expires"]
    assert [cell.strip() for cell in table[1].split("  ") if cell][:3] == [
        first["id"], "voided", eur("5.00")]
    assert cli.fails(ExitCode.NOT_FOUND, "holds", "w_nope").startswith("error: wallet")


# -- a new user's first hour ---------------------------------------------------------------------


def _environ(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
    environ["PYTHONIOENCODING"] = "utf-8"
    environ.update(extra)
    return environ


def _fill(path: Path, *, top_ups: int = 0, due_lots: int = 0) -> str:
    """A store at ``path`` (made in this process, quickly) with one wallet: ``top_ups`` top-ups
    of 1.00 EUR and ``due_lots`` awards of 0.01 EUR that have expired. Returns the wallet id."""
    store = SQLiteStore(str(path), synchronous="NORMAL")
    clock = FixedClock(datetime.now(UTC) - timedelta(days=2))
    svc = WalletService(store, clock=clock)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub-1", currency="EUR")
    for _ in range(top_ups):
        svc.top_up(wallet.id, Money.of("1.00", "EUR"), method="card")
    for _ in range(due_lots):
        svc.award(wallet.id, Money.of("0.01", "EUR"), reason="promo",
                  expires_at=clock.now() + timedelta(hours=1))
    store.close()
    return wallet.id


@pytest.mark.parametrize("args", [
    ("verify",), ("balance", "w_x"), ("wallet", "list"), ("expire",), ("statement", "w_x"),
    ("top-up", "w_x", "1.00", "--method", "card"), ("wallet", "open", "--tenant", "t",
                                                    "--owner", "o", "--currency", "EUR"),
])
def test_a_missing_store_is_named_and_never_created(tmp_path: Path, args: tuple[str, ...]
                                                    ) -> None:
    typo = Cli(tmp_path, "sqlite:///dmeo.db")
    message = typo.fails(ExitCode.NOT_FOUND, *args)
    assert str(tmp_path / "dmeo.db") in message
    assert "create it with: prepaid-wallet --db sqlite:///dmeo.db init" in message
    default = Cli(tmp_path, None)  # no --db, no PREPAID_WALLET_DB: ./wallets.db
    assert str(tmp_path / "wallets.db") in default.fails(ExitCode.NOT_FOUND, *args)
    assert not list(tmp_path.iterdir())  # nothing was created


def test_only_init_and_demo_create_a_store(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "sqlite:///hub.db")
    assert "ready at schema version" in cli.ok("init")
    assert cli.ok("verify").endswith(": ok\n")
    demo = Cli(tmp_path, "sqlite:///demo.db")
    assert "Day 1 · " in demo.ok("demo")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "demo.db", "hub.db"]


def test_a_file_that_holds_no_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    message = Cli(tmp_path, f"sqlite:///{other}").fails(ExitCode.NOT_FOUND, "verify")
    assert "holds no wallet store" in message
    assert other.read_bytes() == before


def test_an_empty_store_url_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path, None)
    done = cli.run("--db", "", "verify")
    assert (done.returncode, done.stdout) == (ExitCode.USAGE, "")
    assert done.stderr == "error: --db: must be a store URL, not empty\n"
    done = cli.run("verify", env={"PREPAID_WALLET_DB": ""})
    assert done.returncode == ExitCode.USAGE
    assert "PREPAID_WALLET_DB: must be a store URL when it is set" in done.stderr
    assert not list(tmp_path.iterdir())


def test_global_options_also_after_the_command(cli: Cli, tmp_path: Path) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "12.50", "--method", "card")
    data = json.loads(cli.ok("balance", ann, "--json"))
    assert data["open"] == "12.50 EUR"
    assert cli.ok("wallet", "show", ann, "--locale", "de-DE").count(eur("12.50", "de_DE")) == 2
    plain = Cli(tmp_path, None)  # --db after the command, and --json in the middle
    assert plain.ok("wallet", "--json", "show", ann, "--db", str(cli.db)).count(ann) == 1
    elsewhere = Cli(tmp_path, "sqlite:///nowhere.db")  # the last --db given wins
    assert json.loads(elsewhere.ok("balance", ann, "--db", str(cli.db), "--json"))["open"] == \
        "12.50 EUR"


def test_version_and_the_help_a_new_user_meets(tmp_path: Path) -> None:
    from importlib import metadata

    cli = Cli(tmp_path, None)
    version = cli.run("--version")
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout.startswith(f"prepaid-wallet {metadata.version('prepaid_wallet')} ")
    bare = cli.run()  # no command: the usage and every command, on stderr
    assert (bare.returncode, bare.stdout) == (ExitCode.USAGE, "")
    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(commands.choices) >= 18
    for name in commands.choices:
        assert f"\n    {name} " in bare.stderr, name
    group = cli.run("wallet")
    assert group.returncode == ExitCode.USAGE
    assert all(f"\n    {action} " in group.stderr for action in ("open", "show", "list"))
    assert not list(tmp_path.iterdir())


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_argument_and_option_has_help() -> None:
    seen = 0
    for parser in _parsers(_build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (parser.prog, action.dest)
            assert action.help != argparse.SUPPRESS, (parser.prog, action.dest)
            seen += 1
    assert seen > 150


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    wallet = _fill(db, top_ups=2_000)  # ~200 kB of statement: more than a pipe holds
    for args in (("statement", wallet), ("--json", "statement", wallet, "--format", "jsonl")):
        child = subprocess.Popen(
            [sys.executable, "-m", "prepaid_wallet", "--db", f"sqlite:///{db}", *args],
            cwd=tmp_path, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None
        assert child.stderr is not None
        assert child.stdout.readline()  # the reader takes one line, then goes away
        child.stdout.close()
        assert child.wait(timeout=60) == ExitCode.OK
        assert child.stderr.read() == b""
        child.stderr.close()


def _interrupt(tmp_path: Path, db: Path, *args: str) -> tuple[int, str, str]:
    """Run a command, read its first line, press Ctrl-C and let it end. The rest of the output
    is read only after the interrupt: once the pipe is full the command waits to write, so the
    interrupt always lands while it is still at work, however busy the machine."""
    child = subprocess.Popen(
        [sys.executable, "-m", "prepaid_wallet", "--db", f"sqlite:///{db}", *args],
        cwd=tmp_path, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, encoding="utf-8")
    assert child.stdout is not None
    assert child.stderr is not None
    first = child.stdout.readline()
    assert first
    child.send_signal(signal.SIGINT)
    # Read on through the same buffered reader: readline may have taken more than one line
    # into it (a batch is printed at once), which communicate() would never see.
    rest = child.stdout.read()
    err = child.stderr.read()
    child.wait(timeout=120)
    return child.returncode, first + rest, err


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_stops_expire_with_what_was_printed_committed(tmp_path: Path,
                                                             as_json: bool) -> None:
    db = tmp_path / "due.db"
    due = 3_000
    wallet = _fill(db, due_lots=due)
    code, out, err = _interrupt(tmp_path, db, *(["--json"] if as_json else []), "expire")
    assert code == ExitCode.INTERRUPTED
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    if as_json:
        rows = [json.loads(line) for line in out.splitlines()]
        printed = sum(row["record"] == "expiry" for row in rows)
        error = json.loads(err)["error"]
        assert (error["exit_code"], error["category"]) == (130, "interrupted")
        assert rows[-1]["record"] == "summary"
        assert rows[-1]["lots_expired"] == printed
    else:
        printed = sum(line.startswith("expired lot ") for line in out.splitlines())
        assert err.startswith("error: interrupted; what is printed above was committed")
    store = SQLiteStore(str(db))
    try:
        svc = WalletService(store)
        booked = sum(lot.expired_entry_id is not None
                     for lot in svc.lots(wallet, include_empty=True))
        assert svc.verify().ok
    finally:
        store.close()
    assert 0 < printed == booked < due


def test_ctrl_c_stops_a_reading_command_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    wallet = _fill(db, top_ups=2_000)
    code, out, err = _interrupt(tmp_path, db, "statement", wallet)
    assert code == ExitCode.INTERRUPTED
    assert err == "error: interrupted; nothing was written\n"
    assert out.startswith("statement of ")


def test_messages_a_new_user_met(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "5.00", "--method", "card")
    assert cli.fails(ExitCode.REFUSED, "hold", ann, "100.00", "--window", "4h").startswith(
        "error: hold of 100.00 EUR refused (insufficient_credit)")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    message = cli.fails(ExitCode.USAGE, "check", ann, "1.00", "--at", later)
    assert "must not be later than now" in message
    assert "booked" not in message
    check_help = cli.ok("check", "--help")
    assert "booked" not in check_help


def test_a_date_alone_is_midnight_utc(cli: Cli) -> None:
    ann = cli.wallet("ann")
    cli.ok("top-up", ann, "5.00", "--method", "card")
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    since = cli.json("statement", ann, "--since", today.isoformat())
    assert since["since"] == f"{today.isoformat()}T00:00:00+00:00"
    assert len(since["lines"]) == 1
    until = cli.json("statement", ann, "--since", tomorrow.isoformat())
    assert until["lines"] == []
    message = cli.fails(ExitCode.USAGE, "statement", ann, "--since", "2026-02-30")
    assert "--since" in message
    naive = cli.fails(ExitCode.USAGE, "statement", ann, "--until", "2026-01-31T09:00")
    assert "or a date such as 2026-01-31" in naive


def test_stored_control_characters_are_shown_escaped(tmp_path: Path) -> None:
    """A store written before text fields were checked holds an escape code and a newline (made
    here with the domain's own transitions, as an older version wrote them): the table shows
    them escaped, one row per entry."""
    from prepaid_wallet import wallet as _w
    from prepaid_wallet.wallet import EntryInfo

    db = tmp_path / "old.db"
    store = SQLiteStore(str(db))
    svc = WalletService(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub-1", currency="EUR")
    svc.top_up(wallet.id, Money.of("5.00", "EUR"), method="card")
    at = datetime.now(UTC)
    with store.unit_of_work() as uow:
        locked = uow.lock_wallets([wallet.id])[wallet.id]
        paid = _w.top_up(locked, Money.of("1.00", "EUR"), "card", EntryInfo(
            "e_legacy1", at, metadata={"description": "order\x1b[2J\nPAID IN FULL"}))
        uow.record(paid)
        gift = _w.award(paid.wallet(wallet.id), lot_id="lot_legacy", amount=Money.of(
            "1.00", "EUR"), expires_at=None, priority=0, reason="\u202egift",
            info=EntryInfo("e_legacy2", at))
        uow.record(gift)
        uow.commit()
    store.close()
    cli = Cli(tmp_path, f"sqlite:///{db}")
    table = cli.ok("statement", wallet.id)
    assert "\x1b" not in table
    assert "order\\x1b[2J\\nPAID IN FULL" in table
    assert len(table.splitlines()) == 3 + 3 + 1  # heading, opening, header; 3 entries; closing
    lots = cli.ok("lots", wallet.id)
    assert "\u202e" not in lots
    assert "\\u202egift" in lots


@pytest.mark.parametrize("argv", [
    [], ["balance", "w_1"], ["--json", "balance", "w_1"], ["balance", "w_1", "--json"],
    ["--db", "balance", "balance", "w_1"], ["--locale", "wallet", "wallet", "show", "w_1"],
    ["--db=x.db", "wallet", "--json", "show", "w_1", "--debug"], ["wallet"],
    ["wallet", "open", "--tenant", "t", "--owner", "o", "--currency", "EUR", "--floor", "-1"],
    ["wallet", "nope"], ["nope"], ["--json", "nope", "balance"], ["balance"],
    ["spend", "w_1", "1.00", "--lines", "@-", "--mode", "credit-first"],
    ["hold", "w_1", "1", "--window", "4h", "--expires", "x"], ["statement", "w_1", "--locale"],
    ["--loc", "de_DE", "balance", "w_1"], ["balance", "--", "w_1"], ["verify", "extra"],
])
def test_the_parser_built_for_one_command_reads_argv_as_the_whole_one(argv: list[str]) -> None:
    """Only the command being run gets its arguments built; it must parse exactly as the
    parser with every command does (the same values, or the same error)."""
    def parse(parser: argparse.ArgumentParser) -> object:
        try:
            args = vars(parser.parse_args(argv))
        except Exception as exc:  # the error itself is what is compared
            return ("error", str(exc))
        args.pop("usage_of", None)  # the parser object itself differs
        return args

    assert parse(_build_parser(argv)) == parse(_build_parser())


def test_award_many_grants_a_csv_file_once_per_batch_key(tmp_path: Path) -> None:
    cli = Cli(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    cli.ok("init")
    ann, bob, usd = cli.wallet("ann"), cli.wallet("bob"), cli.wallet("cid", "USD")
    awards = tmp_path / "awards.csv"
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    awards.write_text(
        "wallet_id,amount,reason,expires_at\n"
        f"{ann},5.00,spring,{expires}\n"
        f"{bob},seven,spring,\n"
        f"{usd},1.00,,\n"
        "w_nobody,1.00,,\n"
        f"{bob},2.50,,\n", encoding="utf-8")
    rows = cli.run("--json", "award-many", "--file", str(awards), "--batch-key", "spring",
                   "--currency", "EUR", "--batch-size", "2")
    assert rows.returncode == ExitCode.USAGE, rows.stderr
    out = [json.loads(line) for line in rows.stdout.splitlines()]
    check_json_convention(out)
    assert [(r["row"], r["error"], r["field"]) for r in out[:-1]] == [
        (2, "InvalidAmountError", "amount"), (3, "CurrencyMismatchError", "amount"),
        (4, "WalletNotFoundError", None)]
    assert out[-1] == {"record": "summary", "awarded": 2, "already_done": 0, "failed": 3}
    assert cli.json("balance", ann)["commerce"] == "5.00 EUR"
    assert cli.json("balance", bob)["commerce"] == "2.50 EUR"
    again = cli.run("award-many", "--file", str(awards), "--batch-key", "spring",
                    "--currency", "EUR")
    assert again.stdout.splitlines()[-1] == "awarded 0, already done 2, failed 3"
    assert "row 4 (w_nobody): WalletNotFoundError" in again.stdout
    assert cli.json("balance", bob)["commerce"] == "2.50 EUR"
    assert cli.fails(ExitCode.USAGE, "award-many", "--file", str(awards),
                     "--batch-key", "")
    assert cli.fails(ExitCode.USAGE, "award-many", "--file", str(tmp_path / "nope.csv"),
                     "--batch-key", "k").startswith("error: --file: must be a readable file")
