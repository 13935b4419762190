"""Quickstart: a food hub with a prepay shop.

Two members top up their wallets. Alice's credit-only order is refused and a top-up is proposed;
she tops up and the order goes through. Bruno's welcome award expires half used. Both
statements are printed in French.

Run it with ``python examples/quickstart.py``. The wallets and their journal live in a SQLite
file, ``quickstart.db`` in the current directory (``--db URL`` picks another store, e.g.
``--db memory:`` or ``--db postgresql://...``). The story starts over on every run: the default
file is deleted first; a store given with ``--db`` that already holds the hub's wallets is
refused with one line and exit status 1, and left as it was. At the end the store is
closed and opened again, to show that the balances are read back from the file. The clock is a
:class:`~prepaid_wallet.FixedClock` moved by hand and the ids are sequential, so every run
prints the same thing.
"""

from __future__ import annotations

import argparse
import os
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
    WalletService,
    format_money,
    open_store,
)

HUB = "la-ruche-lyon"
LOCALE = "fr_FR"


def eur(text: str) -> Money:
    """An amount in euros, from exact decimal text."""
    return Money.of(text, "EUR")


def show(money: Money) -> str:
    """An amount the way a French member reads it, e.g. ``1 234,50 €``."""
    return format_money(money, LOCALE)


def signed(money: Money) -> str:
    """An amount with its sign, for statement lines."""
    return ("+" if money.is_positive() else "") + show(money)


def print_statement(svc: WalletService, wallet_id: str, owner: str) -> None:
    """Print a wallet's statement: one line per journal entry, with the total after it."""
    statement = svc.statement(wallet_id)
    print(f"Statement of {owner} ({wallet_id}), amounts in {LOCALE}")
    for line in statement.lines:
        text = line.description or ""
        if line.lots:
            moved = ", ".join(f"{m.lot_id} {signed(m.amount)}" for m in line.lots)
            text = f"{text} [{moved}]".strip()
        print(
            f"  {line.recorded_at:%d/%m/%Y}  {line.kind.value:<10} {signed(line.change):>12}"
            f"  total {show(line.total_after):>10}  {text}".rstrip()
        )
    print(f"  closing total {show(statement.closing)}")


DEFAULT_DB = "sqlite:///quickstart.db"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A food hub with a prepay shop.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    url = parser.parse_args(argv).db
    if url == DEFAULT_DB:  # the quickstart's own file: start the story over
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists("quickstart.db" + suffix):
                os.remove("quickstart.db" + suffix)
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    store = open_store(url)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    if svc.wallets(HUB):  # another store given with --db, used before: leave it alone
        store.close()
        sys.exit(f"{url} already holds the {HUB} wallets (from an earlier run):"
                 " give --db a new store")

    # Monday: the hub opens a wallet per member; both members top up by card.
    alice = svc.open_wallet(owner_id="alice", tenant_id=HUB, currency="EUR")
    bruno = svc.open_wallet(owner_id="bruno", tenant_id=HUB, currency="EUR")
    print(f"Hub {HUB}: wallets {alice.id} (alice) and {bruno.id} (bruno)")
    for wallet, owner, amount, key in (
        (alice, "alice", "30.00", "psp-7001"),
        (bruno, "bruno", "50.00", "psp-7002"),
    ):
        receipt = svc.top_up(wallet.id, eur(amount), method="card", idempotency_key=key)
        print(f"{owner} tops up {show(receipt.amount)} ({receipt.entry_id})")

    # The hub welcomes Bruno with 10 € of award credit, valid for 7 days.
    lot = svc.award(
        bruno.id, eur("10.00"), reason="welcome", expires_at=clock.now() + timedelta(days=7),
        idempotency_key="welcome-bruno",
    )
    print(f"bruno is awarded {show(lot.amount)} ({lot.id}), valid until {lot.expires_at:%d/%m/%Y}")

    # Tuesday: Alice checks out order 1001 in the credit-only shop.
    clock.advance(timedelta(days=1))
    order = SpendRequest(eur("42.50"), mode=PaymentMode.CREDIT_ONLY, description="order 1001")
    try:
        svc.spend(alice.id, order, idempotency_key="order-1001/attempt-1")
    except SpendDeniedError as refused:
        decision = refused.decision
        print(
            f"order 1001 for alice ({show(decision.amount)}, credit only): refused,"
            f" shortfall {show(decision.shortfall)},"
            f" suggested top-up {show(decision.suggested_top_up)}"
        )
        top_up = decision.suggested_top_up
    else:  # pragma: no cover - the story needs the refusal
        raise SystemExit("order 1001 should have been refused")

    # She tops up what was suggested. A refusal is remembered under its idempotency key (a
    # retry with the same key refuses again), so the new attempt carries a new key.
    receipt = svc.top_up(alice.id, top_up, method="card", idempotency_key="psp-7003")
    print(f"alice tops up {show(receipt.amount)} ({receipt.entry_id})")
    paid = svc.spend(alice.id, order, idempotency_key="order-1001/attempt-2")
    print(f"order 1001 for alice: paid {show(paid.amount)} ({paid.entry_id})")

    # Wednesday: Bruno's order spends his award first, then his open balance.
    clock.advance(timedelta(days=1))
    paid = svc.spend(
        bruno.id, SpendRequest(eur("4.00"), description="order 1002"),
        idempotency_key="order-1002",
    )
    sources = ", ".join(
        f"{part.lot_id or 'open balance'} {show(part.amount)}" for part in paid.allocation
    )
    print(f"order 1002 for bruno: paid {show(paid.amount)} from {sources}")

    # Next week: the award has expired; the sweep books what is left of it as breakage.
    clock.advance(timedelta(days=7))
    expired = svc.balance(bruno.id).expired
    print(f"{clock.now():%d/%m/%Y}: {show(expired)} of bruno's award has expired unspent")
    report = svc.expire_due()
    print(f"expiry sweep: {report.lots_expired} lot expired, {show(expired)} booked as breakage")

    for wallet, owner in ((alice, "alice"), (bruno, "bruno")):
        balance = svc.balance(wallet.id)
        print(f"{owner}: available {show(balance.available)}")

    print()
    print_statement(svc, alice.id, "alice")
    print_statement(svc, bruno.id, "bruno")

    # Close the store and open it again: everything above is read back from the file. (A
    # memory store keeps nothing once closed, so it is checked as it is.)
    if url.startswith("memory:"):
        reopened = store
        print()
        print(f"{url} (not reopened: a memory store keeps nothing once closed):")
    else:
        store.close()
        reopened = open_store(url)
        print()
        print(f"reopened {url}:")
    try:
        svc = WalletService(reopened, clock=clock, ids=SequentialIds())
        for wallet, owner in ((alice, "alice"), (bruno, "bruno")):
            print(f"  {owner}: available {show(svc.balance(wallet.id).available)}")
        report_ok = svc.verify()
        print(f"journal verified: {report_ok.entries} entries, {len(report_ok.problems)} problems")
    finally:
        reopened.close()
    if not report_ok.ok:  # pragma: no cover - a broken journal is a bug
        raise SystemExit(1)


if __name__ == "__main__":
    main()
