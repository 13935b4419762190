"""Automatic top-up rules: amounts, validation, the attempt state machine, and a simulation
against a seeded fake gateway."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup import (
    Charge,
    ChargeOutcome,
    ChargeStatus,
    Credit,
    Done,
    GiveUp,
    GiveUpReason,
    IntentStatus,
    PaymentGateway,
    PaymentMethods,
    Settle,
    Step,
    TopUpIntent,
    TopUpReason,
    TopUpRule,
    Wait,
    credit_key,
    give_up,
    mark_credited,
    next_occurrence,
    next_step,
    record_outcome,
    scheduled_top_up,
    spend_top_up,
    start_attempt,
    threshold_top_up,
)
from tests.fake_gateway import Behaviour, FakeGateway

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
METHODS = PaymentMethods("card-1", "card-2")


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def rule(**overrides: object) -> TopUpRule:
    values: dict[str, object] = {
        "methods": METHODS,
        "minimum": eur("10"),
        "threshold": eur("20"),
        "amount": eur("50"),
    }
    values.update(overrides)
    return TopUpRule(**values)  # type: ignore[arg-type]


def outcome(status: str) -> ChargeOutcome:
    return ChargeOutcome(ChargeStatus(status))


# -- amounts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "balance", "expected"),
    [
        ({}, "20.01", None),
        ({}, "20.00", "50"),  # equal to the threshold counts
        ({}, "-5.00", "50"),
        ({"amount": None, "target": eur("100")}, "20.00", "80"),
        ({"amount": None, "target": eur("100")}, "-30.00", "130"),
        ({"amount": None, "target": eur("25"), "minimum": eur("10")}, "19.00", "10"),
        ({"threshold": None, "at_spend": True}, "-100", None),
    ],
)
def test_threshold_top_up(overrides: dict[str, object], balance: str, expected: str | None) -> None:
    result = threshold_top_up(rule(**overrides), eur(balance))
    assert result == (None if expected is None else eur(expected))


@pytest.mark.parametrize(
    ("at_spend", "shortfall", "expected"),
    [(True, "3.50", "10"), (True, "10", "10"), (True, "42.17", "42.17"), (False, "3.50", None)],
)
def test_spend_top_up(at_spend: bool, shortfall: str, expected: str | None) -> None:
    result = spend_top_up(rule(at_spend=at_spend), eur(shortfall))
    assert result == (None if expected is None else eur(expected))


@pytest.mark.parametrize(
    ("overrides", "balance", "expected"),
    [
        ({"amount": eur("30")}, "500", "30"),
        ({"amount": None, "target": eur("100")}, "60", "40"),
        ({"amount": None, "target": eur("100")}, "95", "10"),  # minimum applies
        ({"amount": None, "target": eur("100")}, "100", None),
        ({"amount": None, "target": eur("100")}, "120", None),
    ],
)
def test_scheduled_top_up(overrides: dict[str, object], balance: str, expected: str | None) -> None:
    scheduled = rule(threshold=None, schedule="FREQ=MONTHLY;BYMONTHDAY=1",
                     schedule_zone="Europe/Paris", **overrides)
    result = scheduled_top_up(scheduled, eur(balance))
    assert result == (None if expected is None else eur(expected))
    assert scheduled_top_up(rule(), eur("0")) is None  # no schedule


def test_amount_functions_refuse_bad_input() -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        threshold_top_up(rule(), Money.of("1", "USD"))
    assert info.value.field == "open_balance"
    with pytest.raises(InvalidAmountError) as amount_info:
        spend_top_up(rule(at_spend=True), eur("0"))
    assert amount_info.value.field == "shortfall"


def test_next_occurrence_in_local_time() -> None:
    monthly = rule(threshold=None, schedule="FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9",
                   schedule_zone="Europe/Paris")
    # 9:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer (after 29 March 2026).
    first = next_occurrence(monthly, T0, anchor=T0)
    assert first == datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
    assert next_occurrence(monthly, datetime(2026, 2, 1, 7, 59, tzinfo=UTC), anchor=T0 - 60 * HOUR
                           * 24) == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    assert next_occurrence(rule(), T0, anchor=T0) is None


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"minimum": eur("0")}, "minimum", InvalidAmountError),
        ({"minimum": eur("-1")}, "minimum", InvalidAmountError),
        ({"threshold": Money.of("20", "USD")}, "threshold", CurrencyMismatchError),
        ({"amount": Money.of("50", "USD")}, "amount", CurrencyMismatchError),
        ({"amount": eur("5")}, "amount", InvalidAmountError),
        ({"amount": eur("50"), "target": eur("100")}, "target", InvalidInputError),
        ({"amount": None}, "amount", InvalidInputError),
        ({"amount": None, "target": eur("20")}, "target", InvalidAmountError),
        ({"amount": None, "target": eur("10")}, "target", InvalidAmountError),
        ({"threshold": None}, "threshold", InvalidInputError),
        ({"schedule": "FREQ=BOGUS", "schedule_zone": "UTC"}, "schedule", InvalidInputError),
        ({"schedule": "FREQ=HOURLY", "schedule_zone": "UTC"}, "schedule", InvalidInputError),
        ({"schedule": "garbage", "schedule_zone": "UTC"}, "schedule", InvalidInputError),
        ({"schedule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "schedule_zone": "UTC"},
         "schedule", InvalidInputError),
        ({"schedule": "FREQ=DAILY;UNTIL=20270101T000000Z", "schedule_zone": "UTC"},
         "schedule", InvalidInputError),
        ({"schedule": "FREQ=DAILY"}, "schedule_zone", InvalidInputError),
        ({"schedule": "FREQ=DAILY", "schedule_zone": "Mars/Base"}, "schedule_zone",
         InvalidInputError),
        ({"schedule_zone": "UTC"}, "schedule_zone", InvalidInputError),
        ({"at_spend": 1}, "at_spend", InvalidInputError),
        ({"soft_decline_backoff": timedelta(0)}, "soft_decline_backoff", InvalidInputError),
        ({"max_soft_attempts": 0}, "max_soft_attempts", InvalidInputError),
        ({"max_soft_attempts": True}, "max_soft_attempts", InvalidInputError),
        ({"methods": "card-1"}, "methods", InvalidInputError),
    ],
)
def test_rule_validation(overrides: dict[str, object], field: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        rule(**overrides)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("primary", "backup", "field"),
    [("", None, "primary"), ("  ", None, "primary"), ("a", "a", "backup"), ("a", 3, "backup")],
)
def test_methods_validation(primary: object, backup: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        PaymentMethods(primary, backup)  # type: ignore[arg-type]
    assert info.value.field == field


def test_valid_rules() -> None:
    assert rule(threshold=None, amount=None, at_spend=True).at_spend
    assert rule(schedule="RRULE:FREQ=WEEKLY;BYDAY=MO", schedule_zone="Europe/Nicosia").schedule
    assert PaymentMethods("card-1").ordered == ("card-1",)


# -- the state machine ---------------------------------------------------------------------------


def new_intent(intent_id: str = "ti1") -> TopUpIntent:
    return TopUpIntent(id=intent_id, wallet_id="w1", amount=eur("50"),
                       reason=TopUpReason.THRESHOLD, created_at=T0)


def run(
    events: list[tuple[str, str]], the_rule: TopUpRule | None = None
) -> tuple[TopUpIntent, list[Step]]:
    """Drive an intent through ``events``: ``("step", "")`` asks next_step (and performs Charge
    by starting the attempt, Credit by marking, GiveUp by giving up, Wait by moving the clock),
    ``("report", status)`` records ``status`` for the last attempt, ``("late", key:status)`` a
    report for the key given."""
    the_rule = the_rule or rule()
    intent, now, steps = new_intent(), T0, []
    for kind, arg in events:
        if kind == "step":
            step = next_step(intent, the_rule, now)
            steps.append(step)
            if isinstance(step, Charge):
                intent = start_attempt(intent, step, now)
            elif isinstance(step, Credit):
                intent = mark_credited(intent)
            elif isinstance(step, GiveUp):
                intent = give_up(intent, step, now)
            elif isinstance(step, Wait):
                now = step.until
        elif kind == "report":
            intent = record_outcome(intent, intent.attempts[-1].idempotency_key, outcome(arg), now)
        else:
            key, status = arg.rsplit("=", 1)
            intent = record_outcome(intent, key, outcome(status), now)
        assert TopUpIntent.from_data(json.loads(json.dumps(intent.to_data()))) == intent
    return intent, steps


S = ("step", "")


def ok(status: str) -> tuple[str, str]:
    return ("report", status)


def charge(method: str, n: int) -> Charge:
    return Charge(method, f"ti1:{method}:{n}", eur("50"))


SCENARIOS = {
    "primary succeeds": (
        [S, ok("succeeded"), S, S],
        [charge("card-1", 1), "credit", Done()],
        IntentStatus.SUCCEEDED,
    ),
    "primary hard-declined then backup": (
        [S, ok("declined_hard"), S, ok("succeeded"), S, S],
        [charge("card-1", 1), charge("card-2", 1), "credit", Done()],
        IntentStatus.SUCCEEDED,
    ),
    "soft decline, wait, retry succeeds": (
        [S, ok("declined_soft"), S, S, ok("succeeded"), S, S],
        [charge("card-1", 1), Wait(T0 + HOUR), charge("card-1", 2), "credit", Done()],
        IntentStatus.SUCCEEDED,
    ),
    "unknown settled as succeeded": (
        [S, ok("unknown"), S, ok("unknown"), S, ok("succeeded"), S, S],
        [charge("card-1", 1), Settle("ti1:card-1:1", "card-1"),
         Settle("ti1:card-1:1", "card-1"), "credit", Done()],
        IntentStatus.SUCCEEDED,
    ),
    "unknown settled as declined, then backup": (
        [S, ok("unknown"), S, ok("declined_hard"), S, ok("succeeded"), S, S],
        [charge("card-1", 1), Settle("ti1:card-1:1", "card-1"), charge("card-2", 1), "credit",
         Done()],
        IntentStatus.SUCCEEDED,
    ),
    "no answer at all is settled, never the backup": (
        [S, S, S],
        [charge("card-1", 1), Settle("ti1:card-1:1", "card-1"), Settle("ti1:card-1:1", "card-1")],
        IntentStatus.PENDING,
    ),
    "both hard-declined: give up": (
        [S, ok("declined_hard"), S, ok("declined_hard"), S, S],
        [charge("card-1", 1), charge("card-2", 1), GiveUp(GiveUpReason.HARD_DECLINED), Done()],
        IntentStatus.FAILED,
    ),
    "soft declines exhausted on both: give up": (
        [S, ok("declined_soft"), S, S, ok("declined_soft"), S, ok("declined_soft"), S, S,
         ok("declined_soft"), S, S],
        [charge("card-1", 1), Wait(T0 + HOUR), charge("card-1", 2), charge("card-2", 1),
         Wait(T0 + 2 * HOUR), charge("card-2", 2), GiveUp(GiveUpReason.SOFT_DECLINES_EXHAUSTED),
         Done()],
        IntentStatus.FAILED,
    ),
    "success reported twice: one credit": (
        [S, ok("succeeded"), ok("succeeded"), S, ok("succeeded"), S],
        [charge("card-1", 1), "credit", Done()],
        IntentStatus.SUCCEEDED,
    ),
    "late success after give-up is ignored": (
        [S, ok("declined_hard"), S, ok("declined_hard"), S,
         ("late", "ti1:card-1:1=succeeded"), S],
        [charge("card-1", 1), charge("card-2", 1), GiveUp(GiveUpReason.HARD_DECLINED), Done()],
        IntentStatus.FAILED,
    ),
    "late decline of the settled primary is ignored": (
        [S, ok("declined_hard"), S, ("late", "ti1:card-1:1=declined_soft"), ok("succeeded"), S],
        [charge("card-1", 1), charge("card-2", 1), "credit"],
        IntentStatus.SUCCEEDED,
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    events, expected, status = SCENARIOS[name]
    the_rule = rule(max_soft_attempts=2)
    intent, steps = run(events, the_rule)
    shown = ["credit" if isinstance(s, Credit) else s for s in steps]
    assert shown == expected
    assert intent.status is status
    credits = [s for s in steps if isinstance(s, Credit)]
    assert len(credits) <= 1
    if credits:
        assert credits[0].idempotency_key == credit_key(intent) == "top-up:ti1"
        assert credits[0].attempt == intent.succeeded_attempt
        assert intent.credited


def test_no_retry_after_hard_decline_without_backup() -> None:
    single = rule(methods=PaymentMethods("card-1"))
    intent, steps = run([S, ok("declined_hard"), S, S], single)
    assert steps == [charge("card-1", 1), GiveUp(GiveUpReason.HARD_DECLINED), Done()]
    assert [a.method for a in intent.attempts] == ["card-1"]


def test_wait_then_charge_at_exactly_the_end_of_the_backoff() -> None:
    intent, _ = run([S, ok("declined_soft")])
    assert next_step(intent, rule(), T0 + HOUR - timedelta(microseconds=1)) == Wait(T0 + HOUR)
    assert next_step(intent, rule(), T0 + HOUR) == charge("card-1", 2)


def test_misuse_is_refused() -> None:
    intent, _ = run([S])
    with pytest.raises(InvalidInputError) as info:
        start_attempt(intent, charge("card-2", 1), T0)  # the primary is still unsettled
    assert info.value.field == "step"
    with pytest.raises(InvalidInputError) as info:
        give_up(intent, GiveUp(GiveUpReason.HARD_DECLINED), T0)
    assert info.value.field == "step"
    with pytest.raises(InvalidInputError) as info:
        record_outcome(intent, "ti1:card-9:1", outcome("succeeded"), T0)
    assert info.value.field == "idempotency_key"
    with pytest.raises(InvalidInputError) as info:
        mark_credited(intent)
    assert info.value.field == "intent"
    with pytest.raises(InvalidTimeError):
        next_step(intent, rule(), datetime(2026, 3, 1))  # naive
    with pytest.raises(CurrencyMismatchError):
        next_step(intent, rule(minimum=Money.of("10", "USD"), threshold=None, amount=None,
                               at_spend=True), T0)
    fresh = new_intent()
    with pytest.raises(InvalidInputError):
        start_attempt(fresh, charge("card-1", 2), T0)  # skips attempt 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "succeeded"}, "status"),
        ({"credited": True}, "credited"),
        ({"failure": "hard_declined"}, "failure"),
        ({"version": 2}, "intent"),
        ({"extra": 1}, "intent"),
        ({"amount": {"minor": 0, "currency": "EUR"}}, "amount"),
        ({"id": "a:b"}, "id"),
        ({"reason": "whim"}, "reason"),
        ({"created_at": "2026-03-01T12:00:00"}, "created_at"),
    ],
)
def test_from_data_refuses_inconsistent_data(change: dict[str, object], field: str) -> None:
    data = new_intent().to_data()
    data.update(change)
    with pytest.raises(InvalidInputError) as info:
        TopUpIntent.from_data(data)
    assert info.value.field == field


def test_from_data_refuses_a_forged_attempt_key() -> None:
    intent, _ = run([S, ok("declined_soft")])
    data = intent.to_data()
    data["attempts"][0]["idempotency_key"] = "ti1:card-1:7"
    with pytest.raises(InvalidInputError) as info:
        TopUpIntent.from_data(data)
    assert info.value.field == "attempts[0].idempotency_key"


def test_round_trip_of_every_shape() -> None:
    for name in SCENARIOS:
        intent, _ = run(SCENARIOS[name][0], rule(max_soft_attempts=2))
        data = json.loads(json.dumps(intent.to_data()))
        assert TopUpIntent.from_data(data) == intent
        assert TopUpIntent.from_data(data).to_data() == data


# -- simulation against the fake gateway ---------------------------------------------------------


def behaviours() -> st.SearchStrategy[Behaviour]:
    """Per-method behaviour: weights of the five kinds of charge (not all zero), a latency."""
    weight = st.sampled_from([0.0, 0.5, 1.0, 3.0])
    weights = st.tuples(weight, weight, weight, weight, weight).filter(lambda w: sum(w) > 0)
    return st.builds(lambda w, latency: Behaviour(*w, max_latency=latency), weights,
                     st.integers(0, 4))


RESEND_EVERY = 3  # settle by re-sending the charge after this many unknown lookups


@given(
    seed=st.integers(0, 2**32 - 1),
    primary=behaviours(),
    backup=st.none() | behaviours(),
    max_soft=st.integers(1, 3),
    intents=st.integers(1, 4),
)
def test_simulation_against_fake_gateway(
    seed: int, primary: Behaviour, backup: Behaviour | None, max_soft: int, intents: int
) -> None:
    methods = PaymentMethods("card-1", None if backup is None else "card-2")
    the_rule = rule(methods=methods, max_soft_attempts=max_soft)
    table = {"card-1": primary} if backup is None else {"card-1": primary, "card-2": backup}
    gateway = FakeGateway(random.Random(seed), table, redelivery=0.2)
    assert isinstance(gateway, PaymentGateway)
    max_latency = max(b.max_latency for b in table.values())
    # Per attempt: the charge, settles until a re-send (a key is lost at most once), settles
    # through the latency of a timeout after charging (re-sends do not shorten it), a wait;
    # then a credit or give-up, and done.
    bound = len(methods.ordered) * max_soft * (2 * RESEND_EVERY + 2 * max_latency + 4) + 3
    now = T0
    done: dict[str, TopUpIntent] = {}
    credits: list[str] = []
    for number in range(intents):
        intent = TopUpIntent(id=f"ti{number}", wallet_id="w1", amount=eur("50"),
                             reason=TopUpReason.THRESHOLD, created_at=now)
        unknown_lookups = 0
        for _ in range(bound):
            delivered = _late_report(gateway, intent, done, now)
            assert delivered is not None
            intent = delivered
            step = next_step(intent, the_rule, now)
            if isinstance(step, Done):
                break
            if isinstance(step, Charge):
                unsettled = [a for a in intent.attempts if not a.settled]
                assert not unsettled, "a charge while an attempt is unsettled"
                if step.method == "card-2":
                    primary_tries = [a for a in intent.attempts if a.method == "card-1"]
                    assert primary_tries
                    assert all(a.settled for a in primary_tries)
                    assert primary_tries[-1].status is ChargeStatus.DECLINED_HARD or (
                        len(primary_tries) == max_soft
                    )
                intent = start_attempt(intent, step, now)
                answer = gateway.charge(method=step.method, amount=step.amount,
                                        idempotency_key=step.idempotency_key)
                unknown_lookups = 0
                intent = record_outcome(intent, step.idempotency_key, answer, now)
            elif isinstance(step, Settle):
                unknown_lookups += 1
                if unknown_lookups % RESEND_EVERY == 0:
                    answer = gateway.charge(method=step.method, amount=intent.amount,
                                            idempotency_key=step.idempotency_key)
                else:
                    answer = gateway.lookup(idempotency_key=step.idempotency_key)
                intent = record_outcome(intent, step.idempotency_key, answer, now)
            elif isinstance(step, Wait):
                assert step.until > now
                now = step.until
            elif isinstance(step, Credit):
                credits.append(step.attempt.idempotency_key)
                intent = mark_credited(intent)
            else:
                assert isinstance(step, GiveUp)
                intent = give_up(intent, step, now)
            assert TopUpIntent.from_data(json.loads(json.dumps(intent.to_data()))) == intent
        else:
            pytest.fail(f"intent {intent.id} did not finish within {bound} steps")
        assert intent.status is not IntentStatus.PENDING
        done[intent.id] = intent
        now += HOUR
    for _ in range(20):  # late and repeated reports after everything finished change nothing
        _late_report(gateway, None, done, now)

    keys = [charge.idempotency_key for charge in gateway.charges]
    assert len(keys) == len(set(keys)), "charged twice under one key"
    assert len(credits) == len(set(credits)), "credited twice"
    assert sorted(credits) == sorted(keys), "credits and real charges differ"
    for intent in done.values():
        assert intent.credited == (intent.status is IntentStatus.SUCCEEDED)
        for attempt in intent.attempts:
            assert attempt.outcome == gateway.final_outcome(attempt.idempotency_key) or (
                attempt.status is ChargeStatus.UNKNOWN
            )


def _late_report(
    gateway: FakeGateway, current: TopUpIntent | None, done: dict[str, TopUpIntent], now: datetime
) -> TopUpIntent | None:
    """Deliver one repeated or late report, if the gateway plays one: to ``current`` when it is
    its intent (returning the updated intent), else to a finished intent, which must not
    change."""
    report = gateway.redeliver()
    if report is None:
        return current
    key, answer = report
    owner = key.split(":", 1)[0]
    if current is not None and owner == current.id:
        return record_outcome(current, key, answer, now)
    finished = done[owner]
    assert record_outcome(finished, key, answer, now) is finished
    return current
