"""Pay-as-you-go solar kits: payments become days of service, and upgrades are paid within a
four-hour window.

Sunbright rents solar kits by the day. Each customer's wallet has a contract: a package of
products at a daily rate, and the instant service ends. Four customers go through the
upgrade procedure:

* Amina pays for ten days, calls to upgrade, and pays the downpayment on time in two payments;
  what she paid beyond it becomes time at the new rate.
* Baraka calls to upgrade but pays only part of the downpayment: at the deadline the upgrade
  expires and his payment becomes time at the old rate.
* Chiku paid the downpayment as an ordinary payment before calling; a system process officer
  turns that payment's time back into money to pay it.
* Dalmar paid monthly before going pay-as-you-go, so his payments are linked to a conversion
  transaction; an admin unlinks one to pay the downpayment.

Run it with ``python examples/payg_upgrade.py``. The wallets live in a memory store (``--db
URL`` picks another one, e.g. ``--db sqlite:///payg.db``; a store that already holds
Sunbright's wallets is refused with one line and exit status 1, and left as it was). The clock
is a :class:`~prepaid_wallet.FixedClock` and ids are sequential, so every run prints the same
thing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prepaid_wallet import (
    Actor,
    FixedClock,
    Money,
    SequentialIds,
    WalletService,
    format_money,
    open_store,
)
from prepaid_wallet.rules.payg import DeviceState, PaygOutcome

#: The procedure's roles: reconversion by a system process officer, unlinking by an admin.
OFFICER = Actor("officer-zawadi", frozenset({"system_process_officer"}))
ADMIN = Actor("admin-juma", frozenset({"admin"}))

OPERATOR = "sunbright"
CURRENCY = "KES"
LOCALE = "en_KE"
DEFAULT_DB = "memory:"


def kes(text: str) -> Money:
    """An amount in Kenyan shillings, from exact decimal text."""
    return Money.of(text, CURRENCY)


def show(money: Money) -> str:
    """An amount as the operator's staff read it."""
    return format_money(money, LOCALE)


def span(time: timedelta) -> str:
    """A duration in days, hours and minutes (``-`` for time taken back)."""
    sign = "-" if time < timedelta(0) else ""
    minutes = int(abs(time).total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    return f"{sign}{days}d {minutes // 60:02d}h{minutes % 60:02d}"


def when(at: datetime) -> str:
    return f"{at:%a %d %b %H:%M} UTC"


class Story:
    """The operator's service on one clock, and how each step is told."""

    def __init__(self, svc: WalletService, clock: FixedClock) -> None:
        self.svc = svc
        self.clock = clock

    def later(self, time: timedelta) -> None:
        self.clock.advance(time)

    def customer(self, name: str, products: list[str], rate: str) -> str:
        wallet = self.svc.open_wallet(owner_id=name, tenant_id=OPERATOR, currency=CURRENCY).id
        self.svc.open_contract(wallet, products=products, daily_rate=kes(rate),
                               device_id=f"box-{name}", actor="shop")
        self.svc.report_device(wallet, state=DeviceState.ON)
        print(f"{name}: {' + '.join(products)} at {show(kes(rate))} a day ({wallet})")
        return wallet

    def tell(self, what: str, outcome: PaygOutcome) -> None:
        """What a command did: the on-time lines it wrote, then the service end and time left."""
        print(f"  {what}")
        for line in outcome.on_time:
            paid = f" ({', '.join(line.payment_ids)})" if line.payment_ids else ""
            print(f"    {line.kind.value:<12} {show(line.amount):>12}  time {span(line.time):>11}"
                  f"  at {show(line.daily_rate)}/day{paid}")
        contract = outcome.contract
        print(f"    service ends {when(contract.service_end)},"
              f" {span(contract.time_left(self.clock.now()))} left; {contract.state.value}")
        for token in outcome.tokens:
            print(f"    token for box: {token}")

    def upgrade(self, wallet: str, products: list[str], rate: str, down: str) -> None:
        outcome = self.svc.call_upgrade(wallet, products=products, daily_rate=kes(rate),
                                        downpayment=kes(down), actor="call-centre")
        upgrade = outcome.upgrade
        assert upgrade is not None
        performance = self.svc.contract_performance(wallet)
        print(f"  calls to upgrade to {' + '.join(products)} at {show(kes(rate))} a day"
              f" (performance {performance:.2%}): downpayment {show(kes(down))} before"
              f" {when(upgrade.deadline)}; {span(upgrade.time_left_after)} left after upgrading")


def amina(story: Story) -> None:
    svc = story.svc
    wallet = story.customer("amina", ["lamp", "radio"], "50.00")
    story.tell("pays 500.00", svc.payg_payment(wallet, payment_id="a-1", amount=kes("500.00")))
    story.later(timedelta(days=3))
    story.upgrade(wallet, ["lamp", "radio", "tv"], "80.00", "1000.00")
    story.later(timedelta(hours=1))
    story.tell("pays 600.00 within the window: held toward the downpayment",
               svc.payg_payment(wallet, payment_id="a-2", amount=kes("600.00")))
    story.later(timedelta(hours=2))
    story.tell("pays 500.00: the downpayment is paid, the surplus is time at the new rate",
               svc.payg_payment(wallet, payment_id="a-3", amount=kes("500.00")))
    story.tell("the tv is installed", svc.confirm_upgrade_installed(wallet, actor="technician"))


def baraka(story: Story) -> None:
    svc = story.svc
    wallet = story.customer("baraka", ["lamp"], "50.00")
    story.tell("pays 300.00", svc.payg_payment(wallet, payment_id="b-1", amount=kes("300.00")))
    story.later(timedelta(days=1))
    story.upgrade(wallet, ["lamp", "fan"], "70.00", "800.00")
    story.later(timedelta(hours=1))
    story.tell("pays 200.00 within the window: held",
               svc.payg_payment(wallet, payment_id="b-2", amount=kes("200.00")))
    story.later(timedelta(hours=3))  # exactly at the deadline: late
    expired = svc.expire_upgrades()
    print(f"  the window ends: upgrade {', '.join(expired)} expired")
    story.tell("his held payment became time at the old rate", PaygOutcome(
        contract=svc.contract(wallet), on_time=tuple(svc.on_time(wallet)[-1:])))


def chiku(story: Story) -> None:
    svc = story.svc
    wallet = story.customer("chiku", ["lamp", "radio"], "50.00")
    story.tell("pays 500.00", svc.payg_payment(wallet, payment_id="c-1", amount=kes("500.00")))
    story.later(timedelta(days=2))
    story.tell("pays 1000.00 for an upgrade without calling: it becomes time",
               svc.payg_payment(wallet, payment_id="c-2", amount=kes("1000.00")))
    story.later(timedelta(days=1))
    story.upgrade(wallet, ["lamp", "radio", "tv"], "80.00", "900.00")
    story.tell("a system process officer reconverts c-2 to pay the downpayment",
               svc.reconvert_payments(wallet, payment_ids=["c-2"], actor=OFFICER))


def dalmar(story: Story) -> None:
    svc = story.svc
    wallet = story.customer("dalmar", ["lamp"], "40.00")
    story.tell("converted from monthly payments", svc.record_conversion(
        wallet, conversion_id="conv-d", payments={"d-1": kes("400.00"), "d-2": kes("1200.00")}))
    story.later(timedelta(days=5))
    story.upgrade(wallet, ["lamp", "tv"], "60.00", "1200.00")
    story.tell("an admin unlinks a payment of the conversion to pay the downpayment",
               svc.unlink_conversion_payment(wallet, conversion_id="conv-d", actor=ADMIN))
    [conversion] = svc.conversions(wallet)
    print(f"  conv-d still links {', '.join(conversion.payment_ids)};"
          f" unlinked {', '.join(conversion.unlinked)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pay-as-you-go upgrades, four ways.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    args = parser.parse_args(argv)

    clock = FixedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    store = open_store(args.db)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    if svc.wallets(OPERATOR):  # the story opens the wallets: it needs a store without them
        store.close()
        sys.exit(f"{args.db} already holds the {OPERATOR} wallets (from an earlier run):"
                 " give --db a new store")
    story = Story(svc, clock)
    for customer in (amina, baraka, chiku, dalmar):
        customer(story)
        print()
    verified = svc.verify()
    print(f"Journal verified: {verified.ok} ({verified.entries} entries)")
    store.close()


if __name__ == "__main__":
    main()
