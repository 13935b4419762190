"""Checking the whole store (:func:`verify`, :func:`iter_verify`): every entry on its own, then
every wallet's chain, replayed balances, lots, holds, refunds and reversals, from one snapshot
in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import attrs

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import UnitOfWork, WalletSnapshot
from prepaid_wallet.errors import IntegrityError, InvalidInputError, StorageError
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
from prepaid_wallet.seals import SealKey, check_seal_key
from prepaid_wallet.wallet import HoldStatus, Wallet

__all__ = [
    "Progress", "check_checkpoints", "checkpoint", "iter_verify", "reseal", "verify",
]

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


def reseal(env: Environment, key: SealKey | None) -> int:
    """Seal every stored row again with ``key`` once :func:`verify` finds nothing wrong
    (``IntegrityError`` otherwise, and nothing sealed); the number of rows sealed."""
    check_seal_key(key, "key")
    report = verify(env)
    if not report.ok:
        raise IntegrityError(f"the store has {len(report.problems)} problem(s): verify it"
                             " and repair it before sealing it")
    return env.store.reseal(key)


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
    digest = JOURNAL_GENESIS
    waiting = list(checkpoints)
    while waiting and waiting[0].entries == 0:
        yield from _checkpoint_problems(waiting.pop(0), 0, digest, None)
    for entry in uow.iter_entries():
        done += 1
        yield from _entry_problems(entry)
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
class _Chain:
    """A wallet's chain followed in the order its history is read (by recorded instant, then
    journal order), which recorded time moving forward along the chain makes the chain's own
    order. An entry read before the entry it follows waits, keyed by that entry's hash, and is
    named once it is reached: ``time`` if it was recorded before it, else ``order`` (the two
    were swapped in the journal). An entry nothing leads to breaks the chain; two entries
    following one fork it."""

    wallet_id: str
    problems: list[Problem]
    head: str = GENESIS
    head_at: datetime | None = None
    waiting: dict[str, Entry] = attrs.Factory(dict)
    pending: set[str] = attrs.Factory(set)
    early: set[str] = attrs.Factory(set)

    def follow(self, entry: Entry) -> None:
        """Take the next entry of the history."""
        prev = entry.prev_hash(self.wallet_id)
        if prev == self.head:
            self._link(entry)
            while self.head in self.waiting:
                after = self.waiting.pop(self.head)
                self.pending.discard(after.hash)
                self._link(after)
        elif prev in self.waiting:
            self.problems.append(Problem("chain", entry.id,
                                         f"forks the chain of wallet {self.wallet_id}"))
        else:
            if prev not in self.pending:
                self.early.add(entry.id)
            self.waiting[prev] = entry
            self.pending.add(entry.hash)

    def _link(self, entry: Entry) -> None:
        if self.head_at is not None and entry.recorded_at < self.head_at:
            self.problems.append(Problem(
                "time", entry.id,
                f"recorded at {entry.recorded_at.isoformat()}, before the entry it follows in"
                f" wallet {self.wallet_id}'s chain ({self.head_at.isoformat()})"))
        elif entry.id in self.early:
            self.problems.append(Problem(
                "order", entry.id,
                f"comes before the entry it follows in wallet {self.wallet_id}'s journal"))
        self.early.discard(entry.id)
        self.head = entry.hash
        self.head_at = entry.recorded_at

    def end(self) -> str:
        """Name every entry nothing led to; the chain's head."""
        self.problems.extend(
            Problem("chain", entry.id, f"breaks the chain of wallet {self.wallet_id}")
            for prev, entry in self.waiting.items() if prev not in self.pending)
        return self.head


@attrs.define
class _Replay:
    """What one wallet's history adds up to (:func:`_replay_wallet`)."""

    sums: dict[str, int] = attrs.Factory(dict)
    breakage: dict[str, int] = attrs.Factory(dict)
    refunded: dict[str, int] = attrs.Factory(dict)
    reversals: dict[str, int] = attrs.Factory(dict)
    problems: list[Problem] = attrs.Factory(list)
    head: str = GENESIS
    #: The instant its chain's last entry was recorded at.
    last_at: datetime | None = None
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
    chain = _Chain(wallet.id, replay.problems)
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
        chain.follow(entry)
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
    replay.head = chain.end()
    replay.last_at = chain.head_at
    return replay


def _has_idempotency(uow: UnitOfWork, scope: str, key: str) -> bool:
    """Whether a record is stored under the key (one changed since it was written is there:
    the row checks name it)."""
    try:
        return uow.get_idempotency(scope, key) is not None
    except IntegrityError:
        return True


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
        if not _has_idempotency(uow, wallet.tenant_id, key):
            found.append(Problem(
                "idempotency", f"{wallet.tenant_id}/{key}",
                f"entry {entry_id} was written under this key but its record is missing"))
    prefix = f"wallet:{wallet.id}:"
    if replay.last_at != wallet.last_at:
        latest = "none" if replay.last_at is None else replay.last_at.isoformat()
        found.append(Problem(
            "time", wallet.id,
            f"its latest entry is stored as recorded at"
            f" {'never' if wallet.last_at is None else wallet.last_at.isoformat()}, the"
            f" journal gives {latest}"))
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
