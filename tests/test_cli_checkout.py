"""The command line's credit at checkout (``order apply|place|abandon|show``, ``credit-owed``)
and hub settings of one wallet (``wallet set-floor``, ``wallet set-mode``)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from prepaid_wallet import Money, WalletService, open_store
from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.policies import PaymentMode
from prepaid_wallet.rules.tenant import TenantRules


def call(*args: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
         ) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = open_store(url, create=True)
    svc = WalletService(store, rules={"hub": TenantRules(
        payment_mode=PaymentMode.CREDIT_FIRST, member_payment_modes=True)})
    wallet = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
    svc.top_up(wallet, Money.of("30.00", "EUR"), method="card")
    store.close()
    return url, wallet


def test_an_order_is_applied_resized_placed_and_credited_from_the_command_line(
        db: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, wallet = db

    def run(*args: str) -> tuple[int, str, str]:
        return call("--db", url, *args, monkeypatch=monkeypatch, capsys=capsys)

    code, out, err = run("order", "apply", wallet, "o-1", "45.00", "--mode", "credit-first")
    assert code == ExitCode.OK, err
    assert "remainder due" in out
    code, out, _ = run("--json", "order", "apply", wallet, "o-1", "25.00")
    data = json.loads(out)
    assert (data["credit"], data["status"]) == ("25.00 EUR", "pending")
    code, out, _ = run("--json", "order", "place", wallet, "o-1")
    assert json.loads(out)["status"] == "placed"
    code, out, err = run("--json", "credit-owed", wallet, "o-1", "20.00", "--actor", "staff",
                         "--reason", "out of stock")
    assert code == ExitCode.OK, err
    assert json.loads(out)["credited"] == "5.00 EUR"
    code, _, err = run("credit-owed", wallet, "o-1", "20.00", "--actor", "staff")
    assert code == ExitCode.REFUSED
    assert "no credit owed" in err
    code, out, _ = run("--json", "order", "show", wallet, "o-1")
    assert json.loads(out)["credited_by"] == "staff"
    run("order", "apply", wallet, "o-2", "5.00")
    code, out, _ = run("--json", "order", "abandon", wallet, "o-2")
    assert json.loads(out)["status"] == "abandoned"
    code, _, err = run("order", "show", wallet, "o-3")
    assert code == ExitCode.NOT_FOUND


def test_a_wallets_floor_and_mode_change_from_the_command_line(
        db: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, wallet = db

    def run(*args: str) -> tuple[int, str, str]:
        return call("--db", url, *args, monkeypatch=monkeypatch, capsys=capsys)

    code, out, err = run("--json", "wallet", "set-floor", wallet, "-20.00", "--actor", "mia",
                         "--reason", "trusted")
    assert code == ExitCode.OK, err
    data = json.loads(out)
    assert (data["term"], data["before"], data["after"], data["actor"], data["reason"]) == (
        "floor", "0.00", "-20.00", "mia", "trusted")
    code, _, err = run("wallet", "set-floor", wallet, "5.00", "--actor", "mia")
    assert code == ExitCode.USAGE
    assert "floor" in err
    code, out, err = run("wallet", "set-mode", wallet, "credit-only", "--actor", "mia")
    assert code == ExitCode.OK, err
    assert "credit_only" in out
    code, out, _ = run("--json", "wallet", "set-mode", wallet, "hub")
    assert json.loads(out)["after"] is None
    store = open_store(url)
    try:
        svc = WalletService(store)
        assert svc.get_wallet(wallet).floor == Money.of("-20.00", "EUR")
        assert [c.term.value for c in svc.wallet_term_changes(wallet)] == [
            "floor", "payment_mode", "payment_mode"]
    finally:
        store.close()
