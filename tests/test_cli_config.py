"""The command line's ``rules`` and ``group`` commands, and what stored rules mean for every other
command: the demo's card fee is charged by ``top-up`` in another process, with no rules given
to it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import Money, WalletService, format_money, open_store
from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.rules.tenant import TenantRules
from tests.json_convention import check_json_convention


def eur(amount: str) -> str:
    return format_money(Money.of(amount, "EUR"), "en_US")


def run(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m prepaid_wallet ARGS`` in a process of its own."""
    environ = {k: v for k, v in os.environ.items() if k != "PREPAID_WALLET_DB"}
    environ["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "prepaid_wallet", *args], cwd=cwd,
                          env=environ, capture_output=True, text=True, encoding="utf-8",
                          timeout=120, check=False, input=stdin)


def call(*args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(args)`` in this process, with ``stdin``: exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- the demo's rules, from the command line ---------------------------------------------------


def test_after_the_demo_a_top_up_from_the_command_line_charges_the_demos_card_fee(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = run(tmp_path, "--db", db, "demo")
    assert demo.returncode == ExitCode.OK, demo.stderr
    listed = run(tmp_path, "--db", db, "--json", "wallet", "list", "--tenant", "demo-hub")
    ana = next(w["id"] for w in map(json.loads, listed.stdout.splitlines())
               if w["owner_id"] == "ana")

    topped = run(tmp_path, "--db", db, "top-up", ana, "10.00", "--method", "card")
    assert topped.returncode == ExitCode.OK, topped.stderr
    assert topped.stdout.splitlines()[-1] == f"fee {eur('0.30')}"

    shown = run(tmp_path, "--db", db, "--json", "rules", "show", "--tenant", "demo-hub")
    assert shown.returncode == ExitCode.OK, shown.stderr
    version = json.loads(shown.stdout)
    assert (version["version"], version["actor"]) == (1, "demo")
    assert version["rules"]["fees"] == [{"name": "card top-up fee", "operations": ["top_up"],
                                         "fixed": {"minor": 30, "currency": "EUR"}}]

    # A second service on the same store, built without rules, charges the same fee.
    store = open_store(db, create=False)
    try:
        receipt = WalletService(store).top_up(ana, Money.of("10.00", "EUR"), method="card")
    finally:
        store.close()
    assert receipt.fee == Money.of("0.30", "EUR")


# -- rules show, set, history ---------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    assert main(["--db", url, "init"]) == ExitCode.OK
    return url


RULES = {
    "fees": [{"name": "card", "operations": ["top_up"], "fixed": {"minor": 25, "currency": "EUR"}}],
    "low_balance": {"thresholds": [{"amount": {"minor": 500, "currency": "EUR"}, "label": "low"}]},
    "payment_mode": "credit_first",
    "hold_horizon_days": 7,
}


def test_rules_are_set_from_a_file_and_shown_as_json(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    code, out, _ = call("--db", db, "--json", "rules", "show", "--tenant", "hub",
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert json.loads(out) == {"tenant_id": "hub", "version": None, "set_at": None,
                               "actor": None, "idempotency_key": None, "metadata": {},
                               "reason": None, "rules": TenantRules().to_data()}

    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES), "utf-8")
    code, out, err = call("--db", db, "--json", "rules", "set", "--tenant", "hub", str(path),
                          "--actor", "ops", "--idempotency-key", "rules-1",
                          "--reason", "spring prices", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (ExitCode.OK, "")
    stored = json.loads(out)
    check_json_convention(stored)
    assert (stored["version"], stored["actor"], stored["idempotency_key"],
            stored["reason"]) == (1, "ops", "rules-1", "spring prices")
    assert stored["rules"] == TenantRules.from_data(RULES).to_data()
    assert (stored["rules"]["hold_horizon_days"], stored["rules"]["award_horizon_days"]) == (
        7, 3653)
    code, again, _ = call("--db", db, "--json", "rules", "set", "--tenant", "hub", str(path),
                          "--actor", "ops", "--idempotency-key", "rules-1",
                          "--reason", "spring prices", monkeypatch=monkeypatch, capsys=capsys)
    assert (code, json.loads(again)) == (ExitCode.OK, stored)  # replayed: nothing new

    # What `rules show` prints, edited, goes back in through standard input.
    code, out, _ = call("--db", db, "rules", "show", "--tenant", "hub",
                        monkeypatch=monkeypatch, capsys=capsys)
    shown = json.loads(out)  # indented for people, still JSON
    assert shown == stored
    shown["rules"]["automatic_top_ups"] = True
    code, out, _ = call("--db", db, "--json", "rules", "set", "--tenant", "hub", "-",
                        stdin=json.dumps(shown), monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert json.loads(out)["version"] == 2

    code, out, _ = call("--db", db, "--json", "rules", "history", "--tenant", "hub",
                        monkeypatch=monkeypatch, capsys=capsys)
    history = [json.loads(line) for line in out.splitlines()]
    assert [(v["version"], v["actor"], v["rules"]["automatic_top_ups"]) for v in history] == [
        (1, "ops", False), (2, None, True)]
    code, out, _ = call("--db", db, "rules", "history", "--tenant", "hub",
                        monkeypatch=monkeypatch, capsys=capsys)
    assert [line.split("  ")[0::2] for line in out.splitlines()] == [
        ["1", "ops", "spring prices"], ["2", "-", "-"]]

    # Every other command applies them: the default mode of a spend is the tenant's.
    store = open_store(db, create=False)
    try:
        wallet = WalletService(store).open_wallet(owner_id="ann", tenant_id="hub",
                                                  currency="EUR").id
    finally:
        store.close()
    code, out, _ = call("--db", db, "--json", "top-up", wallet, "10.00", "--method", "card",
                        monkeypatch=monkeypatch, capsys=capsys)
    assert json.loads(out)["fee"] == "0.25 EUR"
    code, out, _ = call("--db", db, "--json", "check", wallet, "20.00",
                        monkeypatch=monkeypatch, capsys=capsys)
    decision = json.loads(out)
    assert (code, decision["mode"], decision["remainder_due"]) == (
        ExitCode.OK, "credit_first", "10.25 EUR")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("not json", "rules"),
        ("[]", "tenant_rules"),
        (json.dumps({"fees": [{"name": "x", "operations": ["top_up"], "percent": 1.5}]}),
         "fees[0].percent"),
        (json.dumps({"limits": {"max_balance": {"minor": "1", "currency": "EUR"}}}),
         "limits.max_balance"),
        (json.dumps({"spend_order": "random"}), "spend_order"),
    ],
    ids=["not-json", "not-an-object", "float-percent", "bad-max-balance", "bad-order"],
)
def test_bad_rules_are_a_usage_error_naming_the_path_and_change_nothing(
    db: str, document: str, field: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = open_store(db, create=False)
    before = store.export_state()
    store.close()
    code, out, err = call("--db", db, "--json", "rules", "set", "--tenant", "hub", "-",
                          stdin=document, monkeypatch=monkeypatch, capsys=capsys)
    assert (code, out) == (ExitCode.USAGE, "")
    assert json.loads(err)["error"]["field"] == field
    store = open_store(db, create=False)
    assert store.export_state() == before
    store.close()


def test_a_missing_rules_file_is_a_usage_error(db: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call("--db", db, "rules", "set", "--tenant", "hub",
                          str(tmp_path / "missing.json"), monkeypatch=monkeypatch,
                          capsys=capsys)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err.startswith("error: rules: must be a readable UTF-8 file")


# -- condition groups -----------------------------------------------------------------------------


def test_condition_groups_are_created_listed_shown_and_updated(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def ok(*args: str, stdin: str = "") -> Any:
        code, out, err = call("--db", db, "--json", *args, stdin=stdin,
                              monkeypatch=monkeypatch, capsys=capsys)
        assert (code, err) == (ExitCode.OK, ""), err
        return [json.loads(line) for line in out.splitlines()]

    path = tmp_path / "produce.json"
    path.write_text(json.dumps({"categories": ["produce"]}), "utf-8")
    [created] = ok("group", "create", "--tenant", "hub", "--name", "fresh produce", str(path),
                   "--id", "cg-produce", "--valid-until", "2030-01-01")
    check_json_convention(created)
    assert (created["id"], created["name"], created["version"], created["valid_until"]) == (
        "cg-produce", "fresh produce", 1, "2030-01-01T00:00:00+00:00")
    assert created["condition"] == {"categories": ["produce"]}
    ok("group", "create", "--tenant", "hub", "--name", "bakery", "-",
       stdin=json.dumps({"merchants": ["bakery"]}))
    assert [g["name"] for g in ok("group", "list", "--tenant", "hub")] == [
        "bakery", "fresh produce"]
    assert ok("group", "list", "--tenant", "other") == []
    [changed] = ok("group", "update", "cg-produce", "--conditions", "-", "--valid-until", "none",
                   stdin=json.dumps({"categories": ["produce", "dairy"]}))
    assert (changed["version"], changed["valid_until"]) == (2, None)
    assert ok("group", "show", "cg-produce") == [changed]
    [renamed] = ok("group", "update", "cg-produce", "--name", "fresh")
    assert (renamed["name"], renamed["version"]) == ("fresh", 2)

    code, out, err = call("--db", db, "group", "show", "cg-produce",
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert out.splitlines()[-1] == "conditions   categories: dairy, produce"
    code, _, err = call("--db", db, "group", "create", "--tenant", "hub", "--name", "x", "-",
                        stdin=json.dumps({"products": "bread"}), monkeypatch=monkeypatch,
                        capsys=capsys)
    assert code == ExitCode.USAGE
    assert err.startswith("error: products:")
    code, _, err = call("--db", db, "group", "show", "nope", monkeypatch=monkeypatch,
                        capsys=capsys)
    assert code == ExitCode.NOT_FOUND


def test_a_capture_prints_the_spend_fee_the_stored_rules_charge(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    rules = {"fees": [{"name": "service", "operations": ["spend"],
                       "fixed": {"minor": 20, "currency": "EUR"}}]}
    code, _, err = call("--db", db, "rules", "set", "--tenant", "hub", "-",
                        stdin=json.dumps(rules), monkeypatch=monkeypatch, capsys=capsys)
    assert (code, err) == (ExitCode.OK, "")
    store = open_store(db, create=False)
    try:
        service = WalletService(store)
        wallet = service.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
        service.top_up(wallet, Money.of("10.00", "EUR"), method="card")
        hold = service.hold(wallet, Money.of("4.00", "EUR"), expires_at=service.clock.now()
                                            + timedelta(hours=1)).id
    finally:
        store.close()
    code, out, _ = call("--db", db, "capture", hold, "3.00",
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert f"fee        {eur('0.20')}" in out.splitlines()
    code, out, _ = call("--db", db, "--json", "balance", wallet,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert json.loads(out)["open"] == "6.80 EUR"  # 10.00 - 3.00 - the fee
