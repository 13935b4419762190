"""The storage contract suite: one behavioural test suite that every backend runs unchanged.

How a backend runs it
---------------------
Subclass :class:`StoreContract` in the backend's test module, under a name pytest collects, and
implement :meth:`StoreContract.make_store`::

    from prepaid_wallet.storage.base import Store
    from tests.storage.contract import StoreContract

    class TestSQLiteStore(StoreContract):
        def make_store(self) -> Store:
            return open_store(f"sqlite:///{self.tmp}/wallets.db")   # a new, empty store

        def close_store(self, store: Store) -> None:               # optional
            store.close()
            ...                                                     # drop the schema, etc.

``make_store`` must return a new, *empty* store each time it is called (several tests build more
than one store, and hypothesis tests build one per example, so a store made from a function-scoped
fixture such as ``tmp_path`` needs a fresh name per call). ``close_store`` releases it; the
default calls ``store.close()``, which must be harmless on a store that is already closed.
The store is used from several threads at once by the concurrency tests.

A backend is done when it passes this suite unchanged. Where a backend cannot pass a test because
of a *known bug*, its test module overrides that one method with
``@pytest.mark.xfail(strict=True, reason="bug: ...")`` and calls ``super()``; the contract itself
is never weakened for one backend. Anything that only holds for one backend (e.g. the memory
store's single lock) belongs in a separately named class in that backend's module.

What is covered
---------------
* the unit of work: rollback unless committed, exceptions discard, single use, atomic commit,
  isolation of uncommitted writes, reads that see the unit's own writes;
* the optimistic version check of :meth:`UnitOfWork.record`;
* typed errors for unknown ids and duplicate wallets;
* every index: live lots in default spend order, due lots and holds, history, as-of lookups,
  reversals, charges, idempotency records;
* the service over the store: every command, ``verify()``, reads that write nothing, commands
  that raise and write nothing, determinism (the same script gives the same dump as the memory
  reference backend), and threads racing on shared wallets with no lost update and no overdraft.

Changes are built with the pure transitions of :mod:`prepaid_wallet.wallet` (the same functions
the service uses) and written through the raw protocol by :class:`Writer`, so the protocol is
tested on its own and not only through the service. Time comes from a ``FixedClock`` and ids from
``SequentialIds``, so every run writes the same journal.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from prepaid_wallet import (
    AlreadyReversedError,
    ConcurrencyError,
    ConflictError,
    CurrencyMismatchError,
    DuplicateWalletError,
    EntryNotFoundError,
    FixedClock,
    HoldNotFoundError,
    HoldStateError,
    HoldStatus,
    InsufficientFundsError,
    IntegrityError,
    InvalidAmountError,
    InvalidInputError,
    LimitExceededError,
    LotNotFoundError,
    Money,
    PaymentMode,
    RandomIds,
    RefundExceedsOriginalError,
    SequentialIds,
    SpendDeniedError,
    SpendRequest,
    StorageError,
    TenantRules,
    WalletNotFoundError,
    WalletService,
    open_store,
)
from prepaid_wallet import holds as _holds
from prepaid_wallet import wallet as _w
from prepaid_wallet.app import tenant_rules
from prepaid_wallet.app.intents import (
    get_top_up_intent,
    pending_top_up_intent,
    pending_top_up_intents,
    put_top_up_intent,
)
from prepaid_wallet.app.settings import get_setting, put_setting
from prepaid_wallet.conditions import ConditionGroup, SpendCondition, TimeWindow
from prepaid_wallet.errors import ConditionGroupNotFoundError
from prepaid_wallet.ledger import lot_account, open_account, parse_account
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.topup import (
    Charge,
    ChargeOutcome,
    ChargeStatus,
    GiveUp,
    GiveUpReason,
    IntentStatus,
    PaymentMethods,
    TopUpIntent,
    TopUpReason,
    TopUpRule,
    attempt_key,
    give_up,
    record_outcome,
    start_attempt,
)
from prepaid_wallet.storage.base import Event, IdempotencyRecord, RecordType, Store, UnitOfWork
from prepaid_wallet.wallet import AllocationPart, Change, EntryInfo, Lot, Wallet
from tests.strategies import lot_specs

__all__ = [
    "NOTES",
    "PLAIN",
    "T0",
    "Note",
    "StoreContract",
    "Writer",
    "add_live_lots",
    "add_settings_and_events",
    "add_settings_and_intent",
    "cents",
    "check_settings_and_intent",
    "eur",
    "lot_indexes",
    "new_service",
    "records_of",
    "run_reference_script",
    "version_6_rows",
]

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TENANT = "hub-a"
#: Seconds a thread waits for another before the test gives up (never reached when all is well).
WAIT = 10.0


def eur(amount: str) -> Money:
    """``amount`` (a decimal string) in EUR."""
    return Money.of(amount, "EUR")


def cents(minor: int) -> Money:
    """``minor`` euro cents."""
    return Money.from_minor_units(minor, "EUR")


# -- a record type of the tests' own ------------------------------------------------------------


@attrs.frozen
class Note:
    """A record of the tests' own: found by tenant, wallet and status, holding a unique slot,
    ordered by rank."""

    id: str
    tenant_id: str = TENANT
    wallet_id: str | None = None
    status: str | None = None
    slot: str | None = None
    rank: str = "m"
    body: str = ""


#: Notes, with every indexed value.
NOTES: RecordType[Note] = RecordType(
    kind="test_note", type=Note, key=lambda n: n.id, tenant=lambda n: n.tenant_id,
    wallet=lambda n: n.wallet_id, tag=lambda n: n.status, unique=lambda n: n.slot,
    order=lambda n: n.rank,
)
#: The same records as another kind, with the defaults: no wallet, tag or unique value, ordered
#: by key.
PLAIN: RecordType[Note] = RecordType(
    kind="test_plain", type=Note, key=lambda n: n.id, tenant=lambda n: n.tenant_id,
)


def version_6_rows(
    records: Iterable[Sequence[Any]],
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, str, datetime, str]]]:
    """Wallet settings and top-up intents as schema version 6 kept them, from ``records`` rows
    (kind, key, tenant_id, wallet_id, tag, uniq, sort, data) of those two kinds (a record of any
    other kind: ``AssertionError``): ``wallet_settings`` rows (wallet, name, value) and
    ``top_up_intents`` rows (id, tenant, wallet, status, created_at, data). Written apart from
    the migration that moves them the other way, to check it."""
    settings: list[tuple[str, str, str]] = []
    intents: list[tuple[str, str, str, str, datetime, str]] = []
    for kind, key, tenant, wallet, tag, _, _, data, *_ in records:
        value = json.loads(data)
        if kind == "wallet_setting":
            settings.append((value["wallet_id"], value["name"], value["value"]))
        else:
            assert kind == "top_up_intent", kind
            intent = value["intent"]
            intents.append((key, tenant, wallet, tag, datetime.fromisoformat(intent["created_at"]),
                            json.dumps(intent, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False)))
    return settings, intents


def fill_for_version_8(store: Store) -> dict[str, Any]:
    """The reference script's data and a wallet without entries (``dan``): what the migration
    tests from schema version 7 store; the state the library exported."""
    run_reference_script(store)
    svc = WalletService(store, clock=FixedClock(T0 + 30 * DAY), ids=SequentialIds(500))
    svc.open_wallet(owner_id="dan", tenant_id=TENANT, currency="EUR")
    return store.export_state()


def check_latest_instants(store: Store) -> None:
    """Each wallet of ``store`` knows the recorded instant of its latest entry (none for a
    wallet without entries), and a command whose clock is behind it records at that instant,
    after it in the wallet's statement."""
    # a clock behind everything stored
    svc = WalletService(store, clock=FixedClock(T0 - DAY), ids=SequentialIds(900))
    for wallet in svc.wallets(TENANT):
        statement = svc.statement(wallet.id)
        latest = max((line.recorded_at for line in statement.lines), default=None)
        assert wallet.last_at == latest, wallet.id
    ann = svc.find_wallet(tenant_id=TENANT, owner_id="ann", currency="EUR")
    dan = svc.find_wallet(tenant_id=TENANT, owner_id="dan", currency="EUR")
    assert ann is not None
    assert ann.last_at is not None
    assert dan is not None
    assert dan.last_at is None
    receipt = svc.top_up(ann.id, eur("1.00"), method="cash")
    assert receipt.recorded_at == ann.last_at
    assert svc.statement(ann.id).lines[-1].entry_id == receipt.entry_id
    opened = svc.top_up(dan.id, eur("1.00"), method="cash")
    assert opened.recorded_at == dan.created_at


def records_of(state: dict[str, Any], kind: str) -> list[Any]:
    """The rows of ``kind`` in an ``export_state()`` dump."""
    return [row for row in state["records"] if row[0] == kind]


# -- writing through the raw protocol ------------------------------------------------------------


class Writer:
    """Writes to a store through the raw unit-of-work protocol, one committed unit per call,
    with changes built by the pure transitions of :mod:`prepaid_wallet.wallet`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ids = SequentialIds()

    def info(self, at: datetime = T0) -> EntryInfo:
        """Entry info with a fresh entry id."""
        return EntryInfo(self.ids.new("e"), at)

    @staticmethod
    def new_wallet(
        wallet_id: str,
        *,
        owner: str | None = None,
        tenant: str = TENANT,
        currency: str = "EUR",
        floor: str = "0",
        at: datetime = T0,
    ) -> Wallet:
        """A new, empty wallet value (not stored)."""
        return _w.new_wallet(
            wallet_id=wallet_id, tenant_id=tenant, owner_id=owner or f"owner-{wallet_id}",
            currency=currency, floor=Money.of(floor, currency), at=at,
        )

    def open(self, wallet_id: str, **kwargs: Any) -> Wallet:
        """Store a new wallet (see :meth:`new_wallet` for the keywords)."""
        wallet = self.new_wallet(wallet_id, **kwargs)
        with self.store.unit_of_work() as uow:
            uow.add_wallet(wallet)
            uow.commit()
        return wallet

    def write(
        self, wallet_ids: Sequence[str], build: Callable[[UnitOfWork, dict[str, Wallet]], Change]
    ) -> Change:
        """Lock the wallets, build one change from them, record it and commit."""
        with self.store.unit_of_work() as uow:
            wallets = uow.lock_wallets(wallet_ids)
            change = build(uow, wallets)
            uow.record(change)
            uow.commit()
        return change

    def top_up(self, wallet_id: str, amount: str, *, at: datetime = T0) -> Change:
        return self.write(
            [wallet_id], lambda uow, ws: _w.top_up(ws[wallet_id], eur(amount), "card",
                                                   self.info(at))
        )

    def award(
        self,
        wallet_id: str,
        lot_id: str,
        amount: str,
        *,
        at: datetime = T0,
        expires_at: datetime | None = None,
        priority: int = 0,
        condition: SpendCondition | None = None,
        group: ConditionGroup | None = None,
    ) -> Change:
        if group is not None:
            condition = group.condition
        return self.write(
            [wallet_id],
            lambda uow, ws: _w.award(
                ws[wallet_id], lot_id=lot_id, amount=eur(amount), expires_at=expires_at,
                priority=priority, reason="test", info=self.info(at), condition=condition,
                group_id=None if group is None else group.id,
                group_version=None if group is None else group.version,
            ),
        )

    def put_group(self, group: ConditionGroup) -> ConditionGroup:
        """Store a new condition group, or its new state (locked first)."""
        with self.store.unit_of_work() as uow:
            with contextlib.suppress(ConditionGroupNotFoundError):
                uow.lock_condition_group(group.id)
            uow.put_condition_group(group)
            uow.commit()
        return group

    @staticmethod
    def parts(uow: UnitOfWork, parts: Sequence[tuple[str | None, str]]) -> tuple[
        list[AllocationPart], dict[str, Lot]
    ]:
        """Allocation parts (``(lot id or None for open, amount)``) and the lots they name."""
        lots = {lot_id: uow.get_lot(lot_id) for lot_id, _ in parts if lot_id is not None}
        allocation = [
            AllocationPart(lot_id, eur(amount), lots[lot_id].expires_at if lot_id else None)
            for lot_id, amount in parts
        ]
        return allocation, lots

    def spend(
        self, wallet_id: str, parts: Sequence[tuple[str | None, str]], *, at: datetime = T0
    ) -> Change:
        def build(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            allocation, lots = self.parts(uow, parts)
            return _w.spend(ws[wallet_id], allocation, lots, self.info(at))

        return self.write([wallet_id], build)

    def hold(
        self,
        wallet_id: str,
        hold_id: str,
        parts: Sequence[tuple[str | None, str]],
        *,
        expires_at: datetime,
        at: datetime = T0,
    ) -> Change:
        def build(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            allocation, lots = self.parts(uow, parts)
            return _holds.hold(ws[wallet_id], hold_id=hold_id, allocation=allocation, lots=lots,
                           expires_at=expires_at, info=self.info(at))

        return self.write([wallet_id], build)

    def release(self, wallet_id: str, hold_id: str, *, at: datetime = T0) -> Change:
        def build(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            held = uow.get_hold(hold_id)
            lots = {p.lot_id: uow.get_lot(p.lot_id) for p in held.allocation if p.lot_id}
            return _holds.release(ws[wallet_id], held, lots, HoldStatus.VOIDED, self.info(at))

        return self.write([wallet_id], build)

    def transfer(self, source: str, target: str, amount: str, *, at: datetime = T0) -> Change:
        return self.write(
            [source, target],
            lambda uow, ws: _w.transfer(ws[source], ws[target], eur(amount), self.info(at)),
        )

    def refund(self, wallet_id: str, entry_id: str, amount: str, *, at: datetime = T0) -> Change:
        def build(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            charge = uow.get_charge(entry_id)
            assert charge is not None
            lots = {p.lot_id: uow.get_lot(p.lot_id) for p in charge.allocation if p.lot_id}
            change, _, _ = _w.refund(ws[wallet_id], charge, eur(amount), lots, self.info(at))
            return change

        return self.write([wallet_id], build)

    def reverse(self, entry_id: str, wallet_ids: Sequence[str], *, at: datetime = T0) -> Change:
        def build(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            original = uow.get_entry(entry_id)
            lots = {}
            for posting in original.postings:
                ref = parse_account(posting.account)
                if ref.name is not None and ref.is_wallet:
                    lots[ref.name] = uow.get_lot(ref.name)
            return _w.reverse(original, list(ws.values()), lots, self.info(at))

        return self.write(wallet_ids, build)

    def expire(self, wallet_id: str, lot_id: str, *, at: datetime) -> Change:
        return self.write(
            [wallet_id], lambda uow, ws: _w.expire_lot(ws[wallet_id], uow.get_lot(lot_id),
                                                       self.info(at))
        )

    def wallet(self, wallet_id: str) -> Wallet:
        """The wallet as a fresh unit of work reads it."""
        with self.store.unit_of_work() as uow:
            return uow.get_wallet(wallet_id)


def run_in_threads(workers: Sequence[Callable[[], Any]]) -> list[Any]:
    """Start every worker at the same moment (a barrier) and return their results in order;
    re-raises the first exception a worker raised."""
    barrier = threading.Barrier(len(workers))

    def start(worker: Callable[[], Any]) -> Any:
        barrier.wait(WAIT)
        return worker()

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(start, worker) for worker in workers]
        return [future.result(timeout=60) for future in futures]


def new_service(store: Store, start: datetime = T0) -> tuple[WalletService, FixedClock]:
    """A deterministic service over ``store``."""
    clock = FixedClock(start)
    return WalletService(store, clock=clock, ids=SequentialIds()), clock


#: What the stores of the migration tests from schema version 6 hold besides the reference
#: script and :func:`add_live_lots`: carol's wallet has stricter limits than her tenant's, an
#: automatic top-up rule, and a pending top-up intent.
_CAROL_RULES = {TENANT: TenantRules(automatic_top_ups=True,
                                    limits=Limits(max_balance=eur("1000.00")))}
_CAROL_LIMITS = Limits(max_balance=eur("500.00"))
_CAROL_RULE = TopUpRule(methods=PaymentMethods(primary="card"), minimum=eur("1.00"),
                        threshold=eur("1.00"), amount=eur("20.00"))


class _Charges:
    """A payment gateway that charges every request at once."""

    def __init__(self) -> None:
        self.charged: list[str] = []

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        self.charged.append(idempotency_key)
        return ChargeOutcome(ChargeStatus.SUCCEEDED, reference=f"ch-{len(self.charged)}")

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return ChargeOutcome(ChargeStatus.UNKNOWN)


def add_settings_and_intent(store: Store) -> None:
    """Give carol's wallet (of :func:`add_live_lots`) limits of its own, an automatic top-up
    rule (wallet settings) and a pending top-up intent ``"tu-1"`` of 20.00 EUR. The tenant's
    rules that allow them are not left in the store: up to schema version 6 a process kept them
    in memory (:func:`check_settings_and_intent` gives them again)."""
    svc = WalletService(store, clock=FixedClock(T0 + 20 * DAY), ids=SequentialIds(700),
                        rules=_CAROL_RULES)
    carol = svc.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
    assert carol is not None
    svc.set_limits(carol.id, _CAROL_LIMITS)
    svc.set_top_up_rule(carol.id, _CAROL_RULE)
    with store.unit_of_work() as uow:
        uow.lock_wallets([carol.id])
        put_top_up_intent(uow, TENANT, TopUpIntent(
            id="tu-1", wallet_id=carol.id, amount=eur("20.00"), reason=TopUpReason.THRESHOLD,
            created_at=T0 + 20 * DAY))
        rules = tenant_rules.RULES
        for stored in rules.versions(uow, TENANT):
            uow.delete_record(rules.versions_type, stored.pointer.version_key)
        uow.delete_record(rules.current_type, TENANT)
        uow.commit()


def add_settings_and_events(store: Store, *, top_ups: bool) -> None:
    """Give carol's wallet (of :func:`add_live_lots`) a limits setting (with ``top_ups``:
    :func:`add_settings_and_intent` instead) and two low-balance events, the first one
    acknowledged."""
    service, _ = new_service(store)
    carol = service.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
    assert carol is not None
    if top_ups:
        add_settings_and_intent(store)
    with store.unit_of_work() as uow:
        uow.lock_wallets([carol.id])
        if not top_ups:
            put_setting(uow, carol, "limits", '{"daily":500}')
        for event_id in ("ev-1", "ev-2"):
            uow.add_event(Event(event_id, TENANT, carol.id, "low_balance", T0 + DAY,
                                '{"thresholds":["warn"]}'))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.ack_events(TENANT, ["ev-1"]) == 1
        uow.commit()


def check_settings_and_intent(store: Store) -> None:
    """What :func:`add_settings_and_intent` stored still works: the wallet's limits apply, its
    rule is read back, and its pending intent is found, charged once and credited."""
    gateway = _Charges()
    svc = WalletService(store, clock=FixedClock(T0 + 21 * DAY), ids=SequentialIds(800),
                        rules=_CAROL_RULES, gateway=gateway)
    carol = svc.find_wallet(tenant_id=TENANT, owner_id="carol", currency="EUR")
    assert carol is not None
    assert svc.limits(carol.id).max_balance == eur("500.00")
    assert svc.top_up_rule(carol.id) == _CAROL_RULE
    with pytest.raises(LimitExceededError):
        svc.top_up(carol.id, eur("600.00"), method="cash")  # the tenant alone would allow it
    before = svc.balance(carol.id).open
    report = svc.process_top_ups()
    assert len(report.credited) == 1
    assert gateway.charged == ["tu-1:card:1"]
    intent = svc.top_up_intent("tu-1")
    assert intent is not None
    assert (intent.status, intent.credited) == (IntentStatus.SUCCEEDED, True)
    assert svc.balance(carol.id).open == before + eur("20.00")
    assert svc.process_top_ups().credited == ()  # credited once


def run_reference_script(store: Store) -> dict[str, Any]:
    """Run every service command once over ``store`` (which must be empty) and return the
    export. Deterministic: the same script gives the same dump on every backend (I8)."""
    svc, clock = new_service(store)
    ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR", floor=eur("-20.00"))
    bob = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR")
    svc.top_up(ann.id, eur("100.00"), method="card", idempotency_key="pay-1")
    svc.award(ann.id, eur("10.00"), reason="welcome", expires_at=T0 + 10 * DAY)
    svc.award(ann.id, eur("5.00"), reason="loyalty")
    spend = svc.spend(ann.id, SpendRequest(eur("12.00")), idempotency_key="order-1")
    bob_top = svc.top_up(bob.id, eur("3.00"), method="cash")
    svc.spend(bob.id, SpendRequest(eur("5.00"), PaymentMode.CREDIT_FIRST, "basket"))
    svc.award(bob.id, eur("7.00"), reason="promo", expires_at=T0 + 5 * DAY)
    held = svc.hold(ann.id, eur("30.00"), window=4 * HOUR, idempotency_key="auth-1")
    svc.capture(held.id, eur("25.00"), idempotency_key="cap-1")
    voided = svc.hold(ann.id, eur("10.00"), window=4 * HOUR)
    svc.void(voided.id)
    svc.transfer(ann.id, bob.id, eur("8.00"), idempotency_key="tr-1")
    assert spend.entry_id is not None
    svc.refund(spend.entry_id, eur("4.00"), reason="missing item")
    svc.reverse(bob_top.entry_id, reason="duplicate payment")
    svc.hold(ann.id, eur("6.00"), window=HOUR)
    clock.advance(11 * DAY)
    svc.expire_due()
    svc.top_up(ann.id, eur("100.00"), method="card", idempotency_key="pay-1")  # a replay
    return store.export_state()



def lot_indexes(store: Store) -> list[list[list[Lot]]]:
    """What the live and due indexes answer, for every wallet and at several instants (to
    compare a migrated store with a fresh one)."""
    instants = [T0, T0 + 11 * DAY, T0 + 20 * DAY, T0 + 40 * DAY, T0 + 999 * DAY]
    with store.unit_of_work(read_only=True) as uow:
        wallet_ids = [w.id for w in uow.iter_wallets()]
        return [
            [list(uow.live_lots(wallet_id)) for wallet_id in wallet_ids],
            [uow.due_lots(at, 100) for at in instants],
            [uow.due_lots(at, 100, wallet_id) for at in instants for wallet_id in wallet_ids],
        ]


def add_live_lots(store: Store) -> None:
    """Live lots with and without an expiry, next to what :func:`run_reference_script` left."""
    service = WalletService(store, clock=FixedClock(T0 + 11 * DAY), ids=RandomIds())
    wallets = {w.owner_id: w.id for w in service.wallets()}
    service.award(wallets["ann"], eur("2.00"), reason="spring", expires_at=T0 + 40 * DAY)
    service.award(wallets["ann"], eur("1.00"), reason="forever")
    service.award(wallets["bob"], eur("3.00"), reason="soon", expires_at=T0 + 20 * DAY,
                  priority=-1)

# -- the contract --------------------------------------------------------------------------------


class StoreContract:
    """The behaviour every :class:`~prepaid_wallet.storage.base.Store` must have.

    Subclasses implement :meth:`make_store` (and optionally :meth:`close_store`). Not collected
    by pytest on its own: its name does not start with ``Test``.
    """

    # -- hooks ------------------------------------------------------------------------------

    def make_store(self) -> Store:
        """A new, empty store of the backend under test."""
        raise NotImplementedError

    def close_store(self, store: Store) -> None:
        """Release ``store`` (it may already be closed)."""
        store.close()

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        try:
            yield store
        finally:
            self.close_store(store)

    @pytest.fixture
    def writer(self, store: Store) -> Writer:
        return Writer(store)

    # -- unit of work: commit and rollback ---------------------------------------------------

    def test_a_new_store_is_empty(self, store: Store) -> None:
        state = store.export_state()
        assert state, "export_state must describe the store"
        assert all(not value for value in state.values())
        with store.unit_of_work() as uow:
            assert list(uow.iter_wallets()) == []
            assert list(uow.iter_entries()) == []

    def test_commit_makes_writes_visible_to_later_units(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        change = writer.top_up("w1", "12.50")
        with store.unit_of_work() as uow:
            wallet = uow.get_wallet("w1")
            assert wallet == change.wallet("w1")
            assert wallet.open == eur("12.50")
            assert wallet.version == 1
            assert uow.get_entry(change.entry.id) == change.entry
            assert list(uow.iter_entries()) == [change.entry]

    def test_leaving_the_block_without_commit_discards(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.top_up("w1", "10.00")
        before = store.export_state()
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            change = _w.top_up(wallet, eur("5.00"), "card", writer.info())
            uow.record(change)
            uow.add_wallet(writer.new_wallet("w2"))
            uow.put_idempotency(_record("k1"))
            assert uow.get_wallet("w1").open == eur("15.00")  # the unit sees its own write
        assert store.export_state() == before
        with store.unit_of_work() as uow:
            assert uow.get_wallet("w1").open == eur("10.00")
            with pytest.raises(WalletNotFoundError):
                uow.get_wallet("w2")
            with pytest.raises(EntryNotFoundError):
                uow.get_entry(change.entry.id)
            assert uow.get_idempotency(TENANT, "k1") is None

    def test_explicit_rollback_discards(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        before = store.export_state()
        with store.unit_of_work() as uow:
            wallet = uow.get_wallet("w1")
            uow.record(_w.top_up(wallet, eur("5.00"), "card", writer.info()))
            uow.rollback()
        assert store.export_state() == before
        assert writer.wallet("w1").version == 0

    def test_an_exception_inside_the_block_discards_and_propagates(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        before = store.export_state()
        boom = RuntimeError("boom")

        def fail_midway() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w1"])["w1"]
                uow.record(_w.top_up(wallet, eur("5.00"), "card", writer.info()))
                raise boom

        with pytest.raises(RuntimeError) as caught:
            fail_midway()
        assert caught.value is boom
        assert store.export_state() == before

    def test_an_exception_raised_after_commit_keeps_the_commit(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")

        def commit_then_fail() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w1"])["w1"]
                uow.record(_w.top_up(wallet, eur("5.00"), "card", writer.info()))
                uow.commit()
                raise RuntimeError("after commit")

        with pytest.raises(RuntimeError, match="after commit"):
            commit_then_fail()
        assert writer.wallet("w1").open == eur("5.00")

    @pytest.mark.parametrize("committed", [True, False])
    def test_a_unit_of_work_is_used_once(
        self, store: Store, writer: Writer, committed: bool
    ) -> None:
        writer.open("w1")
        uow = store.unit_of_work()
        with uow:
            wallet = uow.get_wallet("w1")
            if committed:
                uow.commit()
        stale = _w.top_up(wallet, eur("1.00"), "card", writer.info())
        before = store.export_state()

        def reenter() -> None:
            with uow:
                pass

        with pytest.raises(StorageError):
            reenter()
        with pytest.raises(StorageError):
            uow.get_wallet("w1")
        with pytest.raises(StorageError):
            uow.record(stale)
        with pytest.raises(StorageError):
            uow.commit()
        assert store.export_state() == before

    def test_commit_twice_fails(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_w.top_up(wallet, eur("1.00"), "card", writer.info()))
            uow.commit()
            with pytest.raises(StorageError):
                uow.commit()
        assert writer.wallet("w1").version == 1

    def test_uncommitted_writes_are_invisible_to_a_unit_started_after(
        self, store: Store, writer: Writer
    ) -> None:
        """A writer thread records and waits; a reader thread opens its unit meanwhile. Whether
        the reader waits (one lock, ``BEGIN IMMEDIATE``) or not (READ COMMITTED), it must not
        see the write, which is then discarded."""
        writer.open("w1")
        writer.top_up("w1", "10.00")
        recorded = threading.Event()
        reader_started = threading.Event()

        def write_then_discard() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w1"])["w1"]
                uow.record(_w.top_up(wallet, eur("5.00"), "card", writer.info()))
                recorded.set()
                reader_started.wait(WAIT)
                time.sleep(0.05)

        def read() -> Wallet:
            assert recorded.wait(WAIT)
            reader_started.set()
            with store.unit_of_work() as uow:
                return uow.get_wallet("w1")

        _, seen = run_in_threads([write_then_discard, read])
        assert seen.open == eur("10.00")
        assert seen.version == 1
        assert writer.wallet("w1") == seen

    def test_reads_see_the_units_own_writes(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.award("w1", "lot-a", "10.00")
        with store.unit_of_work() as uow:
            new = writer.new_wallet("w2", owner="bob")
            uow.add_wallet(new)
            assert uow.get_wallet("w2") == new
            assert uow.find_wallet(TENANT, "bob", "EUR") == new
            assert [w.id for w in uow.iter_wallets()] == ["w1", "w2"]

            w1 = uow.lock_wallets(["w1"])["w1"]
            award = _w.award(w1, lot_id="lot-b", amount=eur("3.00"), expires_at=None, priority=0,
                             reason="r", info=writer.info())
            uow.record(award)
            assert uow.get_lot("lot-b") == award.lots[0]
            assert [lot.id for lot in uow.wallet_lots("w1")] == ["lot-a", "lot-b"]
            assert uow.get_entry(award.entry.id) == award.entry

            w1 = uow.get_wallet("w1")
            assert w1 == award.wallet("w1")
            allocation, lots = Writer.parts(uow, [("lot-a", "4.00")])
            spend = _w.spend(w1, allocation, lots, writer.info())
            uow.record(spend)
            assert uow.get_lot("lot-a").remaining == eur("6.00")
            assert uow.get_charge(spend.entry.id) == spend.charges[0]

            w1 = uow.get_wallet("w1")
            allocation, lots = Writer.parts(uow, [("lot-a", "1.00")])
            held = _holds.hold(w1, hold_id="h1", allocation=allocation, lots=lots,
                           expires_at=T0 + HOUR, info=writer.info())
            uow.record(held)
            assert uow.get_hold("h1") == held.holds[0]
            assert list(uow.wallet_holds("w1")) == [held.holds[0]]

            reversal = _w.reverse(award.entry, [uow.get_wallet("w1")],
                                  {"lot-b": uow.get_lot("lot-b")}, writer.info())
            uow.record(reversal)
            assert uow.reversal_of(award.entry.id) == reversal.entry.id

            uow.put_idempotency(_record("k1"))
            assert uow.get_idempotency(TENANT, "k1") == _record("k1")
            assert uow.get_wallet("w1").version == 5
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.get_wallet("w1").version == 5
            assert uow.get_wallet("w2") == new
            assert uow.reversal_of(award.entry.id) == reversal.entry.id

    def test_journal_reads_see_committed_state_only(
        self, store: Store, writer: Writer
    ) -> None:
        """The journal indexes show committed entries only (base.py): a unit's own entry appears
        once it commits."""
        writer.open("w1")
        first = writer.top_up("w1", "1.00")
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            change = _w.top_up(wallet, eur("2.00"), "card", writer.info(T0 + HOUR))
            uow.record(change)
            assert list(uow.iter_entries()) == [first.entry]
            assert [e.id for e, _ in uow.wallet_history("w1")] == [first.entry.id]
            snapshot = uow.snapshot_at("w1", T0 + HOUR)
            assert snapshot is not None
            assert snapshot.open == eur("1.00")
            assert uow.account_balance_at(open_account("w1"), T0 + HOUR) == eur("1.00")
            uow.commit()
        with store.unit_of_work() as uow:
            assert list(uow.iter_entries()) == [first.entry, change.entry]
            snapshot = uow.snapshot_at("w1", T0 + HOUR)
            assert snapshot is not None
            assert snapshot.open == eur("3.00")
            assert uow.account_balance_at(open_account("w1"), T0 + HOUR) == eur("3.00")

    def test_a_read_only_unit_reads_but_refuses_every_write(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.top_up("w1", "4.00")
        before = store.export_state()
        with store.unit_of_work(read_only=True) as uow:
            wallet = uow.get_wallet("w1")
            assert wallet.open == eur("4.00")
            change = _w.top_up(wallet, eur("1.00"), "card", writer.info())
            with pytest.raises(StorageError):
                uow.record(change)
            with pytest.raises(StorageError):
                uow.add_wallet(attrs.evolve(wallet, id="w9", owner_id="other", version=0))
            with pytest.raises(StorageError):
                uow.put_idempotency(_record("k-ro"))
        assert store.export_state() == before

    # -- commit is atomic --------------------------------------------------------------------

    def test_a_failing_commit_writes_nothing_duplicate_entry_id(
        self, store: Store, writer: Writer
    ) -> None:
        """The second change reuses the first one's entry id: the whole unit fails, including
        the first, valid change."""
        writer.open("w1")
        writer.top_up("w1", "10.00")
        before = store.export_state()

        def attempt() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w1"])["w1"]
                first = _w.top_up(wallet, eur("1.00"), "card", writer.info())
                uow.record(first)
                second = _w.top_up(first.wallet("w1"), eur("2.00"), "card",
                                   EntryInfo(first.entry.id, T0))
                uow.record(second)
                uow.commit()

        with pytest.raises(IntegrityError):
            attempt()
        assert store.export_state() == before

    def test_a_failing_commit_writes_nothing_wallet_id_taken(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        before = store.export_state()

        def attempt() -> None:
            with store.unit_of_work() as uow:
                wallet = uow.lock_wallets(["w2"])["w2"]
                uow.record(_w.top_up(wallet, eur("1.00"), "card", writer.info()))
                uow.put_idempotency(_record("k1"))
                uow.add_wallet(writer.new_wallet("w1", owner="someone-else"))
                uow.commit()

        with pytest.raises(ConflictError):
            attempt()
        assert store.export_state() == before

    def test_a_stale_change_fails_the_unit(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2")
        before = store.export_state()

        def attempt() -> None:
            with store.unit_of_work() as uow:
                wallets = uow.lock_wallets(["w1", "w2"])
                uow.record(_w.top_up(wallets["w2"], eur("1.00"), "card", writer.info()))
                uow.record(_w.top_up(wallets["w1"], eur("1.00"), "card", writer.info()))
                # built from the version before the unit's own write
                uow.record(_w.top_up(wallets["w1"], eur("2.00"), "card", writer.info()))
                uow.commit()

        with pytest.raises(ConcurrencyError) as caught:
            attempt()
        assert caught.value.wallet_id == "w1"
        assert store.export_state() == before

    def test_a_wallets_terms_change_with_the_unit_and_only_its_terms(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.top_up("w1", "10.00")
        # Rolled back: nothing changes.
        before = store.export_state()
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.change_terms(attrs.evolve(wallet, floor=eur("-5.00")))
            assert uow.get_wallet("w1").floor == eur("-5.00")
        assert store.export_state() == before
        # Anything but the terms is refused when buffered.
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            for bad in (attrs.evolve(wallet, open=eur("99.00")),
                        attrs.evolve(wallet, version=wallet.version + 1),
                        attrs.evolve(wallet, floor=eur("1.00")),
                        attrs.evolve(wallet, floor=Money.of("-5", "JPY"))):
                with pytest.raises(IntegrityError):
                    uow.change_terms(bad)
        # Committed with a change built on it, in the same unit.
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.change_terms(attrs.evolve(wallet, floor=eur("-5.00")))
            # Below zero: only the new floor allows it.
            uow.record(_w.payout(uow.get_wallet("w1"), eur("12.00"), "bank", writer.info()))
            uow.commit()
        stored = writer.wallet("w1")
        assert (stored.floor, stored.open, stored.version) == (eur("-5.00"), eur("-2.00"), 2)
        # A unit of its own changes nothing else.
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.change_terms(attrs.evolve(wallet, floor=eur("-3.00")))
            uow.commit()
        assert writer.wallet("w1") == attrs.evolve(stored, floor=eur("-3.00"))
        # A wallet opened in the same unit is written with its new terms.
        with store.unit_of_work() as uow:
            uow.add_wallet(writer.new_wallet("w2"))
            uow.change_terms(attrs.evolve(uow.get_wallet("w2"), floor=eur("-1.00")))
            uow.commit()
        assert writer.wallet("w2").floor == eur("-1.00")

    # -- optimistic version check ------------------------------------------------------------

    def test_recording_a_change_built_on_an_old_version_raises(
        self, store: Store, writer: Writer
    ) -> None:
        """cosmicpython's race, one step at a time: two units read version 1; the first writes
        version 2; the second's version 2 must be refused, not overwrite it."""
        writer.open("w1")
        writer.top_up("w1", "10.00")
        with store.unit_of_work() as uow:
            read_early = uow.get_wallet("w1")
        winner = writer.top_up("w1", "1.00")
        loser = _w.top_up(read_early, eur("50.00"), "card", writer.info())
        assert loser.wallet("w1").version == winner.wallet("w1").version == 2
        before = store.export_state()
        with store.unit_of_work() as uow:
            with pytest.raises(ConcurrencyError) as caught:
                uow.record(loser)
            assert caught.value.wallet_id == "w1"
        assert store.export_state() == before
        assert writer.wallet("w1").open == eur("11.00")

    def test_a_version_that_skips_ahead_is_refused(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        first = _w.top_up(writer.new_wallet("w1"), eur("1.00"), "card", writer.info())
        ahead = _w.top_up(first.wallet("w1"), eur("1.00"), "card", writer.info())
        assert ahead.wallet("w1").version == 2
        with store.unit_of_work() as uow, pytest.raises(ConcurrencyError):
            uow.record(ahead)
        assert writer.wallet("w1").version == 0

    def test_a_transfer_is_checked_on_both_wallets(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        writer.top_up("w1", "10.00")
        with store.unit_of_work() as uow:
            stale = uow.lock_wallets(["w1", "w2"])
        writer.top_up("w2", "1.00")  # only the target moved on
        change = _w.transfer(stale["w1"], stale["w2"], eur("4.00"), writer.info())
        with store.unit_of_work() as uow:
            with pytest.raises(ConcurrencyError) as caught:
                uow.record(change)
            assert caught.value.wallet_id == "w2"
        assert writer.wallet("w1").open == eur("10.00")
        assert writer.wallet("w2").open == eur("1.00")

    def test_racing_read_modify_write_units_lose_no_update(
        self, store: Store, writer: Writer
    ) -> None:
        """Two threads each lock the same wallet, build a top-up from what they read and commit,
        many times: ``lock_wallets`` serialises them, so no update is lost."""
        writer.open("w1")
        rounds = 30

        def worker(step: int) -> Callable[[], int]:
            def run() -> int:
                total = 0
                for i in range(rounds):
                    amount = cents(step * 100 + i)
                    with store.unit_of_work() as uow:
                        wallet = uow.lock_wallets(["w1"])["w1"]
                        uow.record(_w.top_up(wallet, amount, "card", writer.info()))
                        uow.commit()
                    total += amount.minor_units
                return total

            return run

        totals = run_in_threads([worker(1), worker(2)])
        wallet = writer.wallet("w1")
        assert wallet.version == 2 * rounds
        assert wallet.open == cents(sum(totals))
        with store.unit_of_work() as uow:
            assert len(list(uow.iter_entries())) == 2 * rounds

    # -- typed errors ------------------------------------------------------------------------

    def test_unknown_ids_raise_typed_not_found_errors(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        with store.unit_of_work() as uow:
            cases: list[tuple[type[Exception], Callable[[], object], str]] = [
                (WalletNotFoundError, lambda: uow.get_wallet("w-nope"), "w-nope"),
                (WalletNotFoundError, lambda: uow.lock_wallets(["w1", "w-nope"]), "w-nope"),
                (LotNotFoundError, lambda: uow.get_lot("lot-nope"), "lot-nope"),
                (HoldNotFoundError, lambda: uow.get_hold("h-nope"), "h-nope"),
                (EntryNotFoundError, lambda: uow.get_entry("e-nope"), "e-nope"),
            ]
            for error, call, wanted in cases:
                with pytest.raises(error) as caught:
                    call()
                assert caught.value.id == wanted  # type: ignore[attr-defined]

    def test_unknown_ids_read_as_nothing_where_the_protocol_says_so(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        with store.unit_of_work() as uow:
            assert uow.find_wallet(TENANT, "nobody", "EUR") is None
            assert uow.get_charge("e-nope") is None
            assert uow.reversal_of("e-nope") is None
            assert uow.get_idempotency(TENANT, "k-nope") is None
            assert uow.snapshot_at("w1", T0 + DAY) is None
            assert uow.snapshot_at("w-nope", T0) is None
            assert uow.account_balance_at(open_account("w-nope"), T0) is None
            assert list(uow.live_lots("w-nope")) == []
            assert list(uow.wallet_lots("w-nope")) == []
            assert list(uow.wallet_holds("w-nope")) == []
            assert list(uow.wallet_history("w-nope")) == []
            assert uow.due_lots(T0 + 1000 * DAY, 10, "w-nope") == []

    def test_duplicate_wallet_in_the_same_unit(self, store: Store, writer: Writer) -> None:
        before = store.export_state()

        def attempt() -> None:
            with store.unit_of_work() as uow:
                uow.add_wallet(writer.new_wallet("w1", owner="ann"))
                uow.add_wallet(writer.new_wallet("w2", owner="ann"))
                uow.commit()

        with pytest.raises(DuplicateWalletError) as caught:
            attempt()
        assert (caught.value.tenant_id, caught.value.owner_id, caught.value.currency) == (
            TENANT, "ann", "EUR")
        assert caught.value.existing_id == "w1"
        assert store.export_state() == before

    def test_duplicate_wallet_across_units(self, store: Store, writer: Writer) -> None:
        writer.open("w1", owner="ann")
        before = store.export_state()

        def attempt() -> None:
            with store.unit_of_work() as uow:
                uow.add_wallet(writer.new_wallet("w2", owner="ann"))
                uow.commit()

        with pytest.raises(DuplicateWalletError) as caught:
            attempt()
        assert caught.value.existing_id == "w1"
        assert store.export_state() == before
        # another tenant or another currency is another wallet
        writer.open("w3", owner="ann", tenant="hub-b")
        writer.open("w4", owner="ann", currency="USD")
        with store.unit_of_work() as uow:
            found = uow.find_wallet("hub-b", "ann", "EUR")
            assert found is not None
            assert found.id == "w3"
            found = uow.find_wallet(TENANT, "ann", "USD")
            assert found is not None
            assert found.id == "w4"

    # -- wallets -----------------------------------------------------------------------------

    def test_iter_wallets_by_id_and_tenant(self, store: Store, writer: Writer) -> None:
        for wallet_id, tenant in [("w3", "hub-b"), ("w1", TENANT), ("w2", "hub-b")]:
            writer.open(wallet_id, tenant=tenant)
        with store.unit_of_work() as uow:
            assert [w.id for w in uow.iter_wallets()] == ["w1", "w2", "w3"]
            assert [w.id for w in uow.iter_wallets("hub-b")] == ["w2", "w3"]
            assert [w.id for w in uow.iter_wallets("hub-z")] == []

    def test_wallets_round_trip_unchanged(self, store: Store, writer: Writer) -> None:
        """Every field survives the store: floor, metadata, zone-aware instants, version, head."""
        wallet = attrs.evolve(
            writer.new_wallet("w1", owner="ann", floor="-12.34"),
            metadata=(("a", "1"), ("note", "ünïcode ✓")),
        )
        with store.unit_of_work() as uow:
            uow.add_wallet(wallet)
            uow.commit()
        change = writer.top_up("w1", "0.01")
        stored = writer.wallet("w1")
        assert stored == change.wallet("w1")
        assert stored.floor == eur("-12.34")
        assert stored.metadata == wallet.metadata
        assert stored.created_at == T0
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.head == change.entry.hash

    # -- lots: the live index ----------------------------------------------------------------

    def test_live_lots_in_default_spend_order(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2")
        # (lot, priority, expires in days or None, granted hours after T0)
        for lot_id, priority, days, hours in [
            ("l-none-old", 0, None, 0),
            ("l-exp3", 0, 3, 1),
            ("l-prio1-exp1", 1, 1, 0),
            ("l-exp2-later", 0, 2, 2),
            ("l-exp2-old-z", 0, 2, 0),
            ("l-exp2-old-a", 0, 2, 0),
            ("l-none-new", 0, None, 3),
            ("l-prio-neg", -1, None, 4),
        ]:
            writer.award("w1", lot_id, "1.00", at=T0 + hours * HOUR, priority=priority,
                         expires_at=None if days is None else T0 + days * DAY)
        writer.award("w2", "l-other-wallet", "9.00", expires_at=T0 + HOUR)
        writer.spend("w1", [("l-exp3", "1.00")], at=T0 + 5 * HOUR)  # emptied: not live
        writer.spend("w1", [("l-none-old", "0.40")], at=T0 + 5 * HOUR)  # partly spent
        expected = [
            "l-prio-neg",
            "l-exp2-old-a", "l-exp2-old-z", "l-exp2-later",
            "l-none-old", "l-none-new",
            "l-prio1-exp1",
        ]
        with store.unit_of_work() as uow:
            lots = list(uow.live_lots("w1"))
            assert [lot.id for lot in lots] == expected
            assert next(lot for lot in lots if lot.id == "l-none-old").remaining == eur("0.60")
            assert [lot.id for lot in uow.live_lots("w2")] == ["l-other-wallet"]
            # every lot, empty or not, by grant then id
            assert [lot.id for lot in uow.wallet_lots("w1")] == [
                "l-exp2-old-a", "l-exp2-old-z", "l-none-old", "l-prio1-exp1", "l-exp3",
                "l-exp2-later", "l-none-new", "l-prio-neg",
            ]

    def test_live_lots_include_expired_lots_until_they_are_swept(
        self, store: Store, writer: Writer
    ) -> None:
        """Live means "money left": the policy, not the index, skips expired lots."""
        writer.open("w1")
        writer.award("w1", "l1", "2.00", expires_at=T0 + HOUR)
        writer.award("w1", "l2", "3.00")
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.live_lots("w1")] == ["l1", "l2"]
        writer.expire("w1", "l1", at=T0 + 2 * HOUR)
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.live_lots("w1")] == ["l2"]
            swept = uow.get_lot("l1")
            assert swept.remaining == eur("0.00")
            assert swept.expired_entry_id is not None

    def test_live_lots_merge_the_units_own_changes(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.award("w1", "l-b", "1.00", expires_at=T0 + 2 * DAY)
        writer.award("w1", "l-d", "1.00", expires_at=T0 + 4 * DAY)
        writer.award("w1", "l-e", "1.00")
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            for lot_id, days in [("l-a", 1), ("l-c", 3), ("l-f", None)]:
                change = _w.award(
                    wallet, lot_id=lot_id, amount=eur("2.00"), priority=0, reason="r",
                    expires_at=None if days is None else T0 + days * DAY, info=writer.info(),
                )
                uow.record(change)
                wallet = change.wallet("w1")
            allocation, lots = Writer.parts(uow, [("l-d", "1.00"), ("l-c", "2.00"),
                                                  ("l-b", "0.25")])
            spend = _w.spend(wallet, allocation, lots, writer.info())
            uow.record(spend)
            live = list(uow.live_lots("w1"))
            assert [lot.id for lot in live] == ["l-a", "l-b", "l-e", "l-f"]
            assert live[1].remaining == eur("0.75")
            uow.commit()
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.live_lots("w1")] == ["l-a", "l-b", "l-e", "l-f"]

    # One @given method runs for every backend's subclass in a session (differing executors);
    # each example builds its own store in the body, so nothing is shared between them.
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.differing_executors])
    @given(specs=lot_specs())
    def test_live_and_due_lots_agree_with_a_sort(
        self, specs: list[tuple[int, int | None, int, int]]
    ) -> None:
        """Any mix of priorities, expiries, grant instants and spends: ``live_lots`` is the
        lots with money left sorted by the documented key, ``due_lots`` those expiring by
        ``at``, soonest first (ties by id, so every backend sweeps in the same order)."""
        store = self.make_store()
        try:
            writer = Writer(store)
            writer.open("w1")
            ids = [f"lot-{(37 * i) % 101:03d}" for i in range(len(specs))]  # not in grant order
            for lot_id, (priority, days, minutes, _) in zip(ids, specs, strict=True):
                writer.award("w1", lot_id, "1.00", at=T0 + minutes * timedelta(minutes=1),
                             priority=priority,
                             expires_at=None if days is None else T0 + days * DAY)
            for lot_id, (*_, spent_cents) in zip(ids, specs, strict=True):
                if spent_cents:
                    writer.spend("w1", [(lot_id, str(cents(spent_cents).amount))],
                                 at=T0 + HOUR)
            with store.unit_of_work() as uow:
                every = {lot.id: lot for lot in uow.wallet_lots("w1")}
                live = [lot for lot in every.values() if lot.remaining.is_positive()]
                far = datetime.max.replace(tzinfo=UTC)
                expected = sorted(
                    live,
                    key=lambda lot: (lot.priority, lot.expires_at is None,
                                     lot.expires_at or far, lot.granted_at, lot.id),
                )
                assert list(uow.live_lots("w1")) == expected
                at = T0 + 2 * DAY
                due = sorted((lot for lot in live if lot.expires_at and lot.expires_at <= at),
                             key=lambda lot: (lot.expires_at, lot.id))
                assert uow.due_lots(at, 1000) == due
                assert uow.due_lots(at, 2, "w1") == due[:2]
        finally:
            self.close_store(store)

    # -- conditioned lots and condition groups -----------------------------------------------

    def test_condition_groups_round_trip_and_follow_rollback(self, store: Store) -> None:
        writer = Writer(store)
        condition = SpendCondition(
            products={"watch-1"}, categories={"smartwatches"}, merchants={"techno"},
            merchant_groups={"malls"},
            windows=(TimeWindow(days={1, 2, 3, 4, 5}, start=wall_time(8), end=wall_time(12),
                                zone="Europe/Nicosia"),),
            valid_from=T0, valid_until=T0 + 30 * DAY, minimum_purchase=eur("20.00"),
        )
        spring = ConditionGroup("cg-spring", TENANT, "Spring", condition, 1, valid_from=T0,
                                valid_until=T0 + 10 * DAY)
        other = ConditionGroup("cg-a", TENANT, "Autumn", SpendCondition(), 1)
        elsewhere = ConditionGroup("cg-z", "hub-b", "Spring", SpendCondition(), 1)
        for group in (spring, other, elsewhere):
            writer.put_group(group)
        with store.unit_of_work() as uow:
            assert uow.get_condition_group("cg-spring") == spring
            assert uow.condition_groups(TENANT) == [other, spring]  # by name
            assert uow.condition_groups("hub-b") == [elsewhere]
            assert uow.condition_groups("nobody") == []
            with pytest.raises(ConditionGroupNotFoundError):
                uow.get_condition_group("cg-missing")
            with pytest.raises(ConditionGroupNotFoundError):
                uow.lock_condition_group("cg-missing")
        changed = attrs.evolve(spring.with_condition(SpendCondition(products={"watch-2"})),
                               valid_until=None)
        assert changed.version == 2
        with store.unit_of_work() as uow:
            assert uow.lock_condition_group("cg-spring") == spring
            uow.put_condition_group(changed)
            assert uow.get_condition_group("cg-spring") == changed  # the unit sees its own
            # rolled back: not committed
        with store.unit_of_work() as uow:
            assert uow.get_condition_group("cg-spring") == spring
        writer.put_group(changed)
        with store.unit_of_work() as uow:
            assert uow.get_condition_group("cg-spring") == changed
            assert uow.condition_groups(TENANT) == [other, changed]
        with store.unit_of_work(read_only=True) as uow, pytest.raises(StorageError):
            uow.put_condition_group(other)

    def test_conditioned_lots_keep_their_conditions_and_pay_first(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        group = writer.put_group(ConditionGroup(
            "cg-1", TENANT, "Watches", SpendCondition(categories={"smartwatches"}), 3,
        ))
        mornings = SpendCondition(windows=(TimeWindow(
            days={6, 7}, start=wall_time(9), end=wall_time(0), zone="America/Santiago"),))
        writer.award("w1", "l-plain", "1.00", priority=-5)
        writer.award("w1", "l-group", "2.00", priority=2, group=group)
        writer.award("w1", "l-own", "3.00", priority=1, condition=mornings)
        writer.award("w1", "l-empty-condition", "4.00", priority=0,
                     condition=SpendCondition())  # restricts nothing: unconditioned
        with store.unit_of_work() as uow:
            lots = {lot.id: lot for lot in uow.wallet_lots("w1")}
            assert lots["l-group"].group_id == "cg-1"
            assert lots["l-group"].group_version == 3
            assert lots["l-group"].condition == group.condition
            assert lots["l-own"].condition == mornings
            assert lots["l-own"].group_id is None
            assert lots["l-own"].group_version is None
            assert lots["l-plain"].condition is None
            assert lots["l-empty-condition"].condition == SpendCondition()
            assert uow.get_lot("l-own") == lots["l-own"]
            assert [lot.id for lot in uow.live_lots("w1")] == [
                "l-own", "l-group", "l-plain", "l-empty-condition"]
        # a later version of the group does not change what a lot was granted under
        writer.put_group(group.with_condition(SpendCondition(categories={"phones"})))
        with store.unit_of_work() as uow:
            assert uow.get_lot("l-group").condition == SpendCondition(categories={"smartwatches"})
            assert uow.get_lot("l-group").group_version == 3

    def test_a_lot_falls_due_at_its_groups_end_and_follows_changes_to_it(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        group = writer.put_group(ConditionGroup(
            "cg-1", TENANT, "Spring", SpendCondition(), 1, valid_until=T0 + 2 * DAY))
        writer.award("w1", "l-own-sooner", "1.00", group=group, expires_at=T0 + DAY)
        writer.award("w1", "l-group-end", "1.00", group=group, expires_at=T0 + 5 * DAY)
        writer.award("w2", "l-group-only", "1.00", group=group)
        writer.award("w2", "l-spent", "1.00", group=group)
        writer.spend("w2", [("l-spent", "1.00")])
        writer.award("w2", "l-free", "1.00", expires_at=T0 + 3 * DAY)

        def due(at: datetime, wallet_id: str | None = None) -> list[str]:
            with store.unit_of_work() as uow:
                return [lot.id for lot in uow.due_lots(at, 100, wallet_id)]

        assert due(T0 + DAY) == ["l-own-sooner"]
        assert due(T0 + 2 * DAY - timedelta(microseconds=1)) == ["l-own-sooner"]
        assert due(T0 + 2 * DAY) == ["l-own-sooner", "l-group-end", "l-group-only"]
        assert due(T0 + 2 * DAY, "w2") == ["l-group-only"]
        assert due(T0 + 3 * DAY) == ["l-own-sooner", "l-group-end", "l-group-only", "l-free"]
        # the group is extended: its lots follow, each up to its own expiry
        writer.put_group(attrs.evolve(group, valid_until=T0 + 4 * DAY))
        assert due(T0 + 2 * DAY) == ["l-own-sooner"]
        assert due(T0 + 4 * DAY) == ["l-own-sooner", "l-free", "l-group-end", "l-group-only"]
        # ended early, then without an end at all
        writer.put_group(attrs.evolve(group, valid_until=T0 + 12 * HOUR))
        assert due(T0 + 12 * HOUR) == ["l-group-end", "l-group-only", "l-own-sooner"]
        writer.put_group(attrs.evolve(group, valid_until=None))
        assert due(T0 + 999 * DAY) == ["l-own-sooner", "l-free", "l-group-end"]
        # a swept lot is no longer due
        writer.expire("w1", "l-own-sooner", at=T0 + DAY)
        assert due(T0 + 999 * DAY) == ["l-free", "l-group-end"]

    def test_a_lot_falls_due_at_its_conditions_end_whatever_its_group_does(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        group = writer.put_group(ConditionGroup(
            "cg-1", TENANT, "Later", SpendCondition(), 1, valid_until=T0 + 5 * DAY))
        season = SpendCondition(merchants={"m"}, valid_until=T0 + 2 * DAY)
        writer.award("w1", "l-season", "1.00", condition=season, expires_at=T0 + 9 * DAY)
        writer.award("w1", "l-own-sooner", "1.00", condition=season, expires_at=T0 + DAY)
        writer.award("w1", "l-group", "1.00", group=attrs.evolve(group, condition=season))

        def due(at: datetime) -> list[str]:
            with store.unit_of_work() as uow:
                return [lot.id for lot in uow.due_lots(at, 100)]

        assert due(T0 + DAY) == ["l-own-sooner"]
        assert due(T0 + 2 * DAY) == ["l-own-sooner", "l-group", "l-season"]
        writer.put_group(attrs.evolve(group, valid_until=T0 + DAY + HOUR))  # ends sooner
        assert due(T0 + DAY + HOUR) == ["l-own-sooner", "l-group"]
        writer.put_group(attrs.evolve(group, valid_until=None))  # its conditions still end
        assert due(T0 + 2 * DAY) == ["l-own-sooner", "l-group", "l-season"]

    def test_a_refilled_lot_falls_due_at_its_groups_current_end(
        self, store: Store, writer: Writer
    ) -> None:
        """A grouped lot is emptied, its group's end moves, then a refund refills the lot: it
        falls due at the group's new end (its own expiry is later)."""
        writer.open("w1")
        group = writer.put_group(ConditionGroup("cg-1", TENANT, "Spring", SpendCondition(), 1,
                                                valid_until=T0 + 5 * DAY))
        writer.award("w1", "l1", "1.00", group=group, expires_at=T0 + 9 * DAY)
        spend = writer.spend("w1", [("l1", "1.00")])
        writer.put_group(attrs.evolve(group, valid_until=T0 + 2 * DAY))
        writer.refund("w1", spend.entry.id, "1.00")
        with store.unit_of_work(read_only=True) as uow:
            assert [lot.id for lot in uow.due_lots(T0 + 2 * DAY, 10)] == ["l1"]
            assert uow.due_lots(T0 + 2 * DAY - timedelta(microseconds=1), 10) == []

    def test_a_lot_of_an_unknown_group_is_refused_at_commit(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        before = store.export_state()
        ghost = ConditionGroup("cg-ghost", TENANT, "Ghost", SpendCondition(), 1)
        with pytest.raises(IntegrityError):
            writer.award("w1", "l1", "1.00", group=ghost)
        assert store.export_state() == before

    def test_conditioned_top_up_and_transfer_arrive_as_lots(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        group = writer.put_group(ConditionGroup("cg-1", TENANT, "Food", SpendCondition(
            categories={"food"}), 1))

        def top_up(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            info = writer.info()
            lot = _w.new_lot(ws["w1"], lot_id="l-top", amount=eur("5.00"), info=info,
                             reason="top-up", condition=group.condition, group_id=group.id,
                             group_version=group.version)
            return _w.top_up(ws["w1"], eur("5.00"), "card", info, lot=lot)

        writer.write(["w1"], top_up)
        writer.top_up("w1", "10.00")

        def transfer(uow: UnitOfWork, ws: dict[str, Wallet]) -> Change:
            info = writer.info()
            lot = _w.new_lot(ws["w2"], lot_id="l-gift", amount=eur("4.00"), info=info,
                             reason="gift", condition=group.condition, group_id=group.id,
                             group_version=group.version)
            return _w.transfer(ws["w1"], ws["w2"], eur("4.00"), info, lot=lot)

        writer.write(["w1", "w2"], transfer)
        w1, w2 = writer.wallet("w1"), writer.wallet("w2")
        assert (w1.open, w1.commerce) == (eur("6.00"), eur("5.00"))
        assert (w2.open, w2.commerce) == (eur("0.00"), eur("4.00"))
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.live_lots("w2")] == ["l-gift"]
            assert uow.get_lot("l-gift").group_id == "cg-1"
            assert uow.get_lot("l-top").remaining == eur("5.00")

    # -- automatic top-up intents ------------------------------------------------------------

    def test_top_up_intents_one_pending_per_wallet(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2")

        def intent(intent_id: str, wallet: str = "w1", minutes: int = 0) -> TopUpIntent:
            return TopUpIntent(id=intent_id, wallet_id=wallet, amount=eur("20.00"),
                               reason=TopUpReason.THRESHOLD,
                               created_at=T0 + minutes * timedelta(minutes=1))

        first = intent("tu-1", minutes=5)
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            assert pending_top_up_intent(uow, "w1") is None
            put_top_up_intent(uow, TENANT, first)
            assert pending_top_up_intent(uow, "w1") == first
            with pytest.raises(ConflictError):
                put_top_up_intent(uow, TENANT, intent("tu-2"))  # a second pending one
            put_top_up_intent(uow, "hub-b", intent("tu-3", wallet="w2"))
            uow.commit()
        started = start_attempt(first, Charge("card", attempt_key("tu-1", "card", 1),
                                              eur("20.00")), T0 + HOUR)
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            assert get_top_up_intent(uow, "tu-1") == first
            put_top_up_intent(uow, TENANT, started)  # its new state
            assert pending_top_up_intent(uow, "w1") == started
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert get_top_up_intent(uow, "tu-1") == started
            assert get_top_up_intent(uow, "tu-missing") is None
            other = ("hub-b", intent("tu-3", "w2"))
            assert pending_top_up_intents(uow, 10) == [other, (TENANT, started)]  # oldest first
            assert pending_top_up_intents(uow, 1) == [other]
        with store.unit_of_work() as uow:  # another pending intent for w1: refused at commit
            put_top_up_intent(uow, TENANT, intent("tu-4"))
            with pytest.raises(ConflictError):
                uow.commit()
        declined = record_outcome(started, attempt_key("tu-1", "card", 1),
                                  ChargeOutcome(ChargeStatus.DECLINED_HARD), T0 + 2 * HOUR)
        done = give_up(declined, GiveUp(GiveUpReason.HARD_DECLINED), T0 + 2 * HOUR)
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            put_top_up_intent(uow, TENANT, done)  # finished: the wallet may have a new one
            assert pending_top_up_intent(uow, "w1") is None
            put_top_up_intent(uow, TENANT, intent("tu-5", minutes=1))
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert get_top_up_intent(uow, "tu-1") == done
            assert [i.id for _, i in pending_top_up_intents(uow, 10)] == ["tu-3", "tu-5"]
        rows = {row[1]: row[2:7] for row in store.export_state()["records"]}
        assert rows["tu-1"] == [TENANT, "w1", "failed", None, "2026-01-05T09:05:00.000000Z"]
        assert rows["tu-5"] == [TENANT, "w1", "pending", "w1", "2026-01-05T09:01:00.000000Z"]
        before = store.export_state()
        with store.unit_of_work() as uow:
            put_top_up_intent(uow, TENANT, intent("tu-6", wallet="w-missing"))
            with pytest.raises(WalletNotFoundError):
                uow.commit()
        assert store.export_state() == before

    # -- records -----------------------------------------------------------------------------

    def test_records_round_trip_are_replaced_and_deleted(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        note = Note("n-1", wallet_id="w1", status="open", slot="s1", body='naïve "€" \\ {}')
        with store.unit_of_work() as uow:
            assert uow.get_record(NOTES, "n-1") is None
            uow.put_record(NOTES, note)
            uow.put_record(PLAIN, Note("n-1", body="another kind, the same key"))
            assert uow.get_record(NOTES, "n-1") == note  # the unit sees its own
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert uow.get_record(NOTES, "n-1") == note
            assert uow.get_record(PLAIN, "n-1") == Note("n-1", body="another kind, the same key")
            assert uow.get_record(NOTES, "n-missing") is None
        assert store.export_state()["records"] == [
            ["test_note", "n-1", TENANT, "w1", "open", "s1", "m", attrs.asdict(note)],
            ["test_plain", "n-1", TENANT, None, None, None, "n-1",
             attrs.asdict(Note("n-1", body="another kind, the same key"))],
        ]
        replaced = attrs.evolve(note, status="closed", slot=None, rank="a")
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, replaced)
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert uow.get_record(NOTES, "n-1") == replaced
            assert uow.find_records(NOTES, tag="open") == []
            assert uow.find_records(NOTES, tag="closed") == [replaced]
        with store.unit_of_work() as uow:
            uow.delete_record(NOTES, "n-1")
            uow.delete_record(NOTES, "n-missing")  # nothing to remove: nothing happens
            assert uow.get_record(NOTES, "n-1") is None
            assert uow.find_records(NOTES) == []
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert uow.get_record(NOTES, "n-1") is None
            assert uow.get_record(PLAIN, "n-1") is not None  # another kind is not touched
            with pytest.raises(StorageError):
                uow.put_record(NOTES, note)  # read-only
            with pytest.raises(StorageError):
                uow.delete_record(PLAIN, "n-1")
        assert [row[:2] for row in store.export_state()["records"]] == [["test_plain", "n-1"]]

    def test_records_are_found_by_each_filter_in_order(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2", tenant="hub-b")
        notes = [
            Note("n-5", wallet_id="w1", status="open", rank="b"),
            Note("n-4", wallet_id="w1", status="done", rank="b"),
            Note("n-3", status="open", rank="a"),
            Note("n-2", tenant_id="hub-b", wallet_id="w2", status="open", rank="Z"),
            Note("n-1", status="open", rank="é"),  # byte order: "Z" < "a" < "b" < "é"
            Note("n-0", tenant_id="hub-b", rank="c"),
        ]
        with store.unit_of_work() as uow:
            for note in notes:
                uow.put_record(NOTES, note)
                uow.put_record(PLAIN, note)
            uow.commit()

        def ids(found: list[Note]) -> list[str]:
            return [note.id for note in found]

        with store.unit_of_work(read_only=True) as uow:
            assert ids(uow.find_records(NOTES)) == ["n-2", "n-3", "n-4", "n-5", "n-0", "n-1"]
            assert ids(uow.find_records(PLAIN)) == ["n-0", "n-1", "n-2", "n-3", "n-4", "n-5"]
            assert ids(uow.find_records(NOTES, tenant_id=TENANT)) == ["n-3", "n-4", "n-5", "n-1"]
            assert ids(uow.find_records(NOTES, tenant_id="hub-b")) == ["n-2", "n-0"]
            assert ids(uow.find_records(NOTES, tenant_id="hub-c")) == []
            assert ids(uow.find_records(NOTES, wallet_id="w1")) == ["n-4", "n-5"]
            assert ids(uow.find_records(NOTES, tag="open")) == ["n-2", "n-3", "n-5", "n-1"]
            assert ids(uow.find_records(NOTES, tag="open", tenant_id=TENANT)) == [
                "n-3", "n-5", "n-1"]
            assert ids(uow.find_records(NOTES, wallet_id="w1", tag="open")) == ["n-5"]
            assert ids(uow.find_records(NOTES, wallet_id="w1", tenant_id="hub-b")) == []
            assert ids(uow.find_records(NOTES, tag="open", limit=2)) == ["n-2", "n-3"]
            assert ids(uow.find_records(NOTES, limit=1)) == ["n-2"]
            assert uow.find_records(NOTES, limit=0) == []
            assert uow.find_records(PLAIN, wallet_id="w1") == []  # PLAIN has no wallets
            with pytest.raises(InvalidInputError, match="tag"):
                uow.find_records(NOTES, tag=5)  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match="limit"):
                uow.find_records(NOTES, limit=True)

    def test_records_reads_see_the_units_own_writes_until_rollback(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        with store.unit_of_work() as uow:
            for note in [Note("n-1", status="open", rank="a"),
                         Note("n-2", status="open", rank="b"),
                         Note("n-3", status="open", rank="c")]:
                uow.put_record(NOTES, note)
            uow.commit()
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-0", status="open", rank="bb", wallet_id="w1"))
            uow.put_record(NOTES, Note("n-3", status="open", rank="0"))  # moves first
            uow.put_record(NOTES, Note("n-1", status="done", rank="a"))  # leaves "open"
            uow.delete_record(NOTES, "n-2")
            assert [n.id for n in uow.find_records(NOTES, tag="open")] == ["n-3", "n-0"]
            assert [n.id for n in uow.find_records(NOTES, tag="open", limit=1)] == ["n-3"]
            assert [n.id for n in uow.find_records(NOTES, wallet_id="w1")] == ["n-0"]
            assert [n.id for n in uow.find_records(NOTES, tenant_id=TENANT)] == [
                "n-3", "n-1", "n-0"]
            assert uow.get_record(NOTES, "n-2") is None
            assert uow.get_record(NOTES, "n-1") == Note("n-1", status="done", rank="a")
            # rolled back: none of it was committed
        assert store.export_state() == before

        def fail() -> None:
            with store.unit_of_work() as uow:
                uow.put_record(NOTES, Note("n-9"))
                uow.delete_record(NOTES, "n-1")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail()
        assert store.export_state() == before
        with store.unit_of_work(read_only=True) as uow:
            assert [n.id for n in uow.find_records(NOTES, tag="open")] == ["n-1", "n-2", "n-3"]

    def test_records_unique_values_clash_within_a_kind(
        self, store: Store, writer: Writer
    ) -> None:
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-1", slot="s1"))
            uow.put_record(NOTES, Note("n-2", slot="s2"))
            uow.put_record(NOTES, Note("n-3"))
            uow.put_record(NOTES, Note("n-4"))  # no unique value: any number of them
            uow.put_record(PLAIN, Note("p-1", slot="s1"))  # PLAIN declares no unique value
            with pytest.raises(ConflictError):
                uow.put_record(NOTES, Note("n-5", slot="s1"))  # buffered in this unit: at once
            uow.put_record(NOTES, Note("n-1", slot="s1", body="replaced, the same value"))
            uow.commit()
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-5", slot="s2"))  # stored: at commit at the latest
            with pytest.raises(ConflictError):
                uow.commit()
        assert store.export_state() == before
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-3", slot="s2"))  # taken by n-2, which keeps it
            with pytest.raises(ConflictError):
                uow.commit()
        assert store.export_state() == before
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-1", slot="s2"))  # the two trade their values
            uow.put_record(NOTES, Note("n-2", slot="s1"))
            uow.commit()
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("n-5", slot="s1"))  # n-2 lets it go in the same unit
            uow.put_record(NOTES, Note("n-2"))
            uow.delete_record(NOTES, "n-1")  # and a removed record frees its value
            uow.put_record(NOTES, Note("n-6", slot="s2"))
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert {n.id: n.slot for n in uow.find_records(NOTES)} == {
                "n-2": None, "n-3": None, "n-4": None, "n-5": "s1", "n-6": "s2"}

    def test_records_need_their_wallet(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        before = store.export_state()
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            uow.put_record(NOTES, Note("n-1", wallet_id="w1"))
            uow.put_record(NOTES, Note("n-2", wallet_id="w-missing"))
            uow.put_record(NOTES, Note("n-3", wallet_id="w-missing-too"))
            with pytest.raises(WalletNotFoundError) as missing:
                uow.commit()
        assert missing.value.id == "w-missing"  # the first one the unit wrote
        assert store.export_state() == before
        with store.unit_of_work() as uow:  # a wallet opened in the same unit will do
            uow.add_wallet(Writer.new_wallet("w2"))
            uow.put_record(NOTES, Note("n-2", wallet_id="w2"))
            uow.put_record(NOTES, Note("n-3"))  # and so does none
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert [n.id for n in uow.find_records(NOTES, wallet_id="w2")] == ["n-2"]

    def test_records_refuse_bad_values(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            with pytest.raises(InvalidInputError, match="record"):
                uow.put_record(NOTES, "not a note")  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError, match=r"test_note\.key"):
                uow.put_record(NOTES, Note(""))
            with pytest.raises(InvalidInputError, match=r"test_note\.tenant"):
                uow.put_record(NOTES, Note("n-1", tenant_id="a\x00b"))
            with pytest.raises(InvalidInputError, match=r"test_note\.unique"):
                uow.put_record(NOTES, Note("n-1", slot=""))
            uow.commit()
        assert store.export_state()["records"] == []

    def test_records_of_one_tenant_are_found_apart_from_another(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            for tenant in ("hub-a", "hub-b", "hub-a2", "hub"):
                for n in range(3):
                    uow.put_record(NOTES, Note(f"{tenant}-{n}", tenant_id=tenant,
                                               status="open", rank=str(n)))
            uow.commit()
        with store.unit_of_work() as uow:
            uow.put_record(NOTES, Note("hub-b-new", tenant_id="hub-b", status="open"))
            for tenant in ("hub-a", "hub-b", "hub-a2", "hub"):
                found = uow.find_records(NOTES, tenant_id=tenant, tag="open")
                assert {n.tenant_id for n in found} == {tenant}
                assert len(found) == (4 if tenant == "hub-b" else 3)
                assert [n.id for n in uow.find_records(NOTES, tenant_id=tenant, limit=2)] == [
                    f"{tenant}-0", f"{tenant}-1"]

    def test_records_of_the_locked_wallets_tenants_are_read_with_the_lock(
        self, store: Store, writer: Writer
    ) -> None:
        # ``lock_wallets(tenant_records=...)``: the records stored under a locked wallet's
        # tenant id read as get_record reads them (none stored: None), the unit's own writes
        # first; another kind or tenant is read as ever.
        writer.open("w1")
        writer.open("w2", tenant="hub-b")
        writer.open("w3", tenant="hub-c")
        with store.unit_of_work() as uow:
            uow.put_record(PLAIN, Note(TENANT, body="hub's"))
            uow.put_record(PLAIN, Note("hub-b", tenant_id="hub-b", body="hub-b's"))
            uow.put_record(NOTES, Note(TENANT, body="another kind"))
            uow.commit()
        for read_only in (False, True):
            with store.unit_of_work(read_only=read_only) as uow:
                found = uow.lock_wallets(["w2", "w1", "w3"], tenant_records=(PLAIN,))
                assert sorted(found) == ["w1", "w2", "w3"]
                assert uow.get_record(PLAIN, TENANT) == Note(TENANT, body="hub's")
                assert uow.get_record(PLAIN, "hub-b") == Note("hub-b", tenant_id="hub-b",
                                                              body="hub-b's")
                assert uow.get_record(PLAIN, "hub-c") is None
                assert uow.get_record(NOTES, TENANT) == Note(TENANT, body="another kind")
                assert uow.get_record(PLAIN, "hub-z") is None
                if not read_only:
                    uow.put_record(PLAIN, Note(TENANT, body="changed"))
                    uow.delete_record(PLAIN, "hub-b")
                    assert uow.get_record(PLAIN, TENANT) == Note(TENANT, body="changed")
                    assert uow.get_record(PLAIN, "hub-b") is None
        with store.unit_of_work() as uow:  # locked later in a unit: read the same way
            assert uow.get_record(NOTES, TENANT) is not None
            uow.lock_wallets(["w1"], tenant_records=(PLAIN, NOTES))
            assert uow.get_record(PLAIN, TENANT) == Note(TENANT, body="hub's")
            assert uow.get_record(NOTES, TENANT) == Note(TENANT, body="another kind")
            with pytest.raises(WalletNotFoundError):
                uow.lock_wallets(["w-missing"], tenant_records=(PLAIN,))

    # -- events (the outbox) -----------------------------------------------------------------

    def test_events_are_written_with_the_unit_and_read_until_acknowledged(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")

        def event(event_id: str, tenant: str = TENANT, minutes: int = 0) -> Event:
            return Event(event_id, tenant, "w1", "low_balance",
                         T0 + minutes * timedelta(minutes=1), '{"thresholds":["warn"]}')

        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_w.top_up(wallet, eur("5.00"), "card", writer.info()))
            uow.add_event(event("ev-2", minutes=5))  # later instant, but committed first
            uow.add_event(event("ev-1"))
            with pytest.raises(ConflictError):
                uow.add_event(event("ev-1"))
            assert uow.pending_events(TENANT, 10) == []  # committed state only
            uow.commit()
        with store.unit_of_work() as uow:
            uow.add_event(event("ev-x"))
            # rolled back with the unit
        with store.unit_of_work() as uow:
            uow.add_event(event("ev-3"))
            uow.add_event(event("ev-other", tenant="hub-b"))
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert [e.id for e in uow.pending_events(TENANT, 10)] == ["ev-2", "ev-1", "ev-3"]
            assert uow.pending_events(TENANT, 2) == [event("ev-2", minutes=5), event("ev-1")]
            assert [e.id for e in uow.pending_events("hub-b", 10)] == ["ev-other"]
            with pytest.raises(StorageError):
                uow.ack_events(TENANT, ["ev-1"])  # read-only
        with store.unit_of_work() as uow:
            assert uow.ack_events(TENANT, ["ev-1", "ev-1", "ev-missing", "ev-other"]) == 1
            assert [e.id for e in uow.pending_events(TENANT, 10)] == ["ev-2", "ev-3"]
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.ack_events(TENANT, ["ev-1"]) == 0  # already acknowledged
            uow.ack_events(TENANT, ["ev-2"])
            # rolled back: still pending
        with store.unit_of_work(read_only=True) as uow:
            assert [e.id for e in uow.pending_events(TENANT, 10)] == ["ev-2", "ev-3"]
        with store.unit_of_work() as uow:
            uow.add_event(event("ev-1"))
            with pytest.raises(ConflictError):
                uow.commit()  # an id already stored

    def test_pending_events_are_read_by_kind(self, store: Store, writer: Writer) -> None:
        writer.open("w1")

        def event(event_id: str, kind: str) -> Event:
            return Event(event_id, TENANT, "w1", kind, T0, "{}")

        with store.unit_of_work() as uow:
            for n, kind in enumerate(["top_up.succeeded", "low_balance", "lot.expired",
                                      "low_balance", "top_up.succeeded"]):
                uow.add_event(event(f"ev-{n}", kind))
            uow.commit()
        with store.unit_of_work() as uow:
            assert [e.id for e in uow.pending_events(TENANT, 10, kinds=["low_balance"])] == [
                "ev-1", "ev-3"]
            assert [e.id for e in uow.pending_events(TENANT, 1, kinds=["low_balance"])] == [
                "ev-1"]
            assert [e.id for e in uow.pending_events(
                TENANT, 10, kinds=("lot.expired", "top_up.succeeded"))] == [
                "ev-0", "ev-2", "ev-4"]
            assert uow.pending_events(TENANT, 10, kinds=[]) == []
            assert uow.pending_events(TENANT, 10, kinds=["upgrade.called"]) == []
            assert len(uow.pending_events(TENANT, 10, kinds=None)) == 5
            # acknowledged in this unit: no longer read, whatever the filter
            assert uow.ack_events(TENANT, ["ev-1"]) == 1
            assert [e.id for e in uow.pending_events(TENANT, 1, kinds=["low_balance"])] == [
                "ev-3"]
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert [e.id for e in uow.pending_events(TENANT, 10, kinds=["low_balance"])] == [
                "ev-3"]

    # -- wallet settings ---------------------------------------------------------------------

    def test_wallet_settings_round_trip_follow_rollback_and_need_the_wallet(
        self, store: Store, writer: Writer
    ) -> None:
        w1 = writer.open("w1")
        writer.open("w2")
        w_missing = Writer.new_wallet("w-missing")
        text = '{"limits":[1,2],"naïve":"€"}'
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            assert get_setting(uow, "w1", "limits") is None
            put_setting(uow, w1, "limits", text)
            put_setting(uow, w1, "owner_groups", '["students"]')
            assert get_setting(uow, "w1", "limits") == text  # the unit sees its own
            uow.commit()
        assert [row[:7] for row in store.export_state()["records"]] == [  # records by wallet
            ["wallet_setting", "w1/limits", TENANT, "w1", "limits", None, "w1/limits"],
            ["wallet_setting", "w1/owner_groups", TENANT, "w1", "owner_groups", None,
             "w1/owner_groups"],
        ]
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            put_setting(uow, w1, "limits", "discarded")
            # rolled back: not committed
        with store.unit_of_work(read_only=True) as uow:
            assert get_setting(uow, "w1", "limits") == text
            assert get_setting(uow, "w1", "owner_groups") == '["students"]'
            assert get_setting(uow, "w2", "limits") is None
            assert get_setting(uow, "w-missing", "limits") is None
        with store.unit_of_work() as uow:
            uow.lock_wallets(["w1"])
            put_setting(uow, w1, "owner_groups", None)  # removed
            put_setting(uow, w1, "limits", "changed")
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert get_setting(uow, "w1", "owner_groups") is None
            assert get_setting(uow, "w1", "limits") == "changed"
            with pytest.raises(StorageError):
                put_setting(uow, w1, "limits", "x")  # read-only
        before = store.export_state()
        with store.unit_of_work() as uow:
            put_setting(uow, w_missing, "limits", "x")
            with pytest.raises(WalletNotFoundError):
                uow.commit()
        assert store.export_state() == before
        # a new wallet may get its settings in the unit that opens it
        with store.unit_of_work() as uow:
            w3 = Writer.new_wallet("w3")
            uow.add_wallet(w3)
            put_setting(uow, w3, "owner_groups", '["staff"]')
            uow.commit()
        with store.unit_of_work(read_only=True) as uow:
            assert get_setting(uow, "w3", "owner_groups") == '["staff"]'

    # -- due lots and holds ------------------------------------------------------------------

    def test_due_lots_soonest_first_with_limit_and_wallet(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        for wallet_id, lot_id, expires in [
            ("w1", "l-3d", T0 + 3 * DAY),
            ("w1", "l-1d", T0 + DAY),
            ("w2", "l-2d-b", T0 + 2 * DAY),
            ("w1", "l-2d-a", T0 + 2 * DAY),
            ("w1", "l-never", None),
            ("w2", "l-1d-empty", T0 + DAY),
            ("w2", "l-12h-swept", T0 + 12 * HOUR),
        ]:
            writer.award(wallet_id, lot_id, "1.00", expires_at=expires)
        writer.spend("w2", [("l-1d-empty", "1.00")])
        writer.expire("w2", "l-12h-swept", at=T0 + 12 * HOUR)
        with store.unit_of_work() as uow:

            def ids(lots: list[Lot]) -> list[str]:
                return [lot.id for lot in lots]

            assert ids(uow.due_lots(T0 + 2 * DAY, 10)) == ["l-1d", "l-2d-a", "l-2d-b"]
            assert ids(uow.due_lots(T0 + 2 * DAY, 2)) == ["l-1d", "l-2d-a"]
            assert ids(uow.due_lots(T0 + 2 * DAY, 0)) == []
            assert ids(uow.due_lots(T0 + 2 * DAY - timedelta(microseconds=1), 10)) == ["l-1d"]
            assert ids(uow.due_lots(T0 + 2 * DAY, 10, "w1")) == ["l-1d", "l-2d-a"]
            assert ids(uow.due_lots(T0 + 2 * DAY, 10, "w2")) == ["l-2d-b"]
            assert ids(uow.due_lots(T0 + 999 * DAY, 10)) == [
                "l-1d", "l-2d-a", "l-2d-b", "l-3d"]
            assert ids(uow.due_lots(T0, 10)) == []
            assert all(lot.remaining == eur("1.00") for lot in uow.due_lots(T0 + 9 * DAY, 10))

    def test_due_lots_never_return_a_lot_the_unit_emptied(
        self, store: Store, writer: Writer
    ) -> None:
        """A lot emptied in this unit has no money left, so it is not due; a lot awarded in this
        unit shows up once committed (base.py: the time indexes see committed state)."""
        writer.open("w1")
        writer.award("w1", "l-old", "1.00", expires_at=T0 + DAY)
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            allocation, lots = Writer.parts(uow, [("l-old", "1.00")])
            spend = _w.spend(wallet, allocation, lots, writer.info())
            uow.record(spend)
            award = _w.award(spend.wallet("w1"), lot_id="l-new", amount=eur("2.00"),
                             expires_at=T0 + DAY, priority=0, reason="r", info=writer.info())
            uow.record(award)
            assert uow.due_lots(T0 + 2 * DAY, 10) == []
            assert uow.due_lots(T0 + 2 * DAY, 10, "w1") == []
            uow.commit()
        with store.unit_of_work() as uow:
            assert [lot.id for lot in uow.due_lots(T0 + 2 * DAY, 10)] == ["l-new"]
            assert [lot.id for lot in uow.due_lots(T0 + 2 * DAY, 10, "w1")] == ["l-new"]

    def test_due_holds_soonest_first_active_only(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.top_up("w1", "50.00")
        for hold_id, expires in [("h-3h", 3), ("h-1h", 1), ("h-2h-b", 2), ("h-2h-a", 2),
                                 ("h-void", 1)]:
            writer.hold("w1", hold_id, [(None, "1.00")], expires_at=T0 + expires * HOUR)
        writer.release("w1", "h-void")
        with store.unit_of_work() as uow:

            def ids(at: datetime, limit: int) -> list[str]:
                return [h.id for h in uow.due_holds(at, limit)]

            assert ids(T0 + 2 * HOUR, 10) == ["h-1h", "h-2h-a", "h-2h-b"]
            assert ids(T0 + 2 * HOUR, 1) == ["h-1h"]
            assert ids(T0 + HOUR - timedelta(microseconds=1), 10) == []
            assert ids(T0 + DAY, 10) == ["h-1h", "h-2h-a", "h-2h-b", "h-3h"]
            assert all(h.status is HoldStatus.ACTIVE for h in uow.due_holds(T0 + DAY, 10))
            assert [h.id for h in uow.wallet_holds("w1")] == [
                "h-1h", "h-2h-a", "h-2h-b", "h-3h", "h-void"]
            assert uow.get_hold("h-void").status is HoldStatus.VOIDED

    def test_due_holds_skip_a_hold_resolved_in_the_same_unit(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.top_up("w1", "5.00")
        writer.hold("w1", "h1", [(None, "1.00")], expires_at=T0 + HOUR)
        with store.unit_of_work() as uow:
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_holds.release(wallet, uow.get_hold("h1"), {}, HoldStatus.VOIDED,
                                  writer.info()))
            assert uow.due_holds(T0 + DAY, 10) == []

    # -- the journal and its indexes ---------------------------------------------------------

    def test_iter_entries_in_write_order(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2")
        changes = [
            writer.top_up("w2", "5.00", at=T0 + HOUR),
            writer.top_up("w1", "5.00"),  # recorded earlier, written later
            writer.transfer("w1", "w2", "1.00", at=T0 + 2 * HOUR),
        ]
        with store.unit_of_work() as uow:
            assert list(uow.iter_entries()) == [c.entry for c in changes]

    def test_wallet_history_is_half_open_with_balances_after_each_entry(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.open("w2")
        c0 = writer.top_up("w1", "10.00", at=T0)
        c1 = writer.award("w1", "l1", "4.00", at=T0 + HOUR)
        c2 = writer.transfer("w1", "w2", "3.00", at=T0 + 2 * HOUR)
        c3 = writer.hold("w1", "h1", [("l1", "1.00"), (None, "2.00")], at=T0 + 3 * HOUR,
                         expires_at=T0 + DAY)
        with store.unit_of_work() as uow:
            history = list(uow.wallet_history("w1"))
            assert [e for e, _ in history] == [c.entry for c in (c0, c1, c2, c3)]
            balances = [(s.open, s.commerce, s.held) for _, s in history]
            assert balances == [
                (eur("10.00"), eur("0.00"), eur("0.00")),
                (eur("10.00"), eur("4.00"), eur("0.00")),
                (eur("7.00"), eur("4.00"), eur("0.00")),
                (eur("5.00"), eur("3.00"), eur("3.00")),
            ]
            for entry, snapshot in history:
                assert (snapshot.wallet_id, snapshot.entry_id) == ("w1", entry.id)
                assert snapshot.recorded_at == entry.recorded_at
            assert history[-1][1].total == eur("11.00")

            window = list(uow.wallet_history("w1", T0 + HOUR, T0 + 3 * HOUR))
            assert [e.id for e, _ in window] == [c1.entry.id, c2.entry.id]
            assert [e.id for e, _ in uow.wallet_history("w1", since=T0 + 2 * HOUR)] == [
                c2.entry.id, c3.entry.id]
            assert [e.id for e, _ in uow.wallet_history("w1", until=T0 + HOUR)] == [
                c0.entry.id]
            assert list(uow.wallet_history("w1", T0 + HOUR, T0 + HOUR)) == []
            # a transfer shows in both wallets, each with its own balances
            [(entry, snapshot)] = list(uow.wallet_history("w2"))
            assert entry == c2.entry
            assert (snapshot.wallet_id, snapshot.open) == ("w2", eur("3.00"))

    def test_snapshot_at_is_the_last_entry_at_or_before(
        self, store: Store, writer: Writer
    ) -> None:
        writer.open("w1")
        writer.top_up("w1", "1.00", at=T0)
        writer.top_up("w1", "2.00", at=T0 + HOUR)
        last_at_same_instant = writer.top_up("w1", "4.00", at=T0 + HOUR)
        with store.unit_of_work() as uow:
            assert uow.snapshot_at("w1", T0 - timedelta(microseconds=1)) is None

            def open_at(at: datetime) -> Money:
                snapshot = uow.snapshot_at("w1", at)
                assert snapshot is not None
                return snapshot.open

            assert open_at(T0) == eur("1.00")
            assert open_at(T0 + HOUR - timedelta(microseconds=1)) == eur("1.00")
            assert open_at(T0 + HOUR) == eur("7.00")
            assert open_at(T0 + 100 * DAY) == eur("7.00")
            snapshot = uow.snapshot_at("w1", T0 + HOUR)
            assert snapshot is not None
            assert snapshot.entry_id == last_at_same_instant.entry.id

    def test_account_balance_at(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.top_up("w1", "10.00", at=T0)
        writer.award("w1", "l1", "5.00", at=T0 + HOUR)
        writer.spend("w1", [("l1", "2.00"), (None, "1.00")], at=T0 + 2 * HOUR)
        with store.unit_of_work() as uow:
            lot = lot_account("w1", "l1")
            assert uow.account_balance_at(open_account("w1"), T0 - HOUR) is None
            assert uow.account_balance_at(open_account("w1"), T0) == eur("10.00")
            assert uow.account_balance_at(open_account("w1"), T0 + HOUR) == eur("10.00")
            assert uow.account_balance_at(open_account("w1"), T0 + 2 * HOUR) == eur("9.00")
            assert uow.account_balance_at(lot, T0) is None
            assert uow.account_balance_at(lot, T0 + HOUR) == eur("5.00")
            assert uow.account_balance_at(lot, T0 + DAY) == eur("3.00")

    def test_reversal_of_links_both_ways(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.open("w2")
        top = writer.top_up("w1", "10.00")
        transfer = writer.transfer("w1", "w2", "4.00")
        reversal = writer.reverse(transfer.entry.id, ["w1", "w2"], at=T0 + HOUR)
        with store.unit_of_work() as uow:
            assert uow.reversal_of(transfer.entry.id) == reversal.entry.id
            assert uow.get_entry(reversal.entry.id).reverses == transfer.entry.id
            assert uow.reversal_of(top.entry.id) is None
            assert uow.reversal_of(reversal.entry.id) is None
            assert uow.get_wallet("w1").open == eur("10.00")
            assert uow.get_wallet("w2").open == eur("0.00")

    def test_get_charge_tracks_refunds(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        top = writer.top_up("w1", "10.00")
        writer.award("w1", "l1", "5.00", expires_at=T0 + DAY)
        spend = writer.spend("w1", [("l1", "5.00"), (None, "3.00")])
        with store.unit_of_work() as uow:
            charge = uow.get_charge(spend.entry.id)
            assert charge == spend.charges[0]
            assert charge is not None
            assert charge.amount == eur("8.00")
            assert uow.get_charge(top.entry.id) is None
        refund = writer.refund("w1", spend.entry.id, "4.00", at=T0 + HOUR)
        with store.unit_of_work() as uow:
            charge = uow.get_charge(spend.entry.id)
            assert charge is not None
            assert charge == refund.charges[0]
            assert charge.refunded_total == eur("4.00")
            assert charge.refundable == eur("4.00")
            assert uow.get_entry(refund.entry.id).refund_of == spend.entry.id
            assert uow.get_charge(refund.entry.id) is None
            assert uow.get_lot("l1").remaining == eur("1.00")
            assert uow.get_wallet("w1").open == eur("10.00")

    def test_holds_round_trip_through_their_life(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.top_up("w1", "10.00")
        writer.award("w1", "l1", "2.00", expires_at=T0 + DAY)
        change = writer.hold("w1", "h1", [("l1", "2.00"), (None, "3.00")],
                             expires_at=T0 + 4 * HOUR)
        with store.unit_of_work() as uow:
            held = uow.get_hold("h1")
            assert held == change.holds[0]
            assert held.allocation[0].expires_at == T0 + DAY
            assert uow.get_wallet("w1").held == eur("5.00")
        writer.release("w1", "h1", at=T0 + HOUR)
        with store.unit_of_work() as uow:
            held = uow.get_hold("h1")
            assert held.status is HoldStatus.VOIDED
            assert held.resolved_at == T0 + HOUR
            wallet = uow.get_wallet("w1")
            assert (wallet.open, wallet.commerce, wallet.held) == (
                eur("10.00"), eur("2.00"), eur("0.00"))

    # -- idempotency records -----------------------------------------------------------------

    def test_idempotency_records_round_trip_and_conflict(self, store: Store) -> None:
        record = _record("k1", payload='{"x": "ünï ✓"}')
        with store.unit_of_work() as uow:
            uow.put_idempotency(record)
            with pytest.raises(ConflictError):
                uow.put_idempotency(_record("k1", outcome="refused"))
            uow.put_idempotency(_record("k1", scope="hub-b"))  # other tenant, same key
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.get_idempotency(TENANT, "k1") == record
            assert uow.get_idempotency("hub-b", "k1") == _record("k1", scope="hub-b")
            assert uow.get_idempotency(TENANT, "K1") is None
        before = store.export_state()

        def put_again() -> None:
            with store.unit_of_work() as uow:
                uow.put_idempotency(_record("k1", operation="spend"))
                uow.commit()

        with pytest.raises(ConflictError):
            put_again()
        assert store.export_state() == before

    def test_an_outcome_is_stored_as_its_canonical_text(self, store: Store) -> None:
        from prepaid_wallet import _codec

        result = (eur("12.50"), "e1", None)
        text = _codec.dumps(result)
        request = (("operation", "top_up"), ("amount", "12.50 EUR"))
        expected = IdempotencyRecord(TENANT, "k1", "top_up", request, "ok", text, T0)
        with store.unit_of_work() as uow:
            uow.put_outcome(TENANT, "k1", "top_up", request, result, T0)
            uow.put_outcome(TENANT, "k2", "top_up", request, result, T0)
            assert uow.get_idempotency(TENANT, "k1") == expected  # read in its own unit
            with pytest.raises(ConflictError):
                uow.put_outcome(TENANT, "k1", "top_up", request, result, T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.get_idempotency(TENANT, "k1") == expected
        # k2, never read: the store holds its text (what an export or a copy writes).
        (k2,) = [r for r in store.export_state()["idempotency"] if r["key"] == "k2"]
        assert k2 == _codec.to_data(attrs.evolve(expected, key="k2"))
        with store.unit_of_work() as uow:  # rolled back: nothing stored
            uow.put_outcome(TENANT, "k3", "top_up", request, result, T0)
        with store.unit_of_work() as uow:
            assert uow.get_idempotency(TENANT, "k3") is None
            assert uow.get_idempotency(TENANT, "k2") == attrs.evolve(expected, key="k2")

    # -- reads of many rows at once ------------------------------------------------------------

    def test_iter_wallets_after_an_id(self, store: Store, writer: Writer) -> None:
        for wallet_id in ("w1", "w2", "w3", "w4"):
            writer.open(wallet_id, tenant="hub-b" if wallet_id == "w3" else TENANT)
        with store.unit_of_work() as uow:
            uow.add_wallet(writer.new_wallet("w25"))
            assert [w.id for w in uow.iter_wallets(after="w2")] == ["w25", "w3", "w4"]
            assert [w.id for w in uow.iter_wallets(TENANT, after="w2")] == ["w25", "w4"]
            assert [w.id for w in uow.iter_wallets(after="w4")] == []
            assert [w.id for w in uow.iter_wallets(TENANT, after="")] == [
                "w1", "w2", "w25", "w4"]


    def test_many_lots_records_and_keys_in_one_read(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.award("w1", "l1", "1.00", expires_at=T0 + DAY)
        writer.award("w1", "l2", "2.00")
        with store.unit_of_work() as uow:
            uow.put_record(PLAIN, Note("n1", body="one"))
            uow.put_record(PLAIN, Note("n2", body="two"))
            uow.put_idempotency(_record("k1"))
            uow.put_idempotency(_record("k2", scope="hub-b"))
            uow.commit()
        with store.unit_of_work() as uow:
            single = {lot_id: uow.get_lot(lot_id) for lot_id in ("l2", "l1")}
            assert uow.get_lots(["l2", "nope", "l1", "l2"]) == single
            assert list(uow.get_lots(["l2", "l1"])) == ["l2", "l1"]
            assert uow.get_lots([]) == {}
            assert uow.get_records(PLAIN, ["n2", "n9", "n1"]) == {
                "n2": Note("n2", body="two"), "n1": Note("n1", body="one")}
            assert uow.get_records(NOTES, ["n1"]) == {}  # another kind
            found = uow.get_idempotencies([(TENANT, "k1"), ("hub-b", "k2"), (TENANT, "k2")])
            assert found == {(TENANT, "k1"): _record("k1"),
                             ("hub-b", "k2"): _record("k2", scope="hub-b")}
            # what the unit wrote itself comes first, and a key found absent may be stored
            wallet = uow.lock_wallets(["w1"])["w1"]
            uow.record(_w.expire_lot(wallet, single["l1"], writer.info(T0 + 2 * DAY)))
            assert uow.get_lots(["l1"])["l1"].remaining == eur("0.00")
            uow.put_record(PLAIN, Note("n9", body="nine"))
            uow.delete_record(PLAIN, "n1")
            assert uow.get_records(PLAIN, ["n1", "n9"]) == {"n9": Note("n9", body="nine")}
            assert uow.get_record(PLAIN, "n2") == Note("n2", body="two")
            uow.put_idempotency(_record("k2"))
            assert uow.get_idempotencies([(TENANT, "k2")]) == {(TENANT, "k2"): _record("k2")}

    # -- the dump ----------------------------------------------------------------------------

    def test_export_state_is_json_and_canonical(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        writer.top_up("w1", "10.00")
        writer.award("w1", "l1", "1.00", expires_at=T0 + DAY)
        writer.hold("w1", "h1", [(None, "1.00")], expires_at=T0 + HOUR)
        state = store.export_state()
        assert json.loads(json.dumps(state)) == state
        assert store.export_state() == state
        other = self.make_store()
        try:
            again = Writer(other)
            again.open("w1")
            again.top_up("w1", "10.00")
            again.award("w1", "l1", "1.00", expires_at=T0 + DAY)
            again.hold("w1", "h1", [(None, "1.00")], expires_at=T0 + HOUR)
            assert other.export_state() == state
            again.top_up("w1", "0.01")
            assert other.export_state() != state
        finally:
            self.close_store(other)

    def test_a_closed_store_refuses_work(self, store: Store, writer: Writer) -> None:
        writer.open("w1")
        store.close()

        def use() -> None:
            with store.unit_of_work() as uow:
                uow.get_wallet("w1")

        with pytest.raises(StorageError):
            use()
        store.close()  # closing again is harmless

    # -- the service over the store ----------------------------------------------------------

    def test_service_round_trip(self, store: Store) -> None:
        svc, clock = new_service(store)
        ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                              floor=eur("-20.00"), metadata={"tier": "gold"})
        bob = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR")
        assert svc.get_wallet(ann.id) == ann
        assert svc.find_wallet(tenant_id=TENANT, owner_id="bob", currency="EUR") == bob

        top = svc.top_up(ann.id, eur("100.00"), method="card", idempotency_key="pay-1")
        lot1 = svc.award(ann.id, eur("10.00"), reason="welcome", expires_at=T0 + 10 * DAY)
        lot2 = svc.award(ann.id, eur("5.00"), reason="loyalty")
        spend = svc.spend(ann.id, SpendRequest(eur("12.00")), idempotency_key="order-1")
        assert [(p.lot_id, p.amount) for p in spend.allocation] == [
            (lot1.id, eur("10.00")), (lot2.id, eur("2.00"))]

        bob_top = svc.top_up(bob.id, eur("3.00"), method="cash")
        first = svc.spend(bob.id, SpendRequest(eur("5.00"), PaymentMode.CREDIT_FIRST))
        assert (first.amount, first.remainder_due) == (eur("3.00"), eur("2.00"))
        svc.award(bob.id, eur("7.00"), reason="promo", expires_at=T0 + 5 * DAY)

        held = svc.hold(ann.id, eur("30.00"), window=4 * HOUR, idempotency_key="auth-1")
        assert [(p.lot_id, p.amount) for p in held.allocation] == [
            (lot2.id, eur("3.00")), (None, eur("27.00"))]
        captured = svc.capture(held.id, eur("25.00"), idempotency_key="cap-1")
        assert (captured.captured, captured.released) == (eur("25.00"), eur("5.00"))
        voided = svc.void(svc.hold(ann.id, eur("10.00"), window=4 * HOUR).id)
        assert voided.status is HoldStatus.VOIDED
        svc.transfer(ann.id, bob.id, eur("8.00"), idempotency_key="tr-1")
        assert spend.entry_id is not None
        refund = svc.refund(spend.entry_id, eur("4.00"), reason="missing item")
        assert [(p.lot_id, p.amount) for p in refund.allocation] == [
            (lot2.id, eur("2.00")), (lot1.id, eur("2.00"))]
        reversal = svc.reverse(bob_top.entry_id, reason="duplicate payment")
        svc.hold(ann.id, eur("6.00"), window=HOUR)

        now = svc.balance(ann.id)
        assert (now.open, now.commerce, now.held) == (eur("68.00"), eur("0.00"), eur("6.00"))
        clock.advance(11 * DAY)
        report = svc.expire_due()
        assert (report.holds_released, report.lots_expired) == (1, 1)

        ann_now = svc.balance(ann.id)
        assert (ann_now.open, ann_now.commerce, ann_now.held, ann_now.expired) == (
            eur("70.00"), eur("2.00"), eur("0.00"), eur("0.00"))
        bob_now = svc.balance(bob.id)
        assert (bob_now.open, bob_now.commerce, bob_now.held) == (
            eur("5.00"), eur("0.00"), eur("0.00"))
        assert svc.lots(bob.id, include_empty=True)[0].expired_entry_id is not None
        assert svc.lots(bob.id) == []
        assert svc.entry(reversal.entry_id).reverses == bob_top.entry_id
        assert svc.statement(bob.id).lines[0].reversed_by == reversal.entry_id

        # as of an earlier instant: an index lookup that the store answers
        then = svc.balance(ann.id, as_of=T0)
        assert (then.open, then.commerce, then.held) == (eur("68.00"), eur("0.00"),
                                                         eur("6.00"))
        verified = svc.verify()
        assert verified.ok, verified.problems
        assert verified.wallets == 2
        assert verified.entries == 17

        # replays write nothing and answer the same
        state = store.export_state()
        assert svc.top_up(ann.id, eur("100.00"), method="card", idempotency_key="pay-1") == top
        assert svc.expire_due().entry_ids == ()
        assert store.export_state() == state

    def test_reads_write_nothing(self, store: Store) -> None:
        run_reference_script(store)
        svc, _ = new_service(store, T0 + 11 * DAY)
        state = store.export_state()
        wallets = svc.wallets()
        assert [w.owner_id for w in wallets] == ["ann", "bob"]
        ann = wallets[0]
        holds = svc.holds(ann.id)
        entries = [line.entry_id for line in svc.statement(ann.id).lines]
        svc.balance(ann.id)
        svc.balance(ann.id, as_of=T0 + HOUR)
        svc.statement(ann.id, since=T0, until=T0 + DAY)
        svc.lots(ann.id, include_empty=True)
        svc.check_spend(ann.id, SpendRequest(eur("500.00")))
        svc.check_spend(ann.id, SpendRequest(eur("1.00"), PaymentMode.CREDIT_FIRST))
        svc.get_hold(holds[0].id)
        svc.find_wallet(tenant_id=TENANT, owner_id="ann", currency="EUR")
        svc.wallets(TENANT)
        for entry_id in entries:
            svc.entry(entry_id)
        assert svc.verify().ok
        assert store.export_state() == state

    def test_the_same_script_gives_the_memory_reference_dump(self, store: Store) -> None:
        """I8: the same commands with the same clock give the same journal on every backend."""
        reference = open_store("memory:")
        try:
            expected = run_reference_script(reference)
        finally:
            reference.close()
        assert run_reference_script(store) == expected

    def test_commands_that_raise_write_nothing(self, store: Store) -> None:
        """I9, over the store: every kind of failure leaves the dump as it was."""
        svc, _ = new_service(store)
        ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
        bob = svc.open_wallet(owner_id="bob", tenant_id=TENANT, currency="EUR")
        svc.top_up(ann.id, eur("10.00"), method="card")
        spend = svc.spend(ann.id, SpendRequest(eur("2.00")))
        assert spend.entry_id is not None
        top = svc.top_up(bob.id, eur("1.00"), method="card")
        svc.spend(bob.id, SpendRequest(eur("1.00")))
        held = svc.hold(ann.id, eur("1.00"), window=HOUR)
        svc.void(held.id)
        svc.award(ann.id, eur("1.00"), reason="r")
        svc.reverse(svc.top_up(ann.id, eur("1.00"), method="card").entry_id, reason="oops")
        reversed_id = svc.statement(ann.id).lines[-2].entry_id
        state = store.export_state()
        failures: list[tuple[type[Exception], Callable[[], object]]] = [
            (SpendDeniedError, lambda: svc.spend(ann.id, SpendRequest(eur("50.00")))),
            (SpendDeniedError, lambda: svc.hold(ann.id, eur("50.00"), window=HOUR)),
            (InsufficientFundsError, lambda: svc.transfer(ann.id, bob.id, eur("50.00"))),
            (InsufficientFundsError, lambda: svc.reverse(top.entry_id, reason="r")),
            (HoldStateError, lambda: svc.void(held.id)),
            (HoldStateError, lambda: svc.capture(held.id)),
            (RefundExceedsOriginalError,
             lambda: svc.refund(spend.entry_id or "", eur("3.00"), reason="r")),
            (AlreadyReversedError, lambda: svc.reverse(reversed_id, reason="again")),
            (DuplicateWalletError,
             lambda: svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")),
            (CurrencyMismatchError,
             lambda: svc.top_up(ann.id, Money.of("1", "USD"), method="card")),
            (InvalidAmountError, lambda: svc.top_up(ann.id, eur("-1.00"), method="card")),
            (WalletNotFoundError, lambda: svc.top_up("w-nope", eur("1.00"), method="card")),
            (WalletNotFoundError, lambda: svc.transfer(ann.id, "w-nope", eur("1.00"))),
            (HoldNotFoundError, lambda: svc.capture("hold-nope")),
            (EntryNotFoundError, lambda: svc.refund("e-nope", reason="r")),
            (EntryNotFoundError, lambda: svc.reverse("e-nope", reason="r")),
            (LotNotFoundError, lambda: _get_lot(store, "lot-nope")),
        ]
        for error, call in failures:
            with pytest.raises(error):
                call()
            assert store.export_state() == state, error.__name__

    @pytest.mark.parametrize("bad", ["lone \ud800 surrogate", "nul \x00 byte"],
                             ids=["surrogate", "nul"])
    def test_text_no_store_can_keep_is_refused_alike(self, store: Store, bad: str) -> None:
        """Text a store cannot keep exactly (a lone surrogate is not UTF-8; PostgreSQL refuses
        NUL) is refused before any store sees it, with the same typed error naming the field
        on every backend, and the store is left as it was."""
        svc, _ = new_service(store)
        ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
        paid = svc.top_up(ann.id, eur("10.00"), method="card")
        spend = svc.spend(ann.id, SpendRequest(eur("1.00")))
        state = store.export_state()
        calls: list[tuple[str, Callable[[], object]]] = [
            ("reason", lambda: svc.award(ann.id, eur("1.00"), reason=bad)),
            ("request.description",
             lambda: svc.spend(ann.id, SpendRequest(eur("1.00"), description=bad))),
            ("request.merchant",
             lambda: svc.spend(ann.id, SpendRequest(eur("1.00"), merchant=bad))),
            ("actor", lambda: svc.top_up(ann.id, eur("1.00"), method="card", actor=bad)),
            ("metadata['note']",
             lambda: svc.top_up(ann.id, eur("1.00"), method="card", metadata={"note": bad})),
            ("reason", lambda: svc.refund(spend.entry_id or "", reason=bad)),
            ("reason", lambda: svc.reverse(paid.entry_id, reason=bad)),
            ("name", lambda: svc.define_condition_group(
                tenant_id=TENANT, name=bad, condition=SpendCondition(categories={"x"}))),
        ]
        for field, call in calls:
            with pytest.raises(InvalidInputError) as info:
                call()
            assert info.value.field == field
            assert store.export_state() == state, field

    def test_a_refusal_under_a_key_stores_only_the_key(self, store: Store) -> None:
        svc, _ = new_service(store)
        ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR")
        state = store.export_state()
        with pytest.raises(SpendDeniedError) as first:
            svc.spend(ann.id, SpendRequest(eur("5.00")), idempotency_key="o-1")
        after = store.export_state()
        assert {k: v for k, v in after.items() if v != state[k]}.keys() == {"idempotency"}
        svc.top_up(ann.id, eur("10.00"), method="card")
        with pytest.raises(SpendDeniedError) as again:
            svc.spend(ann.id, SpendRequest(eur("5.00")), idempotency_key="o-1")
        assert again.value.decision == first.value.decision

    # -- concurrency through the service -----------------------------------------------------

    def test_concurrent_top_ups_lose_no_update(self, store: Store) -> None:
        svc, _ = new_service(store)
        wallets = [svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR").id
                   for i in range(2)]
        rounds = 40

        def worker(n: int) -> Callable[[], Counter[str]]:
            def run() -> Counter[str]:
                paid: Counter[str] = Counter()
                for i in range(rounds):
                    wallet_id = wallets[(n + i) % 2]
                    amount = cents(n * 1000 + i + 1)
                    receipt = svc.top_up(wallet_id, amount, method="card",
                                         idempotency_key=f"t{n}-{i}")
                    assert receipt.amount == amount
                    paid[wallet_id] += amount.minor_units
                return paid

            return run

        paid: Counter[str] = Counter()
        for part in run_in_threads([worker(n) for n in range(4)]):
            paid.update(part)
        for wallet_id in wallets:
            wallet = svc.get_wallet(wallet_id)
            assert wallet.open == cents(paid[wallet_id])
            assert wallet.version == 2 * rounds
        report = svc.verify()
        assert report.ok, report.problems
        assert report.entries == 4 * rounds

    def test_concurrent_spends_never_overdraw(self, store: Store) -> None:
        """65.00 of credit (50.00 open, a 5.00 lot, a -10.00 floor) and 80 racing spends of
        1.00: exactly 65 go through, the rest are refused, nobody ends below the floor."""
        svc, _ = new_service(store)
        ann = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                              floor=eur("-10.00"))
        svc.top_up(ann.id, eur("50.00"), method="card")
        svc.award(ann.id, eur("5.00"), reason="r")

        def worker(n: int) -> Callable[[], list[Money]]:
            def run() -> list[Money]:
                """What each attempt paid, or minus the shortfall it was refused for."""
                outcomes = []
                for i in range(20):
                    try:
                        result = svc.spend(ann.id, SpendRequest(eur("1.00")),
                                           idempotency_key=f"s{n}-{i}")
                    except SpendDeniedError as denied:
                        outcomes.append(-denied.decision.shortfall)
                    else:
                        outcomes.append(result.amount)
                return outcomes

            return run

        results = run_in_threads([worker(n) for n in range(4)])
        outcomes = Counter(outcome for result in results for outcome in result)
        assert outcomes == {eur("1.00"): 65, eur("-1.00"): 15}
        balance = svc.balance(ann.id)
        assert (balance.open, balance.commerce, balance.held) == (
            eur("-10.00"), eur("0.00"), eur("0.00"))
        assert svc.verify().ok

    def test_concurrent_mixed_commands_balance_exactly(self, store: Store) -> None:
        """Four threads top up, spend (both modes), transfer and hold-then-capture at random on
        three shared wallets; every wallet ends exactly where the successful calls say."""
        svc, _ = new_service(store)
        floor = eur("-5.00")
        wallets = [svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR",
                                   floor=floor).id for i in range(3)]
        for wallet_id in wallets:
            svc.top_up(wallet_id, eur("20.00"), method="card")

        def worker(n: int) -> Callable[[], Counter[str]]:
            def run() -> Counter[str]:
                rng = random.Random(n)
                delta: Counter[str] = Counter()
                for _ in range(40):
                    a, b = rng.sample(wallets, 2)
                    amount = cents(rng.randint(1, 900))
                    op = rng.choice(["top_up", "spend", "spend_first", "transfer", "hold"])
                    try:
                        if op == "top_up":
                            svc.top_up(a, amount, method="card")
                            delta[a] += amount.minor_units
                        elif op == "spend":
                            delta[a] -= svc.spend(a, SpendRequest(amount)).amount.minor_units
                        elif op == "spend_first":
                            result = svc.spend(a, SpendRequest(amount, PaymentMode.CREDIT_FIRST))
                            assert result.amount + result.remainder_due == amount
                            delta[a] -= result.amount.minor_units
                        elif op == "transfer":
                            svc.transfer(a, b, amount)
                            delta[a] -= amount.minor_units
                            delta[b] += amount.minor_units
                        else:
                            held = svc.hold(a, amount, window=HOUR)
                            take = cents(max(1, amount.minor_units // 2))
                            captured = svc.capture(held.id, take)
                            assert captured.captured + captured.released == amount
                            delta[a] -= take.minor_units
                    except (SpendDeniedError, InsufficientFundsError):
                        pass
                return delta

            return run

        delta: Counter[str] = Counter()
        for part in run_in_threads([worker(n) for n in range(4)]):
            delta.update(part)  # update, not +, keeps negative counts
        for wallet_id in wallets:
            balance = svc.balance(wallet_id)
            assert balance.open == cents(2000 + delta[wallet_id])
            assert balance.open >= floor
            assert balance.held == eur("0.00")
        report = svc.verify()
        assert report.ok, report.problems


# -- helpers -------------------------------------------------------------------------------------


def _record(
    key: str,
    *,
    scope: str = TENANT,
    operation: str = "top_up",
    outcome: str = "ok",
    payload: str = "{}",
) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=scope, key=key, operation=operation,
        request=(("operation", operation), ("amount", "1.00 EUR")), outcome=outcome,
        payload=payload, created_at=T0,
    )


def _get_lot(store: Store, lot_id: str) -> Lot:
    with store.unit_of_work() as uow:
        return uow.get_lot(lot_id)

