"""Actors, roles and access policies: every role against every command, on every backend.

The table :data:`OPERATIONS` has one row per operation a policy may name (every write command's
``operation``, found by walking the command classes, and the writes that authorize themselves
outside the pipeline): the role that permits it in :data:`POLICY`, what a run needs set up
first, and one valid run. A new command without a row fails :func:`test_every_operation_has_a_row`.

For a tenant with a policy, each operation is run by an actor of every role (and by an actor
with no roles, and by no actor): the actors the policy permits succeed; every other raises
``PermissionDeniedError`` naming the actor, the operation and the tenant, and leaves
``export_state()`` exactly as it was (no idempotency record, no gateway charge).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from prepaid_wallet import (
    AccessPolicy,
    Actor,
    FixedClock,
    IdempotencyConflictError,
    InvalidInputError,
    Money,
    PaymentMode,
    PermissionDeniedError,
    SequentialIds,
    SpendCondition,
    SpendRequest,
    Store,
    TenantMismatchError,
    WalletService,
    open_store,
)
from prepaid_wallet.app.access import OUTSIDE_PIPELINE
from prepaid_wallet.app.commands import Credit
from prepaid_wallet.app.pipeline import command_classes, operations
from prepaid_wallet.cli import ExitCode, main
from prepaid_wallet.rules.customer_top_ups import CustomerTopUpRules
from prepaid_wallet.rules.payg import DeviceState
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus, PaymentMethods, TopUpRule

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
TENANT = "hub"
HOUR = timedelta(hours=1)
SUCCEEDED = ChargeOutcome(ChargeStatus.SUCCEEDED, reference="pi_1")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


class Gateway:
    """Charges and refunds that always succeed, each one recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Money]] = []

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        self.calls.append(("charge", idempotency_key, amount))
        return ChargeOutcome(ChargeStatus.SUCCEEDED)

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(ChargeStatus.UNKNOWN)

    def refund(self, *, charge_key: str, reference: str | None, amount: Money,
               idempotency_key: str) -> ChargeOutcome:
        self.calls.append(("refund", idempotency_key, amount))
        return ChargeOutcome(ChargeStatus.SUCCEEDED)


ADMIN = Actor("root", frozenset({"admin"}))


@dataclass
class World:
    """A store with one tenant: ``ann`` (funded) and ``bob``, a gateway, and ``root``, an
    admin's service that sets things up."""

    store: Store
    clock: FixedClock
    ids: SequentialIds
    gateway: Gateway
    root: WalletService
    ann: str
    bob: str
    counter: list[int] = field(default_factory=lambda: [0])
    replayed: set[str] = field(default_factory=set)

    def service(self, actor: Actor | str | None) -> WalletService:
        """A service of this store run by ``actor`` (None: no actor)."""
        return WalletService(self.store, clock=self.clock, ids=self.ids, gateway=self.gateway,
                             actor=actor)

    def fresh(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}"


RULES = TenantRules(automatic_top_ups=True, member_payment_modes=True,
                    customer_top_ups=CustomerTopUpRules(lifetime=timedelta(hours=2)))


def build_world(store: Store) -> World:
    clock, ids, gateway = FixedClock(T0), SequentialIds(), Gateway()
    root = WalletService(store, clock=clock, ids=ids, gateway=gateway, actor=ADMIN,
                         rules={TENANT: RULES})
    ann = root.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    bob = root.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR").id
    root.top_up(ann, eur("1000.00"), method="cash")
    return World(store, clock, ids, gateway, root, ann, bob)


# -- one valid run per operation ------------------------------------------------------------------

Setup = Callable[[World], Any]
Run = Callable[[WalletService, World, Any, Actor | None], object]


@dataclass(frozen=True)
class Row:
    role: str  # the role of POLICY that permits the operation (besides admin's "*")
    run: Run
    setup: Setup = lambda w: None
    #: The command needs an actor of the call (a run with none is bad input).
    needs_actor: bool = False


def _order(w: World, place: bool = False) -> str:
    order = w.fresh("order")
    w.root.apply_credit(w.ann, order_id=order, total=eur("5.00"))
    if place:
        w.root.place_order(w.ann, order_id=order)
    return order


def _customer_top_up(w: World, report: bool = False) -> str:
    top_up = w.root.start_top_up(w.ann, eur("5.00"), method="card")
    if report:
        w.root.report_charge(top_up.id, SUCCEEDED)
    return top_up.id


def _charged_attempt(w: World) -> str:
    """The key of an automatic top-up's charge (answered: a report of it changes nothing)."""
    wallet = w.root.open_wallet(owner_id=w.fresh("auto"), tenant_id=TENANT,
                                currency="EUR").id
    w.root.top_up(wallet, eur("15.00"), method="cash")
    w.root.set_top_up_rule(wallet, TopUpRule(
        methods=PaymentMethods(primary="card"), threshold=eur("10.00"), amount=eur("20.00"),
        minimum=eur("5.00")))
    w.root.spend(wallet, SpendRequest(eur("10.00")))
    w.root.process_top_ups()
    return w.gateway.calls[-1][1]


def _endpoint(w: World) -> str:
    return w.root.add_webhook_endpoint(TENANT, "https://hub.example/hooks").id


def _delivered(w: World) -> str:
    """An event of the tenant delivered to an endpoint: its id."""
    _endpoint(w)
    _customer_top_up(w, report=True)  # a top_up.succeeded event
    w.root.fan_out_events()
    [event] = {d.event_id for d in w.root.webhook_deliveries(TENANT, limit=1000)} - w.replayed
    w.replayed.add(event)
    return event


def _spent(w: World) -> str:
    entry = w.root.spend(w.ann, SpendRequest(eur("2.00"))).entry_id
    assert entry is not None
    return entry


def _group(w: World) -> str:
    return w.root.define_condition_group(tenant_id=TENANT, name="Shoes",
                                         condition=SpendCondition(categories={"shoes"})).id


def _contract(w: World, pay: bool = True) -> str:
    """A fresh member with a pay-as-you-go contract at 1.00 a day, 10 days bought, device on."""
    wallet = w.root.open_wallet(owner_id=w.fresh("payg"), tenant_id=TENANT, currency="EUR").id
    w.root.open_contract(wallet, products=["lamp"], daily_rate=eur("1.00"))
    if pay:
        w.root.payg_payment(wallet, payment_id=w.fresh("pay"), amount=eur("10.00"))
    w.root.report_device(wallet, state=DeviceState.ON)
    return wallet


def _waiting(w: World, converted: bool = False) -> tuple[str, str]:
    """A contract whose upgrade waits for its downpayment of 5.00, and a payment of 20.00
    turned into time (``converted``: linked to a conversion, whose id is returned instead)."""
    wallet = _contract(w)
    payment = w.fresh("big")
    if converted:
        payment = w.fresh("conv")
        w.root.record_conversion(wallet, conversion_id=payment,
                                 payments={w.fresh("old"): eur("20.00")})
    else:
        w.root.payg_payment(wallet, payment_id=payment, amount=eur("20.00"))
    w.root.call_upgrade(wallet, products=["lamp", "tv"], daily_rate=eur("2.00"),
                        downpayment=eur("5.00"))
    return wallet, payment


def _upgrade_paid(w: World) -> str:
    wallet, _ = _waiting(w)
    w.root.payg_payment(wallet, payment_id=w.fresh("down"), amount=eur("5.00"))
    return wallet


OPERATIONS: dict[str, Row] = {
    # cashier: paying and holding
    "spend": Row("cashier", lambda s, w, x, a: s.spend(
        w.ann, SpendRequest(eur("1.00")), idempotency_key=w.fresh("k"))),
    "hold": Row("cashier", lambda s, w, x, a: s.hold(w.ann, eur("1.00"), window=HOUR)),
    "capture": Row("cashier", lambda s, w, x, a: s.capture(x),
                   lambda w: w.root.hold(w.ann, eur("1.00"), window=HOUR).id),
    "void": Row("cashier", lambda s, w, x, a: s.void(x),
                lambda w: w.root.hold(w.ann, eur("1.00"), window=HOUR).id),
    "apply_credit": Row("cashier", lambda s, w, x, a: s.apply_credit(
        w.ann, order_id=w.fresh("order"), total=eur("3.00"))),
    "place_order": Row("cashier", lambda s, w, x, a: s.place_order(w.ann, order_id=x), _order),
    "abandon_order": Row("cashier", lambda s, w, x, a: s.abandon_order(w.ann, order_id=x), _order),
    "start_top_up": Row("cashier", lambda s, w, x, a: s.start_top_up(
        w.ann, eur("5.00"), method="card")),
    "report_top_up": Row("cashier", lambda s, w, x, a: s.report_charge(x, SUCCEEDED),
                         _customer_top_up),
    "report_charge": Row("cashier", lambda s, w, x, a: s.report_charge(x, SUCCEEDED),
                         _charged_attempt),
    "ack_events": Row("clerk", lambda s, w, x, a: s.ack_events(TENANT, ["ev_gone"])),
    # manager: webhooks
    "add_webhook_endpoint": Row("manager", lambda s, w, x, a: s.add_webhook_endpoint(
        TENANT, "https://hub.example/more")),
    "remove_webhook_endpoint": Row("manager", lambda s, w, x, a: s.remove_webhook_endpoint(x),
                                   _endpoint),
    "rotate_webhook_secret": Row("manager", lambda s, w, x, a: s.rotate_webhook_secret(x),
                                 _endpoint),
    "replay_webhooks": Row("manager", lambda s, w, x, a: s.replay_webhooks(event_id=x),
                           _delivered),
    # clerk: money in and out
    "open_wallet": Row("clerk", lambda s, w, x, a: s.open_wallet(
        owner_id=w.fresh("owner"), tenant_id=TENANT, currency="EUR")),
    "top_up": Row("clerk", lambda s, w, x, a: s.top_up(
        w.ann, eur("1.00"), method="card", idempotency_key=w.fresh("k"))),
    "award": Row("clerk", lambda s, w, x, a: s.award(w.ann, eur("1.00"), reason="thanks")),
    "transfer": Row("clerk", lambda s, w, x, a: s.transfer(w.ann, w.bob, eur("1.00"))),
    "payout": Row("clerk", lambda s, w, x, a: s.payout(w.ann, eur("1.00"), method="bank")),
    "credit": Row("clerk", lambda s, w, x, a: s.credit(w.ann, eur("1.00"), reason="goodwill")),
    "debit": Row("clerk", lambda s, w, x, a: s.debit(w.ann, eur("1.00"), reason="fix")),
    "refund": Row("clerk", lambda s, w, x, a: s.refund(x, reason="returned"), _spent),
    "reverse": Row("clerk", lambda s, w, x, a: s.reverse(x, reason="duplicate"),
                   lambda w: w.root.top_up(w.bob, eur("1.00"), method="cash").entry_id),
    "extend_expiry": Row("clerk", lambda s, w, x, a: s.extend_expiry(x, None),
                         lambda w: w.root.award(w.ann, eur("1.00"), reason="r",
                                                expires_at=T0 + 30 * HOUR).id),
    "credit_owed": Row("clerk", lambda s, w, x, a: s.credit_owed(
        w.ann, order_id=x, total=eur("3.00"), paid_by_other_methods=eur("0.00"), actor=a),  # type: ignore[arg-type]
        lambda w: _order(w, place=True), needs_actor=True),
    "charge_back_top_up": Row("clerk", lambda s, w, x, a: s.charge_back_top_up(
        x, eur("1.00"), reason="dispute"), lambda w: _customer_top_up(w, report=True)),
    "refund_top_up": Row("clerk", lambda s, w, x, a: s.refund_top_up(
        x, eur("1.00"), reason="asked"), lambda w: _customer_top_up(w, report=True)),
    # manager: configuration
    "set_owner_groups": Row("manager", lambda s, w, x, a: s.set_owner_groups(w.ann, ["vip"])),
    "set_limits": Row("manager", lambda s, w, x, a: s.set_limits(w.ann, None)),
    "set_tenant_rules": Row("manager", lambda s, w, x, a: s.set_tenant_rules(
        TENANT, RULES, reason=w.fresh("reason"))),
    "set_top_up_rule": Row("manager", lambda s, w, x, a: s.set_top_up_rule(w.bob, None)),
    "set_payment_mode": Row("manager", lambda s, w, x, a: s.set_payment_mode(
        w.ann, PaymentMode.CREDIT_ONLY, reason="policy")),
    "set_floor": Row("manager", lambda s, w, x, a: s.set_floor(
        w.ann, eur("-5.00"), actor=a, reason="trusted"),  # type: ignore[arg-type]
        needs_actor=True),
    "define_condition_group": Row("manager", lambda s, w, x, a: s.define_condition_group(
        tenant_id=TENANT, name=w.fresh("group"), condition=SpendCondition(merchants={"m"}))),
    "change_condition_group": Row("manager", lambda s, w, x, a: s.change_condition_group(
        x, name="Boots"), _group),
    # pay-as-you-go
    "open_contract": Row("manager", lambda s, w, x, a: s.open_contract(
        x, products=["lamp"], daily_rate=eur("1.00")),
        lambda w: w.root.open_wallet(owner_id=w.fresh("payg"), tenant_id=TENANT,
                                     currency="EUR").id),
    "report_device": Row("clerk", lambda s, w, x, a: s.report_device(
        x, state=DeviceState.OFF), _contract),
    "payg_payment": Row("clerk", lambda s, w, x, a: s.payg_payment(
        x, payment_id=w.fresh("pay"), amount=eur("1.00")), _contract),
    "record_conversion": Row("clerk", lambda s, w, x, a: s.record_conversion(
        x, conversion_id=w.fresh("conv"), payments={w.fresh("old"): eur("2.00")}), _contract),
    "call_upgrade": Row("manager", lambda s, w, x, a: s.call_upgrade(
        x, products=["lamp", "tv"], daily_rate=eur("2.00"), downpayment=eur("5.00")),
        _contract),
    "confirm_upgrade_installed": Row("manager", lambda s, w, x, a: s.confirm_upgrade_installed(
        x), _upgrade_paid),
    "reconvert_payments": Row("system_process_officer", lambda s, w, x, a: s.reconvert_payments(
        x[0], payment_ids=[x[1]]), _waiting),
    "unlink_conversion_payment": Row("admin", lambda s, w, x, a: s.unlink_conversion_payment(
        x[0], conversion_id=x[1]), lambda w: _waiting(w, converted=True)),
    # last: the test without a policy sets it once, at the end
    "set_access_policy": Row("manager", lambda s, w, x, a: s.set_access_policy(
        TENANT, POLICY, reason="same policy")),
}

#: Each role permits its rows' operations; ``admin`` all of them.
POLICY: AccessPolicy = AccessPolicy({
    "admin": {"*"},
    **{role: {op for op, row in OPERATIONS.items() if row.role == role}
       for role in ("cashier", "clerk", "manager", "system_process_officer")},
})

ACTORS: list[Actor | str | None] = [
    None, "walk-in", *(Actor(role, frozenset({role})) for role in ("cashier", "clerk", "manager")),
    Actor("boss", frozenset({"admin"})),
    Actor("officer", frozenset({"system_process_officer"})),
]

#: The roles each operation requires whatever the policy says (its command's required_roles).
REQUIRED: dict[str, frozenset[str]] = {cls.operation: cls.required_roles
                                       for cls in command_classes()}


def _may(actor: Actor | str | None, operation: str) -> bool:
    """Whether ``actor`` may run ``operation`` under POLICY and its command's required roles."""
    required = REQUIRED.get(operation, frozenset())
    return POLICY.permits(_roles(actor), operation) and (
        not required or not required.isdisjoint(_roles(actor)))


def _roles(actor: Actor | str | None) -> frozenset[str]:
    return actor.roles if isinstance(actor, Actor) else frozenset()


def _id(actor: Actor | str | None) -> str | None:
    return actor.id if isinstance(actor, Actor) else actor


def test_every_operation_has_a_row() -> None:
    """A new command must add its row here (and a role that permits it)."""
    classes = command_classes()
    assert {cls.__name__ for cls in classes} >= {"Spend", "TopUp", "SetAccessPolicy"}
    assert set(OPERATIONS) == operations()
    assert operations() == {cls.operation for cls in classes} | OUTSIDE_PIPELINE
    assert {"refund_top_up", "report_charge", "ack_events"} <= OUTSIDE_PIPELINE


def test_every_role_against_every_command(store: Store) -> None:
    w = build_world(store)
    w.root.set_access_policy(TENANT, POLICY)
    for operation, row in OPERATIONS.items():
        for actor in ACTORS:
            arg = row.setup(w)
            before = store.export_state()
            charges = len(w.gateway.calls)
            svc = w.service(actor)
            who = Actor(actor) if isinstance(actor, str) else actor
            permitted = _may(actor, operation)
            if row.needs_actor and actor is None:
                with pytest.raises(InvalidInputError) as bad:
                    row.run(svc, w, arg, who)
                assert bad.value.field == "actor"
            elif permitted:
                row.run(svc, w, arg, who)
                continue
            else:
                with pytest.raises(PermissionDeniedError) as denied:
                    row.run(svc, w, arg, who)
                error = denied.value
                assert (error.actor, error.operation, error.tenant_id) == (
                    _id(actor), operation, TENANT), (operation, actor)
                assert set(error.roles) == _roles(actor)
            assert store.export_state() == before, (operation, actor)
            assert len(w.gateway.calls) == charges
    assert w.root.verify().ok


def test_without_a_policy_every_actor_may_run_every_command(store: Store) -> None:
    w = build_world(store)
    assert w.root.access_policy(TENANT) is None
    for operation, row in OPERATIONS.items():  # setting a policy comes last, once
        required = REQUIRED.get(operation, frozenset())
        actors: tuple[Actor | str | None, ...] = (None, "walk-in")
        if operation == "set_access_policy":
            actors = ("walk-in",)
        elif required:  # the procedure's own roles apply without a policy too
            actors = (Actor("staff", required),)
        for actor in actors:
            arg = row.setup(w)
            who = actor if isinstance(actor, Actor) else Actor(actor or "walk-in")
            row.run(w.service(actor), w, arg, who)
    assert w.root.access_policy(TENANT) is not None
    assert w.root.verify().ok


def test_the_first_policy_is_set_by_anyone_the_next_ones_by_a_permitted_actor(
        store: Store) -> None:
    w = build_world(store)
    anyone = w.service("walk-in")
    first = anyone.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}}), reason="start",
                                     metadata={"ticket": "7"})
    assert (first.version, first.actor, first.reason, first.set_at) == (1, "walk-in", "start",
                                                                        T0)
    assert dict(first.metadata) == {"ticket": "7"}
    before = store.export_state()
    with pytest.raises(PermissionDeniedError) as denied:
        anyone.set_access_policy(TENANT, AccessPolicy({}), idempotency_key="p-2")
    assert denied.value.operation == "set_access_policy"
    assert store.export_state() == before  # not even the key is stored
    second = w.service(Actor("boss", frozenset({"admin"}))).set_access_policy(
        TENANT, AccessPolicy({"admin": {"*"}, "cashier": {"spend"}}), idempotency_key="p-2")
    assert (second.version, second.actor) == (2, "boss")
    assert w.root.access_policy(TENANT) == second
    assert [v.version for v in w.root.access_policy_history(TENANT)] == [1, 2]
    # the same policy again: nothing new
    again = w.root.set_access_policy(TENANT, second.policy)
    assert again == second
    assert len(w.root.access_policy_history(TENANT)) == 2


def test_a_policy_set_under_a_key_replays(store: Store) -> None:
    w = build_world(store)
    policy = AccessPolicy({"admin": {"*"}})
    first = w.root.set_access_policy(TENANT, policy, idempotency_key="pol-1")
    other = w.service(Actor("boss", frozenset({"admin"})))
    assert other.set_access_policy(TENANT, policy, idempotency_key="pol-1") == first
    with pytest.raises(IdempotencyConflictError):
        other.set_access_policy(TENANT, AccessPolicy({"admin": {"spend"}}),
                                idempotency_key="pol-1")
    assert len(w.root.access_policy_history(TENANT)) == 1


def test_a_denied_call_under_a_key_stores_nothing_and_a_permitted_one_then_runs(
        store: Store) -> None:
    w = build_world(store)
    w.root.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}, "clerk": {"top_up"}}))
    with pytest.raises(PermissionDeniedError):
        w.service("walk-in").top_up(w.ann, eur("1.00"), method="card", idempotency_key="t-1")
    receipt = w.service(Actor("kim", frozenset({"clerk"}))).top_up(
        w.ann, eur("1.00"), method="card", idempotency_key="t-1")
    assert w.root.entry(receipt.entry_id).actor == "kim"  # the id is what entries record


def test_a_calls_actor_is_authorized_rather_than_the_services(store: Store) -> None:
    w = build_world(store)
    w.root.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}, "clerk": {"top_up"}}))
    with pytest.raises(PermissionDeniedError) as denied:
        w.root.top_up(w.ann, eur("1.00"), method="card", actor="walk-in")
    assert denied.value.actor == "walk-in"
    w.service("walk-in").top_up(w.ann, eur("1.00"), method="card",
                                actor=Actor("kim", frozenset({"clerk"})))


def test_an_unauthorized_spend_does_not_top_up_first(store: Store) -> None:
    w = build_world(store)
    rule = TopUpRule(methods=PaymentMethods(primary="card-a"), minimum=eur("5.00"),
                     at_spend=True)
    w.root.set_top_up_rule(w.bob, rule)
    w.root.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}, "cashier": {"spend"}}))
    spend = SpendRequest(eur("3.00"), mode=PaymentMode.CREDIT_ONLY)
    before = store.export_state()
    for actor in ("walk-in", Actor("kim", frozenset({"clerk"}))):
        with pytest.raises(PermissionDeniedError):
            w.service(actor).spend(w.bob, spend, idempotency_key="s-1")
    assert w.gateway.calls == []
    assert store.export_state() == before
    paid = w.service(Actor("mia", frozenset({"cashier"}))).spend(w.bob, spend,
                                                                 idempotency_key="s-1")
    assert paid.amount == eur("3.00")
    assert [call[0] for call in w.gateway.calls] == ["charge"]  # topped up, then spent


@attrs.frozen(kw_only=True)
class SupervisorCredit(Credit):
    """A credit only a supervisor may give (a test-only command)."""

    required_roles: ClassVar[frozenset[str]] = frozenset({"supervisor"})


def test_required_roles_hold_whatever_the_policy_says(store: Store) -> None:
    w = build_world(store)

    def credit(actor: Actor | str | None) -> object:
        return w.service(actor)._run(SupervisorCredit(wallet_id=w.ann, amount=eur("1.00"),
                                                      reason="goodwill"))

    sue = Actor("sue", frozenset({"supervisor"}))
    before = store.export_state()
    for actor in (None, "walk-in", ADMIN):  # no policy: still a supervisor's only
        with pytest.raises(PermissionDeniedError) as denied:
            credit(actor)
        assert denied.value.required_roles == ("supervisor",)
    assert store.export_state() == before
    credit(sue)
    w.root.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}, "supervisor": {"spend"}}))
    before = store.export_state()
    with pytest.raises(PermissionDeniedError) as denied:  # the policy must permit it too
        credit(sue)
    assert denied.value.required_roles == ()
    with pytest.raises(PermissionDeniedError):
        credit(ADMIN)  # "*" does not give the role
    assert store.export_state() == before
    credit(Actor("ada", frozenset({"supervisor", "admin"})))


def test_unknown_operations_and_bad_policies_are_refused() -> None:
    svc = WalletService(open_store("memory:"), clock=FixedClock(T0))
    with pytest.raises(InvalidInputError) as bad:
        svc.set_access_policy(TENANT, AccessPolicy({"cashier": {"spend", "sped"}}))
    assert bad.value.field == "policy.roles['cashier']"
    assert "sped" in bad.value.rule
    assert "spend" in bad.value.rule
    with pytest.raises(InvalidInputError) as bad:
        svc.set_access_policy(TENANT, {"cashier": ["spend"]})  # type: ignore[arg-type]
    assert bad.value.field == "policy"
    with pytest.raises(InvalidInputError) as bad:
        AccessPolicy({"cashier": "spend"})
    assert bad.value.field == "policy.roles['cashier']"
    with pytest.raises(InvalidInputError) as bad:
        AccessPolicy({"a role": {"spend"}})
    assert bad.value.field == "policy.roles"
    with pytest.raises(InvalidInputError) as bad:
        AccessPolicy.from_data({"roles": {"cashier": "spend"}})
    assert bad.value.field == "policy.roles['cashier']"
    assert AccessPolicy.from_data(POLICY.to_data()) == POLICY
    assert svc.access_policy_history(TENANT) == []


@pytest.mark.parametrize(("value", "rule"), [
    ("", "non-blank"), (Actor, "an Actor"), (7, "an Actor"), ("a\nb", "control"),
])
def test_bad_actors_name_actor(value: object, rule: str) -> None:
    svc = WalletService(open_store("memory:"), clock=FixedClock(T0))
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    before = svc.store.export_state()
    with pytest.raises(InvalidInputError) as bad:
        svc.top_up(w, eur("1.00"), method="card", actor=value)  # type: ignore[arg-type]
    assert bad.value.field == "actor"
    assert rule in bad.value.rule
    with pytest.raises(InvalidInputError) as bad:
        WalletService(svc.store, actor=value)  # type: ignore[arg-type]
    assert bad.value.field == "actor"
    assert svc.store.export_state() == before


@pytest.mark.parametrize("roles", ["admin", [""], ["a b"], [7], 5])
def test_bad_roles_name_actor(roles: object) -> None:
    with pytest.raises(InvalidInputError) as bad:
        Actor("mia", roles)
    assert bad.value.field == "actor"


def test_a_scoped_service_reads_and_sets_its_own_tenants_policy_only() -> None:
    store = open_store("memory:")
    svc = WalletService(store, clock=FixedClock(T0))
    svc.set_access_policy("other", AccessPolicy({"admin": {"*"}}))
    scoped = WalletService(store, clock=FixedClock(T0), tenant_id=TENANT)
    assert scoped.access_policy("other") is None
    assert scoped.access_policy_history("other") == []
    with pytest.raises(TenantMismatchError):
        scoped.set_access_policy("other", AccessPolicy({}))


# -- the command line ------------------------------------------------------------------------------


def _cli(*args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_shows_sets_and_lists_policies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'w.db'}"]
    assert _cli(*db, "init", monkeypatch=monkeypatch, capsys=capsys)[0] == ExitCode.OK
    code, out, _ = _cli(*db, "--json", "access", "show", "--tenant", TENANT,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert json.loads(out)["policy"] is None
    policy = json.dumps(POLICY.to_data())
    code, out, err = _cli(*db, "--json", "access", "set", "--tenant", TENANT, "-", "--actor",
                          "boss", "--role", "admin", "--reason", "start", stdin=policy,
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK, err
    shown = json.loads(out)
    assert (shown["version"], shown["actor"], shown["reason"]) == (1, "boss", "start")
    assert AccessPolicy.from_data(shown["policy"]) == POLICY
    # what ``show`` prints, edited, goes back in; by a cashier it is denied (exit 7)
    code, out, err = _cli(*db, "--json", "access", "set", "--tenant", TENANT, "-", "--actor",
                          "mia", "--role", "cashier", stdin=json.dumps(shown),
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.DENIED
    error = json.loads(err)["error"]
    assert (error["type"], error["actor"], error["operation"], error["tenant_id"]) == (
        "PermissionDeniedError", "mia", "set_access_policy", TENANT)
    code, _, err = _cli(*db, "access", "set", "--tenant", TENANT, "-", "--actor", "mia",
                        "--role", "cashier", "--role", "manager", stdin=json.dumps(shown),
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK, err  # the same policy: no new version
    code, _, err = _cli(*db, "access", "set", "--tenant", TENANT, "-", "--role", "admin",
                        stdin=policy, monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.USAGE
    assert "--role" in err
    code, out, _ = _cli(*db, "access", "history", "--tenant", TENANT,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.OK
    assert out.splitlines()[0].split("  ")[::2] == ["1", "boss", "start"]
    assert len(out.splitlines()) == 1
    # the stored policy applies to every command of the command line
    code, out, _ = _cli(*db, "--json", "wallet", "open", "--tenant", TENANT, "--owner", "ann",
                        "--currency", "EUR", monkeypatch=monkeypatch, capsys=capsys)
    assert code == ExitCode.DENIED
