"""The command line, driven as a user drives it: ``python -m prepaid_wallet`` in a subprocess, on
a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet.cli import CSV_COLUMNS, ExitCode


class Cli:
    """Runs ``prepaid-wallet`` in ``cwd`` against one store file."""

    def __init__(self, cwd: Path, db: str | None) -> None:
        self.cwd = cwd
        self.db = db

    def run(self, *args: str, env: dict[str, str] | None = None,
            db: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "prepaid_wallet"]
        if db and self.db is not None:
            argv += ["--db", self.db]
        environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
        environ["PYTHONIOENCODING"] = "utf-8"
        environ.update(env or {})
        return subprocess.run([*argv, *args], cwd=self.cwd, env=environ, capture_output=True,
                              text=True, encoding="utf-8", timeout=60, check=False)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (done.returncode, done.stderr)
        assert done.stderr == ""
        return done.stdout

    def json(self, *args: str) -> Any:
        out = self.ok("--json", *args)
        assert out.endswith("\n")
        assert out.count("\n") == 1, out
        return json.loads(out)

    def jsonl(self, *args: str) -> list[Any]:
        return [json.loads(line) for line in self.ok("--json", *args).splitlines()]

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
    return Cli(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")


def test_every_command_with_json(cli: Cli) -> None:
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

    lot = cli.json("award", ann, "5.00", "--reason", "welcome",
                   "--expires", "2099-01-01T00:00:00+00:00")
    assert lot["amount"] == lot["remaining"] == "5.00 EUR"
    assert lot["expires_at"] == "2099-01-01T00:00:00+00:00"
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

    assert cli.json("expire") == {"lots_expired": 0, "holds_released": 0, "entry_ids": []}
    report = cli.json("verify")
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["wallets"] == 3


def test_text_output(cli: Cli) -> None:
    ann = cli.wallet("ann")
    assert "$" not in cli.ok("top-up", ann, "1234.50", "--method", "card")
    assert "€1,234.50" in cli.ok("balance", ann)
    assert "1.234,50\xa0€" in cli.ok("--locale", "de_DE", "balance", ann)
    table = cli.ok("statement", ann, "--locale", "fr_FR")
    assert "top_up" in table
    assert "closing balance 1\u202f234,50\xa0€" in table
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
    ann = plain.wallet("ann")
    assert (tmp_path / "wallets.db").is_file()
    assert plain.json("wallet", "show", ann)["id"] == ann

    other = tmp_path / "env.db"
    env = {"PREPAID_WALLET_DB": f"sqlite:///{other}"}
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
        f"topped up €20.00 to {ann} (entry e_")

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
        "paid           €30.00",
        "remainder due  €0.00",
        "paid from      open balance €30.00",
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


def test_console_script_points_at_main() -> None:
    import importlib
    import tomllib

    from prepaid_wallet import cli

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    target = tomllib.loads(pyproject.read_text("utf-8"))["project"]["scripts"]["prepaid-wallet"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main
