"""``prepaid-wallet demo``: a small food hub's week, written into a fresh store and told as it
happens.

The scenario (tenant ``demo-hub``, euros, wall times in Europe/Berlin). The week is the seven
local days before the day of ``now``; every instant written lies before ``now``, so the store
can be used with the command line afterwards. Card top-ups cost a fixed 0.30 EUR fee; an open
balance falling to 5.00 EUR or below raises a low-balance event ("low").

* Day 1 -- the hub defines the condition group "fresh produce" (category ``produce`` only).
  Ana, Ben, Cleo and Dev open wallets; each receives the hub's welcome award, a 5.00 EUR bakery
  voucher (category ``bakery``) that expires at the end of the week. They top up 50.00, 30.00,
  40.00 and 10.00 EUR by card.
* Day 2 -- Ben gets a 10.00 EUR volunteer thank-you in the "fresh produce" group and buys
  carrots 4.00, apples 8.00 (produce) and cheese 6.00 (dairy): the produce lot pays 10.00 of
  the produce lines, his open balance the other 8.00. Ana buys sourdough 3.50 (bakery), eggs
  4.20 and tomatoes 5.30: her voucher pays the bread, her open balance 9.50.
* Day 3 -- Dev's order of 16.00 is refused: credit covers 9.70, 6.30 short, and the hub
  suggests a top-up of 6.60 (the 6.30 and the 0.30 card fee). Dev tops up 10.00 and the
  retried order goes through, leaving him 3.40: a low-balance event, which the hub's reminder
  job reports.
* Day 4 -- Cleo pre-orders a veg box: 15.00 is held until Saturday evening. Ana sends Ben
  10.00 (her share of a bulk order).
* Day 5 -- Ana's tomatoes arrived damaged: 5.30 is refunded. Ben buys bread 4.50 (his voucher
  pays) and plums 6.00.
* Day 6 -- pick-up day: Cleo's veg box comes without its leeks, so 12.40 of the 15.00 hold is
  captured and 2.60 released. She buys a 4.00 loaf with her voucher.
* Day 7 -- Dev buys a 2.00 bun with his voucher.
* Every night the expiry sweep runs (``WalletService.expire_due``); after the last day the
  vouchers' remainders (1.50 + 0.50 + 1.00 + 3.00) are booked as breakage.

At the end: each member's balance, the hub's revenue, fees and breakage (read from the journal
entries the week wrote), and ``verify()``. Ids are random (as the command line makes them), so
the store stays usable; the amounts depend on nothing but the scenario.
"""

from __future__ import annotations

import json as _json
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import attrs

from prepaid_wallet.clock import FixedClock, SystemClock, require_aware
from prepaid_wallet.conditions import LineItem, SpendCondition, end_of_local_day
from prepaid_wallet.errors import ConflictError, SpendDeniedError
from prepaid_wallet.expiry import EndOfLocalDay
from prepaid_wallet.formatting import format_money
from prepaid_wallet.ledger import Entry, breakage_account, fees_account, revenue_account
from prepaid_wallet.money import Money
from prepaid_wallet.policies import SpendRequest
from prepaid_wallet.results import SpendResult
from prepaid_wallet.rules.fees import FeeRule
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.service import WalletService, WelcomeAward
from prepaid_wallet.storage.base import Store
from prepaid_wallet.wallet import AllocationPart

__all__ = ["CURRENCY", "MEMBERS", "TENANT", "ZONE", "DemoSummary", "run"]

#: The demo hub's tenant id, currency and local time zone.
TENANT = "demo-hub"
CURRENCY = "EUR"
ZONE = "Europe/Berlin"
#: The members, in the order they join.
MEMBERS = ("ana", "ben", "cleo", "dev")

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_OPEN = "open balance"
_VOUCHER = "bakery voucher"
_BONUS = "produce thank-you"


def _eur(text: str) -> Money:
    return Money.of(text, CURRENCY)


#: The card top-up fee, the low-balance threshold and the welcome voucher.
_FEE = _eur("0.30")
_LOW = _eur("5.00")
_WELCOME = _eur("5.00")


@attrs.frozen
class DemoSummary:
    """What the demo week left behind.

    * ``tenant_id`` -- the hub (``"demo-hub"``).
    * ``wallet_ids`` -- member name -> wallet id (random ids, as the command line makes them).
    * ``balances`` -- member name -> the wallet's total (open + commerce + held) at the end.
    * ``revenue``, ``fees``, ``breakage`` -- what the hub's revenue, fee and breakage accounts
      received during the week (revenue net of refunds), in EUR, read from the journal.
    * ``verified`` -- whether ``WalletService.verify()`` found nothing wrong in the store.
    * ``entries`` -- how many journal entries the week wrote.
    * ``start``, ``end`` -- the week: 09:00 local on day 1, and the end of day 7 (aware, UTC).

    The amounts and ``entries`` depend only on the scenario, never on the backend or the run.
    """

    tenant_id: str
    wallet_ids: Mapping[str, str]
    balances: Mapping[str, Money]
    revenue: Money
    fees: Money
    breakage: Money
    verified: bool
    entries: int
    start: datetime
    end: datetime


class _Log:
    """Writes the happenings: one text line each under a header per day, or one JSON object
    each (JSON Lines)."""

    def __init__(self, out: TextIO, *, json: bool, locale: str, clock: FixedClock) -> None:
        self._out = out
        self._json = json
        self.locale = locale
        self._clock = clock
        self._zone = ZoneInfo(ZONE)
        self.day = 0

    def money(self, value: Money) -> str:
        return format_money(value, self.locale)

    def header(self, number: int, day: date) -> None:
        self.day = number
        if not self._json:
            if number > 1:
                self._out.write("\n")
            self._out.write(f"Day {number} · {_WEEKDAYS[day.weekday()]} {day.isoformat()}\n")

    def line(self, text: str = "") -> None:
        """A line of text output only (headings and the summary)."""
        if not self._json:
            self._out.write(text + "\n")

    def happened(self, action: str, text: str, **fields: Any) -> None:
        """One happening, at the clock's instant."""
        at = self._clock.now().astimezone(self._zone)
        if self._json:
            record = {"day": self.day, "at": _instant(at), "action": action, **fields}
            self._out.write(_json.dumps(record) + "\n")
            return
        stamp = "24:00" if at.time() == time(0) else at.strftime("%H:%M")
        self._out.write(f"  {stamp}  {text}\n")

    def summary(self, record: dict[str, Any]) -> None:
        if self._json:
            self._out.write(_json.dumps({"action": "summary", **record}) + "\n")


def _amount(value: Money) -> str:
    """An amount as JSON text, as every JSON output of the library writes it: exact decimal
    digits and the currency (``"12.50 EUR"``)."""
    return str(value)


def _instant(value: datetime) -> str:
    """An instant as JSON text: ISO 8601 in UTC, as every JSON output of the library writes
    it."""
    return value.astimezone(UTC).isoformat()


class _Week:
    """The demo hub and its members, driven through the public service API."""

    def __init__(self, hub: WalletService, clock: FixedClock, log: _Log, first: date) -> None:
        self.hub = hub
        self.clock = clock
        self.log = log
        self.first = first
        self.zone = ZoneInfo(ZONE)
        self.wallets: dict[str, str] = {}
        self.lot_names: dict[str, str] = {}
        self.group_id = ""
        self.orders: dict[str, SpendResult] = {}
        self.hold_id = ""

    # -- time --------------------------------------------------------------------------------

    def date_of(self, number: int) -> date:
        return self.first + timedelta(days=number - 1)

    def local(self, number: int, hour: int, minute: int = 0) -> datetime:
        """The instant of wall time ``hour:minute`` on day ``number`` in the hub's zone."""
        wall = datetime.combine(self.date_of(number), time(hour, minute), tzinfo=self.zone)
        return wall.astimezone(UTC)

    def at(self, number: int, hour: int, minute: int = 0) -> None:
        self.clock.set(self.local(number, hour, minute))

    # -- helpers ------------------------------------------------------------------------------

    def member(self, name: str) -> dict[str, Any]:
        return {"member": name, "wallet_id": self.wallets[name]}

    def open_of(self, name: str) -> Money:
        return self.hub.get_wallet(self.wallets[name]).open

    def sources(self, parts: Sequence[AllocationPart]) -> str:
        """Which sources paid how much, each source once, in the order they paid."""
        paid: dict[str | None, Money] = {}
        for part in parts:
            paid[part.lot_id] = paid.get(part.lot_id, Money.zero(CURRENCY)) + part.amount
        return " + ".join(
            f"{_OPEN if lot_id is None else self.lot_names.get(lot_id, lot_id)} "
            f"{self.log.money(amount)}"
            for lot_id, amount in paid.items()
        )

    def parts_data(self, parts: Sequence[AllocationPart],
                   lines: Sequence[LineItem] = ()) -> list[dict[str, Any]]:
        return [
            {
                "source": "open" if p.lot_id is None else self.lot_names.get(p.lot_id, "lot"),
                "lot_id": p.lot_id,
                "amount": _amount(p.amount),
                **({} if p.line is None or not lines else {"line": lines[p.line].product_id}),
            }
            for p in parts
        ]

    # -- what members and the hub do ------------------------------------------------------------

    def define_group(self) -> None:
        group = self.hub.define_condition_group(
            tenant_id=TENANT, name="fresh produce",
            condition=SpendCondition(categories={"produce"}),
        )
        self.group_id = group.id
        words = "; ".join(group.describe(self.log.locale))
        self.log.happened(
            "define_condition_group",
            f"the hub defines the condition group {group.name!r} ({words})",
            group_id=group.id, name=group.name, categories=["produce"],
        )

    def join(self, name: str) -> None:
        wallet = self.hub.open_wallet(owner_id=name, tenant_id=TENANT, currency=CURRENCY)
        self.wallets[name] = wallet.id
        lots = self.hub.lots(wallet.id)
        for lot in lots:
            self.lot_names[lot.id] = _VOUCHER
        voucher = lots[0]
        expires = voucher.expires_at.astimezone(self.zone) if voucher.expires_at else None
        until = ""
        if expires is not None:  # it expires at the first instant after its last day
            last = (expires - timedelta(microseconds=1)).date()
            until = f", valid to the end of {_WEEKDAYS[last.weekday()]} {last.isoformat()}"
        self.log.happened(
            "open_wallet",
            f"{name} opens a wallet and receives a {self.log.money(voucher.remaining)} "
            f"welcome {_VOUCHER} (bakery only){until}",
            **self.member(name), welcome_lot_id=voucher.id,
            amount=_amount(voucher.remaining),
            expires_at=None if expires is None else _instant(expires),
        )

    def top_up(self, name: str, amount: str) -> None:
        receipt = self.hub.top_up(self.wallets[name], _eur(amount), method="card")
        fee = receipt.fee or Money.zero(CURRENCY)
        after = self.open_of(name)
        self.log.happened(
            "top_up",
            f"{name} tops up {self.log.money(receipt.amount)} by card (fee "
            f"{self.log.money(fee)}): open balance {self.log.money(after)}",
            **self.member(name), entry_id=receipt.entry_id, amount=_amount(receipt.amount),
            fee=_amount(fee), open=_amount(after),
        )

    def award_bonus(self, name: str, amount: str) -> None:
        lot = self.hub.award(self.wallets[name], _eur(amount), reason="volunteer thank-you",
                             group_id=self.group_id)
        self.lot_names[lot.id] = _BONUS
        self.log.happened(
            "award",
            f"the hub thanks volunteer {name} with {self.log.money(lot.amount)} in the "
            "'fresh produce' group (produce only)",
            **self.member(name), lot_id=lot.id, group_id=self.group_id,
            amount=_amount(lot.amount),
        )

    def order(self, name: str, what: str, lines: Sequence[tuple[str, str, str]],
              *, key: str | None = None) -> SpendResult | None:
        """A checkout with line items ``(product, amount, category)``; None when refused."""
        items = tuple(LineItem(product, _eur(amount), category)
                      for product, amount, category in lines)
        total = Money.sum((item.amount for item in items), CURRENCY)
        request = SpendRequest(total, description=what, lines=items)
        basket = ", ".join(f"{item.product_id} {self.log.money(item.amount)}" for item in items)
        try:
            paid = self.hub.spend(self.wallets[name], request)
        except SpendDeniedError as refused:
            d = refused.decision
            self.log.happened(
                "spend_refused",
                f"{name}'s {what} ({self.log.money(total)}) is refused: credit covers "
                f"{self.log.money(d.covered)}, {self.log.money(d.shortfall)} short; "
                f"suggested top-up {self.log.money(d.suggested_top_up)}",
                **self.member(name), description=what, amount=_amount(total),
                covered=_amount(d.covered), shortfall=_amount(d.shortfall),
                suggested_top_up=_amount(d.suggested_top_up),
                reasons=[r.value for r in d.reasons],
            )
            return None
        if key is not None:
            self.orders[key] = paid
        after = self.open_of(name)
        self.log.happened(
            "spend",
            f"{name} pays {self.log.money(paid.amount)} for {what} ({basket}): "
            f"{self.sources(paid.allocation)}; open balance now {self.log.money(after)}",
            **self.member(name), entry_id=paid.entry_id, description=what,
            amount=_amount(paid.amount),
            lines=[{"product": i.product_id, "category": i.category, "amount": _amount(i.amount)}
                   for i in items],
            paid_by=self.parts_data(paid.allocation, items), open=_amount(after),
        )
        return paid

    def pre_order(self, name: str, amount: str, until: datetime) -> None:
        held = self.hub.hold(self.wallets[name], _eur(amount), expires_at=until)
        self.hold_id = held.id
        local = until.astimezone(self.zone)
        self.log.happened(
            "hold",
            f"{name} pre-orders a veg box: {self.log.money(held.amount)} held until "
            f"{_WEEKDAYS[local.weekday()]} {local:%H:%M}",
            **self.member(name), hold_id=held.id, amount=_amount(held.amount),
            expires_at=_instant(until),
        )

    def pick_up(self, name: str, amount: str, missing: str) -> None:
        done = self.hub.capture(self.hold_id, _eur(amount))
        self.log.happened(
            "capture",
            f"{name} picks up the veg box without the {missing}: "
            f"{self.log.money(done.captured)} captured, {self.log.money(done.released)} "
            f"released; open balance now {self.log.money(self.open_of(name))}",
            **self.member(name), hold_id=done.hold_id, entry_id=done.entry_id,
            amount=_amount(done.captured), released=_amount(done.released),
        )

    def refund(self, name: str, key: str, amount: str, reason: str) -> None:
        done = self.hub.refund(self.orders[key].entry_id or "", _eur(amount), reason=reason)
        self.log.happened(
            "refund",
            f"{name}'s {reason}: {self.log.money(done.amount)} refunded to "
            f"{self.sources(done.allocation)}; open balance now "
            f"{self.log.money(self.open_of(name))}",
            **self.member(name), entry_id=done.entry_id, refund_of=done.refund_of,
            amount=_amount(done.amount), reason=reason,
            returned_to=self.parts_data(done.allocation),
        )

    def transfer(self, sender: str, receiver: str, amount: str, why: str) -> None:
        receipt = self.hub.transfer(self.wallets[sender], self.wallets[receiver], _eur(amount),
                                    metadata={"note": why})
        self.log.happened(
            "transfer",
            f"{sender} sends {receiver} {self.log.money(receipt.amount)} ({why}): "
            f"{sender} {self.log.money(self.open_of(sender))}, "
            f"{receiver} {self.log.money(self.open_of(receiver))}",
            **self.member(sender), to_member=receiver, to_wallet_id=self.wallets[receiver],
            entry_id=receipt.entry_id, amount=_amount(receipt.amount),
        )

    def reminders(self) -> None:
        """The hub's reminder job: report and acknowledge the pending low-balance events."""
        events = self.hub.events(TENANT)
        for event in events:
            self.log.happened(
                "low_balance",
                f"reminder to {event.owner_id}: open balance {self.log.money(event.open)} "
                f"crossed the {', '.join(repr(t) for t in event.thresholds)} threshold "
                f"({self.log.money(_LOW)}); please top up",
                member=event.owner_id, wallet_id=event.wallet_id, event_id=event.id,
                entry_id=event.entry_id, open=_amount(event.open),
                thresholds=list(event.thresholds),
            )
        if events:
            self.hub.ack_events(TENANT, [event.id for event in events])

    def sweep(self, number: int) -> None:
        """The nightly expiry sweep, at the end of day ``number``."""
        self.clock.set(end_of_local_day(self.date_of(number), ZONE))
        report = self.hub.expire_due()
        breakage = Money.sum(
            (p.amount for entry_id in report.entry_ids for p in self.hub.entry(entry_id).postings
             if p.account == breakage_account(TENANT)),
            CURRENCY,
        )
        if report.lots_expired or report.holds_released:
            text = (f"nightly expiry sweep: {report.lots_expired} lot(s) expired, "
                    f"{self.log.money(breakage)} booked as breakage; "
                    f"{report.holds_released} hold(s) released")
        else:
            text = "nightly expiry sweep: nothing due"
        self.log.happened(
            "expire_due", text, lots_expired=report.lots_expired,
            holds_released=report.holds_released, breakage=_amount(breakage),
            entry_ids=list(report.entry_ids),
        )


def _rules() -> TenantRules:
    return TenantRules(
        fees=(FeeRule(name="card top-up fee", operations={Operation.TOP_UP}, fixed=_FEE),),
        low_balance=LowBalanceRule((Threshold(_LOW, "low"),)),
    )


def _script(week: _Week) -> None:
    """The seven days (see the module docstring)."""
    log = week.log
    log.header(1, week.date_of(1))
    week.at(1, 9)
    week.define_group()
    for minute, name in enumerate(MEMBERS, start=1):
        week.at(1, 9, minute * 5)
        week.join(name)
    for hour, (name, amount) in enumerate(
        (("ana", "50.00"), ("ben", "30.00"), ("cleo", "40.00"), ("dev", "10.00")), start=10
    ):
        week.at(1, hour)
        week.top_up(name, amount)
    week.sweep(1)

    log.header(2, week.date_of(2))
    week.at(2, 10)
    week.award_bonus("ben", "10.00")
    week.at(2, 11)
    week.order("ben", "his weekly basket", (("carrots", "4.00", "produce"),
                                            ("apples", "8.00", "produce"),
                                            ("cheese", "6.00", "dairy")))
    week.at(2, 12)
    week.order("ana", "her weekly basket", (("sourdough", "3.50", "bakery"),
                                            ("eggs", "4.20", "dairy"),
                                            ("tomatoes", "5.30", "produce")), key="ana-basket")
    week.sweep(2)

    log.header(3, week.date_of(3))
    pantry = (("honey", "9.00", "pantry"), ("coffee beans", "7.00", "pantry"))
    week.at(3, 10)
    week.order("dev", "pantry order", pantry)
    week.at(3, 10, 5)
    week.top_up("dev", "10.00")
    week.at(3, 10, 6)
    week.order("dev", "pantry order", pantry)
    week.at(3, 20)
    week.reminders()
    week.sweep(3)

    log.header(4, week.date_of(4))
    week.at(4, 9)
    week.pre_order("cleo", "15.00", week.local(6, 20))
    week.at(4, 18)
    week.transfer("ana", "ben", "10.00", "her share of a bulk order")
    week.at(4, 20)
    week.reminders()
    week.sweep(4)

    log.header(5, week.date_of(5))
    week.at(5, 10)
    week.refund("ana", "ana-basket", "5.30", "damaged tomatoes")
    week.at(5, 11)
    week.order("ben", "bread and plums", (("bread", "4.50", "bakery"),
                                          ("plums", "6.00", "produce")))
    week.at(5, 20)
    week.reminders()
    week.sweep(5)

    log.header(6, week.date_of(6))
    week.at(6, 17)
    week.pick_up("cleo", "12.40", "leeks")
    week.at(6, 17, 10)
    week.order("cleo", "a loaf", (("rye loaf", "4.00", "bakery"),))
    week.at(6, 20)
    week.reminders()
    week.sweep(6)

    log.header(7, week.date_of(7))
    week.at(7, 10)
    week.order("dev", "a bun", (("cinnamon bun", "2.00", "bakery"),))
    week.at(7, 20)
    week.reminders()
    week.sweep(7)


def _journal(hub: WalletService, wallet_ids: Mapping[str, str]) -> list[Entry]:
    """Every journal entry of the members' wallets, each once, read through their
    statements."""
    seen: dict[str, Entry] = {}
    for wallet_id in wallet_ids.values():
        for line in hub.statement(wallet_id).lines:
            if line.entry_id not in seen:
                seen[line.entry_id] = hub.entry(line.entry_id)
    return list(seen.values())


def _account_total(entries: Sequence[Entry], account: str) -> Money:
    return Money.sum(
        (p.amount for entry in entries for p in entry.postings if p.account == account),
        CURRENCY,
    )


def run(
    store: Store,
    out: TextIO,
    *,
    json: bool = False,
    locale: str = "en_US",
    now: datetime | None = None,
    db: str | None = None,
) -> DemoSummary:
    """Fill ``store`` (any backend, and empty of wallets) with the demo hub's week and write
    what happened to ``out``; return the :class:`DemoSummary`.

    The week is the seven local days (Europe/Berlin) before the local day of ``now`` (aware;
    default: the real current time), starting at 09:00 on the first: every instant written
    lies in the past of ``now``. The service runs on a :class:`~prepaid_wallet.clock.FixedClock`
    moved from one happening to the next, with random ids (as the command line makes them), so
    the store stays usable afterwards. Amounts are exact EUR (no rounding happens: the only
    fee is a fixed 0.30 EUR per card top-up); they depend on the scenario only.

    ``json=False`` writes a header per day and one line per happening, amounts formatted for
    ``locale`` (a babel/CLDR identifier); ``json=True`` writes JSON Lines instead, one object
    per happening (``day``, ``at``, ``action`` and what happened) and a last
    ``{"action": "summary", ...}``, written as every JSON output of the library: amounts as
    ``"12.50 EUR"`` (exact decimal digits and the currency), instants as ISO 8601 in UTC.

    ``db`` is the store's URL as the reader would give it to ``prepaid-wallet --db``: the
    closing hints (commands to explore the store with) carry it, so they open this store when
    copied. Without it they carry ``--db URL`` for the reader to fill in.

    Raises :class:`~prepaid_wallet.errors.ConflictError` when the store already holds a wallet,
    and ``InvalidInputError`` for an unknown ``locale`` or a naive ``now``; in both cases
    nothing is written.
    """
    end_at = require_aware(SystemClock().now() if now is None else now, "now")
    format_money(Money.zero(CURRENCY), locale)  # an unknown locale fails before any write
    with store.unit_of_work(read_only=True) as uow:
        occupied = next(uow.iter_wallets(), None) is not None
    if occupied:
        raise ConflictError(
            "demo fills only a fresh store: this one already holds wallets; "
            "give --db a new file or memory:"
        )
    last = end_at.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=1)
    first = last - timedelta(days=6)
    clock = FixedClock(datetime.combine(first, time(9), tzinfo=ZoneInfo(ZONE)))
    welcome = WelcomeAward(
        amount=_WELCOME, reason="welcome bakery voucher",
        expires_at=EndOfLocalDay(last, ZONE), condition=SpendCondition(categories={"bakery"}),
    )
    hub = WalletService(store, clock=clock, actor="demo", rules={TENANT: _rules()},
                        welcome_awards={TENANT: welcome})
    log = _Log(out, json=json, locale=locale, clock=clock)
    week = _Week(hub, clock, log, first)
    start = clock.now()
    _script(week)
    end = clock.now()

    wallet_ids = dict(week.wallets)
    balances = {name: hub.get_wallet(wallet_id).total for name, wallet_id in wallet_ids.items()}
    entries = _journal(hub, wallet_ids)
    # Tenant accounts mirror the wallets: a spend credits revenue, a refund debits it.
    revenue = _account_total(entries, revenue_account(TENANT))
    fees = _account_total(entries, fees_account(TENANT))
    breakage = _account_total(entries, breakage_account(TENANT))
    report = hub.verify()
    summary = DemoSummary(
        tenant_id=TENANT, wallet_ids=MappingProxyType(wallet_ids),
        balances=MappingProxyType(balances), revenue=revenue, fees=fees, breakage=breakage,
        verified=report.ok, entries=len(entries), start=start, end=end,
    )
    _tell(log, summary, [f"{p.code} {p.subject}: {p.detail}" for p in report.problems], db)
    return summary


def _tell(log: _Log, summary: DemoSummary, problems: Sequence[str], db: str | None) -> None:
    """The end of the week: balances, the hub's totals, the verification and what to try
    next."""
    first = next(iter(summary.wallet_ids))
    store = "--db URL" if db is None else f"--db {shlex.quote(db)}"
    explore = [
        f"prepaid-wallet {store} wallet list --tenant {summary.tenant_id}",
        f"prepaid-wallet {store} statement {summary.wallet_ids[first]} --format csv",
    ]
    log.summary({
        "tenant_id": summary.tenant_id,
        "start": _instant(summary.start),
        "end": _instant(summary.end),
        "wallet_ids": dict(summary.wallet_ids),
        "balances": {name: _amount(total) for name, total in summary.balances.items()},
        "revenue": _amount(summary.revenue),
        "fees": _amount(summary.fees),
        "breakage": _amount(summary.breakage),
        "entries": summary.entries,
        "verified": summary.verified,
        "problems": list(problems),
        "explore": explore,
    })
    log.line()
    log.line("End of the week")
    for name, total in summary.balances.items():
        log.line(f"  {name:<5} {log.money(total):>12}  wallet {summary.wallet_ids[name]}")
    log.line(f"  the hub: revenue {log.money(summary.revenue)}, fees {log.money(summary.fees)}, "
             f"breakage {log.money(summary.breakage)}")
    verdict = "verified, nothing wrong" if summary.verified else "NOT verified"
    log.line(f"  journal: {summary.entries} entries, {verdict}")
    for problem in problems:
        log.line(f"    {problem}")
    log.line()
    log.line("Explore it:")
    for command in explore:
        log.line(f"  {command}")
