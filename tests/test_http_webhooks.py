"""Webhooks from a real server (``prepaid-wallet serve --webhooks``) to a real receiver.

The receiver checks every request's signature with
:func:`prepaid_wallet.webhook_signature.verify_signature`, fails the first attempt of each
event (the server must try again), and handles each event once however often it comes (a
replay from the command line sends it again)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar")

from prepaid_wallet.errors import SignatureError
from prepaid_wallet.webhook_signature import verify_signature
from tests.http_support import Server, cli, make_key, money


class Receiver:
    """A webhook receiver on localhost: it verifies, fails each event's first attempt with
    a 500, and de-duplicates by event id."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[dict[str, Any]] = []
        self.handled: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.take(body, self.headers.get("Prepaid-Wallet-Signature"),
                                       self.headers.get("Prepaid-Wallet-Event-Id"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, body: bytes, signature: str | None, event_id: str | None) -> int:
        try:
            verify_signature(self.secret, signature or "", body, datetime.now(UTC))
        except SignatureError:
            with self.lock:
                self.bad_signatures += 1
            return 400
        event = json.loads(body)
        assert event["id"] == event_id
        with self.lock:
            first = not any(e["id"] == event["id"] for e in self.received)
            self.received.append(event)
            if first:
                return 500  # the first attempt fails: it must come again
            self.handled.setdefault(event["id"], event)  # each event handled once
        return 204

    def wait_for(self, done: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if done():
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out; received {self.received}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def test_signed_webhooks_are_retried_and_received_once(receiver: Receiver,
                                                       tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    cli(url, "init")
    key = make_key(url, "hub", "admin")
    with Server(url, tmp_path / "server.log", workers=2,
                extra=("--webhooks", "--webhook-interval", "0.2",
                       "--webhook-retries", "1s")) as server, server.client(key) as http:
        added = http.post("/v1/add-webhook-endpoint",
                          json={"url": receiver.url, "kinds": ["top_up.succeeded"]})
        assert added.status_code == 200, added.text
        receiver.secret = added.json()["secret"]
        assert receiver.secret.startswith("whsec_")
        listed = http.get("/v1/webhook-endpoints").text
        assert receiver.secret not in listed
        wallet = http.post("/v1/open-wallet",
                           json={"owner_id": "ana", "currency": "EUR"}).json()["id"]
        top_up = http.post(f"/v1/wallets/{wallet}/start-top-up",
                           json={"amount": money("20.00"), "method": "card"}).json()
        paid = {"status": "succeeded", "reference": "pi_9", "message": None}
        for _ in range(2):  # the provider reports twice: one event
            http.post("/v1/report-charge", json={"idempotency_key": top_up["id"],
                                                 "outcome": paid})
        receiver.wait_for(lambda: len(receiver.handled) == 1)
        [event] = receiver.handled.values()
        assert event["kind"] == "top_up.succeeded"
        assert event["tenant_id"] == "hub"
        assert event["wallet_id"] == wallet
        assert len(receiver.received) == 2  # one failed attempt, then the retry
        log = http.get("/v1/webhook-deliveries").json()["items"]
        assert [(d["event_id"], d["status"], d["attempts"]) for d in log] == [
            (event["id"], "delivered", 2)]
        # Replayed from the command line: sent again, and the receiver handles it once.
        cli(url, "webhook", "replay", "--event", event["id"])
        receiver.wait_for(lambda: len(receiver.received) == 3)
    assert list(receiver.handled) == [event["id"]]
    assert receiver.bad_signatures == 0
    assert receiver.secret not in (tmp_path / "server.log").read_text()
