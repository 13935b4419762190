"""A hub's member tops up through a payment provider, checks out twice, and is owed credit.

The Oak Street Hub sells to members who pay from credit first and by card for the rest. Mia
tops up her own credit through the hub's payment provider: the hub starts a top-up, sends her
to the provider's page with its id, and credits her when the provider's webhook says the money
was taken -- the webhook arrives twice, and she is credited once. At checkout the hub applies
her credit to the order; she removes an item, the total changes, and the same credit payment
is re-sized. A second order is paid partly by credit and partly by card; one of its items
turns out to be out of stock, so the hub's staff credits what she paid too much, once.

Run it with ``python examples/hub_checkout.py``. The wallets live in a memory store (``--db
URL`` picks another one, e.g. ``--db sqlite:///checkout.db``; a store that already holds the
hub's wallets is refused with one line and exit status 1, and left as it was). The clock is a
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
    TenantRules,
    WalletService,
    format_money,
    open_store,
)
from prepaid_wallet.errors import NoCreditOwedError
from prepaid_wallet.rules.customer_top_ups import CustomerTopUpRules
from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus

HUB = "oak-street"
LOCALE = "en_GB"
DEFAULT_DB = "memory:"


def eur(text: str) -> Money:
    """An amount in euros, from exact decimal text."""
    return Money.of(text, "EUR")


def show(money: Money) -> str:
    """An amount as a member reads it."""
    return format_money(money, LOCALE)


class PaymentPage:
    """The hub's payment provider, reduced to what the story needs: a customer pays on its page
    for a payment the hub opened with the top-up's id, and the provider then calls the hub's
    webhook -- here, more than once, as providers do."""

    def __init__(self) -> None:
        self.paid: dict[str, Money] = {}

    def pay(self, payment_id: str, amount: Money) -> ChargeOutcome:
        """The customer pays ``amount`` for ``payment_id``; the webhook's content."""
        self.paid[payment_id] = amount
        return ChargeOutcome(ChargeStatus.SUCCEEDED, reference=f"psp-{len(self.paid)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A hub's member tops up and checks out.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    args = parser.parse_args(argv)

    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    store = open_store(args.db)
    hub = WalletService(store, clock=clock, ids=SequentialIds())
    if hub.wallets(HUB):  # the story opens the hub's wallets: it needs a store without them
        store.close()
        sys.exit(f"{args.db} already holds the {HUB} wallets (from an earlier run):"
                 " give --db a new store")
    hub.set_tenant_rules(HUB, TenantRules(
        payment_mode=PaymentMode.CREDIT_FIRST,
        customer_top_ups=CustomerTopUpRules(minimum=eur("5.00"), maximum=eur("200.00"),
                                            lifetime=timedelta(hours=1)),
    ), actor="hub-admin", reason="credit first, card for the rest")
    mia = hub.open_wallet(owner_id="mia", tenant_id=HUB, currency="EUR").id
    print("The Oak Street Hub: credit first, card for the rest; top-ups 5.00 to 200.00 EUR.")

    print("Mia tops up through the payment provider:")
    provider = PaymentPage()
    started = hub.start_top_up(mia, eur("40.00"), method="card",
                               idempotency_key="mia-topup-1")
    print(f"  top-up {started.id} of {show(started.amount)} is {started.status.value};"
          f" open {show(hub.balance(mia).open)}")
    webhook = provider.pay(started.id, started.amount)
    for attempt in (1, 2):  # the provider calls the webhook twice
        report = hub.report_charge(started.id, webhook)
        print(f"  webhook {attempt}: {len(report.credited)} credited")
    print(f"  open {show(hub.balance(mia).open)}")

    print("First checkout:")
    paid = hub.apply_credit(mia, order_id="order-1", total=eur("55.00"))
    print(f"  order-1 of {show(paid.total)}: credit {show(paid.credit)},"
          f" card {show(paid.remainder_due)}")
    paid = hub.apply_credit(mia, order_id="order-1", total=eur("32.50"))
    print(f"  Mia removes an item, order-1 is now {show(paid.total)}: credit"
          f" {show(paid.credit)}, card {show(paid.remainder_due)}")
    hub.place_order(mia, order_id="order-1")
    print(f"  order-1 placed; open {show(hub.balance(mia).open)}")

    clock.advance(timedelta(days=1))
    print("Second checkout:")
    paid = hub.apply_credit(mia, order_id="order-2", total=eur("18.00"))
    card = paid.remainder_due
    print(f"  order-2 of {show(paid.total)}: credit {show(paid.credit)}, card {show(card)}")
    hub.place_order(mia, order_id="order-2")
    print(f"  order-2 placed; open {show(hub.balance(mia).open)}")

    clock.advance(timedelta(days=1))
    print("The cheese in order-2 was out of stock; the final total is 13.20 EUR:")
    owed = hub.credit_owed(mia, order_id="order-2", total=eur("13.20"),
                           paid_by_other_methods=card, actor="staff-jo",
                           reason="cheese out of stock")
    assert owed.credited is not None
    print(f"  staff-jo credits {show(owed.credited)} owed; open {show(hub.balance(mia).open)}")
    try:
        hub.credit_owed(mia, order_id="order-2", total=eur("13.20"),
                        paid_by_other_methods=card, actor="staff-jo")
    except NoCreditOwedError:
        print("  asked again: no credit owed, nothing changes")

    print("Mia's statement:")
    for line in hub.statement(mia).lines:
        print(f"  {line.recorded_at:%d/%m} {line.kind.value:<9} {show(line.open_change):>8}"
              f"  open {show(line.open_after)}")
    verified = hub.verify()
    print(f"Journal verified: {verified.ok} ({verified.entries} entries)")
    store.close()


if __name__ == "__main__":
    main()
