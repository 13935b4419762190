"""Webhooks: events written with their cause, the fan-out to the endpoints that want them,
delivery to a real HTTP receiver with signatures, retries on a deterministic schedule, the
cap, replay, concurrent dispatchers -- on every backend."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from prepaid_wallet import (
    FixedClock,
    InvalidInputError,
    Money,
    SequentialIds,
    SpendRequest,
    Store,
    WalletService,
)
from prepaid_wallet.app.outbox import money_data
from prepaid_wallet.app.ports import Event
from prepaid_wallet.app.webhooks import MAX_ATTEMPTS, RETRY_SCHEDULE, DeliveryStatus
from prepaid_wallet.errors import NotEligibleError, SignatureError
from prepaid_wallet.rules.payg import DeviceState
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus
from prepaid_wallet.webhook_signature import sign, verify_signature

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
TENANT = "hub"
OTHER = "shop"
SUCCEEDED = ChargeOutcome(ChargeStatus.SUCCEEDED, reference="pi_1")
DECLINED = ChargeOutcome(ChargeStatus.DECLINED_HARD, message="card declined")
CANCELED = ChargeOutcome(ChargeStatus.CANCELED)
REMINDERS = LowBalanceRule((Threshold(Money.of("10.00", "EUR"), "warn"),))


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def setup(store: Store) -> tuple[WalletService, FixedClock, str]:
    clock = FixedClock(T0)
    svc = WalletService(store, clock=clock, ids=SequentialIds(),
                        rules={TENANT: TenantRules(low_balance=REMINDERS),
                               OTHER: TenantRules(low_balance=REMINDERS)})
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    return svc, clock, w


def pending(store: Store, tenant: str = TENANT) -> list[Event]:
    with store.unit_of_work(read_only=True) as uow:
        return uow.pending_events(tenant, 100)


def data(event: Event) -> dict[str, object]:
    found: dict[str, object] = json.loads(event.payload)
    return found


class Sent:
    """A sender that records each request and answers from a list (then 200)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str],
                 timeout: float) -> int:
        self.requests.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


# -- events ---------------------------------------------------------------------------------------


def test_events_are_written_with_their_cause_for_a_tenant_with_endpoints(store: Store) -> None:
    svc, clock, w = setup(store)
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    ok = svc.start_top_up(w, eur("25.00"), method="card")
    receipt = svc.report_charge(ok.id, SUCCEEDED)
    declined = svc.start_top_up(w, eur("5.00"), method="card")
    svc.report_charge(declined.id, DECLINED)
    canceled = svc.start_top_up(w, eur("6.00"), method="card")
    svc.report_charge(canceled.id, CANCELED)
    late = svc.start_top_up(w, eur("7.00"), method="card")
    held = svc.hold(w, eur("2.00"), window=timedelta(minutes=30))
    lot = svc.award(w, eur("3.00"), reason="promo", expires_at=T0 + timedelta(hours=1))
    clock.advance(timedelta(days=2))
    svc.expire_due()
    events = pending(store)
    assert [e.kind for e in events] == [
        "top_up.succeeded", "top_up.failed", "top_up.canceled", "hold.expired",
        "lot.expired", "top_up.expired"]
    first = data(events[0])
    assert first == {"top_up_id": ok.id, "source": "customer", "amount": {
        "amount": "25.00", "currency": "EUR"}, "method": "card",
        "entry_id": receipt.credited[0]}
    assert data(events[1])["top_up_id"] == declined.id
    assert data(events[3])["hold_id"] == held.id
    assert data(events[3])["amount"] == money_data(eur("2.00"))
    assert data(events[3])["expired_at"] == "2026-03-10T07:30:00Z"
    assert data(events[4])["lot_id"] == lot.id
    assert data(events[4])["amount"] == money_data(eur("3.00"))
    assert data(events[5])["top_up_id"] == late.id
    assert {e.wallet_id for e in events} == {w}
    # the host's events() still reads low-balance events only
    assert svc.events(TENANT) == []


def test_no_event_without_an_endpoint_nor_for_a_refused_or_unchanged_cause(
        store: Store) -> None:
    svc, _clock, w = setup(store)
    top_up = svc.start_top_up(w, eur("25.00"), method="card")
    svc.report_charge(top_up.id, SUCCEEDED)
    assert pending(store) == []  # no endpoint: nothing but low-balance events
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook", kinds=["top_up.failed"])
    svc.report_charge(top_up.id, SUCCEEDED)  # reported again: no change, no event
    second = svc.start_top_up(w, eur("5.00"), method="card")
    svc.report_charge(second.id, SUCCEEDED)  # a kind the endpoint does not want
    assert pending(store) == []
    svc.spend(w, SpendRequest(eur("20.00")))  # 30 -> 10: a low-balance event
    assert [e.kind for e in pending(store)] == ["low_balance"]


def test_upgrade_events_and_none_for_a_refused_call(store: Store) -> None:
    clock = FixedClock(T0)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    wallet = svc.open_wallet(owner_id="amina", tenant_id="solar", currency="KES")
    svc.add_webhook_endpoint("solar", "https://example.test/hook", kinds=["upgrade.called",
                                                                          "upgrade.expired"])
    svc.open_contract(wallet.id, products=["lamp"], daily_rate=Money.of("50", "KES"))
    svc.payg_payment(wallet.id, payment_id="p0", amount=Money.of("500", "KES"))
    with pytest.raises(NotEligibleError):  # the device is not on: refused
        svc.call_upgrade(wallet.id, products=["lamp", "tv"], daily_rate=Money.of("100", "KES"),
                         downpayment=Money.of("1000", "KES"))
    assert pending(store, "solar") == []
    svc.report_device(wallet.id, state=DeviceState.ON)
    clock.advance(timedelta(days=1))
    outcome = svc.call_upgrade(wallet.id, products=["lamp", "tv"],
                               daily_rate=Money.of("100", "KES"),
                               downpayment=Money.of("1000", "KES"))
    assert outcome.upgrade is not None
    clock.advance(timedelta(hours=5))
    assert svc.expire_upgrades() == (outcome.upgrade.upgrade_id,)
    events = pending(store, "solar")
    assert [e.kind for e in events] == ["upgrade.called", "upgrade.expired"]
    called = data(events[0])
    assert called["upgrade_id"] == outcome.upgrade.upgrade_id
    assert called["downpayment"] == {"amount": "1000.00", "currency": "KES"}
    assert called["deadline"] == "2026-03-11T11:00:00Z"
    assert data(events[1])["status"] == "expired"


class Scripted:
    """A gateway that answers each charge from a list."""

    def __init__(self, *answers: ChargeStatus) -> None:
        self.answers = list(answers)

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(self.answers.pop(0))

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(ChargeStatus.UNKNOWN)


def test_automatic_top_up_events(store: Store) -> None:
    from prepaid_wallet.rules.topup import PaymentMethods, TopUpRule

    gateway = Scripted(ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED_HARD)
    svc = WalletService(store, clock=FixedClock(T0), ids=SequentialIds(),
                        rules={TENANT: TenantRules(automatic_top_ups=True)},
                        gateway=gateway)
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    svc.set_top_up_rule(w, TopUpRule(methods=PaymentMethods(primary="card-a"),
                                     threshold=eur("10.00"), amount=eur("20.00"),
                                     minimum=eur("5.00")))
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook",
                             kinds=["top_up.succeeded", "top_up.failed"])
    svc.top_up(w, eur("30.00"), method="cash")
    svc.spend(w, SpendRequest(eur("20.00")))  # at the threshold: an intent
    credited = svc.process_top_ups()
    svc.spend(w, SpendRequest(eur("25.00")))  # below again: another intent
    failed = svc.process_top_ups()
    assert len(failed.given_up) == 1
    events = pending(store)
    assert [e.kind for e in events] == ["top_up.succeeded", "top_up.failed"]
    assert data(events[0]) == {
        "top_up_id": data(events[0])["top_up_id"], "source": "automatic",
        "reason": "threshold", "amount": money_data(eur("20.00")), "method": "card-a",
        "entry_id": credited.credited[0]}
    assert data(events[1])["top_up_id"] == failed.given_up[0]
    assert data(events[1])["failure"] == "hard_declined"


# -- endpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "kinds", "field"), [
    ("ftp://example.test/hook", None, "url"),
    ("/hook", None, "url"),
    ("https://user:pw@example.test/hook", None, "url"),
    ("https://example.test/a hook", None, "url"),
    ("https://example.test/hook", ["top_up.nope"], "kinds"),
    ("https://example.test/hook", "top_up.failed", "kinds"),
])
def test_bad_endpoints_are_refused_and_store_nothing(
        store: Store, url: str, kinds: object, field: str) -> None:
    svc, _, _ = setup(store)
    with pytest.raises(InvalidInputError) as raised:
        svc.add_webhook_endpoint(TENANT, url, kinds=kinds)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert svc.webhook_endpoints(TENANT) == []


def test_endpoints_are_listed_without_secrets_removed_and_rotated(store: Store) -> None:
    svc, clock, _ = setup(store)
    endpoint = svc.add_webhook_endpoint(TENANT, "http://example.test/hook")
    assert endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_")
    assert len(endpoint.secret) > 30
    [listed] = svc.webhook_endpoints(TENANT)
    assert (listed.id, listed.secret, listed.enabled) == (endpoint.id, None, True)
    assert svc.webhook_endpoints(OTHER) == []
    rotated = svc.rotate_webhook_secret(endpoint.id, keep_previous_for=timedelta(hours=1))
    assert rotated.secret != endpoint.secret
    assert rotated.secrets(T0) == (rotated.secret, endpoint.secret)
    assert rotated.secrets(T0 + timedelta(hours=1)) == (rotated.secret,)
    removed = svc.remove_webhook_endpoint(endpoint.id)
    assert (removed.enabled, removed.secret) == (False, None)
    with pytest.raises(InvalidInputError) as raised:
        svc.remove_webhook_endpoint("whe-unknown")
    assert raised.value.field == "endpoint_id"
    scoped = WalletService(store, clock=clock, tenant_id=OTHER)
    with pytest.raises(InvalidInputError):
        scoped.rotate_webhook_secret(endpoint.id)  # another tenant's: as unknown


# -- fan-out --------------------------------------------------------------------------------------


def test_fan_out_goes_to_matching_endpoints_and_leaves_other_tenants_alone(
        store: Store) -> None:
    svc, _, w = setup(store)
    other = svc.open_wallet(owner_id="bob", tenant_id=OTHER, currency="EUR").id
    every = svc.add_webhook_endpoint(TENANT, "https://a.test/hook")
    failures = svc.add_webhook_endpoint(TENANT, "https://b.test/hook", kinds=["top_up.failed"])
    gone = svc.add_webhook_endpoint(TENANT, "https://c.test/hook")
    svc.remove_webhook_endpoint(gone.id)
    ok = svc.start_top_up(w, eur("25.00"), method="card")
    svc.report_charge(ok.id, SUCCEEDED)
    bad = svc.start_top_up(w, eur("5.00"), method="card")
    svc.report_charge(bad.id, DECLINED)
    svc.top_up(other, eur("20.00"), method="card")
    svc.spend(other, SpendRequest(eur("15.00")))  # the other tenant's low-balance event
    assert svc.fan_out_events() == 3
    assert pending(store) == []  # acknowledged
    made = svc.webhook_deliveries(TENANT)
    assert sorted((d.endpoint_id, d.kind) for d in made) == sorted([
        (every.id, "top_up.succeeded"), (every.id, "top_up.failed"),
        (failures.id, "top_up.failed")])
    assert all(d.status is DeliveryStatus.PENDING and d.attempts == 0 for d in made)
    assert svc.fan_out_events() == 0  # never twice
    # a tenant without endpoints keeps its events for events()
    assert [e.owner_id for e in svc.events(OTHER)] == ["bob"]


# -- delivery to a real receiver ------------------------------------------------------------------


class Receiver:
    """An HTTP receiver on 127.0.0.1: checks each signature, fails the first ``fail``
    requests with 500, and handles each event once (by its id)."""

    def __init__(self, secret: str, clock: FixedClock, fail: int = 0) -> None:
        self.secret = secret
        self.clock = clock
        self.fail = fail
        self.requests = 0
        self.handled: list[str] = []
        self.duplicates = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.handle(dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.requests += 1
            try:
                verify_signature(self.secret, headers["Prepaid-Wallet-Signature"], body,
                                 self.clock.now())
            except SignatureError:
                self.bad_signatures += 1
                return 400
            if self.requests <= self.fail:
                return 500
            event = json.loads(body)
            assert headers["Prepaid-Wallet-Event-Id"] == event["id"]
            assert headers["Prepaid-Wallet-Event-Kind"] == event["kind"]
            assert headers["Content-Type"] == "application/json"
            if event["id"] in self.handled:
                self.duplicates += 1
            else:
                self.handled.append(event["id"])
            return 204

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(store: Store) -> tuple[WalletService, FixedClock, str]:
    return setup(store)


def test_a_real_receiver_gets_each_event_once_after_retries(
        store: Store, hub: tuple[WalletService, FixedClock, str]) -> None:
    svc, clock, w = hub
    placeholder = svc.add_webhook_endpoint(TENANT, "http://127.0.0.1:9/unused")
    svc.remove_webhook_endpoint(placeholder.id)
    with Receiver("", clock, fail=2) as receiver:
        endpoint = svc.add_webhook_endpoint(TENANT, receiver.url)
        assert endpoint.secret is not None
        receiver.secret = endpoint.secret
        top_up = svc.start_top_up(w, eur("25.00"), method="card")
        svc.report_charge(top_up.id, SUCCEEDED)
        svc.spend(w, SpendRequest(eur("20.00")))  # 25 -> 5: low balance
        first = svc.deliver_webhooks()  # both fail with 500
        assert (first.fanned_out, first.delivered, len(first.retried)) == (2, (), 2)
        assert svc.deliver_webhooks().retried == ()  # not due yet
        clock.advance(RETRY_SCHEDULE[0])
        second = svc.deliver_webhooks()
        assert len(second.delivered) == 2
        assert receiver.requests == 4
        assert receiver.bad_signatures == 0
        assert receiver.duplicates == 0
        assert len(receiver.handled) == 2
        log = svc.webhook_deliveries(TENANT, status="delivered")
        assert {d.attempts for d in log} == {2}
        assert {d.last_status for d in log} == {204}
        assert {d.delivered_at for d in log} == {T0 + RETRY_SCHEDULE[0]}
        assert {d.kind for d in log} == {"top_up.succeeded", "low_balance"}
        [low] = [d for d in log if d.kind == "low_balance"]
        body = json.loads(low.body())
        assert body["data"]["open"] == {"amount": "5.00", "currency": "EUR"}
        assert body["tenant_id"] == TENANT
        assert body["wallet_id"] == w
        assert body["created_at"] == "2026-03-10T07:00:00Z"
        assert svc.deliver_webhooks() == type(first)()  # nothing left
        # replayed: sent again, and the receiver de-duplicates it by the event id
        assert svc.replay_webhooks(delivery_id=low.id) == (low.id,)
        assert svc.webhook_deliveries(TENANT, status="pending")[0].attempts == 0
        assert svc.deliver_webhooks().delivered == (low.id,)
        assert receiver.duplicates == 1
        assert len(receiver.handled) == 2
        assert svc.events(TENANT) == []  # by webhook, not by events()
        assert svc.verify().ok  # endpoints and deliveries are sealed records like any other


def test_the_back_off_schedule_and_failure_after_the_cap(
        hub: tuple[WalletService, FixedClock, str]) -> None:
    svc, clock, w = hub
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    top_up = svc.start_top_up(w, eur("25.00"), method="card")
    svc.report_charge(top_up.id, SUCCEEDED)
    sender = Sent(*([500, OSError("connection refused"), 302] * 3))
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = svc.deliver_webhooks(send=sender)
        [delivery] = svc.webhook_deliveries(TENANT)
        assert delivery.attempts == attempt
        assert len(sender.requests) == attempt
        if attempt < MAX_ATTEMPTS:
            assert report.retried == (delivery.id,)
            assert delivery.next_attempt_at is not None
            waits.append(delivery.next_attempt_at - clock.now())
            clock.advance(waits[-1] - timedelta(seconds=1))
            assert svc.deliver_webhooks(send=sender).retried == ()  # one second early
            clock.advance(timedelta(seconds=1))
        else:
            assert report.failed == (delivery.id,)
            assert delivery.status is DeliveryStatus.FAILED
    assert waits == [*RETRY_SCHEDULE, RETRY_SCHEDULE[-1]]
    log = svc.webhook_deliveries(TENANT, status="failed")
    assert len(log) == 1  # the eighth answer was the network error
    assert (log[0].last_status, log[0].last_error) == (None, "OSError: connection refused")
    clock.advance(timedelta(days=30))
    assert svc.deliver_webhooks(send=sender) == type(report)()  # never sent again
    # replayed by its event: sent once more
    assert svc.replay_webhooks(event_id=log[0].event_id) == (log[0].id,)
    assert svc.deliver_webhooks(send=Sent(200)).delivered == (log[0].id,)


def test_a_network_error_is_kept_short_and_retried(
        hub: tuple[WalletService, FixedClock, str]) -> None:
    svc, _clock, w = hub
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    svc.top_up(w, eur("20.00"), method="card")
    svc.spend(w, SpendRequest(eur("15.00")))
    report = svc.deliver_webhooks(send=Sent(TimeoutError("timed out " + "x" * 500)))
    [delivery] = svc.webhook_deliveries(TENANT)
    assert report.retried == (delivery.id,)
    assert delivery.last_status is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("TimeoutError: timed out")
    assert len(delivery.last_error) == 200


def test_replay_since_an_instant_and_a_removed_endpoint_fails_its_deliveries(
        hub: tuple[WalletService, FixedClock, str]) -> None:
    svc, clock, w = hub
    endpoint = svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    svc.top_up(w, eur("20.00"), method="card")
    svc.spend(w, SpendRequest(eur("15.00")))  # an event at T0
    clock.advance(timedelta(hours=1))
    svc.top_up(w, eur("20.00"), method="card")
    svc.spend(w, SpendRequest(eur("20.00")))  # another at T0 + 1h
    assert len(svc.deliver_webhooks(send=Sent()).delivered) == 2
    replayed = svc.replay_webhooks(tenant_id=TENANT, since=T0 + timedelta(minutes=30))
    assert len(replayed) == 1
    assert [d.id for d in svc.webhook_deliveries(TENANT, status="pending")] == list(replayed)
    with pytest.raises(InvalidInputError):
        svc.replay_webhooks(delivery_id="nope")
    with pytest.raises(InvalidInputError):
        svc.replay_webhooks()
    svc.remove_webhook_endpoint(endpoint.id)
    sender = Sent()
    assert svc.deliver_webhooks(send=sender).failed == replayed
    assert sender.requests == []
    assert svc.webhook_deliveries(TENANT, status="failed")[0].last_error == (
        "the endpoint was removed")


def test_two_dispatchers_never_send_one_delivery_at_the_same_time(
        hub: tuple[WalletService, FixedClock, str]) -> None:
    svc, _clock, _ = hub
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    wallets = [svc.open_wallet(owner_id=f"o{n}", tenant_id=TENANT, currency="EUR").id
               for n in range(6)]
    for w in wallets:
        svc.top_up(w, eur("20.00"), method="card")
        svc.spend(w, SpendRequest(eur("15.00")))
    assert svc.fan_out_events() == 6
    lock = threading.Lock()
    in_flight: set[str] = set()
    sends: list[str] = []
    overlaps: list[str] = []

    def slow(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        event_id = headers["Prepaid-Wallet-Event-Id"]
        with lock:
            if event_id in in_flight:
                overlaps.append(event_id)
            in_flight.add(event_id)
            sends.append(event_id)
        time.sleep(0.02)
        with lock:
            in_flight.discard(event_id)
        return 200

    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            for _ in range(3):
                svc.deliver_webhooks(send=slow, limit=4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert overlaps == []
    assert sorted(sends) == sorted(set(sends))
    assert len(sends) == 6
    assert len(svc.webhook_deliveries(TENANT, status="delivered")) == 6


def test_a_crashed_dispatchers_lease_ends_and_another_sends_it(
        hub: tuple[WalletService, FixedClock, str]) -> None:
    from prepaid_wallet.app import webhooks

    svc, clock, w = hub
    svc.add_webhook_endpoint(TENANT, "https://example.test/hook")
    svc.top_up(w, eur("20.00"), method="card")
    svc.spend(w, SpendRequest(eur("15.00")))
    svc.fan_out_events()
    claimed, _ = webhooks._claim(svc._env, 10)  # then the process dies before sending
    assert len(claimed) == 1
    assert svc.deliver_webhooks(send=Sent()).delivered == ()  # leased
    clock.advance(webhooks.LEASE + timedelta(seconds=webhooks.TIMEOUT))
    assert svc.deliver_webhooks(send=Sent()).delivered == (claimed[0].delivery.id,)


# -- signatures -----------------------------------------------------------------------------------


def test_verify_signature_rejects_a_changed_body_a_wrong_secret_and_a_stale_timestamp() -> None:
    body = b'{"id":"ev_1","kind":"top_up.succeeded"}'
    header = sign("whsec_a", body, T0)
    verify_signature("whsec_a", header, body, T0 + timedelta(seconds=300))
    with pytest.raises(SignatureError, match="matches"):
        verify_signature("whsec_a", header, body.replace(b"ev_1", b"ev_2"), T0)
    with pytest.raises(SignatureError, match="matches"):
        verify_signature("whsec_b", header, body, T0)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature("whsec_a", header, body, T0 + timedelta(seconds=301))
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature("whsec_a", header, body, T0 - timedelta(minutes=10))
    verify_signature("whsec_a", header, body, T0 + timedelta(minutes=9),
                     tolerance=timedelta(minutes=10))
    for broken in ("", "v1=abc", f"t={int(T0.timestamp())}", "t=x,v1=abc", "nonsense"):
        with pytest.raises(SignatureError):
            verify_signature("whsec_a", broken, body, T0)
    both = sign(["whsec_new", "whsec_old"], body, T0)  # during a rotation
    verify_signature("whsec_new", both, body, T0)
    verify_signature("whsec_old", both, body, T0)
    assert header.startswith(f"t={int(T0.timestamp())},v1=")
