"""Concurrent clients over HTTP: a real ``prepaid-wallet serve`` with three worker processes,
on SQLite and on PostgreSQL, under many client threads at once.

Set-up (directly on the store): one wallet to spend from, funded with far less than the clients
will try to spend, and three wallets to transfer among. Then ``THREADS`` client threads (one
keep-alive :class:`httpx.Client` each) send spends from the first wallet and transfers among the
others at random, every request under an ``Idempotency-Key`` of its own. Some first attempts are
sent with a read timeout too short for any answer: the client sees a transport error, not an
answer, and sends the same request again under the same key (the first may or may not have been
run by the server; the retry may even arrive while the first is still running) until it gets
one.

Afterwards, read from the store directly (``open_store(url)``):

* no open balance is below its floor;
* every acknowledged (200) request is in the journal exactly once: one entry under its key,
  the entry its answer named, of its kind, moving its amount between its wallets;
* no refused (402) request wrote anything under its key, and every request got an answer;
* every wallet's balance is its funding plus and minus the acknowledged amounts, and the
  ``GET .../balance`` of the API says the same;
* ``verify()`` is clean.

No answer other than 200 and 402 is expected. ``HTTP_CONC_OPS`` sets the requests per thread.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from prepaid_wallet import Money, WalletService, open_store
from prepaid_wallet.ledger import Entry, open_account
from tests.backends import durable_backends
from tests.http_support import Server, make_key, money

TENANT = "conc"
SERVER_WORKERS = 3
THREADS = 8
OPS = int(os.environ.get("HTTP_CONC_OPS", "50"))
#: The spending wallet holds this; the clients try to spend about 8 x 25 x 1.75 EUR from it.
SPEND_FUNDING = Decimal("40.00")
TRANSFER_WALLETS = 3
TRANSFER_FUNDING = Decimal("20.00")
#: The share of first attempts sent with a read timeout no answer can meet.
NO_ANSWER_RATE = 0.15
NO_ANSWER_TIMEOUT = httpx.Timeout(60.0, read=0.0005)
MAX_ATTEMPTS = 6


@dataclass
class Request:
    """One request a client sent (and sent again while it got no answer) and its answer."""

    key: str
    kind: str  # "spend" or "transfer"
    source: str
    target: str | None  # the receiving wallet of a transfer
    amount: Decimal
    attempts: int = 0
    status: int | None = None  # None: no answer after MAX_ATTEMPTS
    body: Any = None


def _eur(amount: Decimal) -> Money:
    return Money.of(str(amount), "EUR")


def _fund(url: str) -> tuple[str, list[str]]:
    """The spending wallet and the transfer wallets, funded; their ids."""
    store = open_store(url)
    try:
        svc = WalletService(store)
        spending = svc.open_wallet(owner_id="spender", tenant_id=TENANT, currency="EUR").id
        svc.top_up(spending, _eur(SPEND_FUNDING), method="card", idempotency_key="fund-spend")
        others = []
        for n in range(TRANSFER_WALLETS):
            wallet = svc.open_wallet(owner_id=f"owner-{n}", tenant_id=TENANT, currency="EUR").id
            svc.top_up(wallet, _eur(TRANSFER_FUNDING), method="card",
                       idempotency_key=f"fund-{n}")
            others.append(wallet)
        return spending, others
    finally:
        store.close()


def _send(client: httpx.Client, request: Request, call: Callable[..., httpx.Response],
          rng: random.Random) -> None:
    """Send until answered; the first attempt sometimes gives up before any answer can come."""
    while request.attempts < MAX_ATTEMPTS:
        request.attempts += 1
        no_answer = request.attempts == 1 and rng.random() < NO_ANSWER_RATE
        try:
            response = call(headers={"Idempotency-Key": request.key},
                             timeout=NO_ANSWER_TIMEOUT if no_answer else 60.0)
        except httpx.TransportError:
            continue
        request.status = response.status_code
        request.body = response.json()
        return


def _client_thread(server: Server, secret: str, spending: str, others: list[str], n: int,
                   out: list[Request], errors: list[BaseException],
                   start: threading.Barrier) -> None:
    rng = random.Random(1000 + n)
    try:
        with server.client(secret) as client:
            start.wait()
            for i in range(OPS):
                amount = Decimal(rng.randrange(50, 301, 25)) / 100  # 0.50 .. 3.00
                if rng.random() < 0.5:
                    request = Request(f"c{n}-{i}-spend", "spend", spending, None, amount)
                    path = f"/v1/wallets/{spending}/spend"
                    body: dict[str, Any] = {"request": {"amount": money(str(amount))}}
                else:
                    source, target = rng.sample(others, 2)
                    amount *= 3  # 1.50 .. 9.00: enough to refuse some
                    request = Request(f"c{n}-{i}-transfer", "transfer", source, target, amount)
                    path = "/v1/transfer"
                    body = {"from_wallet_id": source, "to_wallet_id": target,
                            "amount": money(str(amount))}

                def call(*, path: str = path, body: dict[str, Any] = body,
                         **options: Any) -> httpx.Response:
                    return client.post(path, json=body, **options)

                _send(client, request, call, rng)
                out.append(request)
    except BaseException as error:  # handed to the test
        errors.append(error)


def _run_clients(server: Server, secret: str, spending: str,
                 others: list[str]) -> list[Request]:
    out: list[Request] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    threads = [threading.Thread(target=_client_thread,
                                args=(server, secret, spending, others, n, out, errors, start))
               for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    assert errors == [], errors
    return out


def _open_change(entry: Entry, wallet_id: str) -> Decimal:
    """What ``entry`` moved into (positive) or out of (negative) the wallet's open balance."""
    account = open_account(wallet_id)
    return sum((p.amount.amount for p in entry.postings if p.account == account),
               Decimal(0))


def _problems(requests: list[Request], entries: list[Entry]) -> list[str]:
    """Acknowledged requests in the journal exactly once, as answered; refused ones not."""
    by_key: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.idempotency_key is not None:
            by_key.setdefault(entry.idempotency_key, []).append(entry)
    problems = []
    for r in requests:
        written = by_key.get(r.key, [])
        if r.status == 402:
            if written:
                problems.append(f"refused {r.key} wrote {[e.id for e in written]}")
            continue
        if r.status != 200:
            problems.append(f"{r.key}: answered {r.status} {r.body}")
            continue
        if [e.id for e in written] != [r.body["entry_id"]]:
            problems.append(f"acknowledged {r.key} ({r.body['entry_id']}): entries under its "
                            f"key {[e.id for e in written]}")
            continue
        (entry,) = written
        moved = {r.source: -r.amount} if r.target is None else {r.source: -r.amount,
                                                                 r.target: r.amount}
        actual = {w: _open_change(entry, w) for w in moved}
        if entry.kind.value != r.kind or actual != moved:
            problems.append(f"acknowledged {r.key}: {entry.kind.value} moved {actual}, "
                            f"not {r.kind} {moved}")
    return problems


@pytest.mark.parametrize("backend", sorted(durable_backends()))
def test_concurrent_clients_over_http_never_overdraw_nor_double_book(backend: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = durable_backends()[backend](Path(tmp))
        spending, others = _fund(url)
        secret = make_key(url, TENANT, "clerk")
        started = time.monotonic()
        with Server(url, Path(tmp) / "server.log", workers=SERVER_WORKERS) as server:
            requests = _run_clients(server, secret, spending, others)
            with server.client(secret) as client:
                served = {w: client.get(f"/v1/wallets/{w}/balance").json()
                          for w in [spending, *others]}
        elapsed = time.monotonic() - started

        store = open_store(url)
        try:
            with store.unit_of_work(read_only=True) as uow:
                wallets = {w.id: w for w in uow.iter_wallets()}
                entries = list(uow.iter_entries())
            report = WalletService(store).verify()
        finally:
            store.close()

    answered = [r for r in requests if r.status is not None]
    acked = [r for r in requests if r.status == 200]
    print(f"HTTP on {backend}: {len(requests)} requests in {elapsed:.1f}s, {len(acked)} "
          f"acknowledged, {sum(r.attempts > 1 for r in requests)} sent again")
    assert len(requests) == THREADS * OPS
    assert answered == requests, [r.key for r in requests if r.status is None]
    assert _problems(requests, entries) == []

    expected = {spending: SPEND_FUNDING, **dict.fromkeys(others, TRANSFER_FUNDING)}
    for r in acked:
        expected[r.source] -= r.amount
        if r.target is not None:
            expected[r.target] += r.amount
    for wallet_id, balance in expected.items():
        wallet = wallets[wallet_id]
        assert wallet.open.amount == balance, wallet_id
        assert wallet.open >= wallet.floor, wallet_id
        assert served[wallet_id]["open"] == money(f"{balance:.2f}"), wallet_id
    assert report.ok, report

    # The run was a real test: both kinds were acknowledged and refused, the spending wallet
    # was asked for more than it held, and some requests were sent again for want of an answer.
    outcomes = {(r.kind, r.status) for r in requests}
    assert {("spend", 200), ("spend", 402), ("transfer", 200), ("transfer", 402)} <= outcomes
    assert sum(r.amount for r in requests if r.kind == "spend") > SPEND_FUNDING
    assert any(r.attempts > 1 for r in requests)
