"""What the service returns: command results and read views. All frozen values."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Literal, Self

import attrs

from prepaid_wallet.errors import InvalidInputError, PrepaidWalletError
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.money import Money
from prepaid_wallet.policies import Decision
from prepaid_wallet.wallet import AllocationPart

__all__ = [
    "AwardReport",
    "Balance",
    "Breakdown",
    "CaptureResult",
    "Checkpoint",
    "Expiry",
    "ExpiryReport",
    "FailedRow",
    "FeeReport",
    "LotMovement",
    "LotView",
    "LowBalanceEvent",
    "LowBalanceLine",
    "Problem",
    "Progress",
    "Receipt",
    "RefundResult",
    "SpendResult",
    "Statement",
    "StatementLine",
    "StatementStream",
    "TopUpReport",
    "VerifyReport",
]

#: A long job's progress callback: ``progress(phase, done)`` -- rows done so far in the phase.
Progress = Callable[[str, int], None]


@attrs.frozen
class Receipt:
    """A top-up, transfer or reversal that was booked: the entry, the wallet, the amount.

    For a transfer ``wallet_id`` is the source and ``counterparty_id`` the target. ``lot_id`` is
    the conditioned lot the money arrived in, for a top-up or transfer under a condition group;
    ``fee`` the fee taken from the wallet's open balance in the same entry (None: no fee).
    """

    entry_id: str
    kind: EntryKind
    wallet_id: str
    amount: Money
    recorded_at: datetime
    counterparty_id: str | None = None
    lot_id: str | None = None
    fee: Money | None = None


@attrs.frozen
class SpendResult:
    """A spend that went through.

    ``entry_id`` is the journal entry (None when ``CREDIT_FIRST`` credit covered nothing, so no
    money moved); ``allocation`` which lot or the open balance paid how much; ``amount`` what
    credit paid; ``remainder_due`` what another payment method must pay; ``decision`` the full
    decision; ``fee`` the fee taken from the open balance in the same entry (None: no fee).
    """

    entry_id: str | None
    allocation: tuple[AllocationPart, ...]
    amount: Money
    remainder_due: Money
    decision: Decision
    fee: Money | None = None


@attrs.frozen
class CaptureResult:
    """A captured hold: ``captured`` went to the tenant (from ``allocation``), ``released``
    went back to its sources, of which ``breakage`` was booked as breakage because its lot had
    expired meanwhile; ``fee`` the spend fee of what was captured, taken from the open balance
    in the same entry (None: no fee). The fee the hold reserved goes back with ``released``'s
    sources; ``released`` counts only the purchase."""

    entry_id: str
    hold_id: str
    captured: Money
    released: Money
    allocation: tuple[AllocationPart, ...]
    breakage: Money
    fee: Money | None = None


@attrs.frozen
class RefundResult:
    """A refund: ``amount`` of entry ``refund_of`` went back to ``allocation`` (sources, last paid
    first), of which ``breakage`` was booked as breakage because its lot had expired."""

    entry_id: str
    refund_of: str
    amount: Money
    allocation: tuple[AllocationPart, ...]
    breakage: Money


@attrs.frozen
class Expiry:
    """One thing a sweep booked (:meth:`~prepaid_wallet.service.WalletService.sweep_expired`):
    an ended hold released (``kind`` ``"hold"``, ``amount`` what went back, its reserved fee
    included) or an expired lot (``kind`` ``"lot"``, ``amount`` its remainder, booked as
    breakage), in entry ``entry_id``."""

    kind: Literal["hold", "lot"]
    subject_id: str
    wallet_id: str
    amount: Money
    entry_id: str
    at: datetime


@attrs.frozen
class FailedRow:
    """A row a batch job could not book, and why: ``row_id`` names it (a lot or hold id, a
    wallet id), ``position`` is its place in the input (0-based) when the job was given a list
    of rows, and ``error`` the typed error it raised (its ``field`` names the argument of a
    bad input). The other rows of its batch are booked."""

    row_id: str
    error: PrepaidWalletError = attrs.field(eq=False)
    position: int | None = None

    @property
    def error_type(self) -> str:
        """The error's class name (``"WalletNotFoundError"``)."""
        return type(self.error).__name__


@attrs.frozen
class ExpiryReport:
    """What one :meth:`~prepaid_wallet.service.WalletService.expire_due` run booked, and the
    customer top-ups it marked expired (``top_ups_expired``, their ids); ``failed``: the due
    holds and lots it could not book (each with its error), the others being booked."""

    lots_expired: int
    holds_released: int
    entry_ids: tuple[str, ...]
    top_ups_expired: tuple[str, ...] = ()
    failed: tuple[FailedRow, ...] = ()


@attrs.frozen
class AwardReport:
    """What one :meth:`~prepaid_wallet.service.WalletService.award_many` call did: how many
    awards it granted now (``awarded``), how many an earlier call under the same batch key had
    already granted (``already_done``: not granted again), and the rows it could not grant
    (``failed``, each with its typed error)."""

    awarded: int
    already_done: int
    failed: tuple[FailedRow, ...] = ()


@attrs.frozen
class LowBalanceEvent:
    """An operation (entry ``entry_id``, at ``at``) took the wallet's open balance down to
    ``open`` across the tenant's low-balance ``thresholds`` (their labels, highest first)."""

    id: str
    tenant_id: str
    wallet_id: str
    owner_id: str
    entry_id: str
    at: datetime
    open: Money
    floor: Money
    thresholds: tuple[str, ...]


@attrs.frozen
class LowBalanceLine:
    """One wallet of a low-balance report: its owner, open balance, floor, and ``top_up``, the
    least that takes its open balance back above the report's threshold."""

    wallet_id: str
    owner_id: str
    open: Money
    floor: Money
    top_up: Money


@attrs.frozen
class TopUpReport:
    """What one :meth:`~prepaid_wallet.service.WalletService.process_top_ups` run did: the
    credit entries it posted, the intents it gave up, and those still pending (waiting for a
    back-off or for an unknown outcome to be settled); ``stalled``, the intents whose step
    raised (the gateway or the store failed on them): each is left as it was committed, the
    run goes on with the others, and a later run takes it up again."""

    credited: tuple[str, ...]
    given_up: tuple[str, ...]
    pending: tuple[str, ...]
    stalled: tuple[str, ...] = ()


@attrs.frozen
class FeeReport:
    """What one :meth:`~prepaid_wallet.service.WalletService.charge_periodic_fees` run booked:
    one entry per wallet and fee occurrence charged, and how many occurrences were charged less
    than the full fee (or nothing) because the wallet's open balance was at or near its
    floor; ``failed``: the charges it could not book (each with its error), the others being
    booked."""

    entry_ids: tuple[str, ...]
    waived: int
    failed: tuple[FailedRow, ...] = ()


@attrs.frozen
class Balance:
    """A wallet's balances at ``as_of``.

    * ``open`` -- the open balance (may be negative, down to ``floor``).
    * ``commerce`` -- what unexpired lots hold.
    * ``held`` -- what active holds reserve (a hold past its window counts until the expiry
      sweep releases it).
    * ``expired`` -- what lots past their expiry still hold until the sweep books it as breakage;
      never spendable.
    * ``total`` -- ``open + commerce + held``: the customer's credit, reserved or not.
    * ``available`` -- ``open + commerce``: credit not reserved; never below ``floor``.
    * ``spendable`` -- ``available - floor``: the most a credit-only spend could take now.
    """

    wallet_id: str
    as_of: datetime
    open: Money
    commerce: Money
    held: Money
    expired: Money
    floor: Money

    @property
    def total(self) -> Money:
        """``open + commerce + held``."""
        return self.open + self.commerce + self.held

    @property
    def available(self) -> Money:
        """``open + commerce``: credit not reserved by holds."""
        return self.open + self.commerce

    @property
    def spendable(self) -> Money:
        """``available - floor``: the most a credit-only spend could take now."""
        return self.available - self.floor


@attrs.frozen
class LotView:
    """One commerce lot as a customer or a business sees it in a :class:`Breakdown`.

    ``expires_at`` is when it stops paying (its own expiry, its conditions' end or its
    condition group's end, whichever is first; None: never); ``conditions`` what it may pay
    for, in words (``("any purchase",)`` when nothing restricts it); ``usable`` whether it is
    within its life at the breakdown's instant (not expired, its group and its conditions
    already valid) -- time windows, merchants, products and minimums are judged per purchase:
    ``spendable_now`` is what it would pay of the breakdown's request (None without one).
    """

    lot_id: str
    remaining: Money
    expires_at: datetime | None
    priority: int
    reason: str
    conditions: tuple[str, ...]
    group_id: str | None
    group_name: str | None
    usable: bool
    spendable_now: Money | None = None


@attrs.frozen
class Breakdown:
    """What a wallet holds at ``at``, and what of it a purchase could use.

    ``open`` is the open balance and ``open_spendable`` how much of it a spend may take (down to
    the floor); ``lots`` the commerce lots with money left, in the order they pay; ``expired``
    what expired lots still hold until the sweep books it as breakage. With a request,
    ``spendable`` is the most credit could pay for it now (commerce for the lines each lot may
    pay, then the open balance) and ``decision`` the full decision; both None otherwise.
    """

    wallet_id: str
    at: datetime
    currency: str
    open: Money
    open_spendable: Money
    lots: tuple[LotView, ...]
    expired: Money
    spendable: Money | None = None
    decision: Decision | None = None

    @property
    def commerce(self) -> Money:
        """What the usable lots hold (within their life; see :class:`LotView`)."""
        return Money.sum((lot.remaining for lot in self.lots if lot.usable), self.currency)


@attrs.frozen
class LotMovement:
    """A statement line's effect on one lot, with the lot's expiry."""

    lot_id: str
    amount: Money
    expires_at: datetime | None


@attrs.frozen
class StatementLine:
    """One entry as it concerns one wallet, with the wallet's balances after it."""

    entry_id: str
    kind: EntryKind
    recorded_at: datetime
    change: Money
    open_change: Money
    commerce_change: Money
    held_change: Money
    open_after: Money
    commerce_after: Money
    held_after: Money
    lots: tuple[LotMovement, ...]
    description: str | None
    refund_of: str | None = None
    reverses: str | None = None
    reversed_by: str | None = None

    @property
    def total_after(self) -> Money:
        """The wallet's total after this entry."""
        return self.open_after + self.commerce_after + self.held_after


@attrs.frozen
class Statement:
    """A wallet's entries recorded in ``[since, until)`` with opening and closing totals."""

    wallet_id: str
    currency: str
    since: datetime | None
    until: datetime | None
    opening: Money
    closing: Money
    lines: tuple[StatementLine, ...]


@attrs.define(eq=False)
class StatementStream:
    """A statement read lazily, a line at a time, in bounded memory
    (:meth:`~prepaid_wallet.service.WalletService.stream_statement`).

    Use it in a ``with`` block and iterate it once: it holds a read-only unit of work (one
    consistent snapshot) until it is closed, so open no other unit of work on the same thread
    meanwhile. ``opening`` is known at once; ``closing`` is the total after the last line read
    so far -- the statement's closing total once the lines are exhausted.
    """

    wallet_id: str
    currency: str
    since: datetime | None
    until: datetime | None
    opening: Money
    closing: Money
    _lines: Iterator[StatementLine] = attrs.field(repr=False)
    _close: Callable[[], None] = attrs.field(repr=False)

    def __iter__(self) -> Iterator[StatementLine]:
        for line in self._lines:
            self.closing = line.total_after
            yield line

    def close(self) -> None:
        """Stop reading lines and release the unit of work (idempotent): a stream left before
        its end, say by an exception, lets go of its cursors before their connection."""
        stop = getattr(self._lines, "close", None)
        if stop is not None:
            stop()
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@attrs.frozen
class Problem:
    """One thing :meth:`~prepaid_wallet.service.WalletService.verify` found wrong.

    ``code`` is one of ``unbalanced``, ``hash``, ``chain``, ``order`` (an entry out of journal
    order in a wallet's chain), ``time`` (recorded before the wallet's previous entry),
    ``history`` (a stored balance after an entry that the journal does not give), ``posting``
    (a posting's stored instant or balance after), ``balance``, ``lot``, ``floor``, ``hold``,
    ``refund``, ``reversal``, ``idempotency`` (an entry's idempotency record missing),
    ``seal`` (a stored row that is not as the library wrote it), ``checkpoint`` (the journal
    does not extend a checkpoint) or ``unreadable`` (reading stopped on something no store
    holds); ``subject`` the id concerned (for an idempotency record ``tenant/key``, for a
    record ``kind/key``).
    """

    code: str
    subject: str
    detail: str


_CHECKPOINT_TAG = "prepaid-wallet-checkpoint/1"
#: The digest of an empty journal: where every checkpoint's chain of digests starts.
JOURNAL_GENESIS = hashlib.sha256(b"prepaid_wallet journal").hexdigest()


def extend_digest(digest: str, entry_hash: str) -> str:
    """The digest of a journal whose digest was ``digest`` once it gains the entry whose hash
    is ``entry_hash``: SHA-256 of the two hexadecimal texts, one after the other."""
    return hashlib.sha256((digest + entry_hash).encode()).hexdigest()


@attrs.frozen
class Checkpoint:
    """What the journal's first ``entries`` entries were, as a digest a host keeps outside
    the store (a file, a log, another system): ``verify(against=[...])`` proves that the
    journal still starts with exactly those entries.

    ``digest`` is the last of a chain of SHA-256 digests, one per entry in journal order
    (:data:`JOURNAL_GENESIS`, then :func:`extend_digest` with each entry's hash);
    ``last_entry_id`` is the id of the last entry it covers (``None`` for an empty journal);
    ``taken_at`` is when it was taken. :meth:`to_text` is one line of text,
    :meth:`from_text` reads it back.
    """

    entries: int
    last_entry_id: str | None
    digest: str
    taken_at: datetime

    def to_text(self) -> str:
        """One line: ``prepaid-wallet-checkpoint/1 <entries> <last entry id or -> <digest>
        <taken at, ISO 8601>``."""
        return (f"{_CHECKPOINT_TAG} {self.entries} {self.last_entry_id or '-'} {self.digest}"
                f" {self.taken_at.isoformat()}")

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """The checkpoint :meth:`to_text` wrote; ``InvalidInputError`` (field
        ``checkpoint``) for any other text."""
        parts = text.split() if isinstance(text, str) else []
        try:
            tag, entries, last, digest, taken = parts
            count = int(entries)
            at = datetime.fromisoformat(taken)
        except ValueError:
            raise InvalidInputError("checkpoint", "must be a line a checkpoint wrote") from None
        if tag != _CHECKPOINT_TAG or count < 0 or at.tzinfo is None or len(digest) != 64 \
                or not all(c in "0123456789abcdef" for c in digest) or not entries.isdigit():
            raise InvalidInputError("checkpoint", "must be a line a checkpoint wrote")
        return cls(count, None if last == "-" else last, digest, at)


@attrs.frozen
class VerifyReport:
    """The result of checking the whole store: ``ok`` when no problem was found."""

    problems: tuple[Problem, ...]
    entries: int
    wallets: int

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems
