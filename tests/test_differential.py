"""Differential test across backends (DESIGN.md I8): same commands, same clock, same journal.

Hypothesis draws one *program* -- a list of commands as plain data -- and the test body runs it
on every backend of :func:`tests.backends.available_backends`, each with its own
``FixedClock(START)`` and ``SequentialIds()``. Commands refer to earlier objects by index
("the 2nd wallet opened", "the 1st hold"), resolved at run time against what that backend
returned; an index into an empty list names an id that does not exist, so not-found errors are
part of the program too. Idempotency keys come from a small pool, so keys are reused both with
the same request (a replay) and with a different one (a conflict); a ``replay`` command resends
an earlier keyed call exactly.

Every call's outcome -- the returned value, or the raised error's type and message -- must be the
same on every backend, and so must ``store.export_state()`` at the end; ``verify().ok`` on each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet import (
    FixedClock,
    LineItem,
    Money,
    PaymentMode,
    PrepaidWalletError,
    SequentialIds,
    SpendCondition,
    SpendRequest,
    TimeWindow,
    WalletService,
)
from prepaid_wallet.rules.fees import FeeRule
from prepaid_wallet.rules.limits import LimitRule, Limits, Period, Window
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from tests.backends import available_backends

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "hub-a"
MISSING = "missing-1"

_index = st.integers(0, 7)
_key = st.one_of(st.none(), st.sampled_from([f"k{i}" for i in range(8)]))
_cents = st.integers(1, 8_000)

Command = tuple[Any, ...]

commands: st.SearchStrategy[Command] = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 4), st.sampled_from([0, -2_000]), _key),
    st.tuples(st.just("top_up"), _index, _cents, st.sampled_from(["EUR", "USD"]), _key),
    st.tuples(st.just("award"), _index, _cents, st.one_of(st.none(), st.integers(1, 72)), _key),
    st.tuples(st.just("spend"), _index, _cents,
              st.sampled_from([PaymentMode.CREDIT_ONLY, PaymentMode.CREDIT_FIRST]), _key),
    st.tuples(st.just("hold"), _index, _cents, st.integers(1, 48), _key),
    st.tuples(st.just("capture"), _index, st.one_of(st.none(), _cents), _key),
    st.tuples(st.just("void"), _index, _key),
    st.tuples(st.just("transfer"), _index, _index, _cents, _key),
    st.tuples(st.just("refund"), _index, st.one_of(st.none(), _cents), _key),
    st.tuples(st.just("reverse"), _index, _key),
    st.tuples(st.just("advance"), st.integers(0, 60 * 60 * 30)),
    st.tuples(st.just("expire_due")),
    st.tuples(st.just("replay"), _index),
    # commerce conditions: groups, conditioned awards and transfers, spends with line items
    st.tuples(st.just("group"), st.one_of(st.none(), st.integers(1, 72))),
    st.tuples(st.just("group_end"), _index, st.one_of(st.none(), st.integers(1, 72))),
    st.tuples(st.just("award_c"), _index, _cents, st.sampled_from(["group", "own"]), _index,
              _key),
    st.tuples(st.just("transfer_c"), _index, _index, _cents, _index, _key),
    st.tuples(st.just("spend_c"), _index, _cents, _cents,
              st.sampled_from([None, "shop-a", "shop-b"]),
              st.sampled_from([PaymentMode.CREDIT_ONLY, PaymentMode.CREDIT_FIRST]), _key),
    st.tuples(st.just("extend"), _index, st.one_of(st.none(), st.integers(1, 72)),
              st.one_of(st.none(), _cents), _key),
    # wallet rules: payouts and adjustments (with fees and limits), reminders
    st.tuples(st.just("payout"), _index, _cents, _key),
    st.tuples(st.just("adjust"), _index, st.integers(-8_000, 8_000).filter(bool), _key),
    st.tuples(st.just("ack"), st.integers(1, 3)),
    # credit at checkout, credit owed, a wallet's hub settings
    st.tuples(st.just("apply"), _index, st.integers(0, 3), st.integers(0, 8_000),
              st.sampled_from([None, PaymentMode.CREDIT_ONLY, PaymentMode.CREDIT_FIRST]), _key),
    st.tuples(st.just("place"), _index, st.integers(0, 3), _key),
    st.tuples(st.just("abandon"), _index, st.integers(0, 3), _key),
    st.tuples(st.just("owed"), _index, st.integers(0, 3), st.integers(0, 8_000),
              st.integers(0, 3_000), _key),
    st.tuples(st.just("set_floor"), _index, st.integers(-3_000, 0), _key),
    st.tuples(st.just("set_mode"), _index,
              st.sampled_from([None, PaymentMode.CREDIT_ONLY, PaymentMode.CREDIT_FIRST]), _key),
    # customer top-ups: started, reported in any order, charged back
    st.tuples(st.just("start_top_up"), _index, _cents, _key),
    st.tuples(st.just("report_top_up"), _index,
              st.sampled_from(["succeeded", "declined_hard", "canceled", "unknown"])),
    st.tuples(st.just("charge_back"), _index, st.one_of(st.none(), _cents), _key),
)
#: The tenant's rules in every run: small fees, limits a program can reach (spends, holds and
#: captures share the spend limit), reminders.
RULES = TenantRules(
    fees=(
        FeeRule(name="spend", operations={Operation.SPEND}, percent=Decimal(1)),
        FeeRule(name="out", operations={Operation.TRANSFER_OUT, Operation.PAYOUT},
                fixed=Money.of("0.10", "EUR")),
    ),
    limits=Limits(
        rules=(LimitRule(operation=Operation.PAYOUT, max_count=2,
                         window=Window(period=Period.DAY, zone="Europe/Berlin")),
               LimitRule(operation=Operation.SPEND, max_count=4,
                         max_amount=Money.of("120.00", "EUR"),
                         window=Window(rolling=timedelta(hours=12)))),
        max_balance=Money.of("500.00", "EUR"),
    ),
    low_balance=LowBalanceRule((Threshold(Money.of("20.00", "EUR"), "notice"),
                                Threshold(Money.of("5.00", "EUR"), "warn"))),
    member_payment_modes=True,
)
#: The commands of credit at checkout and hub settings (:meth:`Runner.checkout`).
CHECKOUT = frozenset({"apply", "place", "abandon", "owed", "set_floor", "set_mode"})
#: Lots with their own conditions may pay food, in Berlin daytime on weekdays.
FOOD_BY_DAY = SpendCondition(categories={"food"}, windows=(TimeWindow(
    days={1, 2, 3, 4, 5}, start=time(8), end=time(20), zone="Europe/Berlin"),))
#: Lots of a condition group may pay anything at shop-a.
AT_SHOP = SpendCondition(merchants={"shop-a"})
programs = st.lists(commands, min_size=1, max_size=40)


def _eur(minor: int, currency: str = "EUR") -> Money:
    return Money.from_minor_units(minor, currency)


def _pick(items: list[str], index: int) -> str:
    return items[index % len(items)] if items else MISSING


class Runner:
    """Runs a program on one store, recording every outcome."""

    def __init__(self, svc: WalletService, clock: FixedClock) -> None:
        self.svc = svc
        self.clock = clock
        self.wallets: list[str] = []
        self.holds: list[str] = []
        self.charges: list[str] = []  # spend and capture entries (refundable)
        self.reversible: list[str] = []  # top-up, award and transfer entries
        self.keyed: list[Callable[[], Any]] = []  # keyed calls, to resend
        self.outcomes: list[Any] = []
        self.groups: list[str] = []
        self.lots: list[str] = []
        self.top_ups: list[str] = []  # customer top-ups

    def run(self, program: list[Command]) -> list[Any]:
        for command in program:
            self.outcomes.append(self.step(command))
        return self.outcomes

    def _call(self, fn: Callable[[], Any], key: str | None) -> Any:
        if key is not None:
            self.keyed.append(fn)
        try:
            return ("ok", fn())
        except PrepaidWalletError as exc:
            return ("error", type(exc).__name__, str(exc))

    def step(self, command: Command) -> Any:  # one arm per command
        svc, name, args = self.svc, command[0], command[1:]
        if name == "open":
            owner, floor, key = args
            outcome = self._call(lambda: svc.open_wallet(
                owner_id=f"owner-{owner}", tenant_id=TENANT, currency="EUR",
                floor=_eur(floor), idempotency_key=key), key)
            if outcome[0] == "ok" and outcome[1].id not in self.wallets:
                self.wallets.append(outcome[1].id)
            return outcome
        if name == "top_up":
            w, cents, currency, key = args
            wid = _pick(self.wallets, w)
            outcome = self._call(lambda: svc.top_up(wid, _eur(cents, currency), method="card",
                                                    idempotency_key=key), key)
            self._note(outcome, self.reversible)
            return outcome
        if name == "award":
            w, cents, hours, key = args
            wid = _pick(self.wallets, w)
            expires = None if hours is None else self.clock.now() + timedelta(hours=hours)
            outcome = self._call(lambda: svc.award(wid, _eur(cents), reason="promo",
                                                   expires_at=expires, idempotency_key=key), key)
            self._note(outcome, self.reversible)
            return outcome
        if name == "spend":
            w, cents, mode, key = args
            wid = _pick(self.wallets, w)
            outcome = self._call(lambda: svc.spend(wid, SpendRequest(_eur(cents), mode=mode),
                                                   idempotency_key=key), key)
            self._note(outcome, self.charges)
            return outcome
        if name == "hold":
            w, cents, hours, key = args
            wid = _pick(self.wallets, w)
            outcome = self._call(lambda: svc.hold(wid, _eur(cents), window=timedelta(hours=hours),
                                                  idempotency_key=key), key)
            if outcome[0] == "ok" and outcome[1].id not in self.holds:
                self.holds.append(outcome[1].id)
            return outcome
        if name == "capture":
            h, cents, key = args
            hid = _pick(self.holds, h)
            amount = None if cents is None else _eur(cents)
            outcome = self._call(lambda: svc.capture(hid, amount, idempotency_key=key), key)
            self._note(outcome, self.charges)
            return outcome
        if name == "void":
            h, key = args
            hid = _pick(self.holds, h)
            return self._call(lambda: svc.void(hid, idempotency_key=key), key)
        if name == "transfer":
            a, b, cents, key = args
            src, dst = _pick(self.wallets, a), _pick(self.wallets, b)
            outcome = self._call(lambda: svc.transfer(src, dst, _eur(cents),
                                                      idempotency_key=key), key)
            self._note(outcome, self.reversible)
            return outcome
        if name == "refund":
            e, cents, key = args
            eid = _pick(self.charges, e)
            amount = None if cents is None else _eur(cents)
            return self._call(lambda: svc.refund(eid, amount, reason="returned",
                                                 idempotency_key=key), key)
        if name == "reverse":
            e, key = args
            eid = _pick(self.reversible, e)
            return self._call(lambda: svc.reverse(eid, reason="mistake", idempotency_key=key),
                              key)
        if name == "advance":
            return ("ok", self.clock.advance(timedelta(seconds=args[0])))
        if name == "expire_due":
            return self._call(svc.expire_due, None)
        if name == "replay":
            if not self.keyed:
                return ("skip",)
            return self._call(self.keyed[args[0] % len(self.keyed)], None)
        if name in CHECKOUT:
            return self.checkout(name, args)
        if name in ("start_top_up", "report_top_up", "charge_back"):
            return self.customer_top_ups(name, args)
        return self.commerce(name, args)

    def checkout(self, name: str, args: tuple[Any, ...]) -> Any:
        """The commands of credit at checkout, credit owed and a wallet's hub settings."""
        svc = self.svc
        wid, rest = _pick(self.wallets, args[0]), args[1:]
        if name == "apply":
            order, cents, mode, key = rest
            return self._call(lambda: svc.apply_credit(
                wid, order_id=f"o{order}", total=_eur(cents), mode=mode, idempotency_key=key),
                key)
        if name in ("place", "abandon"):
            order, key = rest
            run = svc.place_order if name == "place" else svc.abandon_order
            outcome = self._call(lambda: run(wid, order_id=f"o{order}", idempotency_key=key),
                                 key)
            if name == "place":
                self._note(outcome, self.charges)
            return outcome
        if name == "owed":
            order, total, other, key = rest
            return self._call(lambda: svc.credit_owed(
                wid, order_id=f"o{order}", total=_eur(total),
                paid_by_other_methods=_eur(other), actor="staff", idempotency_key=key), key)
        if name == "set_floor":
            floor, key = rest
            return self._call(lambda: svc.set_floor(wid, _eur(floor), actor="staff",
                                                    reason="hub", idempotency_key=key), key)
        mode, key = rest
        return self._call(lambda: svc.set_payment_mode(wid, mode, actor="staff",
                                                       idempotency_key=key), key)

    def customer_top_ups(self, name: str, args: tuple[Any, ...]) -> Any:
        """The commands of customer top-ups."""
        from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus

        svc = self.svc
        if name == "start_top_up":
            w, cents, key = args
            wid = _pick(self.wallets, w)
            outcome = self._call(lambda: svc.start_top_up(wid, _eur(cents), method="card",
                                                          idempotency_key=key), key)
            if outcome[0] == "ok" and outcome[1].id not in self.top_ups:
                self.top_ups.append(outcome[1].id)
            return outcome
        if name == "report_top_up":
            t, status = args
            tid = _pick(self.top_ups, t)
            return self._call(lambda: svc.report_charge(
                tid, ChargeOutcome(ChargeStatus(status), reference="pi_1")), None)
        t, cents, key = args
        tid = _pick(self.top_ups, t)
        amount = None if cents is None else _eur(cents)
        return self._call(lambda: svc.charge_back_top_up(tid, amount, reason="dispute",
                                                         idempotency_key=key), key)

    def commerce(self, name: str, args: tuple[Any, ...]) -> Any:
        """The commands on conditioned commerce."""
        svc, now = self.svc, self.clock.now()
        if name == "group":
            (hours,) = args
            end = None if hours is None else now + timedelta(hours=hours)
            outcome = self._call(lambda: svc.define_condition_group(
                tenant_id=TENANT, name=f"group {len(self.groups)}", condition=AT_SHOP,
                valid_until=end), None)
            if outcome[0] == "ok":
                self.groups.append(outcome[1].id)
            return outcome
        if name == "group_end":
            g, hours = args
            gid = _pick(self.groups, g)
            end = None if hours is None else now + timedelta(hours=hours)
            return self._call(lambda: svc.change_condition_group(gid, valid_until=end), None)
        if name == "award_c":
            w, cents, how, g, key = args
            wid, gid = _pick(self.wallets, w), _pick(self.groups, g)
            outcome = self._call(lambda: svc.award(
                wid, _eur(cents), reason="promo", expires_at=now + timedelta(hours=30),
                condition=FOOD_BY_DAY if how == "own" else None,
                group_id=gid if how == "group" else None, idempotency_key=key), key)
            self._note(outcome, self.reversible)
            if outcome[0] == "ok" and outcome[1].id not in self.lots:
                self.lots.append(outcome[1].id)
            return outcome
        if name == "transfer_c":
            a, b, cents, g, key = args
            src, dst, gid = _pick(self.wallets, a), _pick(self.wallets, b), _pick(self.groups, g)
            outcome = self._call(lambda: svc.transfer(src, dst, _eur(cents), group_id=gid,
                                                      idempotency_key=key), key)
            self._note(outcome, self.reversible)
            return outcome
        if name == "spend_c":
            w, food, other, merchant, mode, key = args
            wid = _pick(self.wallets, w)
            lines = (LineItem("bread", _eur(food), "food"), LineItem("soap", _eur(other), "home"))
            request = SpendRequest(_eur(food + other), mode=mode, lines=lines, merchant=merchant)
            outcome = self._call(lambda: svc.spend(wid, request, idempotency_key=key), key)
            self._note(outcome, self.charges)
            return outcome
        if name == "payout":
            w, cents, key = args
            wid = _pick(self.wallets, w)
            return self._call(lambda: svc.payout(wid, _eur(cents), method="bank",
                                                 idempotency_key=key), key)
        if name == "adjust":
            w, cents, key = args
            wid = _pick(self.wallets, w)
            if cents > 0:
                return self._call(lambda: svc.credit(wid, _eur(cents), reason="goodwill",
                                                     idempotency_key=key), key)
            return self._call(lambda: svc.debit(wid, _eur(-cents), reason="correction",
                                                idempotency_key=key), key)
        if name == "ack":
            (count,) = args
            pending = svc.events(TENANT)
            return ("ok", [e.thresholds for e in pending],
                    svc.ack_events(TENANT, [e.id for e in pending[:count]]))
        if name == "extend":
            lot_index, hours, cents, key = args
            lid = _pick(self.lots, lot_index)
            end = None if hours is None else now + timedelta(hours=hours)
            amount = None if cents is None else _eur(cents)
            outcome = self._call(lambda: svc.extend_expiry(lid, end, amount=amount,
                                                           idempotency_key=key), key)
            if outcome[0] == "ok" and outcome[1].id not in self.lots:
                self.lots.append(outcome[1].id)
            return outcome
        raise AssertionError(f"unknown command {name!r}")  # pragma: no cover

    @staticmethod
    def _note(outcome: Any, into: list[str]) -> None:
        if outcome[0] != "ok":
            return
        entry_id = outcome[1].entry_id
        if entry_id is not None and entry_id not in into:
            into.append(entry_id)


def run_everywhere(program: list[Command]) -> dict[str, tuple[list[Any], dict[str, Any], Any]]:
    """Run ``program`` on a fresh store of every backend: outcomes, final dump, verify report."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, factory in available_backends().items():
            store = factory(Path(tmp))
            try:
                clock = FixedClock(START)
                svc = WalletService(store, clock=clock, ids=SequentialIds(),
                                    rules={TENANT: RULES})
                outcomes = Runner(svc, clock).run(program)
                results[name] = (outcomes, store.export_state(), svc.verify())
            finally:
                store.close()
    return results


def _assert_same(results: dict[str, tuple[list[Any], dict[str, Any], Any]]) -> None:
    (ref_name, (ref_outcomes, ref_state, _)), *others = results.items()
    for name, (_, _, report) in results.items():
        assert report.ok, (name, report)
    for name, (outcomes, state, _) in others:
        assert len(outcomes) == len(ref_outcomes)
        for i, (mine, theirs) in enumerate(zip(outcomes, ref_outcomes, strict=True)):
            assert mine == theirs, f"step {i}: {name} gave {mine!r}, {ref_name} gave {theirs!r}"
        for table in ref_state:
            assert state[table] == ref_state[table], f"{name} and {ref_name} differ in {table}"
        assert state == ref_state


@given(programs)
def test_same_program_same_outcomes_and_journal_on_every_backend(program: list[Command]) -> None:
    _assert_same(run_everywhere(program))


def test_a_fixed_program_exercises_every_command_on_every_backend() -> None:
    """A hand-written program that hits each command, its refusals and the replay paths, so the
    comparison is known to cover them whatever hypothesis draws."""
    program: list[Command] = [
        ("open", 0, 0, "k0"), ("open", 1, -2_000, None), ("open", 0, 0, "k0"),  # replay
        ("open", 0, 0, None),  # duplicate wallet
        ("void", 0, None), ("capture", 0, None, None),  # no holds yet: not found
        ("top_up", 0, 5_000, "EUR", "k1"), ("top_up", 0, 5_000, "EUR", "k1"),  # replay
        ("top_up", 0, 1, "EUR", "k1"),  # conflict
        ("top_up", 1, 100, "USD", None),  # currency mismatch
        ("award", 0, 1_500, 24, "k2"), ("award", 1, 700, None, None),
        ("spend", 0, 2_000, PaymentMode.CREDIT_ONLY, "k3"),
        ("spend", 0, 99_000, PaymentMode.CREDIT_ONLY, "k4"),  # denied
        ("spend", 0, 99_000, PaymentMode.CREDIT_ONLY, "k4"),  # denied again (replay)
        ("spend", 1, 2_500, PaymentMode.CREDIT_FIRST, None),
        ("hold", 0, 1_000, 4, "k5"), ("hold", 0, 500, 4, None),
        ("capture", 0, 600, "k6"), ("capture", 0, None, None),  # hold no longer active
        ("void", 1, None), ("void", 1, None),  # second void refused
        ("capture", 5, None, None),  # hold index wraps
        ("transfer", 0, 1, 300, "k7"), ("transfer", 0, 0, 300, None),  # same wallet
        ("transfer", 1, 0, 999_999, None),  # insufficient funds
        ("refund", 0, 500, None), ("refund", 0, None, None), ("refund", 0, None, None),
        ("reverse", 0, None),  # the top-up was spent: insufficient funds
        ("reverse", 3, None), ("reverse", 3, None),  # already reversed
        ("hold", 0, 200, 1, None), ("advance", 60 * 60 * 25), ("capture", 2, None, None),
        ("expire_due",), ("expire_due",), ("replay", 0), ("replay", 3), ("replay", 5),
        ("top_up", 9, 100, "EUR", None), ("refund", 9, None, None),
        # conditioned commerce
        ("award_c", 0, 500, "group", 0, None),  # no group yet: not found
        ("group", 48), ("award_c", 0, 900, "group", 0, "k8"), ("award_c", 0, 900, "own", 0, None),
        ("transfer_c", 0, 1, 400, 0, None),
        ("spend_c", 0, 700, 300, "shop-a", PaymentMode.CREDIT_ONLY, None),
        ("spend_c", 1, 500, 500, "shop-b", PaymentMode.CREDIT_FIRST, None),
        ("spend_c", 0, 99_000, 1, None, PaymentMode.CREDIT_ONLY, None),  # denied
        ("extend", 0, 72, 100, None), ("extend", 0, 72, 99_999, None),  # more than it holds
        ("extend", 1, None, None, None), ("group_end", 0, 1), ("advance", 60 * 60 * 2),
        ("award_c", 0, 100, "group", 0, None),  # the group has ended
        ("expire_due",), ("group_end", 0, None), ("expire_due",),
        # rules: fees, limits, reminders
        ("adjust", 1, 3_000, None), ("payout", 1, 1_000, "k9"), ("payout", 1, 1_000, "k9"),
        ("payout", 1, 100, None), ("payout", 1, 100, None),  # the daily limit
        ("adjust", 1, -99_000, None),  # below the floor
        ("adjust", 0, 60_000, None),  # above the maximum balance
        ("ack", 2), ("ack", 3),
        # credit at checkout, credit owed, hub settings
        ("place", 0, 0, None),  # no such order
        ("top_up", 0, 6_000, "EUR", None),
        ("apply", 0, 0, 4_000, None, "k10"), ("apply", 0, 0, 4_000, None, "k10"),  # replay
        ("apply", 0, 0, 2_500, None, None),  # re-sized
        ("apply", 1, 0, 100, None, None),  # another wallet's order
        ("place", 0, 0, None), ("place", 0, 0, None),  # placed already
        ("owed", 0, 0, 2_000, 1_000, None), ("owed", 0, 0, 2_000, 1_000, None),  # once
        ("apply", 0, 1, 99_000, PaymentMode.CREDIT_ONLY, None),
        ("place", 0, 1, None),  # credit-only, not covered
        ("abandon", 0, 1, None), ("abandon", 0, 1, None),
        ("set_mode", 0, PaymentMode.CREDIT_FIRST, None), ("set_mode", 0, None, None),
        ("set_floor", 0, -3_000, "k11"), ("set_floor", 0, -3_000, "k11"),
        ("set_floor", 1, 0, None),  # above the open balance: refused
        # customer top-ups
        ("report_top_up", 0, "succeeded"),  # none yet: unknown id
        ("start_top_up", 0, 2_500, "k12"), ("start_top_up", 0, 2_500, "k12"),  # replay
        ("start_top_up", 1, 1_000, None), ("start_top_up", 0, 99_000, None),  # max balance
        ("report_top_up", 0, "unknown"), ("report_top_up", 0, "succeeded"),
        ("report_top_up", 0, "succeeded"), ("report_top_up", 1, "declined_hard"),
        ("report_top_up", 1, "succeeded"),  # a success after a failure
        ("charge_back", 0, 1_000, None), ("charge_back", 0, None, "k13"),
        ("charge_back", 0, None, None),  # nothing left
        ("start_top_up", 0, 500, None), ("advance", 60 * 60 * 25), ("expire_due",),
        ("report_top_up", 2, "succeeded"),  # after expiry
    ]
    results = run_everywhere(program)
    _assert_same(results)
    outcomes = results["memory"][0]
    kinds = {o[1] for o in outcomes if o[0] == "error"}
    # The program really hit the refusals it was written for.
    assert {"DuplicateWalletError", "IdempotencyConflictError", "CurrencyMismatchError",
            "SpendDeniedError", "HoldStateError", "InvalidInputError",
            "InsufficientFundsError", "AlreadyReversedError", "HoldExpiredError",
            "RefundExceedsOriginalError", "HoldNotFoundError", "ConditionGroupNotFoundError",
            "InvalidAmountError", "InvalidTimeError", "LimitExceededError",
            "OrderNotFoundError", "OrderStateError", "OrderNotCoveredError",
            "NoCreditOwedError", "FloorAboveBalanceError"} <= kinds, kinds
    assert outcomes[2] == outcomes[0]  # open_wallet replayed
    assert outcomes[7] == outcomes[6]  # top_up replayed
    assert outcomes[7][0] == "ok"
    assert results["memory"][1]["entries"], "the program wrote nothing"
