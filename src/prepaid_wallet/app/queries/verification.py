"""Checking the whole store (:func:`verify`, :func:`iter_verify`): every entry on its own, then
every wallet's chain, replayed balances, lots, holds, refunds and reversals, from one snapshot
in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import attrs

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import UnitOfWork, WalletSnapshot
from prepaid_wallet.errors import InvalidInputError, StorageError
from prepaid_wallet.ledger import BELOW_FLOOR, GENESIS, Entry, EntryKind, lot_account
from prepaid_wallet.money import Money
from prepaid_wallet.results import (
    JOURNAL_GENESIS,
    Checkpoint,
    Problem,
    Progress,
    VerifyReport,
    extend_digest,
)
from prepaid_wallet.wallet import HoldStatus, Wallet

__all__ = ["Progress", "check_checkpoints", "checkpoint", "iter_verify", "verify"]

def checkpoint(env: Environment) -> Checkpoint:
    """A checkpoint of the journal as it is settled now (:class:`Checkpoint`): where units
    commit at once, the journal's end is settled first (``journal_end``), then the entries up
    to it are read from one snapshot."""
    with env.store.unit_of_work() as uow:
        end = uow.journal_end()
    digest, count, last = JOURNAL_GENESIS, 0, None
    with env.store.unit_of_work(read_only=True) as uow:
        for entry in uow.iter_entries(until=end):
            digest = extend_digest(digest, entry.hash)
            count += 1
            last = entry.id
    return Checkpoint(count, last, digest, env.now())


def check_checkpoints(against: Iterable[Checkpoint]) -> tuple[Checkpoint, ...]:
    """``against`` as a tuple, each one a :class:`Checkpoint` (``InvalidInputError`` naming
    ``against`` otherwise), fewest entries first."""
    if isinstance(against, str | bytes) or not isinstance(against, Iterable):
        raise InvalidInputError("against", "must be checkpoints", against)
    found = tuple(against)
    for item in found:
        if not isinstance(item, Checkpoint):
            raise InvalidInputError("against", "must be checkpoints", item)
    return tuple(sorted(found, key=lambda c: c.entries))


def verify(env: Environment, *, progress: Progress | None = None,
           against: Iterable[Checkpoint] = ()) -> VerifyReport:
    """Every problem :func:`iter_verify` finds, with the number of entries and wallets
    checked."""
    counts = {"entries": 0, "wallets": 0}

    def track(phase: str, done: int) -> None:
        counts[phase] = done
        if progress is not None:
            progress(phase, done)

    problems = tuple(iter_verify(env, progress=track, against=against))
    return VerifyReport(problems, counts["entries"], counts["wallets"])


def iter_verify(env: Environment, *, progress: Progress | None = None,
                against: Iterable[Checkpoint] = ()) -> Iterator[Problem]:
    """The store's problems as they are found, in two passes over one snapshot: the journal
    entry by entry, then every stored row the journal does not prove (its seal), then wallet by
    wallet. ``progress(phase, done)`` is called after every entry (``"entries"``) and wallet
    (``"wallets"``), and once at the end of each phase. The journal must extend each
    checkpoint ``against`` names."""
    checkpoints = check_checkpoints(against)
    with env.store.unit_of_work(read_only=True) as uow:
        yield from _unreadable("journal", _entries_pass(uow, progress, checkpoints))
        yield from _unreadable("rows", uow.iter_row_problems())
        yield from _unreadable("wallets", _wallets_pass(uow, progress))


def _unreadable(part: str, problems: Iterator[Problem]) -> Iterator[Problem]:
    """``problems``, and if reading the store fails on something no store of the library
    holds (a row changed by hand past reading), one last problem saying where and why: the
    rows that caused it are named by the row checks."""
    try:
        yield from problems
    except StorageError:
        raise  # the store cannot be read at all: not a problem of what it holds
    except Exception as exc:
        yield Problem("unreadable", part,
                      f"reading the {part} stopped: {type(exc).__name__}: {exc}")


def _entries_pass(uow: UnitOfWork, progress: Progress | None,
                  checkpoints: tuple[Checkpoint, ...]) -> Iterator[Problem]:
    """The journal, entry by entry in journal order, and the checkpoints it must extend
    (fewest entries first)."""
    done = 0
    order = _JournalOrder()
    digest = JOURNAL_GENESIS
    waiting = list(checkpoints)
    while waiting and waiting[0].entries == 0:
        yield from _checkpoint_problems(waiting.pop(0), 0, digest, None)
    for entry in uow.iter_entries():
        done += 1
        yield from _entry_problems(entry)
        yield from order.follow(entry)
        if waiting:
            digest = extend_digest(digest, entry.hash)
            while waiting and waiting[0].entries == done:
                yield from _checkpoint_problems(waiting.pop(0), done, digest, entry.id)
        if progress is not None:
            progress("entries", done)
    for point in waiting:
        yield Problem("checkpoint", _checkpoint_name(point),
                      f"covers {point.entries} entries but the journal holds {done}")
    if progress is not None:
        progress("entries", done)


def _checkpoint_name(point: Checkpoint) -> str:
    return f"checkpoint of {point.entries} entries at {point.taken_at.isoformat()}"


def _checkpoint_problems(point: Checkpoint, done: int, digest: str,
                         last: str | None) -> list[Problem]:
    """Whether the journal's first ``done`` entries (their digest ``digest``, the last one
    ``last``) are the ones ``point`` covers."""
    if digest == point.digest and last == point.last_entry_id:
        return []
    return [Problem("checkpoint", _checkpoint_name(point),
                    f"the journal's first {done} entries are not the ones checkpointed (the"
                    f" {done}th is {last}, the checkpoint's {point.last_entry_id}): an entry"
                    " up to it was changed, added, removed or moved")]


def _wallets_pass(uow: UnitOfWork, progress: Progress | None) -> Iterator[Problem]:
    """Every wallet: its chain and history replayed, against its stored state."""
    done = 0
    for wallet in uow.iter_wallets():
        done += 1
        yield from _verify_wallet(uow, wallet)
        if progress is not None:
            progress("wallets", done)
    if progress is not None:
        progress("wallets", done)


@attrs.define
class _JournalOrder:
    """Each wallet's chain followed in journal order (the first pass): an entry must link to
    the wallet's entry right before it in the journal, and be recorded no earlier. Two entries
    swapped in the journal, or one recorded before the entry it follows, are named here."""

    heads: dict[str, str] = attrs.Factory(dict)
    instants: dict[str, datetime] = attrs.Factory(dict)

    def follow(self, entry: Entry) -> list[Problem]:
        """What is wrong with ``entry``'s place in the journal, and remember it as the latest
        entry of each of its wallets."""
        found = []
        for wallet_id, prev in zip(entry.wallet_ids, entry.prev_hashes, strict=False):
            if prev != self.heads.get(wallet_id, GENESIS):
                found.append(Problem(
                    "order", entry.id,
                    f"does not follow the entry before it in wallet {wallet_id}'s journal"))
            last = self.instants.get(wallet_id)
            if last is not None and entry.recorded_at < last:
                found.append(Problem(
                    "time", entry.id,
                    f"recorded at {entry.recorded_at.isoformat()}, before wallet {wallet_id}'s"
                    f" previous entry ({last.isoformat()})"))
            self.heads[wallet_id] = entry.hash
            self.instants[wallet_id] = entry.recorded_at
        return found


@attrs.define
class _Replay:
    """What one wallet's history adds up to (:func:`_replay_wallet`)."""

    sums: dict[str, int] = attrs.Factory(dict)
    breakage: dict[str, int] = attrs.Factory(dict)
    refunded: dict[str, int] = attrs.Factory(dict)
    reversals: dict[str, int] = attrs.Factory(dict)
    problems: list[Problem] = attrs.Factory(list)
    head: str = GENESIS
    #: The idempotency keys its entries were written under (entry id by key).
    keys: dict[str, str] = attrs.Factory(dict)
    #: Whether an open balance below the floor is a chargeback's debt: the last entry that
    #: left it below the floor was a chargeback, or raised it.
    debt: bool = False


def _replay_wallet(uow: UnitOfWork, wallet: Wallet) -> _Replay:
    """One pass over the wallet's history: its accounts' sums, its chain, and the refunds,
    reversals and breakage it took part in."""
    replay = _Replay()
    prefix = f"wallet:{wallet.id}:"
    sums = replay.sums
    # History comes in recorded order, which two concurrent commands may have swapped against
    # journal order: an entry whose predecessor has not come yet waits, keyed by that
    # predecessor's hash, so the chain is followed link by link.
    waiting: dict[str, Entry] = {}
    head = GENESIS
    commerce = 0
    for entry, after in uow.wallet_history(wallet.id):
        for p in entry.postings:
            if p.account.startswith(prefix):
                sums[p.account] = sums.get(p.account, 0) + p.amount.minor_units
                if ":lot:" in p.account:
                    commerce += p.amount.minor_units
        replay.problems.extend(_history_problems(
            wallet, entry, after,
            (sums.get(prefix + "open", 0), commerce, sums.get(prefix + "held", 0))))
        prev = entry.prev_hash(wallet.id)
        if prev == head:
            head = entry.hash
            while head in waiting:
                head = waiting.pop(head).hash
        elif prev in waiting:
            replay.problems.append(Problem("chain", entry.id,
                                           f"forks the chain of wallet {wallet.id}"))
        else:
            waiting[prev] = entry
        if entry.wallet_ids[0] == wallet.id:  # counted once, by its first wallet
            if entry.idempotency_key is not None:
                replay.keys.setdefault(entry.idempotency_key, entry.id)
            if entry.reverses is not None:
                replay.reversals[entry.reverses] = replay.reversals.get(entry.reverses, 0) + 1
            if entry.refund_of is not None:
                revenue = sum(-p.amount.minor_units for p in entry.postings
                              if p.account.endswith(":revenue"))
                replay.refunded[entry.refund_of] = (
                    replay.refunded.get(entry.refund_of, 0) + revenue)
        if entry.kind in BELOW_FLOOR:
            replay.debt = True
        elif sum(p.amount.minor_units for p in entry.postings
                 if p.account == prefix + "open") < 0:
            replay.debt = False  # lowered by anything else: the floor applies again
        if entry.kind is EntryKind.BREAKAGE:
            for p in entry.postings:
                if p.account.startswith(prefix) and ":lot:" in p.account:
                    replay.breakage[p.account] = replay.breakage.get(p.account, 0) + 1
    waiting_hashes = {entry.hash for entry in waiting.values()}
    replay.problems.extend(
        Problem("chain", entry.id, f"breaks the chain of wallet {wallet.id}")
        for prev, entry in waiting.items() if prev not in waiting_hashes
    )
    replay.head = head
    return replay


def _history_problems(wallet: Wallet, entry: Entry, after: WalletSnapshot,
                      replayed: tuple[int, int, int]) -> list[Problem]:
    """What is wrong with the wallet's stored balances right after ``entry`` (the history
    statements and as-of balances read): they must be what the journal adds up to there."""
    if after.entry_id != entry.id or after.recorded_at != entry.recorded_at:
        return [Problem("history", wallet.id,
                        f"the row after entry {entry.id} names entry {after.entry_id} at"
                        f" {after.recorded_at.isoformat()}")]
    stored = (after.open.minor_units, after.commerce.minor_units, after.held.minor_units)
    if stored == replayed:
        return []
    names = ("open", "commerce", "held")
    wrong = ", ".join(
        f"{name} {_minor_text(s, wallet.currency)} (the journal gives"
        f" {_minor_text(r, wallet.currency)})"
        for name, s, r in zip(names, stored, replayed, strict=True) if s != r)
    return [Problem("history", wallet.id, f"after entry {entry.id}: {wrong}")]


def _verify_wallet(uow: UnitOfWork, wallet: Wallet) -> list[Problem]:
    """What is wrong with one wallet: its chain, its stored balances against the replay, its
    lots, holds, refunds and reversals."""
    replay = _replay_wallet(uow, wallet)
    found = replay.problems
    sums = replay.sums
    for original, n in replay.reversals.items():
        if n > 1:
            found.append(Problem("reversal", original, f"reversed {n} times"))
    for original, total in replay.refunded.items():
        charge = uow.get_charge(original)
        if charge is None or total > charge.amount.minor_units or \
                total != charge.refunded_total.minor_units:
            refunded = _minor_text(total, wallet.currency)
            detail = (f"refunds add up to {refunded} but no charge was recorded"
                      if charge is None else
                      f"refunds add up to {refunded} against a charge of {charge.amount}"
                      f" with {charge.refunded_total} refunded")
            found.append(Problem("refund", original, detail))
    for key, entry_id in replay.keys.items():
        if uow.get_idempotency(wallet.tenant_id, key) is None:
            found.append(Problem(
                "idempotency", f"{wallet.tenant_id}/{key}",
                f"entry {entry_id} was written under this key but its record is missing"))
    prefix = f"wallet:{wallet.id}:"
    if replay.head != wallet.head:
        found.append(Problem("chain", wallet.id, "stored head is not the last entry's hash"))
    checks = (("open", wallet.open), ("held", wallet.held))
    for name, stored in checks:
        replayed = sums.get(prefix + name, 0)
        if stored.minor_units != replayed:
            found.append(Problem(
                "balance", wallet.id,
                f"{name} is {stored} but the journal gives"
                f" {_minor_text(replayed, wallet.currency)}"))
    lot_total = 0
    for lot in uow.wallet_lots(wallet.id):
        account = lot_account(wallet.id, lot.id)
        replayed = sums.get(account, 0)
        lot_total += lot.remaining.minor_units
        if lot.remaining.minor_units != replayed:
            found.append(Problem(
                "lot", lot.id,
                f"remaining {lot.remaining} but the journal gives"
                f" {_minor_text(replayed, wallet.currency)}"))
        if lot.remaining.is_negative():
            found.append(Problem("lot", lot.id, "below zero"))
        booked = replay.breakage.get(account, 0)
        if booked > 1 or (lot.expired_entry_id is not None) != (booked == 1):
            found.append(Problem("lot", lot.id, f"breakage booked {booked} times"))
        if lot.expired_entry_id is not None and lot.is_live:
            found.append(Problem("lot", lot.id, "money left after its breakage"))
    if lot_total != wallet.commerce.minor_units:
        found.append(Problem("balance", wallet.id,
                             f"commerce is {wallet.commerce} but its lots add up to "
                             f"{_minor_text(lot_total, wallet.currency)}"))
    if wallet.open < wallet.floor and not replay.debt:
        found.append(Problem("floor", wallet.id, f"open {wallet.open} below {wallet.floor}"))
    active = sum(h.reserved.minor_units for h in uow.wallet_holds(wallet.id)
                 if h.status is HoldStatus.ACTIVE)
    if active != wallet.held.minor_units:
        found.append(Problem("hold", wallet.id,
                             f"held is {wallet.held} but active holds add up to"
                             f" {_minor_text(active, wallet.currency)}"))
    return found


def _minor_text(minor: int, currency: str) -> str:
    """``minor`` units of ``currency`` written as an amount (``"19.00 EUR"``), for verify's
    messages; a number no amount can hold (a tampered store) is written as it is."""
    try:
        return str(Money.from_minor_units(minor, currency))
    except InvalidInputError:
        return f"{minor} minor units of {currency}"


def _entry_problems(entry: Entry) -> list[Problem]:
    """What is wrong with one entry on its own: its balance per currency and its hash."""
    found = []
    totals: dict[str, int] = {}
    for p in entry.postings:
        totals[p.amount.currency] = totals.get(p.amount.currency, 0) + p.amount.minor_units
    if any(totals.values()) or len(entry.postings) < 2:
        sums = ", ".join(_minor_text(total, currency) for currency, total in totals.items())
        found.append(Problem("unbalanced", entry.id,
                             f"postings sum to {sums or 'nothing'}, not zero"))
    if entry.compute_hash() != entry.hash:
        found.append(Problem("hash", entry.id, "content does not match its hash"))
    return found
