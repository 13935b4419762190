"""What a :class:`~prepaid_wallet.storage.postgres.PostgresStore` last saw committed (private):
the wallets and the tenant records an optimistic unit may decide on without locking them first.

Nothing here is trusted: an optimistic unit checks, in the database, that every wallet and
record it took from here is still stored so before anything it decided becomes visible (see
:mod:`prepaid_wallet.storage.postgres`). What is kept here only decides whether a unit tries.

* :meth:`Seen.saw` keeps wallets read under their lock or committed by a unit of the store,
  and the tenant records read with a lock (``None`` for a record that was not stored);
  :meth:`Seen.forget` drops what a failed unit touched.
* The odds that a guess holds are followed (an exponential average of the last outcomes): when
  other processes keep moving the same wallets a guess mostly fails and costs a round trip, so
  below even odds a unit locks first, and only one unit in :data:`PROBE` tries, to notice when
  guessing pays again.
* At most :data:`LIMIT` wallets are kept (past it, everything is forgotten at once).

Dictionaries are shared by the store's threads; every operation on them is a single
dictionary call (atomic in CPython), and a lost update only makes a guess fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

from prepaid_wallet.wallet import Wallet

__all__ = ["LIMIT", "PROBE", "Seen"]

#: How many wallets are kept at most.
LIMIT = 100_000
#: Below even odds, one unit in this many still guesses.
PROBE = 32
#: The weight of the latest outcome in the odds.
_WEIGHT = 0.125


class Seen:
    """The wallets and tenant records a store last saw committed, and the odds of a guess."""

    def __init__(self) -> None:
        self.wallets: dict[str, Wallet] = {}
        #: ``(kind, tenant id)`` -> the stored JSON, or None when none was stored.
        self.records: dict[tuple[str, str], str | None] = {}
        self.odds = 1.0
        self._count = itertools.count()

    def worth_trying(self) -> bool:
        """Whether a unit should guess: at even odds or better, or as a probe."""
        return self.odds >= 0.5 or next(self._count) % PROBE == 0

    def outcome(self, held: bool) -> None:
        """A guess held (or not): move the odds."""
        self.odds += _WEIGHT * ((1.0 if held else 0.0) - self.odds)

    def guess(self, wallet_ids: Sequence[str], kinds: Sequence[str]
              ) -> tuple[dict[str, Wallet], dict[tuple[str, str], str | None]] | None:
        """Every wallet of ``wallet_ids`` and every record of ``kinds`` under their tenants,
        as last seen; None unless all of them were seen."""
        wallets: dict[str, Wallet] = {}
        for wallet_id in wallet_ids:
            wallet = self.wallets.get(wallet_id)
            if wallet is None:
                return None
            wallets[wallet_id] = wallet
        records: dict[tuple[str, str], str | None] = {}
        for kind in kinds:
            for tenant_id in {wallet.tenant_id for wallet in wallets.values()}:
                pair = (kind, tenant_id)
                if pair not in self.records:
                    return None
                records[pair] = self.records[pair]
        return wallets, records

    def saw(self, wallets: Iterable[Wallet],
            records: Mapping[tuple[str, str], str | None] | None = None) -> None:
        """Keep committed wallets (and tenant records read with a lock)."""
        if len(self.wallets) > LIMIT:
            self.wallets.clear()
            self.records.clear()
        for wallet in wallets:
            self.wallets[wallet.id] = wallet
        if records:
            self.records.update(records)

    def forget(self, wallet_ids: Iterable[str], records: Iterable[tuple[str, str]] = ()
               ) -> None:
        """Drop wallets (and records) whose stored state is no longer known."""
        for wallet_id in wallet_ids:
            self.wallets.pop(wallet_id, None)
        for pair in records:
            self.records.pop(pair, None)
