"""The HTTP API in process (Litestar's test client): what it is generated from, its document,
and the rules every operation follows -- reads write nothing, lists come in pages, bad input
and unexpected errors are problems. The server as a process is tested in
tests/test_http_server.py."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar")

from litestar.testing import TestClient

from prepaid_wallet import Money, SpendRequest, WalletService, open_store
from prepaid_wallet.app.pipeline import command_classes
from prepaid_wallet.catalogue import NOT_OFFERED, catalogue
from prepaid_wallet.cli import main
from prepaid_wallet.cli.server import document
from prepaid_wallet.errors import AuthenticationError
from prepaid_wallet.http.app import create_app
from prepaid_wallet.http.routes import Principal

DOCS = Path(__file__).resolve().parent.parent / "docs"
ADMIN = Principal("key_admin", "hub", frozenset({"admin"}))
OTHER = Principal("key_other", "market", frozenset({"admin"}))
SECRETS = {"admin-secret": ADMIN, "other-secret": OTHER}


def _authenticate(secret: str) -> Principal:
    if secret not in SECRETS:
        raise AuthenticationError()
    return SECRETS[secret]


@pytest.fixture
def store() -> Iterator[Any]:
    made = open_store("memory:")
    yield made
    made.close()


@pytest.fixture
def http(store: Any) -> Iterator[TestClient[Any]]:
    app = create_app(store, authenticate=_authenticate, access_log=False)
    with TestClient(app) as client:
        client.headers["Authorization"] = "Bearer admin-secret"
        yield client


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def test_every_command_of_the_library_is_an_endpoint() -> None:
    offered = {op.name for op in catalogue()}
    commands = {cls.operation for cls in command_classes()}
    # report_top_up is what report_charge runs for a customer top-up: its endpoint is
    # /v1/report-charge, the payment provider's report.
    assert commands - offered == {"report_top_up"}
    assert "report_charge" in offered
    for op in catalogue():
        assert op.name not in NOT_OFFERED
        assert op.command == (op.name in commands)
        assert op.method == "POST" or not op.write


def test_a_new_command_is_a_new_route_without_face_code() -> None:
    # The catalogue reads the service's methods: every public one is offered or named in
    # NOT_OFFERED with its reason, so a method added to a facade part appears by itself.
    public = {name for name in dir(WalletService)
              if not name.startswith("_") and callable(getattr(WalletService, name))}
    offered = {op.name for op in catalogue()}
    assert public == offered | set(NOT_OFFERED)
    paths = {(op.method, op.path) for op in catalogue()}
    assert len(paths) == len(catalogue())  # no two operations share a route


def test_the_document_in_docs_is_the_generated_one() -> None:
    # Regenerate with: prepaid-wallet openapi > docs/openapi.json
    checked_in = json.loads((DOCS / "openapi.json").read_text())
    assert checked_in == json.loads(json.dumps(document())), (
        "docs/openapi.json is stale: run prepaid-wallet openapi > docs/openapi.json")
    assert checked_in["openapi"].startswith("3.1")


def test_the_server_answers_its_document(http: TestClient[Any]) -> None:
    answer = http.get("/schema/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == json.loads(json.dumps(document()))


def test_every_curl_example_in_the_docs_names_an_operation() -> None:
    doc = document()
    def template(path: str) -> re.Pattern[str]:
        return re.compile("^" + "/".join("[^/]+" if part.startswith("{") else re.escape(part)
                                         for part in path.split("/")) + "$")

    templates = [(method.upper(), template(path))
                 for path, item in doc["paths"].items() for method in item]
    examples = 0
    for line in (DOCS / "http.md").read_text().splitlines():
        found = re.match(r"\$ pw (?:-X (\w+) )?\"?\$API(/[^ \"?]*)", line)
        if not found:
            continue
        examples += 1
        method, path = found.group(1) or "GET", found.group(2)
        assert any(m == method and t.match(path) for m, t in templates), line
    assert examples > 30


def _seed(store: Any) -> dict[str, str]:
    svc = WalletService(store, tenant_id="hub", actor="seed")
    wallet = svc.open_wallet(owner_id="ana", tenant_id="hub", currency="EUR").id
    top_up = svc.top_up(wallet, Money.of("20.00", "EUR"), method="card")
    spent = svc.spend(wallet, SpendRequest(Money.of("2.00", "EUR")))
    hold = svc.hold(wallet, Money.of("1.00", "EUR"), window=__import__("datetime")
                    .timedelta(hours=1))
    lot = svc.award(wallet, Money.of("3.00", "EUR"), reason="welcome")
    return {"wallet_id": wallet, "entry_id": spent.entry_id, "hold_id": hold.id,
            "lot_id": lot.id, "top_up_entry": top_up.entry_id}


def test_reads_write_nothing(store: Any, http: TestClient[Any]) -> None:
    ids = _seed(store)
    before = store.export_state()
    answered = 0
    for op in catalogue():
        if op.method != "GET":
            continue
        path = op.path
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        if "{" in path:
            continue  # an object of a kind not seeded
        answer = http.get(path)
        assert answer.status_code < 500, (op.name, answer.text)
        answered += 1
    assert answered > 20
    assert store.export_state() == before


def test_lists_come_in_pages(http: TestClient[Any]) -> None:
    made = [http.post("/v1/open-wallet", json={"owner_id": f"m{i}", "currency": "EUR"})
            .json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        answer = http.get("/v1/wallets", params={"limit": 2, **(
            {"cursor": cursor} if cursor else {})}).json()
        seen += [w["id"] for w in answer["items"]]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert pages == 3
    bad = http.get("/v1/wallets", params={"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["field"]) == (422, "cursor")
    too_many = http.get("/v1/wallets", params={"limit": 1001})
    assert (too_many.status_code, too_many.json()["field"]) == (422, "limit")


def test_statements_and_exports_stream_as_json_lines_and_csv(
        store: Any, http: TestClient[Any]) -> None:
    ids = _seed(store)
    WalletService(store).open_wallet(owner_id="zed", tenant_id="market", currency="EUR")
    lines = [json.loads(line) for line in
             http.get(f"/v1/wallets/{ids['wallet_id']}/statement").text.splitlines()]
    assert [line["kind"] for line in lines] == ["top_up", "spend", "hold", "award"]
    assert lines[-1]["total_after"] == eur("21.00")
    exported = http.get("/v1/export-wallets", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["id"], row["tenant_id"]) for row in rows] == [(ids["wallet_id"], "hub")]
    assert (rows[0]["open"], rows[0]["open_currency"]) == ("17.00", "EUR")
    missing = http.get("/v1/wallets/w_nope/statement")
    assert (missing.status_code, missing.json()["code"]) == (404, "wallet_not_found")
    bad = http.get(f"/v1/wallets/{ids['wallet_id']}/statement", params={"format": "xml"})
    assert (bad.status_code, bad.json()["field"]) == (422, "format")


def test_bad_input_names_the_field_and_writes_nothing(store: Any,
                                                      http: TestClient[Any]) -> None:
    ids = _seed(store)
    before = store.export_state()
    wallet = ids["wallet_id"]
    cases = [
        (f"/v1/wallets/{wallet}/top-up", {"amount": eur("1.001"), "method": "card"},
         "amount.amount"),
        (f"/v1/wallets/{wallet}/top-up", {"amount": {"amount": "1", "currency": "eur"},
                                          "method": "card"}, "amount.currency"),
        (f"/v1/wallets/{wallet}/top-up", {"amount": eur("1.00")}, "method"),
        (f"/v1/wallets/{wallet}/hold", {"amount": eur("1.00"), "window": "90 seconds"},
         "window"),
        (f"/v1/wallets/{wallet}/award", {"amount": eur("1.00"), "reason": "x",
                                         "expires_at": "2027-01-01T00:00:00"}, "expires_at"),
        (f"/v1/wallets/{wallet}/spend", {"request": {"amount": eur("1.00"), "mode": "maybe"}},
         "request.mode"),
        (f"/v1/wallets/{wallet}/spend", {"request": {"amount": eur("1.00"), "tip": 1}},
         "request.tip"),
    ]
    for path, body, field in cases:
        answer = http.post(path, json=body)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["field"] == field, answer.text
    huge = http.post(f"/v1/wallets/{wallet}/top-up",
                     content=b'{"method": "' + b"x" * 1_000_001 + b'"}',
                     headers={"Content-Type": "application/json"})
    assert (huge.status_code, huge.json()["code"]) == (413, "request_too_large")
    not_json = http.post(f"/v1/wallets/{wallet}/top-up", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()["field"]) == (422, "body")
    unknown = http.get(f"/v1/wallets/{wallet}/balance", params={"colour": "red"})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "colour")
    assert store.export_state() == before


def test_an_unexpected_error_is_a_500_that_says_nothing(store: Any) -> None:
    def broken(secret: str) -> Principal:
        raise RuntimeError(f"database password is hunter2 ({secret})")

    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("prepaid_wallet.http")
    logger.addHandler(handler)
    app = create_app(store, authenticate=broken)
    try:
        with TestClient(app) as client:
            answer = client.get("/v1/wallets", headers={"Authorization": "Bearer s3cret"})
    finally:
        logger.removeHandler(handler)
    text = logged.getvalue()
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal"
    assert "hunter2" not in answer.text
    assert "s3cret" not in answer.text
    assert "RuntimeError" in text  # the kind of error is logged, never its text
    assert "hunter2" not in text
    assert "s3cret" not in text


def test_call_runs_any_operation_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    def call(*args: str) -> tuple[int, Any]:
        capsys.readouterr()
        code = main(["--db", url, *args])
        text = capsys.readouterr().out
        return code, json.loads(text) if code == 0 and text.strip() else None

    assert main(["--db", url, "init"]) == 0
    code, wallet = call("call", "open_wallet", '{"owner_id": "ana", "currency": "EUR"}',
                        "--tenant", "hub")
    assert code == 0
    body = json.dumps({"wallet_id": wallet["id"], "amount": eur("5.00"), "method": "cash"})
    first = call("call", "top_up", body, "--idempotency-key", "t-1")
    assert call("call", "top_up", body, "--idempotency-key", "t-1") == first  # once
    code, balance = call("call", "balance", json.dumps({"wallet_id": wallet["id"]}))
    assert balance["open"] == eur("5.00")
    assert call("call", "top_up", '{"wallet_id": 3}')[0] == 2
    assert call("call", "no_such_thing")[0] == 2


class _Down:
    """A store whose every unit of work fails as a store does when its database is gone."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def unit_of_work(self, *, read_only: bool = False) -> Any:
        from prepaid_wallet.errors import StorageError

        del read_only
        raise StorageError("the database cannot be reached")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_health_readiness_and_a_store_that_is_down(store: Any) -> None:
    with TestClient(create_app(store, authenticate=_authenticate, access_log=False)) as up:
        assert up.get("/health").json() == {"status": "ok"}
        assert up.get("/ready").json() == {"status": "ready"}
    down = create_app(_Down(store), authenticate=_authenticate, access_log=False)
    with TestClient(down) as client:
        assert client.get("/health").status_code == 200  # the process lives
        assert client.get("/ready").status_code == 503
        answer = client.get("/v1/wallets", headers={"Authorization": "Bearer admin-secret"})
        assert (answer.status_code, answer.json()["code"]) == (503, "storage")


def test_a_stream_reads_ahead_of_its_client_a_bounded_amount() -> None:
    from prepaid_wallet.http import routes

    pulled = 0

    def endless() -> Iterator[Any]:
        nonlocal pulled
        while True:
            pulled += 1
            yield routes.Principal(f"key_{pulled}", "hub", frozenset())

    chunks = routes._Chunks(endless, "jsonl")
    chunks.start()
    try:
        time.sleep(0.5)  # the client reads nothing meanwhile
        ahead = pulled
        assert ahead <= (chunks._queue.maxsize + 2) * routes._CHUNK_LINES
        time.sleep(0.3)
        assert pulled == ahead  # blocked on the full queue, not reading on
    finally:
        chunks._stop.set()
