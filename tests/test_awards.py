"""Commerce balance through the service: conditioned awards, condition groups, conditioned
top-ups and transfers, expiry (own, group, end of local day, across DST changes), expiry
extensions, the breakdown and welcome awards -- on every backend."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from zoneinfo import ZoneInfo

import pytest

from prepaid_wallet import (
    ConditionGroupNotFoundError,
    ConflictError,
    EndOfLocalDay,
    EntryKind,
    FixedClock,
    IdempotencyConflictError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
    LineItem,
    Money,
    PaymentMode,
    SequentialIds,
    SpendCondition,
    SpendDeniedError,
    SpendRequest,
    Store,
    TenantMismatchError,
    TimeWindow,
    WalletService,
    WelcomeAward,
)

#: Tuesday 2026-03-10, 09:00 in Europe/Nicosia.
T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MICRO = timedelta(microseconds=1)
TENANT = "loyal-co"
WEEKDAY_MORNINGS = TimeWindow(days={1, 2, 3, 4, 5}, start=wall_time(8), end=wall_time(12),
                              zone="Europe/Nicosia")


def eur(text: str) -> Money:
    return Money.of(text, "EUR")




@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def svc(store: Store, clock: FixedClock) -> WalletService:
    return WalletService(store, clock=clock, ids=SequentialIds())


def open_wallet(svc: WalletService, owner: str = "ann", **kwargs: object) -> str:
    return svc.open_wallet(owner_id=owner, tenant_id=TENANT, currency="EUR", **kwargs).id  # type: ignore[arg-type]


def lines(*items: tuple[str, str, str | None]) -> tuple[LineItem, ...]:
    return tuple(LineItem(product_id=p, amount=eur(a), category=c) for p, a, c in items)


# -- scenarios: lots before / request / allocation / lots after ---------------------------------


def test_an_award_usable_only_for_smartwatches_at_one_merchant(svc: WalletService) -> None:
    w = open_wallet(svc)
    svc.top_up(w, eur("100.00"), method="card")
    award = svc.award(w, eur("30.00"), reason="launch", condition=SpendCondition(
        categories={"smartwatches"}, merchants={"techno"}))
    basket = lines(("watch-9", "50.00", "smartwatches"), ("cable", "10.00", "cables"))
    elsewhere = svc.spend(w, SpendRequest(eur("50.00"), lines=basket[:1], merchant="other"))
    assert [(p.lot_id, p.line, p.amount) for p in elsewhere.allocation] == [
        (None, 0, eur("50.00"))]
    result = svc.spend(w, SpendRequest(eur("60.00"), lines=basket, merchant="techno"))
    assert [(p.lot_id, p.line, p.amount) for p in result.allocation] == [
        (award.id, 0, eur("30.00")), (None, 0, eur("20.00")), (None, 1, eur("10.00"))]
    assert svc.lots(w) == []
    balance = svc.balance(w)
    assert (balance.open, balance.commerce) == (eur("20.00"), eur("0.00"))
    entry = svc.entry(result.entry_id or "")
    assert {p.account: p.amount for p in entry.postings} == {
        f"wallet:{w}:lot:{award.id}": eur("-30.00"),
        f"wallet:{w}:open": eur("-30.00"),
        f"tenant:{TENANT}:revenue": eur("60.00"),
    }
    assert svc.verify().ok


def test_an_award_usable_only_on_weekday_mornings(svc: WalletService, clock: FixedClock) -> None:
    w = open_wallet(svc)
    svc.award(w, eur("20.00"), reason="mornings",
              condition=SpendCondition(windows=(WEEKDAY_MORNINGS,)))
    clock.set(T0 + 3 * HOUR)  # Tuesday 12:00 in Nicosia: the window has closed
    with pytest.raises(SpendDeniedError) as denied:
        svc.spend(w, SpendRequest(eur("5.00")))
    assert denied.value.decision.covered == eur("0.00")
    # a purchase made at 11:59:59.999999 and booked now is still inside the window
    inside = svc.spend(w, SpendRequest(eur("5.00"), at=T0 + 3 * HOUR - MICRO))
    assert inside.amount == eur("5.00")
    clock.set(T0 + 4 * DAY)  # Saturday
    assert not svc.check_spend(w, SpendRequest(eur("1.00"))).allowed
    clock.set(T0 + 6 * DAY)  # Monday 09:00
    assert svc.check_spend(w, SpendRequest(eur("15.00"))).allowed
    with pytest.raises(InvalidTimeError, match=r"request\.at"):
        svc.spend(w, SpendRequest(eur("1.00"), at=T0 + 7 * DAY))  # after now


def test_a_line_no_lot_may_pay_is_refused_with_what_is_spendable(svc: WalletService) -> None:
    w = open_wallet(svc)
    svc.top_up(w, eur("3.00"), method="card")
    svc.award(w, eur("5.00"), reason="coffee", condition=SpendCondition(products={"coffee"}))
    request = SpendRequest(eur("10.00"), lines=lines(("coffee", "4.00", None),
                                                     ("tea", "6.00", None)))
    decision = svc.check_spend(w, request)
    assert not decision.allowed
    assert decision.covered == eur("7.00")  # 4.00 of coffee from the award, 3.00 open
    assert decision.shortfall == eur("3.00")
    before = svc.balance(w)
    with pytest.raises(SpendDeniedError):
        svc.spend(w, request)
    assert svc.balance(w) == before
    first = svc.spend(w, SpendRequest(eur("10.00"), mode=PaymentMode.CREDIT_FIRST,
                                      lines=request.lines))
    assert first.remainder_due == eur("3.00")
    assert [(p.line, p.amount) for p in first.allocation if p.lot_id] == [(0, eur("4.00"))]


def test_a_conditioned_transfer_arrives_as_a_lot_of_the_group(svc: WalletService) -> None:
    giver, friend = open_wallet(svc, "ann"), open_wallet(svc, "bob")
    svc.top_up(giver, eur("40.00"), method="card")
    food = svc.define_condition_group(tenant_id=TENANT, name="Food only",
                                      condition=SpendCondition(categories={"food"}))
    receipt = svc.transfer(giver, friend, eur("25.00"), group_id=food.id)
    assert receipt.lot_id is not None
    [lot] = svc.lots(friend)
    assert (lot.id, lot.group_id, lot.group_version, lot.remaining) == (
        receipt.lot_id, food.id, 1, eur("25.00"))
    balance = svc.balance(friend)
    assert (balance.open, balance.commerce) == (eur("0.00"), eur("25.00"))
    with pytest.raises(SpendDeniedError):
        svc.spend(friend, SpendRequest(eur("5.00"), lines=lines(("beer", "5.00", "drink"))))
    paid = svc.spend(friend, SpendRequest(eur("5.00"), lines=lines(("bread", "5.00", "food"))))
    assert [p.lot_id for p in paid.allocation] == [lot.id]
    topped = svc.top_up(friend, eur("7.00"), method="voucher", group_id=food.id)
    assert topped.lot_id is not None
    assert svc.balance(friend).commerce == eur("27.00")
    assert svc.verify().ok


def test_a_group_of_another_tenant_or_an_unknown_group_is_refused(svc: WalletService) -> None:
    w = open_wallet(svc)
    other = svc.define_condition_group(tenant_id="elsewhere", name="x",
                                       condition=SpendCondition())
    before = svc.store.export_state()
    # The unscoped service sees both tenants: pairing them is named as such.
    with pytest.raises(TenantMismatchError) as mismatch:
        svc.award(w, eur("1.00"), reason="r", group_id=other.id)
    assert mismatch.value.field == "group_id"
    with pytest.raises(ConditionGroupNotFoundError):
        svc.top_up(w, eur("1.00"), method="card", group_id="cg-missing")
    # A service scoped to the wallet's tenant does not see the other tenant's group: it is
    # not found, exactly like an unknown one.
    scoped = WalletService(svc.store, clock=svc.clock, tenant_id=TENANT)
    with pytest.raises(ConditionGroupNotFoundError) as hidden:
        scoped.award(w, eur("1.00"), reason="r", group_id=other.id)
    assert str(hidden.value) == f"condition group {other.id!r} not found"
    with pytest.raises(ConditionGroupNotFoundError):
        scoped.condition_group(other.id)
    with pytest.raises(InvalidInputError, match="not both"):
        svc.award(w, eur("1.00"), reason="r", group_id=other.id, condition=SpendCondition())
    assert svc.store.export_state() == before
    with pytest.raises(ConflictError):
        svc.define_condition_group(tenant_id="elsewhere", name="y", condition=SpendCondition(),
                                   group_id=other.id)


def test_group_versions_and_validity(svc: WalletService, clock: FixedClock) -> None:
    w = open_wallet(svc)
    group = svc.define_condition_group(
        tenant_id=TENANT, name="Spring", condition=SpendCondition(categories={"shoes"}),
        valid_until=T0 + 10 * DAY)
    old = svc.award(w, eur("10.00"), reason="r1", group_id=group.id)
    changed = svc.change_condition_group(group.id, condition=SpendCondition(categories={"bags"}))
    assert changed.version == 2
    new = svc.award(w, eur("10.00"), reason="r2", group_id=group.id)
    assert (svc.lots(w)[0].condition, svc.lots(w)[1].condition) == (
        SpendCondition(categories={"shoes"}), SpendCondition(categories={"bags"}))
    shoes = SpendRequest(eur("20.00"), mode=PaymentMode.CREDIT_FIRST,
                         lines=lines(("boot", "20.00", "shoes")))
    assert [p.lot_id for p in svc.check_spend(w, shoes).allocation if p.lot_id] == [old.id]
    assert svc.change_condition_group(group.id) == changed  # nothing to change
    # the group ends sooner: both lots stop paying at the new end and fall due there
    svc.change_condition_group(group.id, valid_until=T0 + DAY)
    clock.set(T0 + DAY - MICRO)
    assert svc.check_spend(w, shoes).covered == eur("10.00")
    assert svc.expire_due().lots_expired == 0
    clock.set(T0 + DAY)
    assert svc.check_spend(w, shoes).covered == eur("0.00")
    breakdown = svc.breakdown(w)
    assert [(v.lot_id, v.usable, v.expires_at) for v in breakdown.lots] == [
        (old.id, False, T0 + DAY), (new.id, False, T0 + DAY)]
    assert breakdown.expired == eur("20.00")
    report = svc.expire_due()
    assert report.lots_expired == 2
    assert svc.expire_due().lots_expired == 0  # idempotent
    assert svc.balance(w).commerce == eur("0.00")
    assert [x.kind for x in (svc.entry(e) for e in report.entry_ids)] == [EntryKind.BREAKAGE] * 2
    assert svc.verify().ok


def test_extending_an_expiry_moves_part_or_all_of_a_lot(svc: WalletService,
                                                         clock: FixedClock) -> None:
    w = open_wallet(svc)
    condition = SpendCondition(merchants={"techno"})
    lot = svc.award(w, eur("10.00"), reason="promo", priority=3, condition=condition,
                    expires_at=T0 + DAY)
    before = svc.store.export_state()
    with pytest.raises(InvalidAmountError, match="at most what lot"):
        svc.extend_expiry(lot.id, T0 + 5 * DAY, amount=eur("10.01"))
    with pytest.raises(InvalidTimeError):
        svc.extend_expiry(lot.id, T0 - DAY)
    assert svc.store.export_state() == before
    part = svc.extend_expiry(lot.id, T0 + 5 * DAY, amount=eur("4.00"), idempotency_key="x-1")
    assert svc.extend_expiry(lot.id, T0 + 5 * DAY, amount=eur("4.00"),
                             idempotency_key="x-1") == part  # replayed
    with pytest.raises(IdempotencyConflictError):
        svc.extend_expiry(lot.id, T0 + 6 * DAY, amount=eur("4.00"), idempotency_key="x-1")
    assert (part.remaining, part.expires_at, part.priority, part.reason, part.condition) == (
        eur("4.00"), T0 + 5 * DAY, 3, "promo", condition)
    rest = svc.extend_expiry(lot.id, None)  # everything left, never expires
    assert rest.remaining == eur("6.00")
    assert rest.expires_at is None
    assert {x.id: x.remaining for x in svc.lots(w, include_empty=True)} == {
        lot.id: eur("0.00"), part.id: eur("4.00"), rest.id: eur("6.00")}
    clock.set(T0 + 2 * DAY)
    assert svc.expire_due().lots_expired == 0  # nothing left in the old lot
    statement = svc.statement(w)
    moves = [line for line in statement.lines if line.kind is EntryKind.EXTENSION]
    assert [[(m.lot_id, m.amount, m.expires_at) for m in line.lots] for line in moves] == [
        [(lot.id, eur("-4.00"), T0 + DAY), (part.id, eur("4.00"), T0 + 5 * DAY)],
        [(lot.id, eur("-6.00"), T0 + DAY), (rest.id, eur("6.00"), None)],
    ]
    assert all(line.commerce_change == eur("0.00") for line in moves)
    assert svc.verify().ok


def test_a_conditions_own_validity_ends_the_lot(svc: WalletService, clock: FixedClock) -> None:
    w = open_wallet(svc)
    lot = svc.award(w, eur("4.00"), reason="season", condition=SpendCondition(
        merchants={"m"}, valid_from=T0 + HOUR, valid_until=T0 + DAY))
    assert [(v.usable, v.expires_at) for v in svc.breakdown(w).lots] == [(False, T0 + DAY)]
    clock.set(T0 + HOUR)
    assert [v.usable for v in svc.breakdown(w).lots] == [True]
    assert svc.check_spend(w, SpendRequest(eur("4.00"), merchant="m")).allowed
    clock.set(T0 + DAY)
    assert svc.balance(w).expired == eur("4.00")
    before = svc.store.export_state()
    with pytest.raises(InvalidTimeError, match="lot_id"):  # its remainder is breakage now
        svc.extend_expiry(lot.id, T0 + 9 * DAY)
    assert svc.store.export_state() == before
    assert svc.expire_due().lots_expired == 1
    assert svc.balance(w).commerce == eur("0.00")
    assert svc.verify().ok


def test_breakdown_in_words_and_spendable_for_a_request(svc: WalletService) -> None:
    w = open_wallet(svc, floor=eur("-5.00"))
    svc.top_up(w, eur("2.00"), method="card")
    watches = svc.define_condition_group(
        tenant_id=TENANT, name="Watches", valid_until=T0 + 30 * DAY,
        condition=SpendCondition(categories={"smartwatches"}, merchants={"techno"}))
    g = svc.award(w, eur("30.00"), reason="launch", group_id=watches.id)
    m = svc.award(w, eur("8.00"), reason="mornings", expires_at=T0 + 7 * DAY,
                  condition=SpendCondition(windows=(WEEKDAY_MORNINGS,)))
    plain = svc.award(w, eur("1.50"), reason="loyalty")
    request = SpendRequest(eur("50.00"), lines=lines(("watch-9", "40.00", "smartwatches"),
                                                     ("strap", "10.00", "straps")),
                           merchant="techno")
    view = svc.breakdown(w, request=request)
    assert view.open == eur("2.00")
    assert view.open_spendable == eur("7.00")
    # the order they pay: conditioned first, the soonest own expiry first
    assert [v.lot_id for v in view.lots] == [m.id, g.id, plain.id]
    by_id = {v.lot_id: v for v in view.lots}
    assert by_id[g.id].conditions == (
        "categories: smartwatches", "merchants: techno", "valid until 2026-04-09 07:00 UTC")
    assert by_id[g.id].group_name == "Watches"
    assert by_id[g.id].expires_at == T0 + 30 * DAY
    assert by_id[m.id].conditions == ("Monday to Friday 08:00–12:00 (Europe/Nicosia)",)
    assert by_id[plain.id].conditions == ("any purchase",)
    assert [by_id[x].spendable_now for x in (g.id, m.id, plain.id)] == [
        eur("30.00"), eur("8.00"), eur("1.50")]
    assert view.spendable == eur("46.50")  # 39.50 from lots, 7.00 open down to the floor
    assert view.decision is not None
    assert not view.decision.allowed
    assert view.commerce == eur("39.50")
    assert svc.breakdown(w).spendable is None


def test_welcome_award_is_granted_once(store: Store, clock: FixedClock) -> None:
    svc = WalletService(store, clock=clock, ids=SequentialIds(), welcome_awards={
        TENANT: WelcomeAward(eur("5.00"), expires_after=30 * DAY)})
    first = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                            idempotency_key="join-ann")
    again = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="EUR",
                            idempotency_key="join-ann")
    assert first == again
    assert first.commerce == eur("5.00")
    [lot] = svc.lots(first.id)
    assert (lot.reason, lot.expires_at) == ("welcome", T0 + 30 * DAY)
    usd = svc.open_wallet(owner_id="ann", tenant_id=TENANT, currency="USD")
    assert usd.commerce.is_zero()  # the award is in EUR only
    other = svc.open_wallet(owner_id="bob", tenant_id="another", currency="EUR")
    assert other.commerce.is_zero()
    awards = [e for e in svc.statement(first.id).lines if e.kind is EntryKind.AWARD]
    assert len(awards) == 1
    with pytest.raises(InvalidInputError):
        WelcomeAward(eur("1.00"), expires_after=DAY, expires_at=T0)


# -- expiry at the end of a local day and time windows across DST changes ------------------------

#: (zone, the day before a change, the day of the change): spring forward and fall back.
DST_DAYS = [
    ("Europe/Berlin", date(2026, 3, 28)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 7)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("America/Santiago", date(2026, 4, 4)),
    ("America/Santiago", date(2026, 9, 5)),  # the next midnight does not exist there
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 3)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
]


def _first_instant_of_next_local_day(day: date, zone: str) -> datetime:
    """Brute force: the first minute, then microsecond, whose local date is after ``day``."""
    tz = ZoneInfo(zone)
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) - DAY
    while at.astimezone(tz).date() <= day:
        at += timedelta(minutes=1)
    step = timedelta(minutes=1)
    while step > MICRO:
        step //= 2
        while (at - step).astimezone(tz).date() > day:
            at -= step
    while (at - MICRO).astimezone(tz).date() > day:
        at -= MICRO
    return at


@pytest.mark.parametrize(("zone", "day"), DST_DAYS, ids=[f"{z}-{d}" for z, d in DST_DAYS])
def test_end_of_local_day_expiry_across_dst(store: Store, zone: str, day: date) -> None:
    boundary = _first_instant_of_next_local_day(day, zone)
    clock = FixedClock(boundary - 2 * DAY)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    w = open_wallet(svc)
    lot = svc.award(w, eur("5.00"), reason="daily", expires_at=EndOfLocalDay(day, zone))
    assert lot.expires_at == boundary
    clock.set(boundary - MICRO)
    assert svc.spend(w, SpendRequest(eur("1.00"))).amount == eur("1.00")
    assert svc.expire_due().lots_expired == 0
    clock.set(boundary)
    with pytest.raises(SpendDeniedError):
        svc.spend(w, SpendRequest(eur("1.00")))
    assert svc.expire_due().lots_expired == 1
    assert svc.balance(w).commerce == eur("0.00")


#: (zone, local window, a UTC instant exactly at the window's end on a DST-change day)
WINDOW_EDGES = [
    # Berlin springs forward at 02:00 -> 03:00: a 01:00-03:00 window ends at 01:00 UTC.
    ("Europe/Berlin", wall_time(1), wall_time(3), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    # New York falls back at 02:00 -> 01:00: 00:00-02:00 EST ends at 07:00 UTC.
    ("America/New_York", wall_time(0), wall_time(2), datetime(2026, 11, 1, 7, 0, tzinfo=UTC)),
    # Santiago: midnight 6 Sep 2026 does not exist (00:00 -> 01:00); a window until the end of
    # the 5th ends at 04:00 UTC.
    ("America/Santiago", wall_time(20), wall_time(0), datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),
    # Lord Howe moves 30 minutes at 02:00 -> 02:30 on 4 Oct 2026: 01:00-02:30 ends at 15:30 UTC.
    ("Australia/Lord_Howe", wall_time(1), wall_time(2, 30),
     datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
]


@pytest.mark.parametrize(("zone", "start", "end", "edge"), WINDOW_EDGES,
                         ids=[w[0] for w in WINDOW_EDGES])
def test_time_window_edges_across_dst(
    store: Store, zone: str, start: wall_time, end: wall_time, edge: datetime
) -> None:
    window = TimeWindow(days=range(1, 8), start=start, end=end, zone=zone)
    clock = FixedClock(edge - 3 * HOUR)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    w = open_wallet(svc)
    svc.award(w, eur("5.00"), reason="window", condition=SpendCondition(windows=(window,)))
    clock.set(edge - MICRO)
    assert svc.spend(w, SpendRequest(eur("1.00"))).amount == eur("1.00")
    clock.set(edge)
    with pytest.raises(SpendDeniedError):
        svc.spend(w, SpendRequest(eur("1.00")))


_TZ_SCRIPT = """
import sys, tempfile
from datetime import date, timedelta
from prepaid_wallet import (EndOfLocalDay, FixedClock, Money, SequentialIds, SpendCondition,
                            SpendRequest, TimeWindow, WalletService, open_store)
from prepaid_wallet.errors import SpendDeniedError
from datetime import time
out = []
with tempfile.TemporaryDirectory() as tmp:
    for kind in ("memory", "sqlite"):
        for zone, day in (("America/Santiago", date(2026, 9, 5)),
                          ("Australia/Lord_Howe", date(2026, 10, 3))):
            url = "memory:" if kind == "memory" else f"sqlite:///{tmp}/{zone[:4]}.db"
            store = open_store(url)
            edge = EndOfLocalDay(day, zone).instant
            clock = FixedClock(edge - timedelta(days=1))
            svc = WalletService(store, clock=clock, ids=SequentialIds())
            w = svc.open_wallet(owner_id=zone.replace("/", "."), tenant_id="t",
                                currency="EUR").id
            window = TimeWindow(days=range(1, 8), start=time(12), end=time(0), zone=zone)
            svc.award(w, Money.of("5.00", "EUR"), reason="r", expires_at=EndOfLocalDay(day, zone),
                      condition=SpendCondition(windows=(window,)))
            for at in (edge - timedelta(microseconds=1), edge):
                clock.set(at)
                try:
                    svc.spend(w, SpendRequest(Money.of("1.00", "EUR")))
                    out.append(f"{kind} {zone} {at.isoformat()} paid")
                except SpendDeniedError:
                    out.append(f"{kind} {zone} {at.isoformat()} refused")
            store.close()
print("\\n".join(out))
"""


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "America/Santiago"])
def test_the_same_under_any_process_time_zone(tz: str) -> None:
    """Expiry at the end of a local day and time windows give the same answers whatever the
    process's own time zone (``TZ``), on the memory store and on SQLite."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TZ": tz}
    result = subprocess.run([sys.executable, "-c", _TZ_SCRIPT], env=env, capture_output=True,
                            text=True, check=True, timeout=120)
    assert result.stdout.count("paid") == 4, result.stdout
    assert result.stdout.count("refused") == 4, result.stdout
    baseline = subprocess.run([sys.executable, "-c", _TZ_SCRIPT],
                              env={**os.environ, "TZ": "UTC"}, capture_output=True, text=True,
                              check=True, timeout=120)
    assert result.stdout == baseline.stdout


# -- concurrent expiry sweeps ------------------------------------------------------------------


def test_concurrent_sweeps_book_each_remainder_once(store: Store, clock: FixedClock) -> None:
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    group = svc.define_condition_group(tenant_id=TENANT, name="g", condition=SpendCondition(),
                                       valid_until=T0 + 2 * DAY)
    wallets = [open_wallet(svc, f"owner-{i}") for i in range(4)]
    for i, w in enumerate(wallets):
        svc.award(w, eur("1.00"), reason="own", expires_at=T0 + DAY)
        svc.award(w, eur("2.00"), reason="group", group_id=group.id)
        svc.award(w, eur("3.00"), reason="later", expires_at=T0 + (5 + i) * DAY)
    clock.set(T0 + 3 * DAY)
    reports = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            reports.append(WalletService(store, clock=clock).expire_due())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sum(r.lots_expired for r in reports) == 8
    assert all(svc.balance(w).commerce == eur("3.00") for w in wallets)
    assert svc.verify().ok
