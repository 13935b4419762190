"""The wallet aggregate: wallets, commerce lots, holds and refundable charges, and the pure
transitions between their states.

Each transition takes the current state and returns a :class:`Change`: the journal entry that
explains it and the new state of every wallet, lot, hold and charge it touched. Balances are never
set directly: :func:`_apply` derives them from the entry's postings, so stored balances always
equal a replay of the journal. Nothing here reads the clock, generates ids or touches storage:
the service passes ``at`` and the new ids in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

import attrs

from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.errors import IntegrityError
from prepaid_wallet.ledger import (
    BELOW_FLOOR,
    GENESIS,
    AccountKind,
    Entry,
    EntryKind,
    Posting,
    _build,
    adjustment_account,
    awards_account,
    breakage_account,
    fees_account,
    funding_account,
    lot_account,
    open_account,
    payout_account,
    revenue_account,
)
from prepaid_wallet.money import MAX_MINOR_UNITS, Money, _trusted, _valid

__all__ = [
    "AllocationPart",
    "Change",
    "Charge",
    "EntryInfo",
    "Hold",
    "HoldStatus",
    "Lot",
    "Wallet",
    "WalletStatus",
    "adjust",
    "award",
    "charge_fee",
    "expire_lot",
    "extend_lot",
    "new_lot",
    "new_wallet",
    "payout",
    "refund",
    "refundable_parts",
    "reverse",
    "settle",
    "spend",
    "split_parts",
    "top_up",
    "transfer",
]


class WalletStatus(StrEnum):
    """A wallet's life-cycle state."""

    ACTIVE = "active"


@attrs.frozen
class Wallet:
    """One owner's credit at one tenant, in one currency.

    ``open`` is the open balance (it may go down to ``floor``, which is zero or negative),
    ``commerce`` the sum of the remainders of its lots, ``held`` what active holds reserve.
    ``version`` grows by one with every entry; ``head`` is the hash of its latest entry and
    ``last_at`` its recorded instant (None before the first entry). A unit of work never records
    an entry of the wallet at an instant before ``last_at`` (or ``created_at``): see
    :attr:`not_before`.
    """

    id: str
    tenant_id: str
    owner_id: str
    currency: str
    floor: Money
    created_at: datetime
    open: Money
    commerce: Money
    held: Money
    status: WalletStatus = WalletStatus.ACTIVE
    version: int = 0
    head: str = GENESIS
    metadata: tuple[tuple[str, str], ...] = ()
    last_at: datetime | None = None

    @property
    def not_before(self) -> datetime:
        """The earliest instant the wallet's next entry may be recorded at: the recorded
        instant of its latest entry, or when it was opened if it has none. Recorded time never
        goes backwards along a wallet's chain."""
        return self.created_at if self.last_at is None else self.last_at

    @property
    def total(self) -> Money:
        """Open + commerce + held: everything the books hold for this wallet."""
        return self.open + self.commerce + self.held


@attrs.frozen
class Lot:
    """A commerce lot: an award that may expire. ``remaining`` is never negative.

    A lot is spendable while ``remaining`` is positive and ``at < expires_at``; from its expiry
    on, its remainder waits for the expiry sweep, which books it as breakage once and records
    ``expired_entry_id``.

    A lot may carry conditions: ``condition`` says what it may pay for (products, merchants,
    times; see :mod:`prepaid_wallet.conditions`), and ``group_id``/``group_version`` name the
    condition group it was granted under (``condition`` is then that version's conditions, and
    the group's current validity applies too). A lot without either pays for anything.
    """

    id: str
    wallet_id: str
    amount: Money
    remaining: Money
    granted_at: datetime
    expires_at: datetime | None
    priority: int
    reason: str
    entry_id: str
    expired_entry_id: str | None = None
    condition: SpendCondition | None = None
    group_id: str | None = None
    group_version: int | None = None

    def is_expired(self, at: datetime) -> bool:
        """True at or after the lot's expiry (intervals are half-open)."""
        return self.expires_at is not None and at >= self.expires_at

    @property
    def is_live(self) -> bool:
        """True while the lot still holds money."""
        return self.remaining.minor_units > 0


@attrs.frozen
class AllocationPart:
    """``amount`` taken from (or returned to) one source: lot ``lot_id``, or the open balance
    when ``lot_id`` is None. ``expires_at`` is the lot's expiry, for display. ``line`` is the
    index of the request's line item the part pays (None for a request without lines)."""

    lot_id: str | None
    amount: Money
    expires_at: datetime | None = None
    line: int | None = None

    @property
    def is_open(self) -> bool:
        """True for the open balance."""
        return self.lot_id is None


class HoldStatus(StrEnum):
    """A hold resolves at most once: captured, voided or expired."""

    ACTIVE = "active"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


@attrs.frozen
class Hold:
    """Money reserved for a later capture, taken from ``allocation`` into the held account.

    ``amount`` is the purchase: what may be captured. ``allocation`` pays it in spend order,
    then, as a last open-balance part, the spend fee reserved for the capture
    (:attr:`reserved_fee`); the held account keeps :attr:`reserved`, the two together.
    """

    id: str
    wallet_id: str
    amount: Money
    allocation: tuple[AllocationPart, ...]
    created_at: datetime
    expires_at: datetime
    entry_id: str
    status: HoldStatus = HoldStatus.ACTIVE
    captured: Money | None = None
    resolved_entry_id: str | None = None
    resolved_at: datetime | None = None

    @property
    def reserved(self) -> Money:
        """What the hold keeps in the held account: ``amount`` and its :attr:`reserved_fee`
        (the allocation's total)."""
        return Money.sum((p.amount for p in self.allocation), self.amount.currency)

    @property
    def reserved_fee(self) -> Money | None:
        """The spend fee reserved for the capture (what a spend of ``amount`` would have paid
        when the hold was placed), taken from the open balance; None when there is none."""
        extra = self.reserved - self.amount
        return extra if extra.is_positive() else None


@attrs.frozen
class Charge:
    """A spend or capture that may be refunded: what it took from where, and what of it has been
    refunded so far (per source, cumulative)."""

    entry_id: str
    wallet_id: str
    amount: Money
    allocation: tuple[AllocationPart, ...]
    refunded: tuple[AllocationPart, ...] = ()

    @property
    def refunded_total(self) -> Money:
        """Everything refunded so far."""
        return Money.sum((p.amount for p in self.refunded), self.amount.currency)

    @property
    def refundable(self) -> Money:
        """What may still be refunded."""
        return self.amount - self.refunded_total


@attrs.frozen
class Change:
    """The outcome of a transition: the entry and the new state of everything it touched."""

    entry: Entry
    wallets: tuple[Wallet, ...]
    lots: tuple[Lot, ...] = ()
    holds: tuple[Hold, ...] = ()
    charges: tuple[Charge, ...] = ()

    def wallet(self, wallet_id: str) -> Wallet:
        """The new state of ``wallet_id``."""
        for wallet in self.wallets:
            if wallet.id == wallet_id:
                return wallet
        raise KeyError(wallet_id)


@attrs.frozen
class EntryInfo:
    """What every entry carries besides its postings: its id, instant, key, actor, metadata."""

    entry_id: str
    at: datetime
    idempotency_key: str | None = None
    actor: str | None = None
    metadata: Mapping[str, str] | None = None


def new_wallet(
    *,
    wallet_id: str,
    tenant_id: str,
    owner_id: str,
    currency: str,
    floor: Money,
    at: datetime,
    metadata: Mapping[str, str] | None = None,
) -> Wallet:
    """A new, empty wallet."""
    zero = Money.zero(currency)
    return Wallet(
        id=wallet_id,
        tenant_id=tenant_id,
        owner_id=owner_id,
        currency=currency,
        floor=floor,
        created_at=at,
        open=zero,
        commerce=zero,
        held=zero,
        metadata=tuple(sorted((metadata or {}).items())),
    )


# -- applying an entry ---------------------------------------------------------------------------


def _apply(
    kind: EntryKind,
    info: EntryInfo,
    postings: Iterable[Posting],
    wallets: Sequence[Wallet],
    lots: Mapping[str, Lot] | None = None,
    *,
    refund_of: str | None = None,
    reverses: str | None = None,
) -> tuple[Entry, tuple[Wallet, ...], dict[str, Lot]]:
    """Build the entry and derive every wallet and lot balance from its postings.

    Raises ``IntegrityError`` if a lot would go negative, a held account negative, or an open
    balance that the entry lowers would end below the wallet's floor (unless ``kind`` is one
    of ``ledger.BELOW_FLOOR``: a chargeback); ``InvalidAmountError`` if any balance or the
    wallet's total would pass ``2**63 - 1`` minor units.
    """
    entry, refs = _build(
        Entry, info.entry_id, kind, postings, info.at, {w.id: w.head for w in wallets},
        info.idempotency_key, info.actor, info.metadata, refund_of, reverses,
    )
    # Per wallet: what the entry adds to its open balance, its lots and its held account.
    deltas: dict[str, list[int]] = {w.id: [0, 0, 0] for w in wallets}
    new_lots: dict[str, Lot] = {}
    for posting, ref in zip(entry.postings, refs, strict=True):
        account_kind = ref.kind
        if account_kind is _OPEN:
            deltas[ref.owner][0] += posting.amount.minor_units
        elif account_kind is _HELD:
            deltas[ref.owner][2] += posting.amount.minor_units
        elif account_kind is _LOT:
            deltas[ref.owner][1] += posting.amount.minor_units
            assert ref.name is not None
            lot = new_lots.get(ref.name) or (lots or {}).get(ref.name)
            if lot is None or lot.wallet_id != ref.owner:
                raise IntegrityError(f"posting to unknown lot {ref.name!r}")
            remaining = lot.remaining + posting.amount
            if remaining.is_negative():
                raise IntegrityError(f"lot {lot.id!r} would go below zero")
            new_lots[lot.id] = _lot_with(lot, remaining)
    out: list[Wallet] = []
    for wallet in wallets:
        open_delta, lot_delta, held_delta = deltas[wallet.id]
        out.append(_after(wallet, kind, entry, open_delta, lot_delta, held_delta))
    return entry, tuple(out), new_lots


#: ``Wallet(...)``, ``Lot(...)``, ``Change(...)``, ``Charge(...)`` for what a transition derives
#: (see :func:`~prepaid_wallet.money._trusted`).
_new_wallet = _trusted(Wallet)
_new_lot = _trusted(Lot)
_new_change = _trusted(Change)
_new_charge = _trusted(Charge)
# Read for every posting: an enum member read from its class costs about a function call.
_OPEN, _LOT, _HELD = AccountKind.OPEN, AccountKind.LOT, AccountKind.HELD


def _after(
    wallet: Wallet, kind: EntryKind, entry: Entry, open_delta: int, lot_delta: int,
    held_delta: int,
) -> Wallet:
    """``wallet`` after ``entry``, which adds the deltas (minor units) to its open balance, its
    lots and its held account: :func:`_after_checked` (the same wallet, the same errors)
    computed on the minor units, for the usual wallet whose amounts are all in its currency and
    stay in range; anything else takes :func:`_after_checked` itself."""
    currency = wallet.currency
    open_, commerce, held, floor = wallet.open, wallet.commerce, wallet.held, wallet.floor
    new_open = open_.minor_units + open_delta
    new_commerce = commerce.minor_units + lot_delta
    new_held = held.minor_units + held_delta
    total = new_open + new_commerce
    if not (
        open_.currency == currency and commerce.currency == currency
        and held.currency == currency and floor.currency == currency
        and -MAX_MINOR_UNITS <= new_open <= MAX_MINOR_UNITS
        and -MAX_MINOR_UNITS <= new_commerce <= MAX_MINOR_UNITS
        and -MAX_MINOR_UNITS <= new_held <= MAX_MINOR_UNITS
        and -MAX_MINOR_UNITS <= total <= MAX_MINOR_UNITS
        and -MAX_MINOR_UNITS <= total + new_held <= MAX_MINOR_UNITS
    ):
        return _after_checked(wallet, kind, entry, open_delta, lot_delta, held_delta)
    if open_delta < 0 and new_open < floor.minor_units and kind not in BELOW_FLOOR:
        raise IntegrityError(f"wallet {wallet.id!r} would go below its floor")
    if new_held < 0:
        raise IntegrityError(f"wallet {wallet.id!r} would hold less than nothing")
    return _new_wallet(
        wallet.id,
        wallet.tenant_id,
        wallet.owner_id,
        currency,
        floor,
        wallet.created_at,
        _valid(new_open, currency) if open_delta else open_,
        _valid(new_commerce, currency) if lot_delta else commerce,
        _valid(new_held, currency) if held_delta else held,
        wallet.status,
        wallet.version + 1,
        entry.hash,
        wallet.metadata,
        entry.recorded_at,
    )


def _after_checked(
    wallet: Wallet, kind: EntryKind, entry: Entry, open_delta: int, lot_delta: int,
    held_delta: int,
) -> Wallet:
    """``wallet`` after ``entry`` by ``Money`` arithmetic: ``InvalidAmountError`` past the
    storable range, ``CurrencyMismatchError`` for an amount in another currency,
    ``IntegrityError`` below the floor (unless ``kind`` may go there) or for a negative held
    account."""
    currency = wallet.currency
    new_open = wallet.open + _valid(open_delta, currency) if open_delta else wallet.open
    new_held = wallet.held + _valid(held_delta, currency) if held_delta else wallet.held
    if open_delta < 0 and new_open < wallet.floor and kind not in BELOW_FLOOR:
        raise IntegrityError(f"wallet {wallet.id!r} would go below its floor")
    if new_held.is_negative():
        raise IntegrityError(f"wallet {wallet.id!r} would hold less than nothing")
    updated = Wallet(
        id=wallet.id,
        tenant_id=wallet.tenant_id,
        owner_id=wallet.owner_id,
        currency=currency,
        floor=wallet.floor,
        created_at=wallet.created_at,
        open=new_open,
        commerce=wallet.commerce + _valid(lot_delta, currency) if lot_delta
        else wallet.commerce,
        held=new_held,
        status=wallet.status,
        version=wallet.version + 1,
        head=entry.hash,
        metadata=wallet.metadata,
        last_at=entry.recorded_at,
    )
    updated.total  # noqa: B018 - raises InvalidAmountError past the storable range
    return updated


def _lot_with(lot: Lot, remaining: Money) -> Lot:
    """``attrs.evolve(lot, remaining=remaining)``, field by field (a lot is rebuilt on every
    posting to it; evolve looks the fields up each time)."""
    return _new_lot(
        lot.id,
        lot.wallet_id,
        lot.amount,
        remaining,
        lot.granted_at,
        lot.expires_at,
        lot.priority,
        lot.reason,
        lot.entry_id,
        lot.expired_entry_id,
        lot.condition,
        lot.group_id,
        lot.group_version,
    )


def _source_account(wallet_id: str, part: AllocationPart) -> str:
    return open_account(wallet_id) if part.lot_id is None else lot_account(wallet_id, part.lot_id)


#: When each lot stops paying, by lot id, where that is not (only) its own expiry: the
#: service passes the end of a lot's condition group this way.
Ends = Mapping[str, datetime | None]


def _return_parts(
    wallet: Wallet,
    parts: Iterable[AllocationPart],
    lots: Mapping[str, Lot],
    at: datetime,
    ends: Ends | None = None,
) -> tuple[list[Posting], Money]:
    """Postings that give ``parts`` back to where they came from; a part whose lot has expired
    (at its own expiry, or at its entry in ``ends``) or was already swept goes to breakage
    instead. Returns the postings and the breakage."""
    postings: list[Posting] = []
    breakage = Money.zero(wallet.currency)
    for part in parts:
        if part.lot_id is not None:
            lot = lots[part.lot_id]
            end = lot.expires_at if ends is None else ends.get(lot.id, lot.expires_at)
            if (end is not None and at >= end) or lot.expired_entry_id is not None:
                postings.append(Posting(breakage_account(wallet.tenant_id), part.amount))
                breakage += part.amount
                continue
        postings.append(Posting(_source_account(wallet.id, part), part.amount))
    return postings, breakage


# -- transitions ---------------------------------------------------------------------------------


def new_lot(
    wallet: Wallet,
    *,
    lot_id: str,
    amount: Money,
    info: EntryInfo,
    reason: str,
    expires_at: datetime | None = None,
    priority: int = 0,
    condition: SpendCondition | None = None,
    group_id: str | None = None,
    group_version: int | None = None,
) -> Lot:
    """A lot of ``amount`` about to be credited to ``wallet`` by the entry of ``info`` (it
    holds nothing until that entry's postings are applied)."""
    return Lot(
        id=lot_id,
        wallet_id=wallet.id,
        amount=amount,
        remaining=Money.zero(wallet.currency),
        granted_at=info.at,
        expires_at=expires_at,
        priority=priority,
        reason=reason,
        entry_id=info.entry_id,
        condition=condition,
        group_id=group_id,
        group_version=group_version,
    )


def _credit_account(wallet: Wallet, lot: Lot | None) -> str:
    return open_account(wallet.id) if lot is None else lot_account(wallet.id, lot.id)


def _fee_postings(wallet: Wallet, fee: Money | None) -> list[Posting]:
    """A fee (positive) taken from the wallet's open balance into the tenant's fee account, in
    the same entry as the operation it is charged on; nothing for no fee."""
    if fee is None or fee.is_zero():
        return []
    return [Posting(open_account(wallet.id), -fee), Posting(fees_account(wallet.tenant_id), fee)]


def top_up(
    wallet: Wallet,
    amount: Money,
    method: str,
    info: EntryInfo,
    *,
    lot: Lot | None = None,
    fee: Money | None = None,
) -> Change:
    """Credit ``amount`` (positive) paid with ``method`` to the open balance, or into ``lot``
    (a new lot from :func:`new_lot`: money that arrives as conditioned commerce). A ``fee`` is
    taken from the open balance in the same entry."""
    entry, wallets, lots = _apply(
        EntryKind.TOP_UP,
        info,
        [
            Posting(funding_account(wallet.tenant_id, method), -amount),
            Posting(_credit_account(wallet, lot), amount),
            *_fee_postings(wallet, fee),
        ],
        [wallet],
        None if lot is None else {lot.id: lot},
    )
    return _new_change(entry, wallets, tuple(lots.values()))


def return_top_up(
    wallet: Wallet, amount: Money, method: str, info: EntryInfo, *, chargeback: bool = False
) -> Change:
    """Take ``amount`` (positive) of a top-up paid with ``method`` back out of the open balance
    to the method's funding account: a refund to the payment method (``TOP_UP_REFUND``; the
    open balance may not end below the floor) or, with ``chargeback``, the provider taking it
    back (``CHARGEBACK``; it may end below the floor: a debt)."""
    entry, wallets, _ = _apply(
        EntryKind.CHARGEBACK if chargeback else EntryKind.TOP_UP_REFUND,
        info,
        [
            Posting(open_account(wallet.id), -amount),
            Posting(funding_account(wallet.tenant_id, method), amount),
        ],
        [wallet],
    )
    return _new_change(entry, wallets)


def payout(
    wallet: Wallet, amount: Money, method: str, info: EntryInfo, *, fee: Money | None = None
) -> Change:
    """Pay ``amount`` (positive) of the open balance out to the owner with ``method``; a
    ``fee`` is taken from the open balance in the same entry."""
    entry, wallets, _ = _apply(
        EntryKind.PAYOUT,
        info,
        [
            Posting(open_account(wallet.id), -amount),
            Posting(payout_account(wallet.tenant_id, method), amount),
            *_fee_postings(wallet, fee),
        ],
        [wallet],
    )
    return _new_change(entry, wallets)


def adjust(
    wallet: Wallet, amount: Money, info: EntryInfo, *, fee: Money | None = None
) -> Change:
    """An operator's manual adjustment of the open balance: a credit when ``amount`` is
    positive, a debit when negative (against the tenant's adjustment account); a ``fee`` is
    taken from the open balance in the same entry."""
    kind = EntryKind.CREDIT if amount.is_positive() else EntryKind.DEBIT
    entry, wallets, _ = _apply(
        kind,
        info,
        [
            Posting(adjustment_account(wallet.tenant_id), -amount),
            Posting(open_account(wallet.id), amount),
            *_fee_postings(wallet, fee),
        ],
        [wallet],
    )
    return _new_change(entry, wallets)


def settle(
    wallet: Wallet, kind: EntryKind, amount: Money, account: str, info: EntryInfo
) -> Change:
    """An entry of ``kind`` moving ``amount`` from the open balance to the tenant's
    ``account`` (a negative ``amount``: from that account into the open balance), e.g. money
    turned into days of service and back."""
    entry, wallets, _ = _apply(
        kind, info, [Posting(open_account(wallet.id), -amount), Posting(account, amount)],
        [wallet])
    return _new_change(entry, wallets)


def charge_fee(wallet: Wallet, fee: Money, info: EntryInfo) -> Change:
    """A fee charged on its own (a periodic fee): ``fee`` (positive) from the open balance to
    the tenant's fee account."""
    entry, wallets, _ = _apply(EntryKind.FEE, info, _fee_postings(wallet, fee), [wallet])
    return _new_change(entry, wallets)


def award(
    wallet: Wallet,
    *,
    lot_id: str,
    amount: Money,
    expires_at: datetime | None,
    priority: int,
    reason: str,
    info: EntryInfo,
    condition: SpendCondition | None = None,
    group_id: str | None = None,
    group_version: int | None = None,
) -> Change:
    """Grant a new commerce lot of ``amount`` from the tenant's awards account, with the
    conditions it may be spent under (its own ``condition``, or the version of condition group
    ``group_id`` it is granted under)."""
    lot = new_lot(
        wallet, lot_id=lot_id, amount=amount, info=info, reason=reason, expires_at=expires_at,
        priority=priority, condition=condition, group_id=group_id, group_version=group_version,
    )
    entry, wallets, lots = _apply(
        EntryKind.AWARD,
        info,
        [
            Posting(awards_account(wallet.tenant_id), -amount),
            Posting(lot_account(wallet.id, lot_id), amount),
        ],
        [wallet],
        {lot_id: lot},
    )
    return _new_change(entry, wallets, tuple(lots.values()))


def spend(
    wallet: Wallet,
    allocation: Sequence[AllocationPart],
    lots: Mapping[str, Lot],
    info: EntryInfo,
    fee: Money | None = None,
) -> Change:
    """Take ``allocation`` (decided by a policy) from its sources and pay it to revenue; a
    ``fee`` is taken from the open balance in the same entry.

    Also records a refundable :class:`Charge` (of the allocation: the fee is not refundable).
    """
    total = Money.sum((p.amount for p in allocation), wallet.currency)
    postings = [Posting(_source_account(wallet.id, p), -p.amount) for p in allocation]
    postings.append(Posting(revenue_account(wallet.tenant_id), total))
    postings.extend(_fee_postings(wallet, fee))
    entry, wallets, new_lots = _apply(EntryKind.SPEND, info, postings, [wallet], lots)
    charge = _new_charge(entry.id, wallet.id, total, tuple(allocation))
    return _new_change(entry, wallets, tuple(new_lots.values()), charges=(charge,))


def split_parts(
    parts: Sequence[AllocationPart], amount: Money
) -> tuple[tuple[AllocationPart, ...], tuple[AllocationPart, ...]]:
    """Split ``parts`` into the first ``amount`` (in order) and the rest."""
    head: list[AllocationPart] = []
    tail: list[AllocationPart] = []
    left = amount.minor_units
    for part in parts:
        take = min(left, part.amount.minor_units)
        if take > 0:
            head.append(attrs.evolve(part, amount=Money(take, part.amount.currency)))
        rest = part.amount.minor_units - take
        if rest > 0:
            tail.append(attrs.evolve(part, amount=Money(rest, part.amount.currency)))
        left -= take
    return tuple(head), tuple(tail)


def transfer(
    source: Wallet,
    target: Wallet,
    amount: Money,
    info: EntryInfo,
    *,
    lot: Lot | None = None,
    fee: Money | None = None,
) -> Change:
    """Move ``amount`` of open balance from ``source`` to ``target`` (same tenant, currency):
    into its open balance, or into ``lot`` (a new lot of ``target`` from :func:`new_lot`). The
    sender pays a ``fee`` from its open balance in the same entry."""
    entry, wallets, lots = _apply(
        EntryKind.TRANSFER,
        info,
        [Posting(open_account(source.id), -amount), Posting(_credit_account(target, lot), amount),
         *_fee_postings(source, fee)],
        sorted([source, target], key=lambda w: w.id),
        None if lot is None else {lot.id: lot},
    )
    return _new_change(entry, wallets, tuple(lots.values()))


def refundable_parts(charge: Charge) -> list[AllocationPart]:
    """What is still refundable of ``charge``, per source, in allocation order."""
    refunded: dict[tuple[str | None, int | None], int] = {}
    for part in charge.refunded:
        source = (part.lot_id, part.line)
        refunded[source] = refunded.get(source, 0) + part.amount.minor_units
    parts = []
    for part in charge.allocation:
        left = part.amount.minor_units - refunded.get((part.lot_id, part.line), 0)
        if left > 0:
            parts.append(attrs.evolve(part, amount=Money(left, part.amount.currency)))
    return parts


def refund(
    wallet: Wallet,
    charge: Charge,
    amount: Money,
    lots: Mapping[str, Lot],
    info: EntryInfo,
    ends: Ends | None = None,
) -> tuple[Change, tuple[AllocationPart, ...], Money]:
    """Refund ``amount`` (at most ``charge.refundable``) back to the sources it came from.

    The last source paid is refunded first (the open balance before lots, later lots before
    earlier ones). A part whose lot has expired meanwhile is booked as breakage. Returns the
    change, the parts refunded and the amount booked as breakage.
    """
    remaining = list(reversed(refundable_parts(charge)))
    parts, _ = split_parts(remaining, amount)
    returned, breakage = _return_parts(wallet, parts, lots, info.at, ends)
    postings = [Posting(revenue_account(wallet.tenant_id), -amount), *returned]
    entry, wallets, new_lots = _apply(
        EntryKind.REFUND, info, postings, [wallet], lots, refund_of=charge.entry_id
    )
    updated = attrs.evolve(charge, refunded=charge.refunded + parts)
    change = _new_change(entry, wallets, tuple(new_lots.values()), charges=(updated,))
    return change, parts, breakage


def expire_lot(wallet: Wallet, lot: Lot, info: EntryInfo) -> Change:
    """Book an expired lot's remainder as breakage (once: the lot records the entry)."""
    entry, wallets, new_lots = _apply(
        EntryKind.BREAKAGE,
        info,
        [
            Posting(lot_account(wallet.id, lot.id), -lot.remaining),
            Posting(breakage_account(wallet.tenant_id), lot.remaining),
        ],
        [wallet],
        {lot.id: lot},
    )
    swept = new_lots[lot.id]
    # Made by _apply just now and not yet seen by anyone: record the entry in place instead of
    # copying the lot once more.
    object.__setattr__(swept, "expired_entry_id", entry.id)
    return _new_change(entry, wallets, (swept,))


def extend_lot(
    wallet: Wallet,
    lot: Lot,
    *,
    new_lot_id: str,
    amount: Money,
    expires_at: datetime | None,
    info: EntryInfo,
) -> Change:
    """Move ``amount`` (positive, at most what ``lot`` holds) of ``lot`` into a new lot that
    expires at ``expires_at`` and keeps the lot's reason, priority and conditions.

    Raises ``IntegrityError`` if ``lot`` holds less than ``amount``; the service checks first
    and turns that into a refusal.
    """
    moved = new_lot(
        wallet, lot_id=new_lot_id, amount=amount, info=info, reason=lot.reason,
        expires_at=expires_at, priority=lot.priority, condition=lot.condition,
        group_id=lot.group_id, group_version=lot.group_version,
    )
    entry, wallets, lots = _apply(
        EntryKind.EXTENSION,
        info,
        [
            Posting(lot_account(wallet.id, lot.id), -amount),
            Posting(lot_account(wallet.id, new_lot_id), amount),
        ],
        [wallet],
        {lot.id: lot, new_lot_id: moved},
    )
    return _new_change(entry, wallets, tuple(lots.values()))


def reverse(
    original: Entry, wallets: Sequence[Wallet], lots: Mapping[str, Lot], info: EntryInfo
) -> Change:
    """A new entry that negates every posting of ``original``, linked to it by ``reverses``.

    Raises ``IntegrityError`` if that would take a lot or a wallet below what it may hold; the
    service checks first and turns that into a refusal.
    """
    postings = [Posting(p.account, -p.amount) for p in original.postings]
    entry, new_wallets, new_lots = _apply(
        EntryKind.REVERSAL,
        info,
        postings,
        sorted(wallets, key=lambda w: w.id),
        lots,
        reverses=original.id,
    )
    return _new_change(entry, new_wallets, tuple(new_lots.values()))
