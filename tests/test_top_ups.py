"""Automatic top-ups through the service: threshold and spend-time triggers, primary then backup,
unknown outcomes settled under the same key, credit exactly once -- scenarios, and a seeded
simulation with a fake gateway, random failures, repeated reports and the service rebuilt from
the store at random points as if its process had died."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import (
    EntryKind,
    FixedClock,
    InvalidInputError,
    InvalidTimeError,
    Money,
    PaymentMode,
    SequentialIds,
    SpendDeniedError,
    SpendRequest,
    Store,
    WalletService,
    open_store,
)
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.rules.topup import (
    ChargeOutcome,
    ChargeStatus,
    IntentStatus,
    PaymentMethods,
    TopUpRule,
)
from prepaid_wallet.storage.base import UnitOfWork
from tests.fake_gateway import Behaviour, FakeGateway

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
TENANT = "hub"
RULES = {TENANT: TenantRules(automatic_top_ups=True)}
METHODS = PaymentMethods(primary="card-a", backup="card-b")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


RULE = TopUpRule(methods=METHODS, threshold=eur("10.00"), amount=eur("20.00"),
                 minimum=eur("5.00"), at_spend=True, soft_decline_backoff=timedelta(hours=1),
                 max_soft_attempts=2)


class Scripted:
    """A gateway that answers charges from a script per method, and lookups from a dict."""

    def __init__(self, **answers: list[ChargeStatus]) -> None:
        self.answers = {method.replace("_", "-"): list(a) for method, a in answers.items()}
        self.lookups: dict[str, ChargeOutcome] = {}
        self.charged: list[tuple[str, str, Money]] = []

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        status = self.answers[method].pop(0)
        if status is ChargeStatus.SUCCEEDED:
            self.charged.append((idempotency_key, method, amount))
        return ChargeOutcome(status)

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return self.lookups.get(idempotency_key, ChargeOutcome(ChargeStatus.UNKNOWN))


def setup(store: Store, gateway: object) -> tuple[WalletService, FixedClock, str]:
    clock = FixedClock(T0)
    svc = WalletService(store, clock=clock, ids=SequentialIds(), rules=RULES,
                        gateway=gateway)  # type: ignore[arg-type]
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    svc.set_top_up_rule(w, RULE)
    return svc, clock, w


def test_a_spend_to_the_threshold_starts_one_top_up_credited_once(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED], card_b=[])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("30.00"), method="cash")
    svc.spend(w, SpendRequest(eur("20.00")))  # open 10.00: at the threshold
    svc.spend(w, SpendRequest(eur("1.00")))  # still below: no second intent
    report = svc.process_top_ups()
    assert len(report.credited) == 1
    assert gateway.charged == [(gateway.charged[0][0], "card-a", eur("20.00"))]
    assert svc.get_wallet(w).open == eur("29.00")
    entry = svc.entry(report.credited[0])
    assert entry.kind is EntryKind.TOP_UP
    again = svc.process_top_ups()
    assert again.credited == again.given_up == again.pending == ()
    assert svc.verify().ok


class _Interleaved:
    """A store whose first write unit of work lets another process run first: the moment
    between a run reading an intent and starting its attempt, when a second run can win."""

    def __init__(self, store: Store, other: Callable[[], object]) -> None:
        self._store = store
        self._other: Callable[[], object] | None = other

    def unit_of_work(self, *, read_only: bool = False) -> UnitOfWork:
        if not read_only and self._other is not None:
            other, self._other = self._other, None
            other()
        return self._store.unit_of_work(read_only=read_only)

    def export_state(self) -> dict[str, Any]:
        return self._store.export_state()

    def close(self) -> None:
        self._store.close()


def test_two_runs_at_once_one_charges_the_other_finds_it_done(store: Store) -> None:
    """Two processes run process_top_ups on one intent: the one that loses the race to start
    the attempt finds the work done -- it charges nothing, raises nothing -- and the top-up is
    charged and credited once."""
    first, second = Scripted(card_a=[ChargeStatus.SUCCEEDED]), Scripted(
        card_a=[ChargeStatus.SUCCEEDED])
    svc, clock, w = setup(store, first)
    svc.top_up(w, eur("30.00"), method="cash")
    svc.spend(w, SpendRequest(eur("20.00")))  # at the threshold: one intent
    winner = WalletService(store, clock=clock, ids=SequentialIds(500), rules=RULES,
                           gateway=second)  # type: ignore[arg-type]
    loser = WalletService(_Interleaved(store, winner.process_top_ups),  # type: ignore[arg-type]
                          clock=clock, ids=SequentialIds(900), rules=RULES,
                          gateway=first)  # type: ignore[arg-type]
    report = loser.process_top_ups()
    assert report.credited == report.given_up == ()
    assert first.charged == []
    assert [amount for _, _, amount in second.charged] == [eur("20.00")]
    assert svc.get_wallet(w).open == eur("30.00")
    assert svc.verify().ok


def test_automatic_top_ups_obey_the_maximum_balance_and_top_up_limits(store: Store) -> None:
    """The wallet's maximum balance and top-up count limit bind automatic top-ups as they bind
    a top-up by hand: none starts that would breach them, and one that started while it fitted
    is given up (LIMIT_EXCEEDED), uncharged, when a charge would no longer fit."""
    from prepaid_wallet.rules.limits import LimitRule, Limits, Window
    from prepaid_wallet.rules.operations import Operation
    from prepaid_wallet.rules.topup import GiveUpReason

    made: list[str] = []

    def service_with(limits: Limits, gateway: Scripted) -> tuple[WalletService, str]:
        rules = {TENANT: TenantRules(automatic_top_ups=True, limits=limits)}
        svc = WalletService(store, clock=FixedClock(T0), ids=SequentialIds(1000 * len(made)),
                            rules=rules, gateway=gateway)  # type: ignore[arg-type]
        w = svc.open_wallet(owner_id=f"owner{len(made)}", tenant_id=TENANT, currency="EUR").id
        made.append(w)
        svc.set_top_up_rule(w, RULE)  # 20.00 when at or below 10.00
        return svc, w

    # A maximum balance of 25.00: topping 10.00 up by 20.00 would pass it.
    capped = Scripted(card_a=[ChargeStatus.SUCCEEDED])
    svc, w = service_with(Limits(max_balance=eur("25.00")), capped)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("5.00")))
    assert svc.process_top_ups().credited == ()
    assert capped.charged == []
    assert svc.get_wallet(w).open == eur("10.00")
    # One top-up a day: the cash one used it up.
    counted = Scripted(card_a=[ChargeStatus.SUCCEEDED], card_b=[])
    one_a_day = Limits(rules=(LimitRule(operation=Operation.TOP_UP,
                                        window=Window(rolling=timedelta(days=1)), max_count=1),))
    svc, w = service_with(one_a_day, counted)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("5.00")))
    assert svc.process_top_ups().credited == ()
    assert counted.charged == []
    # Started while it fitted; a top-up by hand then leaves no room: given up, not charged.
    late = Scripted(card_a=[ChargeStatus.SUCCEEDED], card_b=[])
    svc, w = service_with(Limits(max_balance=eur("30.00")), late)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("5.00")))  # the intent of 20.00 starts: 10 + 20 <= 30
    svc.top_up(w, eur("5.00"), method="cash")
    report = svc.process_top_ups()
    assert report.credited == ()
    [intent_id] = report.given_up
    intent = svc.top_up_intent(intent_id)
    assert intent is not None
    assert intent.failure is GiveUpReason.LIMIT_EXCEEDED
    assert late.charged == []
    assert svc.get_wallet(w).open == eur("15.00")
    assert svc.verify().ok


def test_backup_only_after_a_definite_decline(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.DECLINED_HARD], card_b=[ChargeStatus.SUCCEEDED])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("10.00")))
    svc.process_top_ups()
    assert [c[1] for c in gateway.charged] == ["card-b"]
    assert svc.get_wallet(w).open == eur("25.00")


def test_an_unknown_outcome_is_settled_under_the_same_key(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.UNKNOWN, ChargeStatus.UNKNOWN], card_b=[])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("10.00")))
    report = svc.process_top_ups()
    assert report.pending
    assert not report.credited
    [intent_id] = report.pending
    intent = svc.top_up_intent(intent_id)
    assert intent is not None
    [attempt] = intent.attempts
    gateway.lookups[attempt.idempotency_key] = ChargeOutcome(ChargeStatus.SUCCEEDED)
    # a rebuilt service (as after a crash) settles it
    rebuilt = WalletService(store, clock=svc.clock, ids=SequentialIds(100), rules=RULES,
                            gateway=gateway)  # type: ignore[arg-type]
    settled = rebuilt.process_top_ups()
    assert len(settled.credited) == 1
    assert rebuilt.report_charge(attempt.idempotency_key,
                                 ChargeOutcome(ChargeStatus.SUCCEEDED)).credited == ()
    assert svc.get_wallet(w).open == eur("25.00")
    final = svc.top_up_intent(intent_id)
    assert final is not None
    assert final.credited
    assert final.status is IntentStatus.SUCCEEDED
    with pytest.raises(InvalidInputError):
        svc.report_charge("tu_999:card-a:1", ChargeOutcome(ChargeStatus.SUCCEEDED))


def test_at_spend_the_shortfall_is_charged_then_spent_or_nothing(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED, ChargeStatus.DECLINED_HARD],
                       card_b=[ChargeStatus.DECLINED_HARD])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("40.00"), method="cash")
    paid = svc.spend(w, SpendRequest(eur("43.00")))  # short by 3.00: charges the minimum, 5.00
    assert paid.amount == eur("43.00")
    assert gateway.charged[0][2] == eur("5.00")
    assert svc.get_wallet(w).open == eur("2.00")
    before = svc.get_wallet(w)
    with pytest.raises(SpendDeniedError):
        svc.spend(w, SpendRequest(eur("50.00")))  # both cards declined: nothing spent
    assert svc.get_wallet(w).open == before.open
    first = svc.spend(w, SpendRequest(eur("5.00"), mode=PaymentMode.CREDIT_FIRST))
    assert first.remainder_due == eur("3.00")  # credit-first never tops up
    assert svc.verify().ok


def test_at_spend_the_charge_covers_the_shortfall_after_its_own_fee(store: Store) -> None:
    """With a 0.30 top-up fee, a credit-only spend short by 10.00 charges 10.30 -- the least
    that leaves the shortfall after the fee -- and goes through: never a charge with no order."""
    from prepaid_wallet.rules.fees import FeeRule
    from prepaid_wallet.rules.operations import Operation

    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED])
    rules = {TENANT: TenantRules(automatic_top_ups=True, fees=(FeeRule(
        name="card", operations={Operation.TOP_UP}, fixed=eur("0.30")),))}
    svc = WalletService(store, clock=FixedClock(T0), ids=SequentialIds(), rules=rules,
                        gateway=gateway)  # type: ignore[arg-type]
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    svc.set_top_up_rule(w, RULE)
    svc.top_up(w, eur("30.30"), method="cash")  # 30.00 after its fee
    paid = svc.spend(w, SpendRequest(eur("40.00")))
    assert paid.amount == eur("40.00")
    assert [amount for _, _, amount in gateway.charged] == [eur("10.30")]
    assert svc.get_wallet(w).open == eur("0.00")
    assert svc.verify().ok


def test_a_spend_replayed_under_its_key_tops_up_nothing_more(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED, ChargeStatus.SUCCEEDED,
                               ChargeStatus.DECLINED_HARD, ChargeStatus.SUCCEEDED,
                               ChargeStatus.SUCCEEDED],
                       card_b=[ChargeStatus.DECLINED_HARD])
    svc, clock, w = setup(store, gateway)
    svc.top_up(w, eur("40.00"), method="cash")
    later = clock.now() + timedelta(minutes=1)
    with pytest.raises(InvalidTimeError):  # judged before any top-up: nothing charged
        svc.spend(w, SpendRequest(eur("43.00"), at=later), idempotency_key="order-0")
    assert gateway.charged == []
    paid = svc.spend(w, SpendRequest(eur("43.00")), idempotency_key="order-1")  # 5.00 first
    assert len(svc.process_top_ups().credited) == 1  # the threshold's 20.00: open 22.00
    with pytest.raises(SpendDeniedError):  # 38.00 short, both cards declined: stored refusal
        svc.spend(w, SpendRequest(eur("60.00")), idempotency_key="order-2")
    assert [amount for _, _, amount in gateway.charged] == [eur("5.00"), eur("20.00")]
    # Replays return the stored outcomes: short as the wallet is, nothing is charged first.
    assert svc.spend(w, SpendRequest(eur("43.00")), idempotency_key="order-1") == paid
    with pytest.raises(SpendDeniedError):
        svc.spend(w, SpendRequest(eur("60.00")), idempotency_key="order-2")
    assert len(gateway.charged) == 2
    assert svc.get_wallet(w).open == eur("22.00")


def test_scheduled_top_ups_start_once_per_occurrence(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED] * 3, card_b=[])
    svc, clock, w = setup(store, gateway)
    weekly = TopUpRule(methods=METHODS, minimum=eur("5.00"), target=eur("50.00"),
                       schedule="FREQ=WEEKLY;BYDAY=MO", schedule_zone="Europe/Nicosia")
    svc.set_top_up_rule(w, weekly)
    svc.top_up(w, eur("12.00"), method="cash")
    assert svc.start_scheduled_top_ups() == ()  # Tuesday: the first Monday has not come
    clock.set(datetime(2026, 3, 16, 6, 59, tzinfo=UTC))  # Monday 08:59 in Nicosia
    assert svc.start_scheduled_top_ups() == ()  # the rule was set up at 09:00 local
    clock.set(datetime(2026, 3, 16, 7, 0, tzinfo=UTC))  # Monday 09:00
    [intent_id] = svc.start_scheduled_top_ups()
    assert svc.start_scheduled_top_ups() == ()  # once per occurrence
    intent = svc.top_up_intent(intent_id)
    assert intent is not None
    assert intent.amount == eur("38.00")  # up to the target
    assert len(svc.process_top_ups().credited) == 1
    assert svc.get_wallet(w).open == eur("50.00")
    clock.advance(timedelta(weeks=3))  # three Mondays missed: one top-up, and none at target
    assert svc.start_scheduled_top_ups() == ()
    svc.spend(w, SpendRequest(eur("20.00")))
    clock.advance(timedelta(weeks=1))
    [later] = svc.start_scheduled_top_ups()
    later_intent = svc.top_up_intent(later)
    assert later_intent is not None
    assert later_intent.amount == eur("20.00")


def test_rules_need_a_tenant_with_automatic_top_ups(tmp_path: Path) -> None:
    svc = WalletService(open_store("memory:"), clock=FixedClock(T0))
    w = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR").id
    with pytest.raises(InvalidInputError) as refused:
        svc.set_top_up_rule(w, RULE)
    assert refused.value.field == "rule"
    with pytest.raises(InvalidInputError) as no_gateway:
        svc.process_top_ups()
    assert no_gateway.value.field == "gateway"


# -- the simulation --------------------------------------------------------------------------------

SEEDS = 500 if os.environ.get("CI", "").lower() == "true" else 40


class Crash(BaseException):
    """The process dies here (not an ``Exception``: nothing in the process survives it)."""


class Dying:
    """Wraps the gateway; may kill the process right after a call returned (the service then
    never learns the answer)."""

    def __init__(self, inner: FakeGateway, rng: random.Random, chance: float) -> None:
        self.inner, self.rng, self.chance = inner, rng, chance

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        outcome = self.inner.charge(method=method, amount=amount, idempotency_key=idempotency_key)
        if self.rng.random() < self.chance:
            raise Crash
        return outcome

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        outcome = self.inner.lookup(idempotency_key=idempotency_key)
        if self.rng.random() < self.chance:
            raise Crash
        return outcome


def simulate(seed: int) -> None:
    rng = random.Random(seed)
    behaviours = {
        method: Behaviour(succeed=rng.random(), hard_decline=rng.random() * 0.6,
                          soft_decline=rng.random() * 0.6, timeout_before=rng.random() * 0.3,
                          timeout_after=rng.random() * 0.3, max_latency=rng.randint(0, 3))
        for method in ("card-a", "card-b")
    }
    gateway = FakeGateway(rng, behaviours, redelivery=0.3)
    store = open_store("memory:")
    clock = FixedClock(T0)
    ids = SequentialIds()

    def service() -> WalletService:
        return WalletService(store, clock=clock, ids=ids, rules=RULES,
                             gateway=Dying(gateway, rng, 0.15))  # type: ignore[arg-type]

    svc = service()
    wallets = []
    for i in range(rng.randint(1, 3)):
        w = svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR").id
        svc.set_top_up_rule(w, RULE)
        svc.top_up(w, eur("30.00"), method="cash")
        wallets.append(w)
    for _ in range(rng.randint(5, 25)):
        action = rng.random()
        try:
            if action < 0.45:
                w = rng.choice(wallets)
                open_balance = svc.get_wallet(w).open.minor_units
                amount = Money(rng.randint(1, max(1, open_balance + 500)), "EUR")
                with contextlib.suppress(SpendDeniedError):
                    svc.spend(w, SpendRequest(amount))
            elif action < 0.75:
                svc.process_top_ups()
            elif action < 0.85:
                report = gateway.redeliver()
                if report is not None:
                    svc.report_charge(*report)
            else:
                clock.advance(timedelta(minutes=rng.randint(1, 180)))
        except Crash:
            svc = service()  # the process died: a new one starts over the same store
    # Let everything settle: no more failures, time for the back-offs.
    calm = WalletService(store, clock=clock, ids=ids, rules=RULES,
                         gateway=gateway)  # type: ignore[arg-type]
    for _ in range(40):
        clock.advance(timedelta(hours=2))
        report = calm.process_top_ups()
        if not report.pending:
            break
    check(calm, gateway, store)


def check(svc: WalletService, gateway: FakeGateway, store: Store) -> None:
    assert svc.verify().ok
    charges_by_intent: dict[str, list[str]] = {}
    for charge in gateway.charges:
        charges_by_intent.setdefault(charge.idempotency_key.split(":")[0], []).append(
            charge.idempotency_key)
    # at most one real charge per intent
    assert all(len(keys) == 1 for keys in charges_by_intent.values()), charges_by_intent
    state = store.export_state()
    intents = {row[1]: row[7]["intent"] for row in state["records"] if row[0] == "top_up_intent"}
    credited = {i for i, data in intents.items() if data.get("credited")}
    # credited intents match succeeded real charges one to one
    assert credited == set(charges_by_intent), (credited, charges_by_intent)
    with store.unit_of_work(read_only=True) as uow:
        top_ups = [e for e in uow.iter_entries() if dict(e.metadata).get("top_up_intent")]
    assert sorted(dict(e.metadata)["top_up_intent"] for e in top_ups) == sorted(credited)
    for intent_id in credited:
        intent = svc.top_up_intent(intent_id)
        assert intent is not None
        [key] = charges_by_intent[intent_id]
        attempt = intent.attempt(key)
        assert attempt is not None
        assert attempt.outcome is not None
    # never the backup while the primary is unknown: a backup attempt comes after every
    # primary attempt of its intent was definitely declined
    for data in intents.values():
        intent = svc.top_up_intent(data["id"])
        assert intent is not None
        for n, attempt in enumerate(intent.attempts):
            if attempt.method != METHODS.backup:
                continue
            for earlier in intent.attempts[:n]:
                if earlier.method != METHODS.primary:
                    continue  # an earlier attempt on the backup (soft-declined, retried)
                assert earlier.outcome is not None
                assert earlier.outcome.status in (ChargeStatus.DECLINED_HARD,
                                                  ChargeStatus.DECLINED_SOFT)


def test_simulation_over_many_seeds() -> None:
    for seed in range(SEEDS):
        try:
            simulate(seed)
        except Exception as exc:
            raise AssertionError(f"seed {seed} fails (replay: simulate({seed}))") from exc


# -- reports without a gateway, and provider text the stores refuse -------------------------------


def test_a_success_reported_to_a_service_without_a_gateway_is_credited(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.UNKNOWN, ChargeStatus.UNKNOWN], card_b=[])
    svc, clock, w = setup(store, gateway)
    svc.top_up(w, eur("30.00"), method="cash")
    svc.spend(w, SpendRequest(eur("20.00")))  # open 10.00: an intent starts
    svc.process_top_ups()  # charged, no answer
    [(_, intent)] = [(k, v) for k, v in _intents(store).items()]
    key = intent["attempts"][0]["idempotency_key"]
    webhook = WalletService(store, clock=clock, ids=SequentialIds(start=1000))
    report = webhook.report_charge(key, ChargeOutcome(ChargeStatus.SUCCEEDED, reference="ch_1"))
    assert len(report.credited) == 1
    assert svc.get_wallet(w).open == eur("30.00")
    stored = svc.top_up_intent(intent["id"])
    assert stored is not None
    assert stored.credited
    # the credit is not posted twice, and no second charge starts
    assert webhook.report_charge(key, ChargeOutcome(ChargeStatus.SUCCEEDED)).credited == ()
    svc.spend(w, SpendRequest(eur("1.00")))
    again = svc.process_top_ups()
    assert again.credited == again.pending == ()
    assert gateway.answers["card-a"] == []
    assert svc.get_wallet(w).open == eur("29.00")
    assert svc.verify().ok


def test_a_succeeded_intent_left_uncredited_is_credited_by_the_next_run(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.SUCCEEDED], card_b=[])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("30.00"), method="cash")
    svc.spend(w, SpendRequest(eur("20.00")))
    [(intent_id, _)] = list(_intents(store).items())
    from prepaid_wallet.app.handlers import automatic_top_up as handler

    crediting = handler._credit_intent

    def dies(*args: Any, **kwargs: Any) -> str | None:
        raise Crash

    handler._credit_intent = dies  # type: ignore[assignment]
    try:
        with pytest.raises(Crash):
            svc.process_top_ups()
    finally:
        handler._credit_intent = crediting  # type: ignore[assignment]
    # succeeded, not credited: still the wallet's top-up in flight, and the next run credits it
    svc.spend(w, SpendRequest(eur("1.00")))
    assert list(_intents(store)) == [intent_id]
    report = svc.process_top_ups()
    assert len(report.credited) == 1
    assert svc.get_wallet(w).open == eur("29.00")
    assert svc.verify().ok


def _intents(store: Store) -> dict[str, dict[str, Any]]:
    state = store.export_state()
    return {row[1]: row[7]["intent"] for row in state["records"] if row[0] == "top_up_intent"}


class _Garbled(Scripted):
    """Answers with text no store accepts as it is (a lone surrogate, a NUL)."""

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        outcome = super().charge(method=method, amount=amount, idempotency_key=idempotency_key)
        return ChargeOutcome(outcome.status, reference="ch\udc80\x00", message="d\ud800ne")


def test_provider_text_is_stored_escaped_and_blocks_no_other_intent(store: Store) -> None:
    gateway = _Garbled(card_a=[ChargeStatus.SUCCEEDED, ChargeStatus.SUCCEEDED], card_b=[])
    svc, _, w = setup(store, gateway)
    v = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR").id
    svc.set_top_up_rule(v, RULE)
    for wallet_id in (w, v):
        svc.top_up(wallet_id, eur("30.00"), method="cash")
        svc.spend(wallet_id, SpendRequest(eur("20.00")))
    report = svc.process_top_ups()
    assert len(report.credited) == 2
    assert svc.get_wallet(w).open == svc.get_wallet(v).open == eur("30.00")
    for intent_id in _intents(store):
        intent = svc.top_up_intent(intent_id)
        assert intent is not None
        assert intent.credited
        outcome = intent.attempts[-1].outcome
        assert outcome is not None
        assert (outcome.reference, outcome.message) == ("ch\\udc80\\x00", "d\\ud800ne")
    assert svc.verify().ok


class _Broken(Scripted):
    """Raises for one intent's charges."""

    def __init__(self, bad_wallet_intent: list[str], **answers: list[ChargeStatus]) -> None:
        super().__init__(**answers)
        self.bad = bad_wallet_intent

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        if idempotency_key.split(":")[0] in self.bad:
            raise RuntimeError("provider down for this one")
        return super().charge(method=method, amount=amount, idempotency_key=idempotency_key)

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        if idempotency_key.split(":")[0] in self.bad:
            raise RuntimeError("provider down for this one")
        return super().lookup(idempotency_key=idempotency_key)


def test_one_intent_that_raises_never_blocks_the_others(store: Store) -> None:
    gateway = _Broken([], card_a=[ChargeStatus.SUCCEEDED], card_b=[])
    svc, _, w = setup(store, gateway)
    v = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR").id
    svc.set_top_up_rule(v, RULE)
    for wallet_id in (w, v):
        svc.top_up(wallet_id, eur("30.00"), method="cash")
        svc.spend(wallet_id, SpendRequest(eur("20.00")))
    first = sorted(_intents(store))[0]
    gateway.bad.append(first)
    report = svc.process_top_ups()
    assert report.stalled == (first,)
    assert len(report.credited) == 1
    assert svc.get_wallet(v).open == eur("30.00")
    assert svc.get_wallet(w).open == eur("10.00")
    assert svc.verify().ok


def test_a_canceled_charge_counts_as_a_hard_decline(store: Store) -> None:
    gateway = Scripted(card_a=[ChargeStatus.CANCELED], card_b=[ChargeStatus.SUCCEEDED])
    svc, _, w = setup(store, gateway)
    svc.top_up(w, eur("15.00"), method="cash")
    svc.spend(w, SpendRequest(eur("10.00")))
    svc.process_top_ups()
    assert [c[1] for c in gateway.charged] == ["card-b"]
    assert gateway.answers["card-a"] == []  # never charged again
    assert svc.get_wallet(w).open == eur("25.00")
