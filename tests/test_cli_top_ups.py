"""The command line's ``payment`` commands: a customer top-up started, reported (credited once),
shown, listed and charged back, each in a process of its own over one SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prepaid_wallet.cli import ExitCode, main
from tests.json_convention import check_json_convention


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wallets.db'}"


def test_start_report_show_pending_and_chargeback(db: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--db", db, "init")[0] == ExitCode.OK
    code, out, _ = run(capsys, "--db", db, "--json", "wallet", "open", "--owner", "ann",
                       "--tenant", "hub", "--currency", "EUR")
    wallet = json.loads(out)["id"]
    code, out, err = run(capsys, "--db", db, "--json", "payment", "start", wallet, "25.00",
                         "--method", "card", "--idempotency-key", "checkout-1")
    assert code == ExitCode.OK, err
    started = json.loads(out)
    assert check_json_convention(started) > 0
    assert started["status"] == "pending"
    top_up = started["id"]
    # the same key: the same top-up
    again = run(capsys, "--db", db, "--json", "payment", "start", wallet, "25.00",
                "--method", "card", "--idempotency-key", "checkout-1")[1]
    assert json.loads(again)["id"] == top_up
    code, out, _ = run(capsys, "--db", db, "--json", "payment", "pending", "--wallet", wallet)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [top_up]

    code, out, err = run(capsys, "--db", db, "--json", "payment", "report", top_up,
                         "succeeded", "--reference", "pi_1")
    assert code == ExitCode.OK, err
    [entry] = json.loads(out)["credited"]
    code, out, _ = run(capsys, "--db", db, "--json", "payment", "report", top_up, "succeeded")
    assert json.loads(out)["credited"] == []
    code, out, _ = run(capsys, "--db", db, "payment", "show", top_up)
    assert "succeeded" in out
    assert entry in out
    assert run(capsys, "--db", db, "payment", "pending", "--tenant", "hub")[1].strip() == \
        "no pending top-ups"

    code, out, err = run(capsys, "--db", db, "--json", "payment", "chargeback", top_up, "5.00",
                         "--reason", "dispute lost")
    assert code == ExitCode.OK, err
    assert json.loads(out)["charged_back"] == "5.00 EUR"
    balance = json.loads(run(capsys, "--db", db, "--json", "balance", wallet)[1])
    assert balance["open"] == "20.00 EUR"
    assert run(capsys, "--db", db, "verify")[0] == ExitCode.OK


def test_a_failure_is_reported_and_bad_ids_are_usage_errors(
        db: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "--db", db, "init")
    wallet = json.loads(run(capsys, "--db", db, "--json", "wallet", "open", "--owner", "ann",
                            "--tenant", "hub", "--currency", "EUR")[1])["id"]
    top_up = json.loads(run(capsys, "--db", db, "--json", "payment", "start", wallet, "5.00",
                            "--method", "card")[1])["id"]
    code, out, _ = run(capsys, "--db", db, "--json", "payment", "report", top_up, "failed")
    assert json.loads(out)["given_up"] == [top_up]
    code, _, err = run(capsys, "--db", db, "payment", "report", "nope", "succeeded")
    assert code == ExitCode.USAGE
    assert "idempotency_key" in err
    code, _, err = run(capsys, "--db", db, "payment", "start", wallet, "0", "--method", "card")
    assert code == ExitCode.USAGE
    assert "amount" in err
    code, _, err = run(capsys, "--db", db, "payment", "show", "ctu_nope")
    assert code == ExitCode.USAGE
    assert "top_up_id" in err


def test_expire_marks_pending_top_ups_whose_time_is_up(db: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    from prepaid_wallet import FixedClock, Money, WalletService, open_store

    store = open_store(db)
    try:  # started two days ago (a pending top-up lives one day by default)
        svc = WalletService(store, clock=FixedClock(datetime.now(UTC) - timedelta(days=2)))
        wallet = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR").id
        old = svc.start_top_up(wallet, Money.of("10.00", "EUR"), method="card").id
    finally:
        store.close()
    code, out, err = run(capsys, "--db", db, "--json", "expire")
    assert code == ExitCode.OK, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == [{"record": "top_up_expired", "top_up_id": old},
                    {"record": "summary", "lots_expired": 0, "holds_released": 0, "entries": 0,
                     "top_ups_expired": 1, "upgrades_expired": 0}]
    code, out, _ = run(capsys, "--db", db, "--json", "payment", "show", old)
    assert json.loads(out)["status"] == "expired"
    assert run(capsys, "--db", db, "expire")[1].endswith(
        ", 0 pending top-up(s) expired, 0 upgrade(s) expired\n")
