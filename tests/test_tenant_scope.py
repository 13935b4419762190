"""A service scoped to a tenant (``WalletService(..., tenant_id=...)``) can neither read nor move
another tenant's money, and another tenant's object is indistinguishable from one that does not
exist (DESIGN.md invariant I10).

For every public method that takes the id of a wallet, hold, lot, entry, condition group or
top-up intent, the answer for another tenant's object is compared with the answer for an id
that does not exist: the same error type, text (the id aside), attributes and field, and the
store unchanged. The batch jobs (the expiry sweep, automatic top-ups) skip what the service
may not see without being stopped by it, and a tenant named explicitly follows the documented
rule: a read answers as for a tenant with nothing, a write for another tenant is refused with
``TenantMismatchError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from prepaid_wallet import (
    EntryKind,
    FixedClock,
    HoldStatus,
    InvalidInputError,
    Money,
    PrepaidWalletError,
    SequentialIds,
    SpendCondition,
    SpendRequest,
    Store,
    TenantMismatchError,
    WalletService,
)
from prepaid_wallet.app.intents import pending_top_up_intents
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import (
    ChargeOutcome,
    ChargeStatus,
    IntentStatus,
    PaymentMethods,
    TopUpRule,
)

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
        [(_, intent)] = pending_top_up_intents(uow, 10)
    return intent.id


def _error(call: Callable[[], object]) -> PrepaidWalletError:
    with pytest.raises(PrepaidWalletError) as info:
        call()
    return info.value


def _same_as_unknown(world: World, call: Callable[[str], object], foreign: str) -> None:
    """``call`` with another tenant's id fails exactly as with an unknown id, writing
    nothing and charging nobody."""
    before = world.store.export_state()
    hidden = _error(lambda: call(foreign))
    missing = _error(lambda: call(UNKNOWN))

    def text(error: PrepaidWalletError, object_id: str) -> str:
        return str(error).replace(object_id, "<id>")

    def attributes(error: PrepaidWalletError, object_id: str) -> dict[str, Any]:
        return {name: "<id>" if value == object_id else value
                for name, value in vars(error).items()}

    assert type(hidden) is type(missing)
    assert text(hidden, foreign) == text(missing, UNKNOWN)
    assert attributes(hidden, foreign) == attributes(missing, UNKNOWN)
    assert getattr(hidden, "field", None) == getattr(missing, "field", None)
    assert not isinstance(hidden, TenantMismatchError)
    assert world.store.export_state() == before
    assert world.gateway.charged == []


Call = Callable[[WalletService, str], object]
# (what names the object, the call): every public method that takes an object's id.
BY_ID: list[Any] = [
    pytest.param("wallet", lambda s, i: s.get_wallet(i), id="get_wallet"),
    pytest.param("wallet", lambda s, i: s.set_owner_groups(i, ["vip"]), id="set_owner_groups"),
    pytest.param("wallet", lambda s, i: s.owner_groups(i), id="owner_groups"),
    pytest.param("wallet", lambda s, i: s.set_limits(i, Limits(max_balance=eur("10.00"))),
                 id="set_limits"),
    pytest.param("wallet", lambda s, i: s.limits(i), id="limits"),
    pytest.param("wallet", lambda s, i: s.top_up(i, eur("1.00"), method="card"), id="top_up"),
    pytest.param("wallet", lambda s, i: s.top_up(i, eur("1.00"), method="card",
                                                  idempotency_key="k-1"),
                 id="top_up-with-key"),
    pytest.param("wallet", lambda s, i: s.award(i, eur("1.00"), reason="r"), id="award"),
    pytest.param("wallet", lambda s, i: s.check_spend(i, SpendRequest(eur("1.00"))),
                 id="check_spend"),
    pytest.param("wallet", lambda s, i: s.spend(i, SpendRequest(eur("1.00"))), id="spend"),
    pytest.param("wallet", lambda s, i: s.spend(i, SpendRequest(eur("100.00")),
                                                  idempotency_key="k-2"),
                 id="spend-refused-under-a-key"),
    pytest.param("wallet", lambda s, i: s.hold(i, eur("1.00"), window=HOUR), id="hold"),
    pytest.param("wallet", lambda s, i: s.holds(i), id="holds"),
    pytest.param("wallet", lambda s, i: s.transfer(i, _own(s), eur("1.00")),
                 id="transfer-from"),
    pytest.param("wallet", lambda s, i: s.transfer(_own(s), i, eur("1.00")), id="transfer-to"),
    pytest.param("wallet", lambda s, i: s.payout(i, eur("1.00"), method="bank"), id="payout"),
    pytest.param("wallet", lambda s, i: s.credit(i, eur("1.00"), reason="r"), id="credit"),
    pytest.param("wallet", lambda s, i: s.debit(i, eur("1.00"), reason="r"), id="debit"),
    pytest.param("wallet", lambda s, i: s.set_top_up_rule(i, None), id="set_top_up_rule"),
    pytest.param("wallet", lambda s, i: s.top_up_rule(i), id="top_up_rule"),
    pytest.param("wallet", lambda s, i: s.balance(i), id="balance"),
    pytest.param("wallet", lambda s, i: s.balance(i, as_of=T0), id="balance-as_of"),
    pytest.param("wallet", lambda s, i: s.lots(i), id="lots"),
    pytest.param("wallet", lambda s, i: s.statement(i), id="statement"),
    pytest.param("wallet", lambda s, i: s.stream_statement(i), id="stream_statement"),
    pytest.param("wallet", lambda s, i: s.breakdown(i), id="breakdown"),
    pytest.param("wallet", lambda s, i: s.breakdown(i, request=SpendRequest(eur("1.00"))),
                 id="breakdown-request"),
    pytest.param("hold", lambda s, i: s.capture(i), id="capture"),
    pytest.param("hold", lambda s, i: s.void(i), id="void"),
    pytest.param("hold", lambda s, i: s.void(i, idempotency_key="k-3"), id="void-with-key"),
    pytest.param("hold", lambda s, i: s.get_hold(i), id="get_hold"),
    pytest.param("lot", lambda s, i: s.extend_expiry(i, None), id="extend_expiry"),
    pytest.param("spend_entry", lambda s, i: s.refund(i, reason="r"), id="refund-spend"),
    pytest.param("top_up_entry", lambda s, i: s.refund(i, reason="r"), id="refund-top_up"),
    pytest.param("top_up_entry", lambda s, i: s.reverse(i, reason="r"), id="reverse-top_up"),
    pytest.param("spend_entry", lambda s, i: s.reverse(i, reason="r"), id="reverse-spend"),
    pytest.param("spend_entry", lambda s, i: s.entry(i), id="entry"),
    pytest.param("group", lambda s, i: s.condition_group(i), id="condition_group"),
    pytest.param("group", lambda s, i: s.change_condition_group(i, name="n"),
                 id="change_condition_group"),
    pytest.param("group", lambda s, i: s.award(_own(s), eur("1.00"), reason="r", group_id=i),
                 id="award-group"),
    pytest.param("group", lambda s, i: s.top_up(_own(s), eur("1.00"), method="card",
                                                 group_id=i),
                 id="top_up-group"),
    pytest.param("group", lambda s, i: s.transfer(_own(s), _other_own(s), eur("1.00"),
                                                  group_id=i),
                 id="transfer-group"),
    pytest.param("intent_key", lambda s, i: s.report_charge(
        i, ChargeOutcome(ChargeStatus.SUCCEEDED)), id="report_charge"),
]


def _own(svc: WalletService) -> str:
    found = svc.find_wallet(tenant_id="t1", owner_id="ann", currency="EUR")
    assert found is not None
    return found.id


def _other_own(svc: WalletService) -> str:
    found = svc.find_wallet(tenant_id="t1", owner_id="bob", currency="EUR")
    if found is None:
        found = svc.open_wallet(owner_id="bob", tenant_id="t1", currency="EUR")
    return found.id


def test_every_object_table_row_names_a_real_object(store: Store) -> None:
    """The rows above do reach an object of t2 (and the unscoped service sees each)."""
    world = build(store)
    f = world.foreign
    assert world.admin.get_wallet(f.wallet).tenant_id == "t2"
    assert world.admin.get_hold(f.hold).status is HoldStatus.ACTIVE
    assert [lot.id for lot in world.admin.lots(f.wallet)] == [f.lot]
    assert world.admin.entry(f.spend_entry).kind is EntryKind.SPEND
    assert world.admin.entry(f.top_up_entry).kind is EntryKind.TOP_UP
    assert world.admin.condition_group(f.group).tenant_id == "t2"
    assert world.admin.top_up_intent(f.intent) is not None


@pytest.mark.parametrize(("kind", "call"), BY_ID)
def test_another_tenants_object_is_answered_as_an_unknown_one(
    store: Store, kind: str, call: Call
) -> None:
    world = build(store)
    _other_own(world.scoped)  # opened before the comparison, so it writes nothing then
    foreign = getattr(world.foreign, kind)
    _same_as_unknown(world, lambda object_id: call(world.scoped, object_id), foreign)


def test_another_tenants_intent_reads_as_none(store: Store) -> None:
    world = build(store)
    assert world.scoped.top_up_intent(world.foreign.intent) is None
    assert world.scoped.top_up_intent(UNKNOWN) is None


# -- a tenant named explicitly -------------------------------------------------------------------


def test_a_read_of_another_tenant_answers_as_for_a_tenant_with_nothing(store: Store) -> None:
    world = build(store)
    s = world.scoped
    before = store.export_state()
    assert s.find_wallet(tenant_id="t2", owner_id="dan", currency="EUR") is None
    assert s.find_wallet(tenant_id="t9", owner_id="dan", currency="EUR") is None
    assert s.wallets("t2") == s.wallets("t9") == []
    assert list(s.iter_wallets("t2")) == []
    assert s.condition_groups("t2") == s.condition_groups("t9") == []
    assert world.admin.events("t2")  # t2 has an event ...
    assert s.events("t2") == s.events("t9") == []  # ... the service does not see it
    assert world.admin.low_balance_report("t2", eur("100.00"))
    assert s.low_balance_report("t2", eur("100.00")) == []
    hidden = _error(lambda: s.low_balance_report("t2", "warn"))
    missing = _error(lambda: s.low_balance_report("t9", "warn"))
    assert type(hidden) is type(missing) is InvalidInputError
    assert str(hidden) == str(missing)
    # Bad arguments are refused the same way for every tenant.
    for tenant in ("t2", "t9", "t1"):
        with pytest.raises(InvalidInputError) as info:
            s.events(tenant, limit=0)
        assert info.value.field == "limit"
    assert store.export_state() == before


def test_a_write_for_another_tenant_is_refused_by_name(store: Store) -> None:
    """Creating something for another tenant is the host's mistake, not a lookup: refused
    with ``TenantMismatchError`` naming ``tenant_id``, whatever the store holds."""
    world = build(store)
    s = world.scoped
    before = store.export_state()
    calls: list[Callable[[], object]] = [
        lambda: s.open_wallet(owner_id="eve", tenant_id="t2", currency="EUR"),
        lambda: s.define_condition_group(tenant_id="t2", name="n", condition=SpendCondition()),
        lambda: s.ack_events("t2", ["ev_1"]),
    ]
    for call in calls:
        with pytest.raises(TenantMismatchError) as info:
            call()
        assert info.value.field == "tenant_id"
        assert (info.value.expected, info.value.actual) == ("t1", "t2")
    assert store.export_state() == before


def test_an_unscoped_service_pairing_two_tenants_names_the_mismatch(store: Store) -> None:
    """The unscoped service sees every tenant: a transfer between two of them, or one tenant's
    condition group for another's wallet, is refused with ``TenantMismatchError``."""
    world = build(store)
    before = store.export_state()
    with pytest.raises(TenantMismatchError) as info:
        world.admin.transfer(world.own, world.foreign.wallet, eur("1.00"))
    assert info.value.field == "to_wallet_id"
    with pytest.raises(TenantMismatchError) as info:
        world.admin.award(world.own, eur("1.00"), reason="r", group_id=world.foreign.group)
    assert info.value.field == "group_id"
    assert store.export_state() == before


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
    store: Store,
) -> None:
    """Due rows are read a batch at a time, soonest first: more due rows of another tenant
    than a batch holds, all due before the service's own, still let it book its own."""
    world = build(store)
    f = world.foreign
    for _ in range(3):
        world.admin.hold(f.wallet, eur("1.00"), window=HOUR)
        world.admin.award(f.wallet, eur("1.00"), reason="r", expires_at=T0 + HOUR)
    own_hold = world.admin.hold(world.own, eur("1.00"), window=2 * HOUR)
    own_lot = world.admin.award(world.own, eur("2.00"), reason="r", expires_at=T0 + 2 * HOUR)
    world.clock.advance(3 * HOUR)
    before_foreign = [h.status for h in world.admin.holds(f.wallet)]
    report = world.scoped.expire_due(batch_size=2)
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
