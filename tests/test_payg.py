"""Pay-as-you-go time credit on every backend: payments turned into days of service at the
daily rate (whole seconds, rounded down; a lapse never charged), contract performance, the
upgrade call and its eligibility, the four-hour window of elapsed time (DST included; exactly
at the deadline is late), completion and expiry, reconversion and unlinking with their
refusals (each leaving the store as it was), and the money and time ledgers balancing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from prepaid_wallet import Actor, FixedClock, Money, SequentialIds, Store, WalletService
from prepaid_wallet.errors import (
    ContractNotFoundError,
    ContractStateError,
    CurrencyMismatchError,
    DownpaymentNotCoveredError,
    IdempotencyConflictError,
    InvalidInputError,
    NotEligibleError,
    NotEnoughTimeError,
    PaygPaymentNotFoundError,
    PaymentStateError,
    PermissionDeniedError,
    PrepaidWalletError,
)
from prepaid_wallet.ledger import EntryKind, downpayments_account, service_account
from prepaid_wallet.rules.payg import (
    ContractState,
    DeviceState,
    OnTimeKind,
    PaymentStatus,
    UpgradeStatus,
    check_time,
    performance,
    seconds_for,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
#: The procedure's roles: reconversion is for system process officers, unlinking for admins.
OFFICER = Actor("supervisor-1", frozenset({"system_process_officer"}))
ADMIN = Actor("admin-1", frozenset({"admin"}))
OP = "solar"


def kes(text: str) -> Money:
    return Money.of(text, "KES")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def svc(store: Store, clock: FixedClock) -> WalletService:
    return WalletService(store, clock=clock, ids=SequentialIds())


def _customer(svc: WalletService, owner: str = "amina", rate: str = "50", paid: str | None = "500",
              device: DeviceState | None = DeviceState.ON) -> str:
    wallet = svc.open_wallet(owner_id=owner, tenant_id=OP, currency="KES")
    svc.open_contract(wallet.id, products=["lamp"], daily_rate=kes(rate))
    if paid is not None:
        svc.payg_payment(wallet.id, payment_id=f"{owner}-p0", amount=kes(paid))
    if device is not None:
        svc.report_device(wallet.id, state=device)
    return wallet.id


def _money(svc: WalletService, wallet_id: str) -> dict[str, int]:
    """Minor units per kind of account, over the wallet's entries."""
    totals: dict[str, int] = {"in": 0, "service": 0, "downpayments": 0}
    for line in svc.statement(wallet_id).lines:
        entry = svc.entry(line.entry_id)
        for posting in entry.postings:
            if posting.account == service_account(OP):
                totals["service"] += posting.amount.minor_units
            elif posting.account == downpayments_account(OP):
                totals["downpayments"] += posting.amount.minor_units
            elif posting.account.startswith(f"tenant:{OP}:funding:"):
                totals["in"] -= posting.amount.minor_units
    return totals


def _balanced(svc: WalletService, wallet_id: str) -> None:
    """Money in = open balance + money turned into time + downpayments; the time ledger
    balances; the journal verifies."""
    totals = _money(svc, wallet_id)
    open_ = svc.balance(wallet_id).open.minor_units
    assert totals["in"] == open_ + totals["service"] + totals["downpayments"]
    check_time(svc.contract(wallet_id), svc.on_time(wallet_id))
    assert svc.verify().ok


def _unchanged(store: Store, call: object, error: type[PrepaidWalletError]) -> PrepaidWalletError:
    before = store.export_state()
    with pytest.raises(error) as raised:
        call()  # type: ignore[operator]
    assert store.export_state() == before
    return raised.value


# -- time -------------------------------------------------------------------------------------


def test_a_payment_buys_time_at_the_daily_rate(svc: WalletService) -> None:
    wallet_id = _customer(svc, paid=None)
    outcome = svc.payg_payment(wallet_id, payment_id="p1", amount=kes("500"))
    assert outcome.contract.service_end == T0 + timedelta(days=10)
    (line,) = outcome.on_time
    assert (line.kind, line.amount, line.daily_rate, line.time) == (
        OnTimeKind.PAYMENT, kes("500"), kes("50"), timedelta(days=10))
    (payment,) = outcome.payments
    assert payment.status is PaymentStatus.TIME
    assert payment.time == timedelta(days=10)
    kinds = [svc.entry(line.entry_id).kind for line in svc.statement(wallet_id).lines]
    assert kinds == [EntryKind.TOP_UP, EntryKind.TIME]
    assert svc.balance(wallet_id).open == kes("0")
    _balanced(svc, wallet_id)


def test_time_is_whole_seconds_rounded_down() -> None:
    assert seconds_for(kes("0.01"), kes("7")) == timedelta(seconds=123)  # 123.428...
    assert seconds_for(kes("1"), kes("3")) == timedelta(hours=8)
    assert seconds_for(kes("10"), kes("3")) == timedelta(seconds=288_000)


def test_new_time_runs_from_the_later_of_now_and_the_end(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)  # 10 days from T0
    clock.advance(timedelta(days=4))
    svc.payg_payment(wallet_id, payment_id="p1", amount=kes("100"))
    assert svc.contract(wallet_id).service_end == T0 + timedelta(days=12)  # extends the end
    clock.advance(timedelta(days=10))  # T0 + 14 d: two days without service
    outcome = svc.payg_payment(wallet_id, payment_id="p2", amount=kes("100"))
    assert outcome.contract.service_end == T0 + timedelta(days=16)  # from now: no back pay
    assert outcome.contract.lapsed == timedelta(days=2)
    _balanced(svc, wallet_id)


def test_performance_is_the_share_of_time_with_service(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)  # 10 days
    clock.advance(timedelta(days=5))
    assert svc.contract_performance(wallet_id) == Decimal(1)
    clock.advance(timedelta(days=10))  # day 15: 5 days without service
    assert svc.contract_performance(wallet_id) == Decimal("0.666666")
    svc.payg_payment(wallet_id, payment_id="p1", amount=kes("500"))
    clock.advance(timedelta(days=5))  # day 20: still the 5 lapsed days
    assert svc.contract_performance(wallet_id) == Decimal("0.75")
    assert svc.contract_performance(wallet_id, at=T0 + timedelta(days=15)) == Decimal("0.666666")


# -- the upgrade call -------------------------------------------------------------------------


def _call(svc: WalletService, wallet_id: str, down: str = "1000", rate: str = "100",
          **extra: object) -> object:
    return svc.call_upgrade(wallet_id, products=["lamp", "tv"], daily_rate=kes(rate),
                            downpayment=kes(down), **extra)  # type: ignore[arg-type]


def test_the_call_moves_the_customer_to_pay_the_downpayment(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)
    clock.advance(timedelta(days=2))
    outcome = svc.call_upgrade(wallet_id, products=["lamp", "tv"], daily_rate=kes("100"),
                               downpayment=kes("1000"))
    upgrade = outcome.upgrade
    assert upgrade is not None
    assert outcome.contract.state is ContractState.PAY_UPGRADE_DOWNPAYMENT
    assert upgrade.deadline - upgrade.called_at == timedelta(hours=4)
    assert upgrade.time_left_after == timedelta(days=4)  # 8 days at 50 are 4 at 100
    assert (upgrade.performance, upgrade.performance_source) == ("1.000000", "library")
    assert outcome.contract.daily_rate == kes("50")  # nothing re-valued before it is paid


@pytest.mark.parametrize(("setup", "rule"), [
    ("lapsed", "performance"), ("device_off", "device"), ("no_device", "device"),
    ("ended", "service_end")])
def test_an_ineligible_customer_is_refused(svc: WalletService, store: Store, clock: FixedClock,
                                           setup: str, rule: str) -> None:
    wallet_id = _customer(svc, device=None if setup == "no_device" else DeviceState.ON)
    if setup == "lapsed":  # 1 day without service in 20: 0.95 exactly is not above 0.95
        clock.advance(timedelta(days=11))
        svc.payg_payment(wallet_id, payment_id="p1", amount=kes("450"))
        clock.advance(timedelta(days=9))
        assert svc.contract_performance(wallet_id) == Decimal("0.95")
    elif setup == "device_off":
        svc.report_device(wallet_id, state=DeviceState.OFF)
    elif setup == "ended":
        clock.set(T0 + timedelta(days=10))  # the end is now: not in the future
    error = _unchanged(store, lambda: _call(svc, wallet_id), NotEligibleError)
    assert error.rule == rule  # type: ignore[attr-defined]


def test_the_hosts_own_performance_figure_decides(svc: WalletService, store: Store,
                                                  clock: FixedClock) -> None:
    wallet_id = _customer(svc)
    _unchanged(store, lambda: _call(svc, wallet_id, performance=Decimal("0.95")),
               NotEligibleError)
    outcome = _call(svc, wallet_id, performance=Decimal("0.951"))
    assert outcome.upgrade.performance_source == "host"  # type: ignore[attr-defined]


def test_a_second_call_while_one_waits_is_refused(svc: WalletService, store: Store) -> None:
    wallet_id = _customer(svc)
    _call(svc, wallet_id)
    _unchanged(store, lambda: _call(svc, wallet_id), ContractStateError)


# -- the window -------------------------------------------------------------------------------


def test_payments_in_the_window_complete_the_upgrade_when_they_reach_it(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)  # 10 days at 50 from T0
    clock.advance(timedelta(days=2))
    _call(svc, wallet_id)
    clock.advance(timedelta(hours=1))
    held = svc.payg_payment(wallet_id, payment_id="p1", amount=kes("300"))
    assert held.payments[0].status is PaymentStatus.HELD
    assert held.contract.service_end == T0 + timedelta(days=10)  # no time for it
    assert svc.balance(wallet_id).open == kes("300")
    clock.advance(timedelta(hours=2, minutes=59, seconds=59))  # one second before the deadline
    done = svc.payg_payment(wallet_id, payment_id="p2", amount=kes("800"))
    upgrade = done.upgrade
    assert upgrade is not None
    assert upgrade.status is UpgradeStatus.INSTALL_COLLECT_UPGRADE
    assert upgrade.paid_by == "payments"
    contract = done.contract
    assert contract.state is ContractState.INSTALL_COLLECT_UPGRADE
    assert (contract.products, contract.daily_rate) == (("lamp", "tv"), kes("100"))
    at = T0 + timedelta(days=2, hours=3, minutes=59, seconds=59)
    left_before = T0 + timedelta(days=10) - at
    revalued = timedelta(seconds=int(left_before.total_seconds()) // 2)  # 50 -> 100 a day
    assert contract.service_end == at + revalued + timedelta(days=1)  # surplus 100 at 100
    assert [line.kind for line in done.on_time] == [
        OnTimeKind.DOWNPAYMENT, OnTimeKind.REVALUATION, OnTimeKind.SURPLUS]
    assert {p.payment_id: p.status for p in svc.payg_payments(wallet_id)} == {
        "amina-p0": PaymentStatus.TIME, "p1": PaymentStatus.DOWNPAYMENT,
        "p2": PaymentStatus.DOWNPAYMENT}
    totals = _money(svc, wallet_id)
    assert totals == {"in": 160_000, "service": 60_000, "downpayments": 100_000}
    assert svc.balance(wallet_id).open == kes("0")
    _balanced(svc, wallet_id)
    svc.confirm_upgrade_installed(wallet_id)
    assert svc.contract(wallet_id).state is ContractState.ACTIVE
    assert svc.upgrades(wallet_id)[0].status is UpgradeStatus.INSTALLED


def test_a_payment_exactly_at_the_deadline_is_late(svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)
    _call(svc, wallet_id)
    svc.payg_payment(wallet_id, payment_id="p1", amount=kes("300"))
    clock.advance(timedelta(hours=4))
    outcome = svc.payg_payment(wallet_id, payment_id="p2", amount=kes("800"))
    assert outcome.upgrade is not None
    assert outcome.upgrade.status is UpgradeStatus.EXPIRED
    assert outcome.contract.state is ContractState.ACTIVE
    assert outcome.contract.daily_rate == kes("50")
    # Both bought time at the old rate: 6 + 16 days after the first 10.
    assert outcome.contract.service_end == T0 + timedelta(days=32)
    assert {p.payment_id: p.status for p in outcome.payments} == {
        "p1": PaymentStatus.TIME, "p2": PaymentStatus.TIME}
    _balanced(svc, wallet_id)


def test_the_job_expires_the_window_and_turns_held_payments_into_time(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)
    _call(svc, wallet_id)
    svc.payg_payment(wallet_id, payment_id="p1", amount=kes("300"))
    clock.advance(timedelta(hours=4) - timedelta(microseconds=1))
    assert svc.expire_upgrades() == ()
    clock.advance(timedelta(microseconds=1))
    (expired,) = svc.expire_upgrades()
    assert svc.upgrades(wallet_id)[0].upgrade_id == expired
    assert svc.upgrades(wallet_id)[0].status is UpgradeStatus.EXPIRED
    contract = svc.contract(wallet_id)
    assert contract.state is ContractState.ACTIVE
    assert contract.service_end == T0 + timedelta(days=16)
    assert svc.expire_upgrades() == ()
    _balanced(svc, wallet_id)


@pytest.mark.parametrize(("called", "held_at", "late_at"), [
    # Spring forward: 00:30 GMT + 4 h elapsed is 05:30 BST (wall clock 5 hours on).
    (datetime(2026, 3, 29, 0, 30), datetime(2026, 3, 29, 5, 15), datetime(2026, 3, 29, 5, 30)),
    # Fall back: 00:30 BST + 4 h elapsed is 03:30 GMT (wall clock 3 hours on).
    (datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 3, 15), datetime(2026, 10, 25, 3, 30)),
])
def test_the_window_is_four_hours_of_elapsed_time_across_dst(
        store: Store, called: datetime, held_at: datetime, late_at: datetime) -> None:
    london = ZoneInfo("Europe/London")
    clock = FixedClock(called.replace(tzinfo=london) - timedelta(days=1))
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    wallet_id = _customer(svc)
    clock.set(called.replace(tzinfo=london))
    upgrade = _call(svc, wallet_id).upgrade  # type: ignore[attr-defined]
    assert upgrade.deadline - upgrade.called_at == timedelta(hours=4)
    clock.set(held_at.replace(tzinfo=london))
    held = svc.payg_payment(wallet_id, payment_id="p1", amount=kes("100"))
    assert held.payments[0].status is PaymentStatus.HELD
    clock.set(late_at.replace(tzinfo=london))
    late = svc.payg_payment(wallet_id, payment_id="p2", amount=kes("100"))
    assert late.upgrade is not None
    assert late.upgrade.status is UpgradeStatus.EXPIRED


# -- reconversion and unlinking ---------------------------------------------------------------


def test_a_supervisor_reconverts_past_payments_to_pay_the_downpayment(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)  # 10 days at 50
    svc.payg_payment(wallet_id, payment_id="big", amount=kes("1500"))  # 30 more
    clock.advance(timedelta(days=1))
    _call(svc, wallet_id)
    outcome = svc.reconvert_payments(wallet_id, payment_ids=["big"], actor=OFFICER)
    assert outcome.upgrade is not None
    assert outcome.upgrade.paid_by == "reconversion"
    assert outcome.contract.state is ContractState.INSTALL_COLLECT_UPGRADE
    # 39 days left, 30 removed; 9 at 50 re-valued to 4.5 at 100; 1000 paid down; the
    # surplus of 500 buys 5 days at 100.
    assert outcome.contract.service_end == T0 + timedelta(days=1 + 4.5 + 5)
    assert [(line.kind, line.amount, line.time) for line in outcome.on_time] == [
        (OnTimeKind.RECONVERSION, kes("-1500"), timedelta(days=-30)),
        (OnTimeKind.DOWNPAYMENT, kes("1000"), timedelta(0)),
        (OnTimeKind.REVALUATION, kes("0"), timedelta(days=-4.5)),
        (OnTimeKind.SURPLUS, kes("500"), timedelta(days=5)),
    ]
    assert outcome.payments[0].status is PaymentStatus.RECONVERTED
    assert svc.entry(outcome.on_time[0].entry_id).kind is EntryKind.TIME_RETURN  # type: ignore[arg-type]
    assert svc.entry(outcome.on_time[1].entry_id).kind is EntryKind.DOWNPAYMENT  # type: ignore[arg-type]
    assert svc.entry(outcome.on_time[0].entry_id).actor == "supervisor-1"  # type: ignore[arg-type]
    _balanced(svc, wallet_id)


def test_reconversion_refusals_change_nothing(svc: WalletService, store: Store) -> None:
    wallet_id = _customer(svc, paid="1500")  # 30 days at 50
    svc.payg_payment(wallet_id, payment_id="small", amount=kes("100"))
    reconvert = lambda *ids: lambda: svc.reconvert_payments(  # noqa: E731
        wallet_id, payment_ids=list(ids), actor=OFFICER)
    # No upgrade waits for its downpayment.
    _unchanged(store, reconvert("amina-p0"), ContractStateError)
    _call(svc, wallet_id)
    _unchanged(store, reconvert("nobody"), PaygPaymentNotFoundError)
    error = _unchanged(store, reconvert("small"), DownpaymentNotCoveredError)
    assert error.available == kes("100")  # type: ignore[attr-defined]
    svc.payg_payment(wallet_id, payment_id="held", amount=kes("10"))
    _unchanged(store, reconvert("held"), PaymentStateError)


def test_time_to_remove_beyond_the_time_left_is_refused(
        svc: WalletService, store: Store, clock: FixedClock) -> None:
    wallet_id = _customer(svc, paid="1500")  # 30 days at 50
    clock.advance(timedelta(days=25))  # 5 days left
    _call(svc, wallet_id)
    error = _unchanged(store, lambda: svc.reconvert_payments(wallet_id, payment_ids=["amina-p0"],
                                                      actor=OFFICER),
                       NotEnoughTimeError)
    assert (error.needed, error.left) == (30 * 86_400, 5 * 86_400)  # type: ignore[attr-defined]


def test_a_payment_is_reconverted_once(svc: WalletService, store: Store) -> None:
    wallet_id = _customer(svc, paid="1500")
    _call(svc, wallet_id)
    svc.reconvert_payments(wallet_id, payment_ids=["amina-p0"], actor=OFFICER)
    svc.confirm_upgrade_installed(wallet_id)
    _call(svc, wallet_id, rate="200")
    error = _unchanged(store, lambda: svc.reconvert_payments(
        wallet_id, payment_ids=["amina-p0"], actor=OFFICER), PaymentStateError)
    assert error.status == "reconverted"  # type: ignore[attr-defined]


def test_an_admin_unlinks_a_conversion_payment_to_pay_the_downpayment(
        svc: WalletService, store: Store, clock: FixedClock) -> None:
    wallet_id = _customer(svc, paid=None)
    converted = svc.record_conversion(wallet_id, conversion_id="conv-1",
                                      payments={"m1": kes("400"), "m2": kes("1200")})
    assert converted.contract.service_end == T0 + timedelta(days=32)
    assert {p.status for p in converted.payments} == {PaymentStatus.LINKED}
    # Linked payments cannot be selected for a reconversion.
    _call(svc, wallet_id)
    _unchanged(store, lambda: svc.reconvert_payments(wallet_id, payment_ids=["m2"],
                                                     actor=OFFICER), PaymentStateError)
    outcome = svc.unlink_conversion_payment(wallet_id, conversion_id="conv-1", actor=ADMIN)
    # m1 (400) does not cover 1000; m2 does and is taken: 24 days removed, 200 surplus.
    assert outcome.upgrade is not None
    assert outcome.upgrade.paid_by == "unlink"
    assert [p.payment_id for p in outcome.payments] == ["m2"]
    assert outcome.payments[0].status is PaymentStatus.UNLINKED
    (conversion,) = svc.conversions(wallet_id)
    assert (conversion.payment_ids, conversion.unlinked) == (("m1",), ("m2",))
    # 8 days left re-valued to 4 at 100; the surplus of 200 buys 2 more.
    assert outcome.contract.service_end == T0 + timedelta(days=6)
    _balanced(svc, wallet_id)
    svc.confirm_upgrade_installed(wallet_id)
    _call(svc, wallet_id, down="100", rate="200")
    _unchanged(store, lambda: svc.unlink_conversion_payment(
        wallet_id, conversion_id="conv-1", payment_id="m2", actor=ADMIN), PaymentStateError)


def test_a_conversion_under_an_idempotency_key_replays(svc: WalletService, store: Store) -> None:
    """Its payments (a mapping of Money) are part of the request the key stands for."""
    wallet_id = _customer(svc, paid=None)
    first = svc.record_conversion(wallet_id, conversion_id="conv-1",
                                  payments={"m1": kes("400")}, idempotency_key="c1")
    again = svc.record_conversion(wallet_id, conversion_id="conv-1",
                                  payments={"m1": kes("400")}, idempotency_key="c1")
    assert again == first
    error = _unchanged(store, lambda: svc.record_conversion(
        wallet_id, conversion_id="conv-1", payments={"m1": kes("401")},
        idempotency_key="c1"), IdempotencyConflictError)
    assert error.fields == ("payments",)  # type: ignore[attr-defined]


def test_unlinking_refusals_change_nothing(svc: WalletService, store: Store) -> None:
    wallet_id = _customer(svc, paid=None)
    svc.record_conversion(wallet_id, conversion_id="conv-1", payments={"m1": kes("400")})
    svc.report_device(wallet_id, state=DeviceState.ON)
    unlink = lambda **kw: lambda: svc.unlink_conversion_payment(  # noqa: E731
        wallet_id, actor=ADMIN, **kw)
    _unchanged(store, unlink(conversion_id="conv-1"), ContractStateError)
    _call(svc, wallet_id)
    _unchanged(store, unlink(conversion_id="conv-1"), DownpaymentNotCoveredError)
    _unchanged(store, unlink(conversion_id="conv-9"), PaygPaymentNotFoundError)
    _unchanged(store, unlink(conversion_id="conv-1", payment_id="amina-x"),
               PaygPaymentNotFoundError)


# -- bad input and replays --------------------------------------------------------------------


def test_a_payment_reference_is_recorded_once_per_tenant(svc: WalletService, store: Store) -> None:
    first = _customer(svc, owner="a")
    second = _customer(svc, owner="b")
    error = _unchanged(store, lambda: svc.payg_payment(second, payment_id="a-p0",
                                                       amount=kes("5")), InvalidInputError)
    assert error.field == "payment_id"  # type: ignore[attr-defined]
    _unchanged(store, lambda: svc.record_conversion(
        first, conversion_id="c", payments={"b-p0": kes("5")}), InvalidInputError)


def test_commands_need_a_contract_and_its_currency(svc: WalletService, store: Store) -> None:
    wallet = svc.open_wallet(owner_id="x", tenant_id=OP, currency="KES")
    _unchanged(store, lambda: svc.payg_payment(wallet.id, payment_id="p", amount=kes("1")),
               ContractNotFoundError)
    _unchanged(store, lambda: svc.open_contract(wallet.id, products=["lamp"],
                                                daily_rate=Money.of("1", "EUR")),
               CurrencyMismatchError)
    svc.open_contract(wallet.id, products=["lamp"], daily_rate=kes("1"))
    _unchanged(store, lambda: svc.open_contract(wallet.id, products=["lamp"],
                                                daily_rate=kes("1")), ContractStateError)
    _unchanged(store, lambda: svc.confirm_upgrade_installed(wallet.id), ContractStateError)


def test_a_retried_command_returns_the_same_outcome(svc: WalletService, store: Store) -> None:
    wallet_id = _customer(svc)
    first = svc.payg_payment(wallet_id, payment_id="p1", amount=kes("50"), idempotency_key="k1")
    before = store.export_state()
    again = svc.payg_payment(wallet_id, payment_id="p1", amount=kes("50"), idempotency_key="k1")
    assert again == first
    assert store.export_state() == before
    with pytest.raises(ContractStateError):
        svc.reconvert_payments(wallet_id, payment_ids=["p1"], idempotency_key="k2",
                               actor=OFFICER)
    _call(svc, wallet_id)
    with pytest.raises(ContractStateError):  # the refusal is replayed, not re-decided
        svc.reconvert_payments(wallet_id, payment_ids=["p1"], idempotency_key="k2",
                               actor=OFFICER)


def test_the_time_ledger_and_performance_are_pure_functions_of_the_contract(
        svc: WalletService, clock: FixedClock) -> None:
    wallet_id = _customer(svc)
    clock.advance(timedelta(days=12))
    svc.payg_payment(wallet_id, payment_id="p1", amount=kes("25"))
    contract = svc.contract(wallet_id)
    assert performance(contract, T0 + timedelta(days=12)) == Decimal("0.833333")
    check_time(contract, svc.on_time(wallet_id))
    with pytest.raises(InvalidInputError):
        check_time(attrs.evolve(contract, lapsed=timedelta(0)), svc.on_time(wallet_id))


# -- device tokens ----------------------------------------------------------------------------


def test_each_change_of_service_end_issues_the_devices_tokens(
        store: Store, clock: FixedClock) -> None:
    from tests.test_payg_tokens import KEY, Device

    asked: list[tuple[str, str]] = []

    def keys(tenant_id: str, device_id: str) -> str:
        asked.append((tenant_id, device_id))
        return KEY

    svc = WalletService(store, clock=clock, ids=SequentialIds(), device_keys=keys)
    wallet = svc.open_wallet(owner_id="amina", tenant_id=OP, currency="KES")
    svc.open_contract(wallet.id, products=["lamp"], daily_rate=kes("50"), device_id="shs-1",
                      starting_code=123456789)
    device = Device(KEY, 123456789, timedelta(days=1), False)
    paid = svc.payg_payment(wallet.id, payment_id="p1", amount=kes("500"),
                            idempotency_key="pay-1")
    assert [(t.kind.value, t.value) for t in paid.tokens] == [("add_time", 10)]
    for token in paid.tokens:
        device.enter(token, clock.now())
    assert device.end == paid.contract.service_end
    # A retried command returns the same token; nothing new is issued.
    again = svc.payg_payment(wallet.id, payment_id="p1", amount=kes("500"),
                             idempotency_key="pay-1")
    assert again.tokens == paid.tokens
    svc.report_device(wallet.id, state=DeviceState.ON)
    assert svc.report_device(wallet.id, state=DeviceState.ON).tokens == ()  # no change of end
    svc.payg_payment(wallet.id, payment_id="big", amount=kes("1500"))
    clock.advance(timedelta(days=1))
    svc.call_upgrade(wallet.id, products=["lamp", "tv"], daily_rate=kes("100"),
                     downpayment=kes("1000"))
    # Reconversion brings the end back: a SET_TIME code from now.
    outcome = svc.reconvert_payments(wallet.id, payment_ids=["big"], actor=OFFICER)
    assert [t.kind.value for t in outcome.tokens][:1] == ["set_time"]
    for token in outcome.tokens:
        device.enter(token, clock.now())
    whole_days = (outcome.contract.service_end - clock.now()) // timedelta(days=1)
    assert device.end == clock.now() + timedelta(days=whole_days)
    assert set(asked) == {(OP, "shs-1")}
    assert KEY not in repr(store.export_state())


@pytest.mark.parametrize(
    "actor", [None, "supervisor-1", ADMIN, Actor("clerk", frozenset({"clerk"}))])
def test_only_a_system_process_officer_reconverts(svc: WalletService, store: Store,
                                                  actor: Actor | str | None) -> None:
    wallet_id = _customer(svc, paid="1500")
    _call(svc, wallet_id)
    error = _unchanged(store, lambda: svc.reconvert_payments(
        wallet_id, payment_ids=["amina-p0"], actor=actor), PermissionDeniedError)
    assert error.operation == "reconvert_payments"  # type: ignore[attr-defined]


@pytest.mark.parametrize("actor", [None, "admin-1", OFFICER])
def test_only_an_admin_unlinks(svc: WalletService, store: Store,
                               actor: Actor | str | None) -> None:
    wallet_id = _customer(svc, paid=None)
    svc.record_conversion(wallet_id, conversion_id="conv-1", payments={"m1": kes("1200")})
    svc.report_device(wallet_id, state=DeviceState.ON)
    _call(svc, wallet_id)
    _unchanged(store, lambda: svc.unlink_conversion_payment(
        wallet_id, conversion_id="conv-1", actor=actor), PermissionDeniedError)
