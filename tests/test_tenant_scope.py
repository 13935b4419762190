"""A service scoped to a tenant (``WalletService(..., tenant_id=...)``) can neither read nor move
another tenant's money (DESIGN.md invariant I10): its batch jobs (the expiry sweep, automatic
top-ups) skip what the service may not see without being stopped by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prepaid_wallet import (
    FixedClock,
    HoldStatus,
    InvalidInputError,
    Money,
    SequentialIds,
    SpendCondition,
    SpendRequest,
    Store,
    WalletService,
)
from prepaid_wallet.app.handlers import expiry as expiry_handlers
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import (
    ChargeOutcome,
    ChargeStatus,
    IntentStatus,
    PaymentMethods,
    TopUpRule,
)
from tests.backends import available_backends

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
UNKNOWN = "nope-404"
RULES = {
    tenant: TenantRules(
        automatic_top_ups=True,
        low_balance=LowBalanceRule((Threshold(Money.of("15.00", "EUR"), "warn"),)),
    )
    for tenant in ("t1", "t2")
}
RULE = TopUpRule(methods=PaymentMethods(primary="card"), threshold=Money.of("10.00", "EUR"),
                 amount=Money.of("20.00", "EUR"), minimum=Money.of("5.00", "EUR"))


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


class Gateway:
    """A payment gateway that charges every request and remembers it."""

    def __init__(self) -> None:
        self.charged: list[str] = []

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        self.charged.append(idempotency_key)
        return ChargeOutcome(ChargeStatus.SUCCEEDED)

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(ChargeStatus.UNKNOWN)


@pytest.fixture(params=sorted(available_backends()))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = available_backends()[request.param](tmp_path)
    yield made
    made.close()


@dataclass(frozen=True)
class Foreign:
    """The objects of tenant t2, as a service scoped to t1 must not see them."""

    wallet: str
    hold: str
    lot: str
    top_up_entry: str
    spend_entry: str
    group: str
    intent: str
    intent_key: str


@dataclass(frozen=True)
class World:
    store: Store
    clock: FixedClock
    admin: WalletService  # unscoped
    scoped: WalletService  # scoped to t1, with a gateway of its own
    gateway: Gateway  # the scoped service's
    own: str  # a wallet of t1
    foreign: Foreign


def build(store: Store) -> World:
    """Two tenants on one store: t2 with one of everything (a pending top-up intent too)."""
    clock = FixedClock(T0)
    ids = SequentialIds()
    admin = WalletService(store, clock=clock, ids=ids, rules=RULES, gateway=Gateway())
    gateway = Gateway()
    scoped = WalletService(store, clock=clock, ids=ids, rules=RULES, gateway=gateway,
                           tenant_id="t1")
    own = admin.open_wallet(owner_id="ann", tenant_id="t1", currency="EUR").id
    admin.top_up(own, eur("50.00"), method="cash")
    dan = admin.open_wallet(owner_id="dan", tenant_id="t2", currency="EUR").id
    top_up = admin.top_up(dan, eur("40.00"), method="cash")
    held = admin.hold(dan, eur("2.00"), window=DAY)  # from the open balance: 38.00 left
    lot = admin.award(dan, eur("5.00"), reason="welcome", expires_at=T0 + 30 * DAY)
    spent = admin.spend(dan, SpendRequest(eur("1.00")))  # from the lot
    assert spent.entry_id is not None
    group = admin.define_condition_group(tenant_id="t2", name="shoes",
                                         condition=SpendCondition(categories={"shoes"}))
    admin.set_top_up_rule(dan, RULE)
    # Open 8.00: below the top-up threshold (an intent starts) and the "warn" one (an event).
    admin.debit(dan, eur("30.00"), reason="down to the threshold")
    intent = _pending_intent(store)
    # One attempt started, its answer lost: the key a provider's report would name.
    admin_gateway = admin.gateway
    assert isinstance(admin_gateway, Gateway)
    admin_gateway.charge = lambda **kw: ChargeOutcome(ChargeStatus.UNKNOWN)  # type: ignore[method-assign]
    admin.process_top_ups()
    found = admin.top_up_intent(intent)
    assert found is not None
    assert found.status is IntentStatus.PENDING
    key = found.attempts[0].idempotency_key
    return World(store, clock, admin, scoped, gateway, own, Foreign(
        wallet=dan, hold=held.id, lot=lot.id, top_up_entry=top_up.entry_id,
        spend_entry=spent.entry_id, group=group.id, intent=intent, intent_key=key))


def _pending_intent(store: Store) -> str:
    with store.unit_of_work(read_only=True) as uow:
        [(_, intent)] = uow.pending_top_up_intents(10)
    return intent.id


def test_another_tenants_intent_reads_as_none(store: Store) -> None:
    world = build(store)
    assert world.scoped.top_up_intent(world.foreign.intent) is None
    assert world.scoped.top_up_intent(UNKNOWN) is None


# -- the batch jobs --------------------------------------------------------------------------------


def test_scoped_expiry_sweep_books_only_its_own_tenant(store: Store) -> None:
    world = build(store)
    f = world.foreign
    own_hold = world.admin.hold(world.own, eur("4.00"), window=2 * DAY)
    world.admin.award(world.own, eur("3.00"), reason="r", expires_at=T0 + 2 * DAY)
    world.clock.advance(40 * DAY)  # everything is due: both tenants' lots and holds
    report = world.scoped.expire_due()
    assert (report.lots_expired, report.holds_released) == (1, 1)
    assert world.scoped.get_hold(own_hold.id).status is HoldStatus.EXPIRED
    assert world.scoped.lots(world.own) == []
    assert world.admin.get_hold(f.hold).status is HoldStatus.ACTIVE
    assert [lot.id for lot in world.admin.lots(f.wallet)] == [f.lot]
    assert [lot.expired_entry_id for lot in world.admin.lots(f.wallet)] == [None]
    # The other tenant's sweep (or an unscoped one) books the rest.
    rest = world.admin.expire_due()
    assert (rest.lots_expired, rest.holds_released) == (1, 1)
    assert world.admin.verify().ok


def test_a_foreign_due_hold_first_in_line_does_not_stop_a_scoped_sweep(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Due rows are read a batch at a time, soonest first: more due rows of another tenant
    than a batch holds, all due before the service's own, still let it book its own."""
    monkeypatch.setattr(expiry_handlers, "_SWEEP_BATCH", 2)
    world = build(store)
    f = world.foreign
    for _ in range(3):
        world.admin.hold(f.wallet, eur("1.00"), window=HOUR)
        world.admin.award(f.wallet, eur("1.00"), reason="r", expires_at=T0 + HOUR)
    own_hold = world.admin.hold(world.own, eur("1.00"), window=2 * HOUR)
    own_lot = world.admin.award(world.own, eur("2.00"), reason="r", expires_at=T0 + 2 * HOUR)
    world.clock.advance(3 * HOUR)
    before_foreign = [h.status for h in world.admin.holds(f.wallet)]
    report = world.scoped.expire_due()
    assert (report.lots_expired, report.holds_released) == (1, 1)
    assert world.scoped.get_hold(own_hold.id).status is HoldStatus.EXPIRED
    assert own_lot.id not in [lot.id for lot in world.scoped.lots(world.own)]
    assert [h.status for h in world.admin.holds(f.wallet)] == before_foreign
    assert world.scoped.expire_due().entry_ids == ()
    assert world.admin.verify().ok


def test_scoped_process_top_ups_charges_only_its_own_tenant(store: Store) -> None:
    world = build(store)
    f = world.foreign
    world.clock.advance(HOUR)
    # The other tenant's intent is older and fills the limit: the service's own still runs.
    world.admin.set_top_up_rule(world.own, RULE)
    world.admin.debit(world.own, eur("45.00"), reason="down to the threshold")
    report = world.scoped.process_top_ups(limit=1)
    assert len(report.credited) == 1
    assert len(world.gateway.charged) == 1
    assert world.scoped.get_wallet(world.own).open == eur("25.00")
    hidden = world.admin.top_up_intent(f.intent)
    assert hidden is not None
    assert hidden.status is IntentStatus.PENDING
    assert len(hidden.attempts) == 1  # the scoped service neither settled nor charged it
    assert world.admin.get_wallet(f.wallet).open == eur("8.00")
    assert world.scoped.process_top_ups() == type(report)((), (), ())
    assert world.admin.verify().ok


def test_report_charge_of_another_tenants_intent_changes_nothing(store: Store) -> None:
    world = build(store)
    f = world.foreign
    before = store.export_state()
    with pytest.raises(InvalidInputError) as hidden:
        world.scoped.report_charge(f.intent_key, ChargeOutcome(ChargeStatus.SUCCEEDED))
    with pytest.raises(InvalidInputError) as missing:
        world.scoped.report_charge(f"{UNKNOWN}:1", ChargeOutcome(ChargeStatus.SUCCEEDED))
    assert hidden.value.field == missing.value.field == "idempotency_key"
    assert hidden.value.rule == missing.value.rule
    assert store.export_state() == before
    assert world.gateway.charged == []
    # Its own tenant's service still takes the report.
    t2 = WalletService(store, clock=world.clock, rules=RULES, gateway=Gateway(), tenant_id="t2")
    credited = t2.report_charge(f.intent_key, ChargeOutcome(ChargeStatus.SUCCEEDED))
    assert len(credited.credited) == 1
    assert world.admin.get_wallet(f.wallet).open == eur("28.00")
