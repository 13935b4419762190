"""The command line's ``payg`` commands, run in process over one SQLite store: a contract
opened, paid, upgraded and paid in its window; past payments reconverted and a conversion's
payment unlinked to pay a downpayment; refusals with their exit codes; ``expire`` expiring an
upgrade whose window has ended."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import FixedClock, Money, WalletService, open_store
from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.rules.payg import DeviceState
from tests.json_convention import check_json_convention

DAY_US = 86_400 * 1_000_000


class Cli:
    """``prepaid-wallet --db URL ...`` in this process."""

    def __init__(self, url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url = url
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main(["--db", self.url, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == ExitCode.OK, err
        assert err == ""
        return out

    def json(self, *args: str) -> Any:
        out = self.ok("--json", *args)
        assert out.count("\n") == 1, out
        data = json.loads(out)
        _convention(data)
        return data

    def jsonl(self, *args: str) -> list[Any]:
        rows = [json.loads(line) for line in self.ok("--json", *args).splitlines()]
        _convention(rows)
        return rows

    def fails(self, code: ExitCode, *args: str) -> str:
        done, out, err = self.run(*args)
        assert done == code, (done, err)
        assert out == ""
        assert err.count("\n") == 1, err
        return err.strip()


def _convention(data: Any) -> None:
    """The JSON convention, but for the contract performance: a ratio, not an amount."""
    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k != "performance"}
        if isinstance(value, list):
            return [drop(v) for v in value]
        return value
    check_json_convention(drop(copy.deepcopy(data)))


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    url = f"sqlite:///{tmp_path / 'payg.db'}"
    open_store(url, create=True).close()
    return Cli(url, capsys)


def _wallet(cli: Cli, owner: str = "amina") -> str:
    data = cli.json("wallet", "open", "--tenant", "solar", "--owner", owner, "--currency", "EUR")
    return str(data["id"])


def test_the_upgrade_procedure_from_the_command_line(cli: Cli) -> None:
    w = _wallet(cli)
    opened = cli.json("payg", "open", w, "--product", "lamp", "--product", "radio",
                      "--rate", "50.00", "--device", "box-7", "--actor", "ops")
    assert opened["contract"]["state"] == "active"
    assert opened["contract"]["daily_rate"] == "50.00 EUR"
    assert opened["contract"]["products"] == ["lamp", "radio"]
    assert opened["contract"]["service_end"] == opened["contract"]["started_at"]

    paid = cli.json("payg", "pay", w, "--payment-id", "p-1", "--amount", "500.00",
                    "--idempotency-key", "pay-1")
    [line] = paid["on_time"]
    assert (line["kind"], line["amount"], line["time"]) == ("payment", "500.00 EUR", 10 * DAY_US)
    assert paid["tokens"] == []
    again = cli.json("payg", "pay", w, "--payment-id", "p-1", "--amount", "500.00",
                     "--idempotency-key", "pay-1")
    assert again == paid  # the stored outcome, nothing written twice
    assert [p["payment_id"] for p in cli.jsonl("payg", "payments", w)] == ["p-1"]

    assert cli.json("payg", "device", w, "on")["contract"]["device_state"] == "on"

    # Judged on the library's performance, the minute-old contract is not eligible: the
    # moments before its first payment were without service.
    err = cli.fails(ExitCode.REFUSED, "payg", "upgrade", w, "--product", "lamp", "--product",
                    "radio", "--product", "tv", "--rate", "80.00", "--downpayment", "1000.00")
    assert "may not upgrade: performance" in err
    assert cli.json("payg", "show", w)["upgrade"] is None

    called = cli.json("payg", "upgrade", w, "--product", "lamp", "--product", "radio",
                      "--product", "tv", "--rate", "80.00", "--downpayment", "1000.00",
                      "--performance", "0.97", "--actor", "call-centre")
    upgrade = called["upgrade"]
    assert called["contract"]["state"] == "pay_upgrade_downpayment"
    assert (upgrade["status"], upgrade["performance"], upgrade["performance_source"]) == (
        "pay_upgrade_downpayment", "0.97", "host")
    called_at = datetime.fromisoformat(upgrade["called_at"])
    assert datetime.fromisoformat(upgrade["deadline"]) - called_at == timedelta(hours=4)
    # what is left of the 10 days at 50.00 a day is worth 50/80 of it at 80.00, in whole
    # seconds rounded down
    left = datetime.fromisoformat(called["contract"]["service_end"]) - called_at
    assert upgrade["time_left_after"] == left // timedelta(microseconds=1) * 50 // (
        80 * 1_000_000) * 1_000_000

    held = cli.json("payg", "pay", w, "--payment-id", "p-2", "--amount", "600.00")
    assert held["on_time"] == []  # held toward the downpayment, not turned into time
    assert held["upgrade"]["held_total"] == "600.00 EUR"
    shown = cli.json("payg", "show", w)
    assert shown["upgrade"]["upgrade_id"] == upgrade["upgrade_id"]
    assert shown["contract"]["state"] == "pay_upgrade_downpayment"

    done = cli.json("payg", "pay", w, "--payment-id", "p-3", "--amount", "500.00")
    assert done["contract"]["state"] == "install_collect_upgrade"
    assert done["contract"]["daily_rate"] == "80.00 EUR"
    assert done["contract"]["products"] == ["lamp", "radio", "tv"]
    assert done["upgrade"]["paid_by"] == "payments"
    kinds = [(line["kind"], line["amount"]) for line in done["on_time"]]
    assert kinds == [("downpayment", "1000.00 EUR"), ("revaluation", "0.00 EUR"),
                     ("surplus", "100.00 EUR")]
    assert done["on_time"][2]["time"] == 108_000 * 1_000_000  # 100.00 at 80.00 a day: 30 h

    text = cli.ok("payg", "show", w)
    assert "install_collect_upgrade" in text
    assert "time left" in text
    assert "performance" in text
    history = cli.jsonl("payg", "history", w)
    assert [line["kind"] for line in history] == ["payment", "downpayment", "revaluation",
                                                  "surplus"]
    table = cli.ok("payg", "history", w).splitlines()
    assert table[0].split()[:3] == ["at", "kind", "amount"]
    assert len(table) == 5
    statuses = {p["payment_id"]: p["status"] for p in cli.jsonl("payg", "payments", w)}
    assert statuses == {"p-1": "time", "p-2": "downpayment", "p-3": "downpayment"}

    installed = cli.json("payg", "installed", w, "--actor", "technician")
    assert installed["contract"]["state"] == "active"
    assert installed["upgrade"]["status"] == "installed"
    err = cli.fails(ExitCode.REFUSED, "payg", "installed", w)
    assert "cannot confirm an upgrade installed" in err


def test_a_supervisor_reconverts_past_payments_to_pay_a_downpayment(cli: Cli) -> None:
    w = _wallet(cli)
    cli.ok("payg", "open", w, "--product", "lamp", "--rate", "50.00")
    cli.ok("payg", "pay", w, "--payment-id", "p-1", "--amount", "500.00")
    cli.ok("payg", "pay", w, "--payment-id", "p-2", "--amount", "200.00")
    cli.ok("payg", "device", w, "on")
    err = cli.fails(ExitCode.REFUSED, "payg", "reconvert", w, "--payment-id", "p-1",
                    "--actor", "sup", "--role", "system_process_officer")
    assert "cannot reconvert payments" in err  # no upgrade waits
    cli.ok("payg", "upgrade", w, "--product", "lamp", "--product", "tv", "--rate", "80.00",
           "--downpayment", "400.00", "--performance", "0.99")

    err = cli.fails(ExitCode.REFUSED, "payg", "reconvert", w, "--payment-id", "p-2",
                    "--actor", "sup", "--role", "system_process_officer")
    assert "does not cover the downpayment" in err
    err = cli.fails(ExitCode.USAGE, "payg", "reconvert", w, "--payment-id", "p-1",
                    "--role", "system_process_officer")
    assert "--role" in err
    assert "needs --actor" in err
    err = cli.fails(ExitCode.NOT_FOUND, "payg", "reconvert", w, "--payment-id", "p-9",
                    "--actor", "sup", "--role", "system_process_officer")
    assert "p-9" in err
    err = cli.fails(ExitCode.DENIED, "payg", "reconvert", w, "--payment-id", "p-1",
                    "--actor", "sup")
    assert "reconvert_payments" in err
    assert [p["status"] for p in cli.jsonl("payg", "payments", w)] == ["time", "time"]

    done = cli.json("payg", "reconvert", w, "--payment-id", "p-1", "--actor", "sup",
                    "--role", "system_process_officer", "--idempotency-key", "rc-1")
    assert done["upgrade"]["paid_by"] == "reconversion"
    kinds = [(line["kind"], line["amount"]) for line in done["on_time"]]
    assert kinds == [("reconversion", "-500.00 EUR"), ("downpayment", "400.00 EUR"),
                     ("revaluation", "0.00 EUR"), ("surplus", "100.00 EUR")]
    assert done["on_time"][0]["time"] == -10 * DAY_US
    statuses = {p["payment_id"]: p["status"] for p in cli.jsonl("payg", "payments", w)}
    assert statuses == {"p-1": "reconverted", "p-2": "time"}
    err = cli.fails(ExitCode.REFUSED, "payg", "reconvert", w, "--payment-id", "p-2",
                    "--actor", "sup", "--role", "system_process_officer")
    assert "install_collect_upgrade" in err


def test_an_admin_unlinks_a_conversion_payment_to_pay_a_downpayment(cli: Cli) -> None:
    w = _wallet(cli)
    cli.ok("payg", "open", w, "--product", "lamp", "--rate", "20.00")
    converted = cli.json("payg", "convert", w, "--conversion-id", "conv-1",
                         "--payment", "m-1=200.00", "--payment", "m-2=700.00")
    [line] = converted["on_time"]
    assert (line["kind"], line["amount"], line["time"]) == ("conversion", "900.00 EUR",
                                                            45 * DAY_US)
    assert {p["payment_id"]: p["status"] for p in converted["payments"]} == {
        "m-1": "linked", "m-2": "linked"}
    cli.ok("payg", "device", w, "on")
    cli.ok("payg", "upgrade", w, "--product", "lamp", "--product", "fridge", "--rate", "40.00",
           "--downpayment", "500.00", "--performance", "0.99")
    err = cli.fails(ExitCode.REFUSED, "payg", "reconvert", w, "--payment-id", "m-2",
                    "--actor", "sup", "--role", "system_process_officer")
    assert "payment 'm-2' is linked" in err

    done = cli.json("payg", "unlink", w, "--conversion-id", "conv-1", "--actor", "root",
                    "--role", "admin")
    assert done["upgrade"]["paid_by"] == "unlink"
    assert done["contract"]["state"] == "install_collect_upgrade"
    statuses = {p["payment_id"]: p["status"] for p in cli.jsonl("payg", "payments", w)}
    assert statuses == {"m-1": "linked", "m-2": "unlinked"}  # the first that covers 500.00
    err = cli.fails(ExitCode.REFUSED, "payg", "unlink", w, "--conversion-id", "conv-1",
                    "--payment-id", "m-1", "--actor", "root", "--role", "admin")
    assert "cannot unlink a conversion payment" in err


def test_bad_arguments_are_usage_errors_naming_the_option(cli: Cli) -> None:
    w = _wallet(cli)
    err = cli.fails(ExitCode.NOT_FOUND, "payg", "show", w)
    assert "pay-as-you-go contract" in err
    cli.ok("payg", "open", w, "--product", "lamp", "--rate", "50.00")
    err = cli.fails(ExitCode.USAGE, "payg", "convert", w, "--conversion-id", "c",
                    "--payment", "m-1")
    assert "--payment" in err
    assert "ID=AMOUNT" in err
    err = cli.fails(ExitCode.USAGE, "payg", "convert", w, "--conversion-id", "c",
                    "--payment", "m-1=1.00", "--payment", "m-1=2.00")
    assert "twice" in err
    err = cli.fails(ExitCode.USAGE, "payg", "upgrade", w, "--product", "tv", "--rate", "80.00",
                    "--downpayment", "10.00", "--performance", "1.5")
    assert "--performance" in err
    err = cli.fails(ExitCode.USAGE, "payg", "pay", w, "--payment-id", "p", "--amount", "1.001")
    assert "amount" in err
    err = cli.fails(ExitCode.USAGE, "payg", "open", w, "--product", "x", "--rate", "-1.00")
    assert "daily_rate" in err
    err = cli.fails(ExitCode.REFUSED, "payg", "open", w, "--product", "x", "--rate", "1.00")
    assert "cannot open another contract" in err
    assert cli.ok("payg", "history", w) == "no on-time history\n"
    assert cli.ok("payg", "payments", w) == "no payments\n"
    # nothing the refusals touched was written
    assert cli.jsonl("payg", "payments", w) == []


def test_expire_expires_an_upgrade_whose_window_has_ended(cli: Cli) -> None:
    called = datetime.now(UTC) - timedelta(hours=5)
    store = open_store(cli.url)
    # Written earlier (a wallet's entries are never recorded before its latest instant, so
    # the wallet is opened at that earlier time too).
    svc = WalletService(store, clock=FixedClock(called - timedelta(days=1)))
    w = svc.open_wallet(owner_id="amina", tenant_id="solar", currency="EUR").id
    eur = lambda text: Money.of(text, "EUR")  # noqa: E731
    svc.open_contract(w, products=["lamp"], daily_rate=eur("50.00"))
    svc.payg_payment(w, payment_id="p-1", amount=eur("500.00"))
    svc.report_device(w, state=DeviceState.ON)
    svc = WalletService(store, clock=FixedClock(called))
    svc.call_upgrade(w, products=["lamp", "tv"], daily_rate=eur("80.00"),
                     downpayment=eur("1000.00"), performance=None)
    svc.payg_payment(w, payment_id="p-2", amount=eur("100.00"))
    [upgrade] = svc.upgrades(w)
    store.close()

    assert cli.ok("payg", "show", w).count("(passed)") == 1
    rows = cli.jsonl("expire")
    assert rows == [{"record": "upgrade_expired", "upgrade_id": upgrade.upgrade_id},
                    {"record": "summary", "lots_expired": 0, "holds_released": 0,
                     "entries": 0, "top_ups_expired": 0, "upgrades_expired": 1}]
    shown = cli.json("payg", "show", w)
    assert shown["contract"]["state"] == "active"
    assert shown["contract"]["daily_rate"] == "50.00 EUR"
    last = cli.jsonl("payg", "history", w)[-1]
    # the held payment turned into time at the old rate: 100.00 at 50.00 a day
    assert (last["kind"], last["payment_ids"], last["daily_rate"], last["time"]) == (
        "payment", ["p-2"], "50.00 EUR", 2 * DAY_US)
    assert cli.ok("expire").endswith("0 pending top-up(s) expired, 0 upgrade(s) expired\n")
