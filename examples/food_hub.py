"""A food hub with a prepay shop: floors, two kinds of shop, automatic top-ups, reminders.

The Green Hub lets members buy on credit down to a floor of -100.00 EUR. Its *credit-only* shop
refuses an order that credit cannot cover and proposes a top-up; its *credit-first* market stall
takes what credit can pay and leaves the rest for cash. Ann has an automatic top-up from her card,
with a backup card: when her open balance falls to 20.00 EUR or below, she is topped up to
60.00 EUR. Her primary card has just expired, so the hub's payment provider declines it and the
backup pays. Card top-ups cost a 0.30 EUR fee. At the end the hub lists the members to remind:
those at or below the 0.00 EUR "warn" threshold, with the top-up each needs.

The hub's rules (the card fee, the thresholds, automatic top-ups) are stored in the store as a
version, set by the hub's admin: every process that opens the store -- the command line, a
nightly job -- applies them (``prepaid-wallet --db URL rules show --tenant green-hub``).

Run it with ``python examples/food_hub.py``. The wallets live in a memory store (``--db URL``
picks another one, e.g. ``--db sqlite:///hub.db``; a store that already holds the hub's wallets
is refused with one line and exit status 1, and left as it was). The clock is a
:class:`~prepaid_wallet.FixedClock` and ids are sequential, so every run prints the same thing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prepaid_wallet import (
    FixedClock,
    Money,
    PaymentMode,
    SequentialIds,
    SpendDeniedError,
    SpendRequest,
    TenantRules,
    WalletService,
    format_money,
    open_store,
)
from prepaid_wallet.rules.fees import FeeRule
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus, PaymentMethods, TopUpRule

HUB = "green-hub"
LOCALE = "en_IE"
DEFAULT_DB = "memory:"


def eur(text: str) -> Money:
    """An amount in euros, from exact decimal text."""
    return Money.of(text, "EUR")


def show(money: Money) -> str:
    """An amount as a member reads it."""
    return format_money(money, LOCALE)


class CardProcessor:
    """The hub's payment provider, as the host implements
    :class:`~prepaid_wallet.rules.topup.PaymentGateway`: cards ending in "expired" are declined,
    every other card is charged. It never charges a key twice."""

    def __init__(self) -> None:
        self.outcomes: dict[str, ChargeOutcome] = {}

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        if idempotency_key not in self.outcomes:
            if method.endswith("expired"):
                outcome = ChargeOutcome(ChargeStatus.DECLINED_HARD, message="card expired")
            else:
                outcome = ChargeOutcome(ChargeStatus.SUCCEEDED, reference=f"pay-{idempotency_key}")
            self.outcomes[idempotency_key] = outcome
            print(f"  provider: {method} charged {show(amount)} -> {outcome.status.value}")
        return self.outcomes[idempotency_key]

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        return self.outcomes.get(idempotency_key, ChargeOutcome(ChargeStatus.UNKNOWN))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A food hub with a prepay shop.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    args = parser.parse_args(argv)

    rules = TenantRules(
        fees=(FeeRule(name="card top-up", operations={Operation.TOP_UP}, fixed=eur("0.30")),),
        low_balance=LowBalanceRule((Threshold(eur("20.00"), "notice"),
                                    Threshold(eur("0.00"), "warn"))),
        automatic_top_ups=True,
    )
    clock = FixedClock(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    store = open_store(args.db)
    hub = WalletService(store, clock=clock, ids=SequentialIds(), gateway=CardProcessor())
    if hub.wallets(HUB):  # the story opens the hub's wallets: it needs a store without them
        store.close()
        sys.exit(f"{args.db} already holds the {HUB} wallets (from an earlier run):"
                 " give --db a new store")
    stored = hub.set_tenant_rules(HUB, rules, actor="hub-admin",
                                  idempotency_key="green-hub-rules-2026-05")
    print(f"The Green Hub stores its rules (version {stored.version}, by {stored.actor}).")
    floor = eur("-100.00")
    ann = hub.open_wallet(owner_id="ann", tenant_id=HUB, currency="EUR", floor=floor).id
    bob = hub.open_wallet(owner_id="bob", tenant_id=HUB, currency="EUR", floor=floor).id
    cem = hub.open_wallet(owner_id="cem", tenant_id=HUB, currency="EUR", floor=floor).id
    hub.set_top_up_rule(ann, TopUpRule(
        methods=PaymentMethods(primary="card-1234-expired", backup="card-9876"),
        threshold=eur("20.00"), target=eur("60.00"), minimum=eur("10.00")))
    print("The Green Hub opens wallets for Ann, Bob and Cem (floor -100.00 EUR).")

    for member, amount in ((ann, "50.00"), (bob, "30.00"), (cem, "5.00")):
        receipt = hub.top_up(member, eur(amount), method="card")
        print(f"  top-up {show(receipt.amount)} (fee {show(receipt.fee or eur('0'))})"
              f" -> open {show(hub.get_wallet(member).open)}")

    print("Credit-only shop:")
    paid = hub.spend(ann, SpendRequest(eur("35.00"), description="veg box"))
    print(f"  Ann pays {show(paid.amount)}; open {show(hub.get_wallet(ann).open)}")
    try:
        hub.spend(cem, SpendRequest(eur("120.00"), description="bulk flour"))
    except SpendDeniedError as refused:
        print(f"  Cem's order of {show(refused.decision.amount)} is refused: credit covers "
              f"{show(refused.decision.covered)}; suggested top-up "
              f"{show(refused.decision.suggested_top_up)}")

    print("Credit-first market stall:")
    stall = hub.spend(bob, SpendRequest(eur("140.00"), mode=PaymentMode.CREDIT_FIRST))
    print(f"  Bob's basket of 140.00: credit pays {show(stall.amount)}, cash "
          f"{show(stall.remainder_due)}; open {show(hub.get_wallet(bob).open)}")

    clock.advance(timedelta(minutes=5))
    print("The hub's job charges automatic top-ups:")
    report = hub.process_top_ups()
    print(f"  {len(report.credited)} credited; Ann's open balance "
          f"{show(hub.get_wallet(ann).open)}")

    print("Low-balance events:")
    for event in hub.events(HUB):
        print(f"  {event.owner_id}: open {show(event.open)}, crossed {', '.join(event.thresholds)}")
    print("Members to remind (at or below the 'warn' threshold):")
    for line in hub.low_balance_report(HUB, "warn"):
        print(f"  {line.owner_id}: open {show(line.open)}, floor {show(line.floor)}, "
              f"top up at least {show(line.top_up)}")
    hub.ack_events(HUB, [event.id for event in hub.events(HUB)])

    report_ok = hub.verify()
    print(f"Journal verified: {report_ok.ok} ({report_ok.entries} entries)")
    store.close()


if __name__ == "__main__":
    main()
