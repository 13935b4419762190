"""Reads (balances, lots, entries, statements, a breakdown) and the store's verification.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

    from prepaid_wallet.ledger import Entry
    from prepaid_wallet.policies import SpendRequest
    from prepaid_wallet.results import (
        Balance,
        Breakdown,
        Checkpoint,
        Problem,
        Progress,
        Statement,
        StatementStream,
        VerifyReport,
    )
    from prepaid_wallet.seals import SealKey
    from prepaid_wallet.wallet import Lot

__all__ = ["Reading"]


class Reading(Facade):
    """Balances, lots, entries, statements, breakdowns and verification."""

    # -- reading ----------------------------------------------------------------------------

    def balance(self, wallet_id: str, *, as_of: datetime | None = None) -> Balance:
        """The wallet's balances now, or at ``as_of`` (aware) from the statement index -- a
        lookup, never a replay of the journal. See :class:`~prepaid_wallet.results.Balance`."""
        from prepaid_wallet.app.queries.balance import balance

        return balance(self._env, wallet_id, as_of=as_of)

    def lots(self, wallet_id: str, *, include_empty: bool = False) -> list[Lot]:
        """The wallet's lots by grant time: those with money left, or all with
        ``include_empty``."""
        from prepaid_wallet.app.queries.balance import lots

        return lots(self._env, wallet_id, include_empty=include_empty)

    def entry(self, entry_id: str) -> Entry:
        """One journal entry; ``EntryNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.balance import entry

        return entry(self._env, entry_id)

    def statement(
        self, wallet_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> Statement:
        """The wallet's entries recorded in ``[since, until)`` (aware; either may be None), each
        with its effect on open, commerce and held balances, the lots it touched (with their
        expiry) and the balances after it; with opening and closing totals. For a long history
        read :meth:`stream_statement` instead, which keeps one line in memory at a time."""
        from prepaid_wallet.app.queries.statement import statement

        return statement(self._env, wallet_id, since=since, until=until)

    def stream_statement(
        self, wallet_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> StatementStream:
        """:meth:`statement` read lazily: the opening total at once, then the lines one at a
        time from one consistent snapshot, in bounded memory however long the history. Use the
        result in a ``with`` block (it holds a read-only unit of work until closed)::

            with service.stream_statement(wallet_id) as stream:
                for line in stream:
                    ...
        """
        from prepaid_wallet.app.queries.statement import stream_statement

        return stream_statement(self._env, wallet_id, since=since, until=until)

    def breakdown(
        self,
        wallet_id: str,
        *,
        at: datetime | None = None,
        request: SpendRequest | None = None,
        locale: str = "en_US",
    ) -> Breakdown:
        """What the wallet holds and what of it is spendable where and until when.

        The open balance; each lot with money left, in the order lots pay, with its remaining
        amount, when it stops paying, its conditions in words (in ``locale``, for day names and
        amounts; see :meth:`~prepaid_wallet.conditions.SpendCondition.describe`) and whether it
        is usable at ``at`` (aware; default now: the current balances judged at that instant);
        and, for a ``request``, what is spendable for it (``Breakdown.spendable``, the decision
        and each lot's share). Writes nothing."""
        from prepaid_wallet.app.queries.breakdown import breakdown

        return breakdown(self._env, wallet_id, at=at, request=request, locale=locale)

    # -- verification -----------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """A :class:`~prepaid_wallet.results.Checkpoint` of the journal as it stands: keep
        it outside the store (``to_text()`` is one line for a file or a log) and pass it to
        :meth:`verify` (``against=``) later to prove that the journal still begins with
        exactly the entries it covers. On PostgreSQL, taking one waits for the commands that
        are writing entries right now and holds new ones back for that moment. Writes
        nothing."""
        from prepaid_wallet.app.queries.verification import checkpoint

        return checkpoint(self._env)

    def reseal(self, key: SealKey | None) -> int:
        """Seal every stored row again with ``key`` (a
        :class:`~prepaid_wallet.seals.SealKey`; ``None``: without a key), after checking
        the store: ``IntegrityError`` (and nothing sealed) if :meth:`verify` finds a problem,
        so that no changed row is sealed as if the library had written it. Returns the number
        of rows sealed. Stop the other writers first and open the store with the new key
        afterwards (a store sealed with a key refuses to open without it: ``SealKeyError``).
        See docs/integrity.md."""
        from prepaid_wallet.app.queries.verification import reseal

        return reseal(self._env, key)

    def verify(self, *, progress: Progress | None = None,
               against: Iterable[Checkpoint] = ()) -> VerifyReport:
        """Check the whole store: every entry balances and its hash is right, every wallet's
        chain is unbroken, stored balances equal a replay of the postings, lots and holds add
        up, no wallet is below its floor, refunds stay within their originals and no entry is
        reversed twice, every other stored row (wallets, lots, holds, charges, idempotency
        records, condition groups, events, records) is as the library wrote it (its seal),
        and the journal begins with the entries of each checkpoint ``against`` names (see
        docs/integrity.md). Returns a report; never raises for what it finds (``InvalidInputError``
        naming ``against`` for anything but checkpoints). :meth:`iter_verify` does the same
        and yields each problem as it is found."""
        from prepaid_wallet.app.queries.verification import verify

        return verify(self._env, progress=progress, against=against)

    def iter_verify(self, *, progress: Progress | None = None,
                    against: Iterable[Checkpoint] = ()) -> Iterator[Problem]:
        """:meth:`verify` as a stream of :class:`~prepaid_wallet.results.Problem`, read from one
        consistent snapshot in two passes: the journal entry by entry (balance and hash), then
        wallet by wallet (chain, replayed balances, lots, holds, refunds, reversals).

        Memory does not grow with the store: the first pass keeps nothing per entry, the second
        keeps only what one wallet needs (its lots' replayed sums). ``progress(phase, done)`` is
        called after every entry (``"entries"``) and wallet (``"wallets"``) checked, and once
        at the end of each phase. The snapshot's unit of work stays open while iterating: open
        no other unit of work on the same thread meanwhile."""
        from prepaid_wallet.app.queries.verification import iter_verify

        return iter_verify(self._env, progress=progress, against=against)

