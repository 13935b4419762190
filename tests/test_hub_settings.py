"""Hub settings on every backend: a member's own payment mode (only where the hub allows
member modes, and only then read), a hub's default floor for new wallets, and changing one
wallet's floor -- each change kept with who made it, when and why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from prepaid_wallet import FixedClock, Money, SequentialIds, Store, WalletService
from prepaid_wallet.errors import FloorAboveBalanceError, InvalidInputError, SpendDeniedError
from prepaid_wallet.policies import PaymentMode, SpendRequest
from prepaid_wallet.rules.hub import WalletTerm
from prepaid_wallet.rules.tenant import TenantRules
from tests.backends import durable_backends

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
HUB = "hub"
MEMBER_MODES = TenantRules(member_payment_modes=True)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _service(store: Store, rules: TenantRules = MEMBER_MODES) -> WalletService:
    return WalletService(store, clock=FixedClock(T0), ids=SequentialIds(), rules={HUB: rules},
                         actor="service")


def _member(svc: WalletService, credit: str = "10.00") -> str:
    wallet = svc.open_wallet(owner_id="ann", tenant_id=HUB, currency="EUR")
    if credit != "0.00":
        svc.top_up(wallet.id, eur(credit), method="card")
    return wallet.id


# -- payment mode ---------------------------------------------------------------------------


def test_a_member_mode_overrides_the_hubs_and_is_recorded(store: Store) -> None:
    svc = _service(store)
    wallet = _member(svc)
    assert svc.payment_mode(wallet) is PaymentMode.CREDIT_ONLY
    with pytest.raises(SpendDeniedError):
        svc.spend(wallet, SpendRequest(eur("15.00")))
    change = svc.set_payment_mode(wallet, PaymentMode.CREDIT_FIRST, actor="mia",
                                  reason="pays the rest by card")
    assert (change.term, change.before, change.after) == (
        WalletTerm.PAYMENT_MODE, None, "credit_first")
    assert (change.actor, change.reason, change.at) == ("mia", "pays the rest by card", T0)
    assert svc.payment_mode(wallet) is PaymentMode.CREDIT_FIRST
    result = svc.spend(wallet, SpendRequest(eur("15.00")))
    assert result.amount == eur("10.00")
    assert result.remainder_due == eur("5.00")
    back = svc.set_payment_mode(wallet, None)
    assert (back.before, back.after, back.actor, back.reason) == (
        "credit_first", None, "service", None)
    assert svc.payment_mode(wallet) is PaymentMode.CREDIT_ONLY
    assert svc.wallet_term_changes(wallet) == [change, back]
    assert svc.wallet_term_changes(wallet, "floor") == []


def test_a_member_mode_needs_a_hub_that_allows_them(store: Store) -> None:
    svc = _service(store, TenantRules())
    wallet = _member(svc)
    before = store.export_state()
    with pytest.raises(InvalidInputError) as caught:
        svc.set_payment_mode(wallet, PaymentMode.CREDIT_FIRST, actor="mia")
    assert caught.value.field == "mode"
    assert store.export_state() == before


def test_a_stored_member_mode_is_neither_read_nor_applied_once_the_hub_disallows_them(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _service(store)
    wallet = _member(svc)
    svc.set_payment_mode(wallet, PaymentMode.CREDIT_FIRST)
    svc.set_tenant_rules(HUB, TenantRules())
    assert svc.payment_mode(wallet) is PaymentMode.CREDIT_ONLY

    def unread(*args: object) -> None:
        raise AssertionError("the member's mode was read")

    monkeypatch.setattr("prepaid_wallet.app.decision.get_setting", unread)
    with pytest.raises(SpendDeniedError):
        svc.spend(wallet, SpendRequest(eur("15.00")))
    assert svc.spend(wallet, SpendRequest(eur("5.00"))).amount == eur("5.00")


def test_setting_a_mode_under_a_key_replays(store: Store) -> None:
    svc = _service(store)
    wallet = _member(svc)
    first = svc.set_payment_mode(wallet, PaymentMode.CREDIT_FIRST, idempotency_key="m-1")
    again = svc.set_payment_mode(wallet, PaymentMode.CREDIT_FIRST, idempotency_key="m-1")
    assert again == first
    assert len(svc.wallet_term_changes(wallet)) == 1


# -- default floor --------------------------------------------------------------------------


def test_a_new_wallet_takes_the_hubs_default_floor_for_its_currency(store: Store) -> None:
    rules = TenantRules(default_floors=(eur("-100.00"), Money.of("-500", "JPY")))
    svc = _service(store, rules)
    eur_wallet = svc.open_wallet(owner_id="ann", tenant_id=HUB, currency="EUR")
    jpy_wallet = svc.open_wallet(owner_id="ann", tenant_id=HUB, currency="JPY")
    usd_wallet = svc.open_wallet(owner_id="ann", tenant_id=HUB, currency="USD")
    own = svc.open_wallet(owner_id="bob", tenant_id=HUB, currency="EUR", floor=eur("-5.00"))
    assert eur_wallet.floor == eur("-100.00")
    assert jpy_wallet.floor == Money.of("-500", "JPY")
    assert usd_wallet.floor == Money.zero("USD")
    assert own.floor == eur("-5.00")
    assert svc.spend(eur_wallet.id, SpendRequest(eur("60.00"))).amount == eur("60.00")
    assert svc.get_wallet(eur_wallet.id).open == eur("-60.00")


def test_default_floors_round_trip_and_are_checked() -> None:
    rules = TenantRules(default_floors=(eur("-100.00"),))
    assert rules.to_data()["default_floors"] == [{"minor": -10000, "currency": "EUR"}]
    assert TenantRules.from_data(rules.to_data()) == rules
    assert rules.default_floor("EUR") == eur("-100.00")
    assert rules.default_floor("USD") == Money.zero("USD")
    with pytest.raises(InvalidInputError) as caught:
        TenantRules(default_floors=(eur("1.00"),))
    assert caught.value.field == "default_floors[0]"
    with pytest.raises(InvalidInputError) as caught:
        TenantRules(default_floors=(eur("-1.00"), eur("-2.00")))
    assert caught.value.field == "default_floors"


# -- one wallet's floor ---------------------------------------------------------------------


def test_a_wallets_floor_changes_with_who_when_and_why(store: Store) -> None:
    svc = _service(store)
    wallet = _member(svc, "10.00")
    change = svc.set_floor(wallet, eur("-50.00"), actor="mia", reason="trusted member")
    assert (change.term, change.before, change.after, change.actor, change.reason) == (
        WalletTerm.FLOOR, "0.00", "-50.00", "mia", "trusted member")
    assert svc.get_wallet(wallet).floor == eur("-50.00")
    assert svc.spend(wallet, SpendRequest(eur("55.00"))).amount == eur("55.00")
    assert svc.get_wallet(wallet).open == eur("-45.00")
    assert svc.verify().ok
    # A floor above the open balance is refused: the wallet would be below it.
    before = store.export_state()
    with pytest.raises(FloorAboveBalanceError) as caught:
        svc.set_floor(wallet, eur("-40.00"), actor="mia", reason=None)
    assert (caught.value.floor, caught.value.open) == (eur("-40.00"), eur("-45.00"))
    assert store.export_state() == before
    svc.top_up(wallet, eur("45.00"), method="card")
    back = svc.set_floor(wallet, eur("0.00"), actor="leo", reason=None)
    assert (back.before, back.after) == ("-50.00", "0.00")
    assert svc.wallet_term_changes(wallet, "floor") == [change, back]
    with pytest.raises(SpendDeniedError):
        svc.spend(wallet, SpendRequest(eur("0.01")))
    assert svc.verify().ok


def test_a_floor_set_under_a_key_replays_and_its_refusal_too(store: Store) -> None:
    svc = _service(store)
    wallet = _member(svc, "0.00")
    first = svc.set_floor(wallet, eur("-5.00"), actor="mia", reason=None, idempotency_key="f-1")
    assert svc.set_floor(wallet, eur("-5.00"), actor="mia", reason=None,
                         idempotency_key="f-1") == first
    svc.spend(wallet, SpendRequest(eur("5.00")))
    for _ in range(2):
        with pytest.raises(FloorAboveBalanceError):
            svc.set_floor(wallet, eur("0.00"), actor="mia", reason=None, idempotency_key="f-2")
    assert len(svc.wallet_term_changes(wallet)) == 1


@pytest.mark.parametrize("backend", sorted(durable_backends()))
def test_a_changed_floor_survives_reopening_the_store(backend: str, tmp_path: Path) -> None:
    from prepaid_wallet import open_store

    url = durable_backends()[backend](tmp_path)
    store = open_store(url, create=True)
    svc = _service(store)
    wallet = _member(svc, "0.00")
    svc.set_floor(wallet, eur("-20.00"), actor="mia", reason="season")
    store.close()
    again = open_store(url)
    try:
        svc = _service(again)
        assert svc.get_wallet(wallet).floor == eur("-20.00")
        assert svc.spend(wallet, SpendRequest(eur("20.00"))).amount == eur("20.00")
        assert svc.verify().ok
    finally:
        again.close()
