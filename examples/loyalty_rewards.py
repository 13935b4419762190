"""Loyalty rewards: award money limited to some products, merchants and times, that expires.

A loyalty programme defines a condition group, "Smartwatches at TechnoShop", valid until the end
of March. Every new member receives a welcome award in that group. Maya is also given a
weekday-mornings award that expires at the end of a local day in Nicosia, and sends her friend
Nikos a smartwatch voucher. Nikos pays a basket of two items at TechnoShop; a later order is
refused and the programme shows him what he can spend, where and until when. Maya gets one more
week for part of her mornings award; then time passes, the expiry sweep books what expired as
breakage (once), and the journal verifies.

Run it with ``python examples/loyalty_rewards.py``. The wallets live in a memory store (``--db
URL`` picks another one, e.g. ``--db sqlite:///loyalty.db``; a store that already holds the
programme's wallets is refused with one line and exit status 1, and left as it was). The clock is a
:class:`~prepaid_wallet.FixedClock` moved by hand and the ids are sequential, so every run prints
the same thing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from prepaid_wallet import (
    Breakdown,
    EndOfLocalDay,
    FixedClock,
    LineItem,
    Money,
    SequentialIds,
    SpendCondition,
    SpendDeniedError,
    SpendRequest,
    TimeWindow,
    WalletService,
    WelcomeAward,
    format_money,
    open_store,
)

PROGRAMME = "technoclub"
ZONE = "Europe/Nicosia"
LOCALE = "en_IE"
DEFAULT_DB = "memory:"


def eur(text: str) -> Money:
    """An amount in euros, from exact decimal text."""
    return Money.of(text, "EUR")


def show(money: Money) -> str:
    """An amount as a member reads it, e.g. ``€12.50``."""
    return format_money(money, LOCALE)


def when(instant: datetime | None) -> str:
    """An instant in UTC and as wall time in Nicosia, or "never"."""
    if instant is None:
        return "never"
    return f"{instant:%Y-%m-%d %H:%M} UTC ({instant.astimezone(ZoneInfo(ZONE)):%d/%m %H:%M} local)"


def print_breakdown(view: Breakdown, owner: str) -> None:
    """Print what a wallet holds: the open balance, then each lot with its conditions."""
    print(f"Breakdown for {owner} at {view.at:%Y-%m-%d %H:%M} UTC:")
    print(f"  open balance {show(view.open)}")
    for lot in view.lots:
        ends = when(lot.expires_at)
        share = "" if lot.spendable_now is None else f", {show(lot.spendable_now)} for this order"
        print(f"  {lot.lot_id} {show(lot.remaining)} ({lot.reason}) until {ends}{share}")
        for phrase in lot.conditions:
            print(f"      - {phrase}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loyalty programme with conditioned awards.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    url = parser.parse_args(argv).db

    # Tuesday 10 March 2026, 09:00 in Nicosia.
    clock = FixedClock(datetime(2026, 3, 10, 7, 0, tzinfo=UTC))
    store = open_store(url)
    try:
        setup = WalletService(store, clock=clock, ids=SequentialIds())
        if setup.wallets(PROGRAMME):  # the story opens the programme's wallets
            sys.exit(f"{url} already holds the {PROGRAMME} wallets (from an earlier run):"
                     " give --db a new store")
        group = setup.define_condition_group(
            tenant_id=PROGRAMME, name="Smartwatches at TechnoShop", group_id="cg-watches",
            condition=SpendCondition(categories={"smartwatches"}, merchants={"technoshop"}),
            valid_until=EndOfLocalDay(date(2026, 3, 31), ZONE).instant,
        )
        print(f"Condition group {group.id} '{group.name}' (version {group.version}):")
        for phrase in group.describe():
            print(f"  - {phrase}")

        # Every new member gets 5 € in the group, for 30 days (or until the group ends).
        svc = WalletService(
            store, clock=clock, ids=SequentialIds(),
            welcome_awards={PROGRAMME: WelcomeAward(eur("5.00"), group_id=group.id,
                                                    expires_after=timedelta(days=30))},
        )
        maya = svc.open_wallet(owner_id="maya", tenant_id=PROGRAMME, currency="EUR",
                               idempotency_key="join-maya")
        nikos = svc.open_wallet(owner_id="nikos", tenant_id=PROGRAMME, currency="EUR",
                                idempotency_key="join-nikos")
        again = svc.open_wallet(owner_id="maya", tenant_id=PROGRAMME, currency="EUR",
                                idempotency_key="join-maya")
        assert again == maya  # a retried opening replays the first one: one welcome award
        print(f"maya opens {maya.id} with a welcome award of {show(maya.commerce)};"
              f" her retried opening returns {again.id} with {show(again.commerce)}")
        print(f"nikos opens {nikos.id} with a welcome award of {show(nikos.commerce)}")

        # Maya tops up, and receives an award for weekday mornings, until the end of Friday.
        svc.top_up(maya.id, eur("50.00"), method="card", idempotency_key="psp-1")
        mornings = TimeWindow(days={1, 2, 3, 4, 5}, start=time(8), end=time(12), zone=ZONE)
        friday = EndOfLocalDay(date(2026, 3, 13), ZONE)
        breakfast = svc.award(
            maya.id, eur("8.00"), reason="breakfast club",
            condition=SpendCondition(windows=[mornings]), expires_at=friday,
        )
        print(f"maya is awarded {show(breakfast.amount)} ({breakfast.id}) for weekday mornings,"
              f" until the end of {friday.day} in {ZONE}: {when(breakfast.expires_at)}")

        # She sends Nikos 30 € that he can spend only on smartwatches at TechnoShop.
        gift = svc.transfer(maya.id, nikos.id, eur("30.00"), group_id=group.id,
                            idempotency_key="gift-1")
        print(f"maya sends nikos {show(gift.amount)} as a smartwatch voucher: lot {gift.lot_id}")
        svc.top_up(nikos.id, eur("45.00"), method="card", idempotency_key="psp-2")
        print("nikos tops up €45.00")

        # Nikos buys a smartwatch and a cable at TechnoShop.
        basket = SpendRequest(
            eur("40.00"), merchant="technoshop", description="order 5001",
            lines=(LineItem("watch-9", eur("30.00"), category="smartwatches"),
                   LineItem("cable-usb-c", eur("10.00"), category="cables")),
        )
        paid = svc.spend(nikos.id, basket, idempotency_key="order-5001")
        print(f"order 5001 for nikos at technoshop: paid {show(paid.amount)}")
        for part in paid.allocation:
            product = basket.lines[part.line].product_id if part.line is not None else "-"
            print(f"  {part.lot_id or 'open balance'} -> {product} {show(part.amount)}")

        # A second order, for a leather strap, is refused: the voucher pays only for
        # smartwatches, so only the open balance may pay it.
        strap = SpendRequest(
            eur("45.00"), merchant="technoshop", description="order 5002",
            lines=(LineItem("strap-2", eur("45.00"), category="straps"),),
        )
        decision = svc.check_spend(nikos.id, strap)
        print(f"order 5002 for nikos (a {show(strap.amount)} strap): allowed {decision.allowed},"
              f" spendable {show(decision.covered)}, shortfall {show(decision.shortfall)}")
        print_breakdown(svc.breakdown(nikos.id, request=strap), "nikos")
        try:
            svc.spend(nikos.id, strap, idempotency_key="order-5002")
        except SpendDeniedError as refused:
            print(f"order 5002 refused, suggested top-up {show(refused.decision.suggested_top_up)}")
        else:  # pragma: no cover - the story needs the refusal
            raise SystemExit("order 5002 should have been refused")

        # Maya's breakdown, in words, with Greek day names.
        print_breakdown(svc.breakdown(maya.id, locale="el_GR"), "maya (el_GR)")

        # The programme gives Maya one more week for part of her breakfast award.
        next_friday = EndOfLocalDay(date(2026, 3, 20), ZONE)
        extended = svc.extend_expiry(breakfast.id, next_friday, amount=eur("3.00"),
                                     idempotency_key="extend-1")
        print(f"{show(extended.remaining)} of {breakfast.id} moves to {extended.id}, same"
              f" conditions, until the end of {next_friday.day}: {when(extended.expires_at)}")

        # Saturday: the breakfast award has expired; the sweep books it as breakage.
        clock.set(datetime(2026, 3, 14, 8, 0, tzinfo=UTC))
        report = svc.expire_due()
        print(f"{clock.now():%Y-%m-%d}: expiry sweep booked {report.lots_expired} lot"
              f" ({', '.join(report.entry_ids)})")
        # April: the group has ended; every lot in it lapses at once.
        clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
        expired = svc.balance(maya.id).expired + svc.balance(nikos.id).expired
        report = svc.expire_due()
        print(f"{clock.now():%Y-%m-%d}: the group has ended; expiry sweep booked"
              f" {report.lots_expired} lots, {show(expired)} of breakage")
        print(f"a second sweep books {svc.expire_due().lots_expired} lots")
        for wallet, owner in ((maya, "maya"), (nikos, "nikos")):
            balance = svc.balance(wallet.id)
            print(f"{owner}: open {show(balance.open)}, commerce {show(balance.commerce)}")

        print(f"Statement of maya ({maya.id}):")
        for line in svc.statement(maya.id).lines:
            lots = ", ".join(f"{m.lot_id} {show(m.amount)}" for m in line.lots)
            text = f"  {line.entry_id} {line.kind.value:<10} {show(line.change):>8}  {lots}"
            print(text.rstrip())
            for movement in line.lots:
                if movement.amount.is_positive():
                    print(f"      {movement.lot_id} pays until {when(movement.expires_at)}")

        verified = svc.verify()
        print(f"journal verified: {verified.entries} entries, {len(verified.problems)} problems")
    finally:
        store.close()
    if not verified.ok:  # pragma: no cover - a broken journal is a bug
        raise SystemExit(1)


if __name__ == "__main__":
    main()
