"""Stored tenant rules: the JSON form of ``TenantRules`` (exact round trips, bad data named by
its path), and the rules as the store keeps them -- versions set by a command, read by every
process, on every backend."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from prepaid_wallet import (
    ConflictError,
    CurrencyMismatchError,
    FixedClock,
    IdempotencyConflictError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
    Money,
    PaymentMode,
    SpendDeniedError,
    SpendOrder,
    SpendRequest,
    Store,
    TenantMismatchError,
    TenantRulesVersion,
    WalletService,
)
from prepaid_wallet.app import tenant_rules as tenant_rules_module
from prepaid_wallet.rules.fees import FeeRule, PeriodicFee
from prepaid_wallet.rules.limits import LimitRule, Limits, Period, Window
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus, PaymentMethods, TopUpRule

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


CARD_FEE = FeeRule(name="card top-up", operations={Operation.TOP_UP}, fixed=eur("0.30"),
                   percent=Decimal("1.50"), minimum=eur("0.50"), maximum=eur("5.00"))
GUEST_FEE = FeeRule(name="guest spend", operations={Operation.SPEND, Operation.PAYOUT},
                    percent=Decimal(10), owner_groups={"guests", "visitors"})
MONTHLY = PeriodicFee(name="monthly", amount=eur("1.00"), rule="FREQ=MONTHLY;BYMONTHDAY=1",
                      start=T0, zone="Europe/Nicosia", owner_groups={"members"})
LIMITS = Limits(rules=[LimitRule(operation=Operation.SPEND, max_count=3, max_amount=eur("50.00"),
                                 window=Window(period=Period.DAY, zone="Europe/Nicosia"))],
                max_balance=eur("500.00"))
LOW = LowBalanceRule((Threshold(eur("30.00"), "warn"), Threshold(eur("40.00"), "notice")))

RICH = TenantRules(fees=(CARD_FEE, GUEST_FEE), periodic_fees=(MONTHLY,), limits=LIMITS,
                   low_balance=LOW, automatic_top_ups=True, spend_order=SpendOrder.OLDEST_FIRST,
                   payment_mode=PaymentMode.CREDIT_FIRST, hold_horizon_days=7,
                   award_horizon_days=400)


# -- the JSON form --------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [TenantRules(), RICH, TenantRules(fees=(GUEST_FEE,)),
                                   TenantRules(low_balance=LOW)],
                         ids=["empty", "rich", "one-fee", "low-balance"])
def test_rules_round_trip_exactly_through_json(rules: TenantRules) -> None:
    text = json.dumps(rules.to_data(), sort_keys=True)
    again = TenantRules.from_data(json.loads(text))
    assert again == rules
    assert json.dumps(again.to_data(), sort_keys=True) == text
    for fee, before in zip(again.fees, rules.fees, strict=True):
        # 1.50 stays 1.50 (not 1.5): the exact value is kept.
        assert str(fee.percent) == str(before.percent)


def test_every_key_is_shown_and_defaults_keep_todays_behaviour() -> None:
    assert TenantRules().to_data() == {
        "fees": [], "periodic_fees": [], "limits": {}, "low_balance": None,
        "automatic_top_ups": False, "spend_order": "default", "payment_mode": "credit_only",
        "member_payment_modes": False, "default_floors": [],
        "customer_top_ups": {"minimum": None, "maximum": None, "lifetime_seconds": 86400},
        "hold_horizon_days": 31, "award_horizon_days": 3653,
    }
    assert TenantRules.from_data({}) == TenantRules()
    assert TenantRules.from_data({"automatic_top_ups": True}) == TenantRules(
        automatic_top_ups=True)
    data = RICH.to_data()
    assert (data["hold_horizon_days"], data["award_horizon_days"]) == (7, 400)
    assert data["spend_order"] == "oldest_first"
    assert data["payment_mode"] == "credit_first"
    assert data["low_balance"] == {"thresholds": [
        {"amount": {"minor": 4000, "currency": "EUR"}, "label": "notice"},
        {"amount": {"minor": 3000, "currency": "EUR"}, "label": "warn"},
    ]}


def test_low_balance_rule_round_trips_on_its_own() -> None:
    assert LowBalanceRule.from_data(LOW.to_data()) == LOW
    assert Threshold.from_data(LOW.thresholds[0].to_data()) == LOW.thresholds[0]


def _with(path: str, value: Any) -> dict[str, Any]:
    """RICH's data with the value at ``path`` (dots and [i]) replaced (``...`` removes it)."""
    data = copy.deepcopy(RICH.to_data())
    parts = path.replace("[", ".").replace("]", "").split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ([], "tenant_rules", InvalidInputError),
        ({"fee": []}, "tenant_rules", InvalidInputError),
        (_with("fees", {}), "fees", InvalidInputError),
        (_with("fees[1].percent", 10.0), "fees[1].percent", InvalidInputError),
        (_with("fees[1].percent", "ten"), "fees[1].percent", InvalidInputError),
        (_with("fees[0].fixed", {"minor": 30, "currency": "USD"}), "fees[0].minimum",
         CurrencyMismatchError),
        (_with("fees[0].name", ...), "fees[0].name", InvalidInputError),
        (_with("fees[1]", "fee"), "fees[1]", InvalidInputError),
        (_with("fees[1].operations", ["transfer_in"]), "fees[1].operations", InvalidInputError),
        (_with("periodic_fees[0].zone", "Mars/Olympus"), "periodic_fees[0].zone",
         InvalidInputError),
        (_with("periodic_fees[0].start", "yesterday"), "periodic_fees[0].start",
         InvalidTimeError),
        (_with("limits.max_balance", {"minor": 1.5, "currency": "EUR"}), "limits.max_balance",
         InvalidAmountError),
        (_with("limits.max_balance", {"minor": 100, "currency": "USD"}), "limits",
         CurrencyMismatchError),
        (_with("limits.rules[0].window.period", "fortnight"), "limits.rules[0].window.period",
         InvalidInputError),
        (_with("limits.extra", 1), "limits", InvalidInputError),
        (_with("low_balance.thresholds[1].label", ""), "low_balance.thresholds[1].label",
         InvalidInputError),
        (_with("low_balance.thresholds[0].amount", "40"), "low_balance.thresholds[0].amount",
         InvalidAmountError),
        (_with("low_balance.thresholds", []), "low_balance.thresholds", InvalidInputError),
        (_with("low_balance", []), "low_balance", InvalidInputError),
        (_with("automatic_top_ups", "yes"), "automatic_top_ups", InvalidInputError),
        (_with("spend_order", "largest_first"), "spend_order", InvalidInputError),
        (_with("payment_mode", "cash"), "payment_mode", InvalidInputError),
        (_with("member_payment_modes", "yes"), "member_payment_modes", InvalidInputError),
        (_with("default_floors", [{"minor": -5}]), "default_floors[0]", InvalidAmountError),
        (_with("default_floors", [{"minor": 5, "currency": "EUR"}]), "default_floors[0]",
         InvalidAmountError),
        (_with("default_floors", [{"minor": -5, "currency": "EUR"}] * 2), "default_floors",
         InvalidInputError),
        (_with("default_floors", {}), "default_floors", InvalidInputError),
        (_with("periodic_fees", [MONTHLY.to_data(), MONTHLY.to_data()]), "periodic_fees",
         InvalidInputError),
        (_with("hold_horizon_days", 0), "hold_horizon_days", InvalidInputError),
        (_with("hold_horizon_days", 1.5), "hold_horizon_days", InvalidInputError),
        (_with("hold_horizon_days", True), "hold_horizon_days", InvalidInputError),
        (_with("award_horizon_days", "10"), "award_horizon_days", InvalidInputError),
        (_with("award_horizon_days", 36526), "award_horizon_days", InvalidInputError),
        (_with("award_horizon_days", None), "award_horizon_days", InvalidInputError),
    ],
)
def test_bad_data_names_the_path_of_the_field_at_fault(
    data: object, field: str, error: type[InvalidInputError]
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        TenantRules.from_data(data)
    assert caught.value.field == field
    assert isinstance(caught.value, error)


@pytest.mark.parametrize(("field", "value"), [("spend_order", "default"),
                                              ("payment_mode", "credit_only")])
def test_the_constructor_takes_the_enums_only(field: str, value: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        TenantRules(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


# -- stored rules through the service, on every backend -------------------------------------------

TENANT = "hub"
CARD = FeeRule(name="card top-up fee", operations={Operation.TOP_UP}, fixed=eur("0.30"))


def service(store: Store, clock: FixedClock | None = None, **kwargs: Any) -> WalletService:
    """A service as another process would build it (ids unique across services)."""
    return WalletService(store, clock=clock or FixedClock(T0), **kwargs)


def fee_of(svc: WalletService, wallet_id: str, amount: str = "20.00") -> Money | None:
    return svc.top_up(wallet_id, eur(amount), method="card").fee


def test_set_rules_makes_versions_with_who_when_and_key(store: Store) -> None:
    clock = FixedClock(T0)
    svc = service(store, clock, actor="ops")
    assert svc.tenant_rules(TENANT) == TenantRules()
    assert svc.tenant_rules_version(TENANT) is None
    assert svc.tenant_rules_history(TENANT) == []

    first = svc.set_tenant_rules(TENANT, TenantRules(fees=(CARD,)))
    clock.advance(timedelta(hours=1))
    second = svc.set_tenant_rules(TENANT, RICH, idempotency_key="rules-2", actor="ann",
                                  metadata={"ticket": "T-7"}, reason="spring prices")
    assert (first.reason, second.reason) == (None, "spring prices")
    assert second.to_data()["reason"] == "spring prices"
    assert isinstance(first, TenantRulesVersion)
    assert (first.tenant_id, first.version, first.rules, first.set_at, first.actor,
            first.idempotency_key, dict(first.metadata)) == (
        TENANT, 1, TenantRules(fees=(CARD,)), T0, "ops", None, {})
    assert (second.version, second.rules, second.set_at, second.actor, second.idempotency_key,
            dict(second.metadata)) == (2, RICH, T0 + timedelta(hours=1), "ann", "rules-2",
                                       {"ticket": "T-7"})
    assert svc.tenant_rules(TENANT) == RICH
    assert svc.tenant_rules_version(TENANT) == second
    assert svc.tenant_rules_history(TENANT) == [first, second]
    assert svc.tenant_rules_history("other-hub") == []
    # Setting rules moves no money: no journal entry.
    assert store.export_state()["entries"] == []
    assert svc.verify().ok


def test_equal_rules_write_nothing_and_return_the_current_version(store: Store) -> None:
    svc = service(store)
    stored = svc.set_tenant_rules(TENANT, RICH)
    before = store.export_state()
    assert svc.set_tenant_rules(TENANT, TenantRules.from_data(RICH.to_data())) == stored
    assert store.export_state() == before
    assert [v.version for v in svc.tenant_rules_history(TENANT)] == [1]


def test_a_key_replays_the_version_and_refuses_other_rules(store: Store) -> None:
    svc = service(store)
    stored = svc.set_tenant_rules(TENANT, RICH, idempotency_key="k-1")
    svc.set_tenant_rules(TENANT, TenantRules(), idempotency_key="k-2")
    before = store.export_state()
    assert svc.set_tenant_rules(TENANT, RICH, idempotency_key="k-1") == stored
    assert store.export_state() == before
    with pytest.raises(IdempotencyConflictError) as caught:
        svc.set_tenant_rules(TENANT, TenantRules(fees=(CARD,)), idempotency_key="k-1")
    assert caught.value.fields == ("rules",)
    assert store.export_state() == before
    assert svc.tenant_rules(TENANT) == TenantRules()


def test_a_second_service_without_rules_applies_the_stored_ones(store: Store) -> None:
    first = service(store, rules={TENANT: TenantRules(fees=(CARD,))})
    wallet = first.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    assert fee_of(first, wallet) == eur("0.30")
    second = service(store)  # another process: no rules given
    assert fee_of(second, wallet) == eur("0.30")
    assert second.tenant_rules(TENANT) == TenantRules(fees=(CARD,))
    # A change made by one is applied by the other's next command: nothing is cached longer
    # than a unit of work.
    second.set_tenant_rules(TENANT, TenantRules(fees=(attrs.evolve(CARD, fixed=eur("0.50")),)))
    assert fee_of(first, wallet) == eur("0.50")
    assert fee_of(second, wallet) == eur("0.50")
    first.set_tenant_rules(TENANT, TenantRules())
    assert fee_of(second, wallet) is None


def test_the_constructor_stores_rules_only_when_they_differ(store: Store) -> None:
    service(store, rules={TENANT: RICH}, actor="boot")
    [version] = service(store).tenant_rules_history(TENANT)
    assert (version.version, version.rules, version.actor) == (1, RICH, "boot")
    before = store.export_state()
    service(store, rules={TENANT: RICH})  # the same rules: nothing written
    assert store.export_state() == before
    service(store, rules={"empty-hub": TenantRules()})  # what applies anyway: nothing written
    assert store.export_state() == before
    # Two processes built with different rules: the one built last stores the next version,
    # and every process applies it from then on.
    early = service(store, rules={TENANT: TenantRules(fees=(CARD,))})
    service(store, rules={TENANT: RICH})
    assert [v.version for v in early.tenant_rules_history(TENANT)] == [1, 2, 3]
    assert early.tenant_rules(TENANT) == RICH


def test_a_scoped_service_sets_and_reads_its_own_tenant_only(store: Store) -> None:
    service(store).set_tenant_rules("other", RICH)
    scoped = service(store, tenant_id=TENANT)
    scoped.set_tenant_rules(TENANT, RICH)
    assert scoped.tenant_rules(TENANT) == RICH
    before = store.export_state()
    with pytest.raises(TenantMismatchError) as caught:
        scoped.set_tenant_rules("other", TenantRules())
    assert caught.value.field == "tenant_id"
    # Given every tenant's rules, a scoped service stores its own only.
    service(store, tenant_id=TENANT, rules={"other": TenantRules(), TENANT: RICH})
    # Another tenant's rules read as those of a tenant that never set any.
    assert scoped.tenant_rules("other") == TenantRules()
    assert scoped.tenant_rules_version("other") is None
    assert scoped.tenant_rules_history("other") == []
    assert store.export_state() == before
    assert service(store).tenant_rules("other") == RICH


def test_the_stored_spend_order_applies_unless_the_process_gives_one(store: Store) -> None:
    svc = service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    old = svc.award(wallet, eur("5.00"), reason="old", priority=5)
    clock = svc.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(hours=1))
    svc.award(wallet, eur("5.00"), reason="new", priority=1)
    request = SpendRequest(eur("1.00"))
    old_lot = old.id
    # DEFAULT: priority first, so the newer lot (priority 1) pays.
    assert svc.check_spend(wallet, request).allocation[0].lot_id != old_lot
    svc.set_tenant_rules(TENANT, TenantRules(spend_order=SpendOrder.OLDEST_FIRST))
    assert svc.check_spend(wallet, request).allocation[0].lot_id == old_lot
    assert service(store).spend(wallet, request).allocation[0].lot_id == old_lot
    own = service(store, spend_order=SpendOrder.DEFAULT)  # this process's own order wins
    assert own.check_spend(wallet, request).allocation[0].lot_id != old_lot


def test_a_request_without_a_mode_takes_the_tenants_default(store: Store) -> None:
    svc = service(store)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    svc.top_up(wallet, eur("10.00"), method="card")
    big = SpendRequest(eur("25.00"))
    decision = svc.check_spend(wallet, big)
    assert (decision.mode, decision.allowed) == (PaymentMode.CREDIT_ONLY, False)
    svc.set_tenant_rules(TENANT, TenantRules(payment_mode=PaymentMode.CREDIT_FIRST))
    decision = svc.check_spend(wallet, big)
    assert (decision.mode, decision.allowed, decision.remainder_due) == (
        PaymentMode.CREDIT_FIRST, True, eur("15.00"))
    explicit = svc.check_spend(wallet, SpendRequest(eur("25.00"), PaymentMode.CREDIT_ONLY))
    assert (explicit.mode, explicit.allowed) == (PaymentMode.CREDIT_ONLY, False)
    paid = service(store).spend(wallet, big)
    assert (paid.decision.mode, paid.remainder_due) == (PaymentMode.CREDIT_FIRST,
                                                        eur("15.00"))
    # A hold reserves the whole amount whatever the tenant's default.
    with pytest.raises(SpendDeniedError):
        svc.hold(wallet, eur("5.00"), window=timedelta(hours=1))


def test_jobs_apply_the_stored_rules(store: Store) -> None:
    clock = FixedClock(T0)
    svc = service(store, clock)
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                             owner_groups={"members"}).id
    svc.top_up(wallet, eur("10.00"), method="card")
    monthly = attrs.evolve(MONTHLY, start=T0)
    svc.set_tenant_rules(TENANT, TenantRules(periodic_fees=(monthly,)))
    clock.advance(timedelta(days=40))
    job = service(store, clock)  # a cron job's process: no rules given
    report = job.charge_periodic_fees()
    assert len(report.entry_ids) == 1
    assert job.balance(wallet).open == eur("9.00")
    assert service(store, clock, tenant_id="other").charge_periodic_fees().entry_ids == ()


def test_one_lookup_of_the_rules_per_unit_of_work(store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(store, rules={TENANT: RICH})
    wallet = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    svc.top_up(wallet, eur("45.00"), method="card")
    lookups: list[str] = []
    real = tenant_rules_module.RULES.current

    def counted(uow: Any, tenant_id: str) -> Any:
        lookups.append(tenant_id)
        return real(uow, tenant_id)

    monkeypatch.setattr(tenant_rules_module.RULES, "current", counted)
    # Fees, limits, the low-balance thresholds crossed, the spend order, the payment mode:
    # one lookup for the whole unit.
    svc.spend(wallet, SpendRequest(eur("10.00")))
    assert lookups == [TENANT]
    lookups.clear()
    svc.top_up(wallet, eur("5.00"), method="card")
    assert lookups == [TENANT]


# -- two sets at once -----------------------------------------------------------------------------


def _fee(cents: int) -> TenantRules:
    return TenantRules(fees=(attrs.evolve(CARD, fixed=Money(cents, "EUR")),))


def test_concurrent_sets_make_consecutive_versions_and_lose_none(store: Store) -> None:
    # Each of four writers sets its own rules at once, running the command again after a
    # clash (the retry the error asks for): every set becomes a version of its own.
    writers = 4
    start = threading.Barrier(writers)
    clashes: list[ConflictError] = []
    errors: list[BaseException] = []

    def write(cents: int) -> None:
        svc = service(store)
        try:
            start.wait(timeout=10)
            while True:
                try:
                    svc.set_tenant_rules(TENANT, _fee(cents))
                    return
                except ConflictError as clash:
                    clashes.append(clash)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(10 + n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    history = service(store).tenant_rules_history(TENANT)
    assert [v.version for v in history] == [1, 2, 3, 4]
    assert sorted(v.rules.fees[0].fixed.minor_units for v in history  # type: ignore[union-attr]
                  ) == [10, 11, 12, 13]
    assert service(store).tenant_rules(TENANT) == history[-1].rules
    assert all(not isinstance(c, IdempotencyConflictError) for c in clashes)


def test_two_sets_that_read_the_same_version_clash_on_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both units read version 1 before either writes: the later commit raises ConflictError
    # and writes nothing, never a second version 2. (SQLite and the memory store run one write
    # unit at a time, so there the second unit reads the first's version.)
    from tests import pg

    store = pg.fresh_store()
    try:
        service(store).set_tenant_rules(TENANT, _fee(1))
        both_read = threading.Barrier(2)
        real = tenant_rules_module.RULES.current

        def read_then_wait(uow: Any, tenant_id: str) -> Any:
            found = real(uow, tenant_id)
            both_read.wait(timeout=10)
            return found

        monkeypatch.setattr(tenant_rules_module.RULES, "current", read_then_wait)
        outcomes: list[object] = []

        def write(cents: int) -> None:
            try:
                outcomes.append(service(store).set_tenant_rules(TENANT, _fee(cents)))
            except ConflictError as clash:
                outcomes.append(clash)

        threads = [threading.Thread(target=write, args=(cents,)) for cents in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        monkeypatch.undo()
        [stored] = [o for o in outcomes if isinstance(o, TenantRulesVersion)]
        [clash] = [o for o in outcomes if isinstance(o, ConflictError)]
        assert stored.version == 2
        assert type(clash) is ConflictError
        history = service(store).tenant_rules_history(TENANT)
        assert [v.version for v in history] == [1, 2]
        assert history[1] == stored
        assert service(store).tenant_rules(TENANT) == stored.rules
        # Run again, it makes the next version.
        assert service(store).set_tenant_rules(TENANT, _fee(4)).version == 3
    finally:
        pg.close_and_drop(store)


class _Card:
    """A gateway whose charges always succeed."""

    def __init__(self) -> None:
        self.charged: list[Money] = []

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        self.charged.append(amount)
        return ChargeOutcome(ChargeStatus.SUCCEEDED)

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(ChargeStatus.SUCCEEDED)


def test_automatic_top_ups_enabled_later_apply_to_a_running_process(store: Store) -> None:
    card = _Card()
    shop = service(store, gateway=card)  # built while no tenant allows automatic top-ups
    wallet = shop.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    shop.top_up(wallet, eur("5.00"), method="cash")
    admin = service(store)
    admin.set_tenant_rules(TENANT, TenantRules(automatic_top_ups=True))
    shop.set_top_up_rule(wallet, TopUpRule(
        methods=PaymentMethods(primary="card-a"), threshold=eur("1.00"), amount=eur("10.00"),
        minimum=eur("1.00"), at_spend=True))
    paid = shop.spend(wallet, SpendRequest(eur("8.00")))  # short by 3.00: topped up first
    assert paid.entry_id is not None
    assert card.charged == [eur("3.00")]
    admin.set_tenant_rules(TENANT, TenantRules())  # switched off again: the rule is not read
    with pytest.raises(SpendDeniedError):
        shop.spend(wallet, SpendRequest(eur("20.00")))
    assert card.charged == [eur("3.00")]
