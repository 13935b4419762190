"""The HTTP API as a client sees it: a real ``prepaid-wallet serve`` process on localhost,
spoken to over HTTP.

The README's walkthrough (open, top up through a provider, a refused spend with its suggested
top-up, a spend, the statement), every class of error as a problem, idempotent replays and
conflicts, tenant isolation, roles through the access policy, the access log (request ids,
never a key) and a graceful shutdown that finishes the requests in flight.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar")
pytest.importorskip("uvicorn")

from tests.http_support import Server, cli, make_key, money

# Under pytest-xdist the module's tests run on one worker, so that it starts one server for the
# module (module fixture).
pytestmark = pytest.mark.xdist_group("http_server")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("http") / "store.db"
    found = f"sqlite:///{path}"
    cli(found, "init")
    return found


@pytest.fixture(scope="module")
def keys(url: str) -> dict[str, str]:
    return {
        "admin": make_key(url, "hub", "admin"),
        "cashier": make_key(url, "hub", "cashier"),
        "other": make_key(url, "market", "admin"),
    }


@pytest.fixture(scope="module")
def server(url: str, keys: dict[str, str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    del keys  # made before the server starts; keys made later work too (the store holds them)
    with Server(url, tmp_path_factory.mktemp("log") / "server.log", workers=2) as running:
        yield running


def _without_request(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k != "instance"}


_owners = iter(range(1_000_000))


def _open(client: Any, owner: str = "member") -> str:
    answer = client.post("/v1/open-wallet",
                         json={"owner_id": f"{owner}-{next(_owners)}", "currency": "EUR"})
    assert answer.status_code == 200, answer.text
    wallet_id = answer.json()["id"]
    assert isinstance(wallet_id, str)
    return wallet_id


def test_the_walkthrough(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as http:
        wallet = _open(http)
        # A customer top-up through the payment provider: started, then reported paid.
        started = http.post(f"/v1/wallets/{wallet}/start-top-up",
                            json={"amount": money("20.00"), "method": "card"},
                            headers={"Idempotency-Key": "checkout-1"})
        assert started.status_code == 200, started.text
        top_up = started.json()
        assert top_up["status"] == "pending"
        assert top_up["amount"] == money("20.00")
        report = http.post("/v1/report-charge", json={
            "idempotency_key": top_up["id"],
            "outcome": {"status": "succeeded", "reference": "pi_1", "message": None}})
        assert report.status_code == 200, report.text
        [credited] = report.json()["credited"]
        # A spend the credit cannot cover: refused, with what to top up.
        refused = http.post(f"/v1/wallets/{wallet}/spend",
                            json={"request": {"amount": money("25.00")}})
        assert refused.status_code == 402
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["code"] == "spend_denied"
        assert problem["decision"]["shortfall"] == money("5.00")
        assert problem["decision"]["suggested_top_up"] == money("5.00")
        # One it can.
        spent = http.post(f"/v1/wallets/{wallet}/spend",
                          json={"request": {"amount": money("12.50"),
                                            "description": "veg box"}},
                          headers={"Idempotency-Key": "order-7"})
        assert spent.status_code == 200, spent.text
        assert spent.json()["remainder_due"] == money("0.00")
        balance = http.get(f"/v1/wallets/{wallet}/balance").json()
        assert balance["open"] == money("7.50")
        # The statement, streamed as JSON Lines and as CSV.
        lines = [json.loads(line) for line in
                 http.get(f"/v1/wallets/{wallet}/statement").text.splitlines()]
        assert next(line["entry_id"] for line in lines) == credited
        assert [line["kind"] for line in lines] == ["top_up", "spend"]
        assert [line["total_after"] for line in lines] == [money("20.00"), money("7.50")]
        table = list(csv.DictReader(io.StringIO(
            http.get(f"/v1/wallets/{wallet}/statement", params={"format": "csv"}).text)))
        assert [(row["kind"], row["change"], row["total_after"]) for row in table] == [
            ("top_up", "20.00", "20.00"), ("spend", "-12.50", "7.50")]


def test_every_class_of_error_is_a_problem(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as http:
        wallet = _open(http)
        http.post(f"/v1/wallets/{wallet}/top-up", json={"amount": money("5.00"),
                                                        "method": "card"})
        cases = {
            "invalid": http.post(f"/v1/wallets/{wallet}/top-up",
                                 json={"amount": money("1.234"), "method": "card"}),
            "float": http.post(f"/v1/wallets/{wallet}/top-up",
                               json={"amount": {"amount": 1.5, "currency": "EUR"},
                                     "method": "card"}),
            "unknown field": http.post(f"/v1/wallets/{wallet}/top-up",
                                       json={"amount": money("1.00"), "method": "card",
                                             "colour": "red"}),
            "not found": http.get("/v1/wallets/w_nope/balance"),
            "refused": http.post(f"/v1/wallets/{wallet}/payout",
                                 json={"amount": money("50.00"), "method": "bank"}),
            "no route": http.get("/v1/nothing-here"),
        }
        with server.client() as anonymous:
            cases["no key"] = anonymous.get(f"/v1/wallets/{wallet}/balance")
        with server.client("pwk_key_0123_notakey") as wrong:
            cases["wrong key"] = wrong.get(f"/v1/wallets/{wallet}/balance")
    expected = {
        "invalid": (422, "invalid_amount", "amount.amount"),
        "float": (422, "invalid_input", "amount.amount"),
        "unknown field": (422, "invalid_input", "colour"),
        "not found": (404, "wallet_not_found", None),
        "refused": (402, "insufficient_funds", None),
        "no route": (404, "no_such_route", None),
        "no key": (401, "unauthenticated", None),
        "wrong key": (401, "unauthenticated", None),
    }
    for name, answer in cases.items():
        status, code, field = expected[name]
        assert answer.status_code == status, (name, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json"), name
        body = answer.json()
        assert (body["status"], body["code"], body.get("field")) == (status, code, field), name
        assert body["type"] == f"urn:prepaid-wallet:error:{code}"
        assert body["instance"] == f"urn:request:{answer.headers['x-request-id']}"
    assert cases["no key"].headers["www-authenticate"].startswith("Bearer")
    assert "notakey" not in cases["wrong key"].text


def test_replays_answer_the_same_and_conflicts_name_what_differs(
        server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as http:
        wallet = _open(http)
        body = {"amount": money("10.00"), "method": "card"}
        first = http.post(f"/v1/wallets/{wallet}/top-up", json=body,
                          headers={"Idempotency-Key": "t-1"})
        again = http.post(f"/v1/wallets/{wallet}/top-up", json=body,
                          headers={"Idempotency-Key": "t-1"})
        assert (again.status_code, again.json()) == (first.status_code, first.json())
        assert http.get(f"/v1/wallets/{wallet}/balance").json()["open"] == money("10.00")
        # A refusal replays as the same refusal, even once the wallet could pay.
        spend = {"request": {"amount": money("30.00")}}
        refused = http.post(f"/v1/wallets/{wallet}/spend", json=spend,
                            headers={"Idempotency-Key": "s-1"})
        http.post(f"/v1/wallets/{wallet}/top-up", json={"amount": money("50.00"),
                                                        "method": "card"})
        replayed = http.post(f"/v1/wallets/{wallet}/spend", json=spend,
                             headers={"Idempotency-Key": "s-1"})
        assert refused.status_code == replayed.status_code == 402
        assert _without_request(replayed.json()) == _without_request(refused.json())
        # The same key with another body: a conflict naming the field that differs.
        other = http.post(f"/v1/wallets/{wallet}/top-up",
                          json={"amount": money("11.00"), "method": "card"},
                          headers={"Idempotency-Key": "t-1"})
        assert other.status_code == 409
        assert other.json()["code"] == "idempotency_conflict"
        assert other.json()["fields"] == ["amount"]
        assert "amount" in other.json()["detail"]


def test_another_tenants_object_answers_like_a_missing_one(
        server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as hub, server.client(keys["other"]) as market:
        wallet = _open(hub)
        hub.post(f"/v1/wallets/{wallet}/top-up", json={"amount": money("5.00"),
                                                       "method": "card"})
        missing = wallet[:-4] + "0000"
        for path, payload in (("/v1/wallets/{}/balance", None),
                              ("/v1/wallets/{}/spend",
                               {"request": {"amount": money("1.00")}})):
            answers = []
            for target in (wallet, missing):
                if payload is None:
                    answer = market.get(path.format(target))
                else:
                    answer = market.post(path.format(target), json=payload)
                body = _without_request(answer.json())
                body["detail"] = body["detail"].replace(target, "<id>")
                body["id"] = "<id>" if body.get("id") == target else body.get("id")
                answers.append((answer.status_code, body))
            assert answers[0] == answers[1]
            assert answers[0][0] == 404
        assert market.get("/v1/wallets").json()["items"] == []
        assert hub.get(f"/v1/wallets/{wallet}/balance").json()["open"] == money("5.00")


def test_roles_go_through_the_access_policy(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as admin, server.client(keys["cashier"]) as cashier:
        wallet = _open(admin)
        admin.post(f"/v1/wallets/{wallet}/top-up", json={"amount": money("9.00"),
                                                         "method": "card"})
        policy = {"roles": {"admin": ["*"], "cashier": ["spend"]}}
        answer = admin.post("/v1/set-access-policy", json={"policy": policy,
                                                           "reason": "till staff"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["actor"].startswith("key_")
        try:
            assert cashier.post(f"/v1/wallets/{wallet}/spend",
                                json={"request": {"amount": money("2.00")}}).status_code == 200
            denied = cashier.post(f"/v1/wallets/{wallet}/top-up",
                                  json={"amount": money("5.00"), "method": "card"})
            assert denied.status_code == 403
            assert denied.json()["code"] == "permission_denied"
            # Writes outside the pipeline too: a cashier registers no webhook endpoint.
            hook = cashier.post("/v1/add-webhook-endpoint",
                                json={"url": "https://till.example/hooks"})
            assert (hook.status_code, hook.json()["code"]) == (403, "permission_denied")
            assert admin.get("/v1/webhook-endpoints").json()["items"] == []
            assert admin.get(f"/v1/wallets/{wallet}/balance").json()["open"] == money("7.00")
        finally:
            open_all = {"roles": {"admin": ["*"], "cashier": ["*"]}}
            admin.post("/v1/set-access-policy", json={"policy": open_all})


def test_the_access_log_has_request_ids_and_never_a_key(
        server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as http:
        answer = http.get("/v1/wallets", headers={"X-Request-Id": "trace-42"})
        assert answer.headers["x-request-id"] == "trace-42"
        chosen = http.get("/v1/wallets", headers={"X-Request-Id": "no spaces allowed"})
        assert chosen.headers["x-request-id"].startswith("req_")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = {r["request_id"]: r for r in server.access_log()}
        if "trace-42" in records:
            break
        time.sleep(0.1)
    record = records["trace-42"]
    assert (record["method"], record["path"], record["status"]) == ("GET", "/v1/wallets", 200)
    assert record["tenant"] == "hub"
    assert record["key"].startswith("key_")
    text = server.log_path.read_text()
    for secret in keys.values():
        assert secret not in text
        assert secret.rsplit("_", 1)[1] not in text


def test_a_graceful_shutdown_finishes_the_requests_in_flight(
        url: str, keys: dict[str, str], tmp_path: Path) -> None:
    with Server(url, tmp_path / "first.log") as first, first.client(keys["admin"]) as http:
        wallet = _open(http, "long")
    # Another writer holds the SQLite store's write lock, so a top-up waits for it: in flight
    # when the server is told to stop.
    server = Server(url, tmp_path / "second.log")
    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    answers: list[Any] = []

    def top_up() -> None:
        with server.client(keys["admin"]) as http:
            answers.append(http.post(f"/v1/wallets/{wallet}/top-up",
                                     json={"amount": money("3.00"), "method": "card"}))

    writer = threading.Thread(target=top_up)
    writer.start()
    time.sleep(0.5)  # the request reaches the server and waits for the lock
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    alive = server.process.poll() is None
    blocker.execute("ROLLBACK")
    blocker.close()
    writer.join(30)
    # uvicorn ends by raising the signal it was stopped with again, after the shutdown.
    assert server.stop() in (0, -signal.SIGTERM)
    assert alive  # told to stop, it waited for the request in flight
    [answer] = answers
    assert answer.status_code == 200, answer.text
    with Server(url, tmp_path / "third.log") as third, third.client(keys["admin"]) as http:
        assert http.get(f"/v1/wallets/{wallet}/balance").json()["open"] == money("3.00")
