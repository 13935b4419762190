"""An auditor's week: checkpoints kept outside the store prove that the journal was not
rewritten.

The Greenleaf food hub takes a checkpoint of its journal at the close of each day and sends the
line to its auditor (here: a list; in life a file on another machine, a log, an email). At the
end of the week the auditor verifies the store against every checkpoint. Then someone who can
write the database replays the week with one top-up made larger, every hash, chain and seal
recomputed: the copy is consistent in itself, and only the checkpoints show that it is not the
journal the hub wrote.

Run it with ``python examples/integrity_audit.py``. The wallets live in a memory store
(``--db URL`` picks another one, e.g. ``--db sqlite:///audit.db``; a store that already holds
Greenleaf's wallets is refused with one line and exit status 1, and left as it was). The clock
is a :class:`~prepaid_wallet.FixedClock` and ids are sequential, so every run prints the same
thing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prepaid_wallet import (
    Checkpoint,
    FixedClock,
    Money,
    SequentialIds,
    SpendRequest,
    WalletService,
    open_store,
)

HUB = "greenleaf"
DEFAULT_DB = "memory:"
MONDAY = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def week(svc: WalletService, clock: FixedClock, first_top_up: str) -> list[str]:
    """Five days of the hub's business, a checkpoint at each day's close; the checkpoints'
    lines, as the hub sends them to its auditor."""
    ann = svc.open_wallet(owner_id="ann", tenant_id=HUB, currency="EUR").id
    ben = svc.open_wallet(owner_id="ben", tenant_id=HUB, currency="EUR").id
    sent = []
    for day in range(5):
        amount = first_top_up if day == 0 else "20.00"
        svc.top_up(ann, eur(amount), method="card", idempotency_key=f"ann-{day}")
        svc.top_up(ben, eur("15.00"), method="card", idempotency_key=f"ben-{day}")
        svc.spend(ann, SpendRequest(eur("12.40")), idempotency_key=f"basket-ann-{day}")
        svc.spend(ben, SpendRequest(eur("9.90")), idempotency_key=f"basket-ben-{day}")
        sent.append(svc.checkpoint().to_text())
        clock.advance(timedelta(days=1))
    return sent


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Checkpoints against a rewritten history.")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"store URL (default {DEFAULT_DB})")
    args = parser.parse_args(argv)

    clock = FixedClock(MONDAY)
    store = open_store(args.db)
    svc = WalletService(store, clock=clock, ids=SequentialIds())
    if svc.wallets(HUB):  # the week opens the wallets: it needs a store without them
        store.close()
        sys.exit(f"{args.db} already holds the {HUB} wallets (from an earlier run):"
                 " give --db a new store")
    sent = week(svc, clock, "30.00")
    print(f"The hub sent {len(sent)} checkpoints to its auditor, the last:")
    print(f"  {sent[-1]}")
    kept = [Checkpoint.from_text(line) for line in sent]
    report = svc.verify(against=kept)
    print(f"The auditor verifies the store against them: ok={report.ok}"
          f" ({report.entries} entries, {report.wallets} wallets)")
    store.close()

    print()
    print("Someone replays the week in another store, Monday's top-up made 90.00,")
    print("every hash, chain and seal recomputed:")
    again = FixedClock(MONDAY)
    forged = WalletService(open_store("memory:"), clock=again, ids=SequentialIds())
    week(forged, again, "90.00")
    print(f"  on its own it verifies: ok={forged.verify().ok}")
    problems = forged.verify(against=kept).problems
    print(f"  against the auditor's checkpoints: {len(problems)} problem(s)")
    for problem in problems[:2]:
        print(f"    {problem.code}: {problem.subject}")


if __name__ == "__main__":
    main()
