"""Customer top-ups: started pending, credited exactly once when the provider reports success
(through the call automatic top-ups share), never on failure or cancellation, expired when
their time is up and still credited by a late success -- on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prepaid_wallet import (
    FixedClock,
    InvalidAmountError,
    InvalidInputError,
    LimitExceededError,
    Money,
    SequentialIds,
    Store,
    WalletService,
)
from prepaid_wallet.rules.customer_top_ups import CustomerTopUpRules
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus
from prepaid_wallet.rules.topup.customer import CustomerTopUpStatus
from tests.backends import available_backends

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
TENANT = "hub"
SUCCEEDED = ChargeOutcome(ChargeStatus.SUCCEEDED, reference="pi_1")
FAILED = ChargeOutcome(ChargeStatus.DECLINED_HARD, message="card declined")
CANCELED = ChargeOutcome(ChargeStatus.CANCELED)
UNKNOWN = ChargeOutcome(ChargeStatus.UNKNOWN, message="processing")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


@pytest.fixture(params=sorted(available_backends()))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = available_backends()[request.param](tmp_path)
    yield made
    made.close()


def setup(store: Store, rules: TenantRules | None = None
          ) -> tuple[WalletService, FixedClock, str]:
    clock = FixedClock(T0)
    svc = WalletService(store, clock=clock, ids=SequentialIds(),
                        rules={TENANT: rules or TenantRules()})
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    return svc, clock, w


def test_a_top_up_is_pending_until_the_provider_says_it_succeeded(store: Store) -> None:
    svc, _, w = setup(store)
    top_up = svc.start_top_up(w, eur("25.00"), method="card", actor="ann",
                              metadata={"session": "cs_1"})
    assert top_up.status is CustomerTopUpStatus.PENDING
    assert top_up.expires_at == T0 + timedelta(days=1)
    assert svc.get_wallet(w).open == eur("0.00")  # no money moved
    assert svc.pending_top_ups(wallet_id=w) == [top_up]
    assert svc.pending_top_ups(tenant_id=TENANT) == [top_up]
    assert svc.report_charge(top_up.id, UNKNOWN).pending == (top_up.id,)
    report = svc.report_charge(top_up.id, SUCCEEDED)
    [entry_id] = report.credited
    assert svc.get_wallet(w).open == eur("25.00")
    entry = svc.entry(entry_id)
    assert entry.actor == "ann"
    assert dict(entry.metadata) == {"session": "cs_1", "customer_top_up": top_up.id}
    # reported again, from anywhere, in any form: nothing more
    for outcome in (SUCCEEDED, ChargeOutcome(ChargeStatus.SUCCEEDED), FAILED, CANCELED, UNKNOWN):
        assert svc.report_charge(top_up.id, outcome).credited == ()
    done = svc.customer_top_up(top_up.id)
    assert done is not None
    assert done.status is CustomerTopUpStatus.SUCCEEDED
    assert done.entry_id == entry_id
    assert done.outcome == SUCCEEDED
    assert svc.pending_top_ups(wallet_id=w) == []
    assert svc.get_wallet(w).open == eur("25.00")
    assert svc.verify().ok


def test_a_report_needs_no_gateway_and_no_particular_process(store: Store) -> None:
    svc, clock, w = setup(store)
    top_up = svc.start_top_up(w, eur("10.00"), method="card")
    webhook = WalletService(store, clock=clock, ids=SequentialIds(start=500))
    redirect = WalletService(store, clock=clock, ids=SequentialIds(start=900))
    assert len(webhook.report_charge(top_up.id, SUCCEEDED).credited) == 1
    assert redirect.report_charge(top_up.id, SUCCEEDED).credited == ()
    assert svc.get_wallet(w).open == eur("10.00")


def test_failure_and_cancellation_credit_nothing(store: Store) -> None:
    svc, _, w = setup(store)
    failed = svc.start_top_up(w, eur("10.00"), method="card")
    canceled = svc.start_top_up(w, eur("10.00"), method="card")
    assert svc.report_charge(failed.id, FAILED).given_up == (failed.id,)
    assert svc.report_charge(canceled.id, CANCELED).given_up == (canceled.id,)
    assert svc.report_charge(canceled.id, FAILED).credited == ()
    statuses = [svc.customer_top_up(t.id).status for t in (failed, canceled)]  # type: ignore[union-attr]
    assert statuses == [CustomerTopUpStatus.FAILED, CustomerTopUpStatus.CANCELED]
    assert svc.get_wallet(w).open == eur("0.00")
    assert svc.verify().ok


def test_a_success_after_a_failure_is_credited_and_says_so(store: Store) -> None:
    """A provider may decline a first attempt and take a second one for the same payment, and
    deliver the two answers in any order: a success is believed whenever it comes."""
    svc, _, w = setup(store)
    top_up = svc.start_top_up(w, eur("10.00"), method="card")
    svc.report_charge(top_up.id, FAILED)
    [entry_id] = svc.report_charge(top_up.id, SUCCEEDED).credited
    assert dict(svc.entry(entry_id).metadata)["reported_after"] == "failed"
    assert svc.get_wallet(w).open == eur("10.00")
    # the other order ends the same way
    other = svc.start_top_up(w, eur("10.00"), method="card")
    svc.report_charge(other.id, SUCCEEDED)
    svc.report_charge(other.id, FAILED)
    found = svc.customer_top_up(other.id)
    assert found is not None
    assert found.status is CustomerTopUpStatus.SUCCEEDED
    assert svc.get_wallet(w).open == eur("20.00")


def test_a_pending_top_up_expires_and_a_late_success_still_credits(store: Store) -> None:
    rules = TenantRules(customer_top_ups=CustomerTopUpRules(lifetime=timedelta(minutes=30)))
    svc, clock, w = setup(store, rules)
    top_up = svc.start_top_up(w, eur("10.00"), method="card")
    kept = svc.start_top_up(w, eur("5.00"), method="card")
    clock.advance(timedelta(minutes=29))
    assert svc.expire_due().top_ups_expired == ()
    svc.report_charge(kept.id, UNKNOWN)  # no final answer: it expires all the same
    clock.advance(timedelta(minutes=1))
    assert svc.expire_due().top_ups_expired == (top_up.id, kept.id)
    assert svc.expire_due().top_ups_expired == ()
    assert svc.pending_top_ups(wallet_id=w) == []
    assert svc.report_charge(kept.id, FAILED).credited == ()  # after expiry: nothing
    [entry_id] = svc.report_charge(top_up.id, SUCCEEDED).credited
    assert dict(svc.entry(entry_id).metadata)["reported_after"] == "expired"
    found = svc.customer_top_up(top_up.id)
    assert found is not None
    assert found.superseded is CustomerTopUpStatus.EXPIRED
    assert svc.get_wallet(w).open == eur("10.00")
    assert svc.verify().ok


def test_a_success_past_the_lifetime_but_before_the_sweep_is_late_too(store: Store) -> None:
    rules = TenantRules(customer_top_ups=CustomerTopUpRules(lifetime=timedelta(minutes=5)))
    svc, clock, w = setup(store, rules)
    top_up = svc.start_top_up(w, eur("10.00"), method="card")
    clock.advance(timedelta(minutes=6))
    [entry_id] = svc.report_charge(top_up.id, SUCCEEDED).credited
    assert dict(svc.entry(entry_id).metadata)["reported_after"] == "expired"


def test_bounds_of_the_tenant_and_limits_of_the_wallet_at_start(store: Store) -> None:
    rules = TenantRules(
        customer_top_ups=CustomerTopUpRules(minimum=eur("5.00"), maximum=eur("100.00")),
        limits=Limits(max_balance=eur("50.00")))
    svc, _, w = setup(store, rules)
    before = store.export_state()
    with pytest.raises(InvalidAmountError) as low:
        svc.start_top_up(w, eur("4.99"), method="card")
    assert low.value.field == "amount"
    with pytest.raises(InvalidAmountError) as high:
        svc.start_top_up(w, eur("100.01"), method="card")
    assert high.value.field == "amount"
    with pytest.raises(LimitExceededError):
        svc.start_top_up(w, eur("50.01"), method="card")
    assert store.export_state() == before
    assert svc.start_top_up(w, eur("5.00"), method="card").amount == eur("5.00")


def test_limits_checked_again_at_credit_refund_due(store: Store) -> None:
    svc, _, w = setup(store, TenantRules(limits=Limits(max_balance=eur("30.00"))))
    first = svc.start_top_up(w, eur("20.00"), method="card")
    second = svc.start_top_up(w, eur("20.00"), method="card")
    assert len(svc.report_charge(first.id, SUCCEEDED).credited) == 1
    report = svc.report_charge(second.id, SUCCEEDED)
    assert report.credited == ()
    assert report.given_up == (second.id,)
    found = svc.customer_top_up(second.id)
    assert found is not None
    assert found.status is CustomerTopUpStatus.REFUND_DUE
    assert found.refundable == eur("20.00")
    assert svc.get_wallet(w).open == eur("20.00")
    assert svc.verify().ok


def test_a_start_under_a_key_is_started_once(store: Store) -> None:
    svc, _, w = setup(store)
    one = svc.start_top_up(w, eur("10.00"), method="card", idempotency_key="checkout-1")
    again = svc.start_top_up(w, eur("10.00"), method="card", idempotency_key="checkout-1")
    assert again == one
    assert len(svc.pending_top_ups(wallet_id=w)) == 1


def test_an_unknown_or_foreign_id_is_refused(store: Store) -> None:
    svc, clock, w = setup(store)
    top_up = svc.start_top_up(w, eur("10.00"), method="card")
    with pytest.raises(InvalidInputError) as unknown:
        svc.report_charge("ctu_999999", SUCCEEDED)
    assert unknown.value.field == "idempotency_key"
    other = WalletService(store, clock=clock, tenant_id="elsewhere")
    with pytest.raises(InvalidInputError) as foreign:
        other.report_charge(top_up.id, SUCCEEDED)
    assert foreign.value.field == "idempotency_key"
    assert other.customer_top_up(top_up.id) is None
    assert other.pending_top_ups(tenant_id=TENANT) == []
    assert svc.get_wallet(w).open == eur("0.00")


def test_settings_round_trip_and_stay_out_of_default_rules() -> None:
    assert "customer_top_ups" not in TenantRules().to_data()
    rules = TenantRules(customer_top_ups=CustomerTopUpRules(
        minimum=eur("5.00"), maximum=eur("250.00"), lifetime=timedelta(hours=2)))
    data = rules.to_data()
    assert data["customer_top_ups"] == {"minimum": {"minor": 500, "currency": "EUR"},
                                        "maximum": {"minor": 25000, "currency": "EUR"},
                                        "lifetime_seconds": 7200}
    assert TenantRules.from_data(data) == rules
    bad = {"customer_top_ups": {"minimum": {"minor": -1, "currency": "EUR"}}}
    with pytest.raises(InvalidAmountError) as wrong:
        TenantRules.from_data(bad)
    assert wrong.value.field == "customer_top_ups.minimum"
    with pytest.raises(InvalidInputError) as short:
        TenantRules.from_data({"customer_top_ups": {"lifetime_seconds": 1}})
    assert short.value.field == "customer_top_ups.lifetime_seconds"
