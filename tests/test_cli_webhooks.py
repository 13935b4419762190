"""The command line's ``webhook`` commands over one SQLite store: an endpoint added (its
secret printed once), listed, events delivered to a real receiver, the log, a replay, the
endpoint removed."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.webhook_signature import verify_signature
from tests.json_convention import check_json_convention


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wallets.db'}"


class _Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    made = _Receiver()
    thread = threading.Thread(target=made.server.serve_forever, daemon=True)
    thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def test_add_deliver_log_replay_and_remove(db: str, receiver: _Receiver,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--db", db, "init")[0] == ExitCode.OK
    code, out, _ = run(capsys, "--db", db, "--json", "wallet", "open", "--owner", "ann",
                       "--tenant", "hub", "--currency", "EUR")
    wallet = json.loads(out)["id"]
    code, out, err = run(capsys, "--db", db, "--json", "webhook", "add", "--tenant", "hub",
                         "--url", receiver.url, "--kind", "top_up.succeeded")
    assert code == ExitCode.OK, err
    added = json.loads(out)
    assert check_json_convention(added) > 0
    assert added["secret"].startswith("whsec_")
    assert added["kinds"] == ["top_up.succeeded"]
    code, out, _ = run(capsys, "--db", db, "--json", "webhook", "list", "--tenant", "hub")
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert listed["id"] == added["id"]
    assert listed["secret"] is None
    assert added["secret"] not in out
    code, out, _ = run(capsys, "--db", db, "webhook", "list", "--tenant", "hub")
    assert added["id"] in out
    assert "top_up.succeeded" in out

    code, out, _ = run(capsys, "--db", db, "--json", "payment", "start", wallet, "25.00",
                       "--method", "card")
    top_up = json.loads(out)["id"]
    assert run(capsys, "--db", db, "payment", "report", top_up, "succeeded")[0] == ExitCode.OK
    code, out, err = run(capsys, "--db", db, "--json", "webhook", "deliver")
    assert code == ExitCode.OK, err
    report = json.loads(out)
    assert (report["fanned_out"], len(report["delivered"])) == (1, 1)
    [(headers, body)] = receiver.received
    verify_signature(added["secret"], headers["Prepaid-Wallet-Signature"], body,
                     datetime.now(UTC))
    event = json.loads(body)
    assert event["kind"] == "top_up.succeeded"
    assert event["data"]["top_up_id"] == top_up
    assert event["data"]["amount"] == {"amount": "25.00", "currency": "EUR"}

    code, out, _ = run(capsys, "--db", db, "webhook", "log", "--tenant", "hub",
                       "--status", "delivered")
    assert "top_up.succeeded" in out
    assert "200" in out
    code, out, _ = run(capsys, "--db", db, "--json", "webhook", "replay", "--event",
                       event["id"])
    assert len(json.loads(out)["replayed"]) == 1
    code, out, _ = run(capsys, "--db", db, "webhook", "deliver")
    assert out.splitlines()[1].split() == ["delivered", "1"]
    assert len(receiver.received) == 2
    code, out, _ = run(capsys, "--db", db, "--json", "webhook", "replay", "--tenant", "hub",
                       "--since", "2000-01-01")
    assert len(json.loads(out)["replayed"]) == 1

    code, out, _ = run(capsys, "--db", db, "webhook", "remove", added["id"])
    assert code == ExitCode.OK
    assert "disabled" in out
    code, out, _ = run(capsys, "--db", db, "--json", "webhook", "deliver")
    assert len(json.loads(out)["failed"]) == 1
    code, out, _ = run(capsys, "--db", db, "webhook", "log", "--tenant", "hub", "--status",
                       "failed")
    assert "the endpoint was removed" in out


def test_bad_arguments_are_usage_errors(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--db", db, "init")[0] == ExitCode.OK
    code, _, err = run(capsys, "--db", db, "webhook", "add", "--tenant", "hub", "--url",
                       "ftp://example.test/")
    assert code == ExitCode.USAGE
    assert "url" in err
    code, _, err = run(capsys, "--db", db, "webhook", "add", "--tenant", "hub", "--url",
                       "https://example.test/", "--kind", "nope")
    assert code == ExitCode.USAGE
    assert "kinds" in err
    assert run(capsys, "--db", db, "webhook", "replay", "--since", "2026-01-01")[0] == \
        ExitCode.USAGE
    assert run(capsys, "--db", db, "webhook", "remove", "whe-x")[0] == ExitCode.USAGE
    code, out, _ = run(capsys, "--db", db, "webhook", "log", "--tenant", "hub")
    assert out.strip() == "no webhook deliveries"
