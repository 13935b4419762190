"""Stateful test of pay-as-you-go contracts against a plain-Python model.

A hypothesis ``RuleBasedStateMachine`` drives :class:`WalletService` on the memory store with a
clock that only moves when a rule moves it: payments, conversion transactions, device reports,
upgrade calls, payments in and after the window (also exactly at the deadline), reconversions,
unlinking, confirmations and the expiry job. The machine predicts each command's outcome from
its model (refused or not, the contract's state, its rate and service end to the second) before
calling the service, and checks after every step, on what the store holds:

* money in = the open balance + money turned into time + downpayments, per wallet, from the
  journal's postings;
* time granted is never counted twice: the service end is the start plus the lapses plus the
  on-time history's time, and every payment's time appears in exactly the lines that moved it;
* the state machine only takes its documented transitions;
* ``verify()`` is clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from prepaid_wallet import Actor, FixedClock, Money, SequentialIds, WalletService, open_store
from prepaid_wallet.errors import PrepaidWalletError
from prepaid_wallet.ledger import downpayments_account, service_account
from prepaid_wallet.rules.payg import (
    ContractState,
    DeviceState,
    PaymentStatus,
    check_time,
)

T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
OP = "op"
DAY = 86_400
WINDOW = timedelta(hours=4)
OFFICER = Actor("officer", frozenset({"system_process_officer"}))
ADMIN = Actor("admin", frozenset({"admin"}))
#: The documented transitions of a contract's state.
TRANSITIONS = {
    (ContractState.ACTIVE, ContractState.PAY_UPGRADE_DOWNPAYMENT),
    (ContractState.PAY_UPGRADE_DOWNPAYMENT, ContractState.INSTALL_COLLECT_UPGRADE),
    (ContractState.PAY_UPGRADE_DOWNPAYMENT, ContractState.ACTIVE),
    (ContractState.INSTALL_COLLECT_UPGRADE, ContractState.ACTIVE),
}


def kes(minor: int) -> Money:
    return Money.from_minor_units(minor, "KES")


@dataclass
class MUpgrade:
    rate: int
    down: int
    deadline: datetime
    held: list[str] = field(default_factory=list)
    held_total: int = 0


@dataclass
class MContract:
    wallet_id: str
    rate: int
    start: datetime
    end: datetime
    lapsed: timedelta = timedelta(0)
    state: ContractState = ContractState.ACTIVE
    device_on: bool = True
    upgrade: MUpgrade | None = None
    payments: dict[str, tuple[int, PaymentStatus]] = field(default_factory=dict)
    conversion: list[str] = field(default_factory=list)  # still linked, in id order


class PaygMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(T0)
        self.store = open_store("memory:")
        self.svc = WalletService(self.store, clock=self.clock, ids=SequentialIds())
        self.contracts: dict[str, MContract] = {}
        self.counter = 0

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    # -- the model's arithmetic (the documented rules, written again) -------------------------

    @staticmethod
    def seconds(amount: int, rate: int) -> timedelta:
        return timedelta(seconds=amount * DAY // rate)

    def left(self, c: MContract) -> timedelta:
        return max(c.end - self.now, timedelta(0))

    def grant(self, c: MContract, time: timedelta) -> None:
        if c.end < self.now:
            c.lapsed += self.now - c.end
            c.end = self.now
        c.end += time

    def expire_if_late(self, c: MContract) -> None:
        u = c.upgrade
        if c.state is ContractState.PAY_UPGRADE_DOWNPAYMENT and u and self.now >= u.deadline:
            for pid in u.held:
                amount, _ = c.payments[pid]
                self.grant(c, self.seconds(amount, c.rate))
                c.payments[pid] = (amount, PaymentStatus.TIME)
            c.state, c.upgrade = ContractState.ACTIVE, None

    def complete(self, c: MContract, available: int) -> None:
        u = c.upgrade
        assert u is not None
        for pid in u.held:
            c.payments[pid] = (c.payments[pid][0], PaymentStatus.DOWNPAYMENT)
        left = self.left(c)
        if left > timedelta(0):
            micro = left // timedelta(microseconds=1)
            c.end = self.now + timedelta(seconds=micro * c.rate // (u.rate * 1_000_000))
        c.rate = u.rate
        if available > u.down:
            self.grant(c, self.seconds(available - u.down, c.rate))
        c.state = ContractState.INSTALL_COLLECT_UPGRADE

    def performance_above(self, c: MContract) -> bool:
        elapsed = self.now - c.start
        if elapsed <= timedelta(0):
            return True
        without = c.lapsed + max(self.now - c.end, timedelta(0))
        micro = timedelta(microseconds=1)
        # Rounded down to six places, then compared with 0.95.
        share_millionths = (elapsed - without) // micro * 1_000_000 // (elapsed // micro)
        return share_millionths > 950_000

    # -- calling the service ------------------------------------------------------------------

    def expect(self, refused: bool, call: Any) -> Any:
        before = self.store.export_state()
        try:
            outcome = call()
        except PrepaidWalletError:
            assert refused, "the service refused what the model allows"
            assert self.store.export_state() == before
            return None
        assert not refused, "the service allowed what the model refuses"
        return outcome

    def check(self, c: MContract, outcome: Any, state_before: ContractState) -> None:
        contract = outcome.contract
        assert (state_before, contract.state) in TRANSITIONS or state_before == contract.state
        assert contract.state is c.state
        assert contract.daily_rate == kes(c.rate)
        assert contract.service_end == c.end
        assert contract.lapsed == c.lapsed

    # -- rules --------------------------------------------------------------------------------

    @initialize()
    def customers(self) -> None:
        for owner in ("a", "b"):
            wallet = self.svc.open_wallet(owner_id=owner, tenant_id=OP, currency="KES")
            self.svc.open_contract(wallet.id, products=["lamp"], daily_rate=kes(5_000))
            self.svc.report_device(wallet.id, state=DeviceState.ON)
            c = MContract(wallet.id, 5_000, self.now, self.now)
            self.contracts[wallet.id] = c
        # The second customer was converted from paying monthly.
        c = self.contracts[sorted(self.contracts)[1]]
        payments = {"old1": 40_000, "old2": 120_000, "old3": 75_000}
        self.svc.record_conversion(c.wallet_id, conversion_id="conv",
                                   payments={k: kes(v) for k, v in payments.items()})
        for pid, amount in sorted(payments.items()):
            c.payments[pid] = (amount, PaymentStatus.LINKED)
            self.grant(c, self.seconds(amount, c.rate))
        c.conversion = sorted(payments)

    def contract(self, index: int) -> MContract:
        return self.contracts[sorted(self.contracts)[index]]

    @rule(index=st.integers(0, 1), amount=st.integers(1, 200_000))
    def pay(self, index: int, amount: int) -> None:
        c = self.contract(index)
        before = c.state
        pid = self.new_id("p")
        self.expire_if_late(c)
        outcome = self.expect(False, lambda: self.svc.payg_payment(
            c.wallet_id, payment_id=pid, amount=kes(amount)))
        u = c.upgrade
        if c.state is ContractState.PAY_UPGRADE_DOWNPAYMENT and u is not None:
            c.payments[pid] = (amount, PaymentStatus.HELD)
            u.held.append(pid)
            u.held_total += amount
            if u.held_total >= u.down:
                self.complete(c, u.held_total)
        else:
            self.grant(c, self.seconds(amount, c.rate))
            c.payments[pid] = (amount, PaymentStatus.TIME)
        self.check(c, outcome, before)

    @rule(index=st.integers(0, 1), on=st.booleans())
    def device(self, index: int, on: bool) -> None:
        c = self.contract(index)
        before = c.state
        self.expire_if_late(c)
        outcome = self.svc.report_device(
            c.wallet_id, state=DeviceState.ON if on else DeviceState.OFF)
        c.device_on = on
        self.check(c, outcome, before)

    @rule(index=st.integers(0, 1), rate=st.sampled_from([2_500, 5_000, 7_000, 10_000]),
          down=st.integers(1, 150_000))
    def call_upgrade(self, index: int, rate: int, down: int) -> None:
        c = self.contract(index)
        before = c.state
        self.expire_if_late(c)
        refused = not (c.state is ContractState.ACTIVE and self.performance_above(c)
                       and c.device_on and c.end > self.now)
        outcome = self.expect(refused, lambda: self.svc.call_upgrade(
            c.wallet_id, products=["lamp", "tv"], daily_rate=kes(rate), downpayment=kes(down)))
        if outcome is None:
            return
        c.state = ContractState.PAY_UPGRADE_DOWNPAYMENT
        c.upgrade = MUpgrade(rate, down, self.now + WINDOW)
        self.check(c, outcome, before)

    @rule(index=st.integers(0, 1), data=st.data())
    def reconvert(self, index: int, data: st.DataObject) -> None:
        c = self.contract(index)
        if not c.payments:
            return
        chosen = data.draw(st.lists(st.sampled_from(sorted(c.payments)), min_size=1,
                                    max_size=3, unique=True))
        before = c.state
        saved = (c.end, c.lapsed, c.state, c.upgrade)
        self.expire_if_late(c)
        u = c.upgrade
        amount = sum(c.payments[p][0] for p in chosen)
        time = self.seconds(amount, c.rate)
        refused = (c.state is not ContractState.PAY_UPGRADE_DOWNPAYMENT or u is None
                   or any(c.payments[p][1] is not PaymentStatus.TIME for p in chosen)
                   or u.held_total + amount < u.down or time > self.left(c))
        outcome = self.expect(refused, lambda: self.svc.reconvert_payments(
            c.wallet_id, payment_ids=chosen, actor=OFFICER))
        if outcome is None:
            if saved[2] is ContractState.PAY_UPGRADE_DOWNPAYMENT and c.upgrade is None:
                # The lazy expiry was rolled back with the refusal: the model undoes it too.
                self.undo_expiry(c, saved)
            return
        assert u is not None
        c.end -= time
        for p in chosen:
            c.payments[p] = (c.payments[p][0], PaymentStatus.RECONVERTED)
        self.complete(c, u.held_total + amount)
        self.check(c, outcome, before)

    def undo_expiry(self, c: MContract, saved: tuple[Any, ...]) -> None:
        c.end, c.lapsed, c.state, c.upgrade = saved
        assert c.upgrade is not None
        for pid in c.upgrade.held:
            c.payments[pid] = (c.payments[pid][0], PaymentStatus.HELD)

    @rule()
    def unlink(self) -> None:
        c = self.contract(1)
        before = c.state
        saved = (c.end, c.lapsed, c.state, c.upgrade)
        self.expire_if_late(c)
        u = c.upgrade
        refused = c.state is not ContractState.PAY_UPGRADE_DOWNPAYMENT or u is None \
            or not c.conversion
        pid = None
        if not refused:
            assert u is not None
            linked = [(p, c.payments[p][0]) for p in c.conversion]
            covering = [p for p, amount in linked if amount >= u.down - u.held_total]
            pid = covering[0] if covering else max(linked, key=lambda x: x[1])[0]
            amount = c.payments[pid][0]
            refused = u.held_total + amount < u.down \
                or self.seconds(amount, c.rate) > self.left(c)
        outcome = self.expect(refused, lambda: self.svc.unlink_conversion_payment(
            c.wallet_id, conversion_id="conv", actor=ADMIN))
        if outcome is None:
            if saved[2] is ContractState.PAY_UPGRADE_DOWNPAYMENT and c.upgrade is None:
                self.undo_expiry(c, saved)
            return
        assert u is not None
        assert pid is not None
        amount = c.payments[pid][0]
        c.end -= self.seconds(amount, c.rate)
        c.payments[pid] = (amount, PaymentStatus.UNLINKED)
        c.conversion.remove(pid)
        self.complete(c, u.held_total + amount)
        self.check(c, outcome, before)

    @rule(index=st.integers(0, 1))
    def confirm_installed(self, index: int) -> None:
        c = self.contract(index)
        before = c.state
        saved = (c.end, c.lapsed, c.state, c.upgrade)
        self.expire_if_late(c)
        refused = c.state is not ContractState.INSTALL_COLLECT_UPGRADE
        outcome = self.expect(refused, lambda: self.svc.confirm_upgrade_installed(c.wallet_id))
        if outcome is None:
            if saved[2] is ContractState.PAY_UPGRADE_DOWNPAYMENT and c.upgrade is None:
                self.undo_expiry(c, saved)
            return
        c.state, c.upgrade = ContractState.ACTIVE, None
        self.check(c, outcome, before)

    @rule(minutes=st.integers(1, 60 * 24 * 12))
    def advance(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @precondition(lambda self: any(c.upgrade and c.state is ContractState.PAY_UPGRADE_DOWNPAYMENT
                                   for c in self.contracts.values()))
    @rule(before=st.sampled_from([timedelta(0), timedelta(microseconds=1)]))
    def to_the_deadline(self, before: timedelta) -> None:
        deadline = min(c.upgrade.deadline for c in self.contracts.values()
                       if c.upgrade and c.state is ContractState.PAY_UPGRADE_DOWNPAYMENT)
        if deadline - before > self.now:
            self.clock.set(deadline - before)

    @rule()
    def expire_job(self) -> None:
        self.svc.expire_upgrades()
        for c in self.contracts.values():
            self.expire_if_late(c)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        if not self.contracts:
            return
        for c in self.contracts.values():
            wallet_id = c.wallet_id
            money_in = service = down = 0
            for line in self.svc.statement(wallet_id).lines:
                for posting in self.svc.entry(line.entry_id).postings:
                    if posting.account == service_account(OP):
                        service += posting.amount.minor_units
                    elif posting.account == downpayments_account(OP):
                        down += posting.amount.minor_units
                    elif posting.account.startswith(f"tenant:{OP}:funding:"):
                        money_in -= posting.amount.minor_units
            open_ = self.svc.balance(wallet_id).open.minor_units
            assert money_in == open_ + service + down
            held = sum(a for a, s in c.payments.values() if s is PaymentStatus.HELD)
            assert open_ == held
            contract = self.svc.contract(wallet_id)
            lines = self.svc.on_time(wallet_id)
            check_time(contract, lines)
            stored = {p.payment_id: p.status for p in self.svc.payg_payments(wallet_id)}
            assert stored == {pid: status for pid, (_, status) in c.payments.items()}
            # Each payment's time moved once into time, and at most once back.
            for pid in stored:
                moved = [line.kind for line in lines if pid in line.payment_ids]
                assert len(moved) == len(set(moved)), (pid, moved)
        assert self.svc.verify().ok


TestPayg = PaygMachine.TestCase
TestPayg.settings = settings(stateful_step_count=30, max_examples=60, deadline=None)
