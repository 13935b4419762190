"""The double-entry core: accounts, postings and journal entries.

Every change of any balance is one :class:`Entry` whose :class:`Posting` amounts sum to zero per
currency. An account's balance is the sum of its postings. Wallet accounts hold the customer's
credit as a positive number; each has a tenant-side counterpart that goes the other way:

=========================================  ======================================================
account key                                what it holds
=========================================  ======================================================
``wallet:{wallet}:open``                   the open balance (fresh money; may go down to the
                                           wallet's floor, so it can be negative)
``wallet:{wallet}:lot:{lot}``              one commerce lot (an award) -- never negative
``wallet:{wallet}:held``                   money reserved by active holds
``tenant:{tenant}:funding:{method}``       money paid in by a payment method (negative: it
                                           mirrors the credit it bought)
``tenant:{tenant}:awards``                 value granted as awards (negative likewise)
``tenant:{tenant}:revenue``                money the tenant earned from spends and captures
``tenant:{tenant}:breakage``               expired award value, booked once per lot
``tenant:{tenant}:service``                money turned into days of service (pay-as-you-go)
``tenant:{tenant}:downpayments``           upgrade downpayments received (pay-as-you-go)
=========================================  ======================================================

Entries chain: each carries, for every wallet it concerns, the hash of that wallet's previous
entry (``""`` for the first), and its own SHA-256 hash over its content and those links. A chain
per wallet (not one global chain) lets writers on different wallets proceed in parallel while
:meth:`prepaid_wallet.service.WalletService.verify` can still detect any edited, removed or
reordered entry.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs

from prepaid_wallet.errors import IntegrityError, UnbalancedEntryError
from prepaid_wallet.money import Money, _check_range, _trusted, _valid

__all__ = [
    "BELOW_FLOOR",
    "GENESIS",
    "AccountKind",
    "AccountRef",
    "Entry",
    "EntryKind",
    "Posting",
    "adjustment_account",
    "awards_account",
    "balanced",
    "breakage_account",
    "downpayments_account",
    "fees_account",
    "funding_account",
    "held_account",
    "lot_account",
    "open_account",
    "parse_account",
    "payout_account",
    "revenue_account",
    "service_account",
]

#: The "previous hash" of a wallet's first entry.
GENESIS = ""


class EntryKind(StrEnum):
    """What an entry records."""

    TOP_UP = "top_up"
    AWARD = "award"
    SPEND = "spend"
    HOLD = "hold"
    CAPTURE = "capture"
    VOID = "void"
    HOLD_EXPIRY = "hold_expiry"
    TRANSFER = "transfer"
    REFUND = "refund"
    BREAKAGE = "breakage"
    REVERSAL = "reversal"
    EXTENSION = "extension"
    PAYOUT = "payout"
    CREDIT = "credit"
    DEBIT = "debit"
    FEE = "fee"
    #: Money of a customer top-up given back to the payment method it came from.
    TOP_UP_REFUND = "refund_out"
    #: Money of a customer top-up the payment provider took back (a dispute lost): it may take
    #: the open balance below the wallet's floor, a debt the next top-up repays first.
    CHARGEBACK = "chargeback"
    #: Money turned into days of service (pay-as-you-go): open balance -> the tenant's
    #: prepaid-service account.
    TIME = "time"
    #: Days of service turned back into money: the prepaid-service account -> open balance.
    TIME_RETURN = "time_return"
    #: An upgrade's downpayment paid: open balance -> the tenant's downpayments account.
    DOWNPAYMENT = "downpayment"


#: The entries that may take an open balance below its wallet's floor: the provider taking a
#: customer top-up back (a debt the next top-up repays first). ``wallet`` applies it to every
#: entry and ``verify`` accepts such a balance only after one of them.
BELOW_FLOOR: frozenset[EntryKind] = frozenset({EntryKind.CHARGEBACK})


class AccountKind(StrEnum):
    """The kinds of account; the first three belong to a wallet, the rest to a tenant."""

    OPEN = "open"
    LOT = "lot"
    HELD = "held"
    FUNDING = "funding"
    AWARDS = "awards"
    REVENUE = "revenue"
    BREAKAGE = "breakage"
    FEES = "fees"
    PAYOUT = "payout"
    ADJUSTMENT = "adjustment"
    SERVICE = "service"
    DOWNPAYMENTS = "downpayments"


_WALLET_KINDS = frozenset({AccountKind.OPEN, AccountKind.LOT, AccountKind.HELD})


@attrs.frozen
class AccountRef:
    """A parsed account key: its ``kind``, the wallet or tenant that ``owner`` names, and for lot
    and funding accounts the lot id or payment method in ``name``."""

    kind: AccountKind
    owner: str
    name: str | None = None

    @property
    def is_wallet(self) -> bool:
        """True for a wallet's own account (open, lot, held)."""
        return self.kind in _WALLET_KINDS

    @property
    def key(self) -> str:
        """The account's key, as stored in postings."""
        prefix = "wallet" if self.is_wallet else "tenant"
        tail = f":{self.name}" if self.name is not None else ""
        return f"{prefix}:{self.owner}:{self.kind.value}{tail}"


def open_account(wallet_id: str) -> str:
    """The key of a wallet's open-balance account."""
    return f"wallet:{wallet_id}:open"


def held_account(wallet_id: str) -> str:
    """The key of a wallet's held account (money reserved by active holds)."""
    return f"wallet:{wallet_id}:held"


def lot_account(wallet_id: str, lot_id: str) -> str:
    """The key of one commerce lot's account."""
    return f"wallet:{wallet_id}:lot:{lot_id}"


def funding_account(tenant_id: str, method: str) -> str:
    """The key of a tenant's account for money paid in with ``method``."""
    return f"tenant:{tenant_id}:funding:{method}"


def awards_account(tenant_id: str) -> str:
    """The key of a tenant's account that awards are granted from."""
    return f"tenant:{tenant_id}:awards"


def revenue_account(tenant_id: str) -> str:
    """The key of a tenant's revenue account (spends and captures)."""
    return f"tenant:{tenant_id}:revenue"


def breakage_account(tenant_id: str) -> str:
    """The key of a tenant's breakage account (expired award value)."""
    return f"tenant:{tenant_id}:breakage"


def fees_account(tenant_id: str) -> str:
    """The key of a tenant's fee income account."""
    return f"tenant:{tenant_id}:fees"


def payout_account(tenant_id: str, method: str) -> str:
    """The key of a tenant's account for money paid out to owners with ``method``."""
    return f"tenant:{tenant_id}:payout:{method}"


def service_account(tenant_id: str) -> str:
    """The key of a tenant's prepaid-service account: money turned into days of service."""
    return f"tenant:{tenant_id}:service"


def downpayments_account(tenant_id: str) -> str:
    """The key of a tenant's account of upgrade downpayments received."""
    return f"tenant:{tenant_id}:downpayments"


def adjustment_account(tenant_id: str) -> str:
    """The key of a tenant's account for an operator's manual credits and debits."""
    return f"tenant:{tenant_id}:adjustment"


@functools.lru_cache(maxsize=4096)
def parse_account(key: str) -> AccountRef:
    """Parse an account key back into an :class:`AccountRef`; ``IntegrityError`` if malformed.

    Results are cached (a key always parses the same way, and a wallet's few account keys
    recur on every entry)."""
    parts = key.split(":")
    try:
        scope, owner, kind = parts[0], parts[1], AccountKind(parts[2])
    except (IndexError, ValueError) as exc:
        raise IntegrityError(f"malformed account key {key!r}") from exc
    name = parts[3] if len(parts) == 4 else None
    ref = AccountRef(kind, owner, name)
    expected_parts = 4 if kind in (AccountKind.LOT, AccountKind.FUNDING, AccountKind.PAYOUT) else 3
    if len(parts) != expected_parts or scope != ("wallet" if ref.is_wallet else "tenant"):
        raise IntegrityError(f"malformed account key {key!r}")
    return ref


@attrs.frozen
class Posting:
    """One line of an entry: ``amount`` added to ``account`` (negative takes away)."""

    account: str
    amount: Money


def balanced(postings: Iterable[Posting]) -> dict[str, int]:
    """Sum postings per currency, in minor units (all zeros when balanced)."""
    totals: dict[str, int] = {}
    for posting in postings:
        currency = posting.amount.currency
        totals[currency] = totals.get(currency, 0) + posting.amount.minor_units
    return totals


def _merge(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    """One posting per account, in first-seen order; accounts that net to zero are dropped."""
    postings = tuple(postings)
    seen: set[str] = set()
    for posting in postings:
        if not posting.amount.minor_units or posting.account in seen:
            break
        seen.add(posting.account)
    else:
        return postings  # most entries: every account once, none zero (already merged)
    merged: dict[tuple[str, str], int] = {}
    for posting in postings:
        key = (posting.account, posting.amount.currency)
        merged[key] = merged.get(key, 0) + posting.amount.minor_units
    return tuple(
        Posting(account, _valid(_check_range(minor, currency, "amount"), currency))
        for (account, currency), minor in merged.items()
        if minor != 0
    )


@attrs.frozen
class Entry:
    """One journal entry: an immutable, balanced set of postings and what explains them.

    ``wallet_ids`` are the wallets the entry concerns (sorted) and ``prev_hashes`` the hash of
    each one's previous entry, in the same order. ``hash`` covers everything else. Build entries
    with :meth:`build`, which merges postings per account, checks the balance and hashes.
    """

    id: str
    kind: EntryKind
    postings: tuple[Posting, ...]
    effective_at: datetime
    recorded_at: datetime
    wallet_ids: tuple[str, ...]
    prev_hashes: tuple[str, ...]
    idempotency_key: str | None = None
    actor: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    refund_of: str | None = None
    reverses: str | None = None
    hash: str = ""

    @classmethod
    def build(
        cls,
        *,
        id: str,
        kind: EntryKind,
        postings: Iterable[Posting],
        at: datetime,
        heads: Mapping[str, str],
        idempotency_key: str | None = None,
        actor: str | None = None,
        metadata: Mapping[str, str] | None = None,
        refund_of: str | None = None,
        reverses: str | None = None,
    ) -> Entry:
        """Build, check and hash an entry.

        ``heads`` maps each wallet the entry concerns to the hash of its latest entry. Raises
        ``UnbalancedEntryError`` if the postings do not sum to zero per currency, and
        ``IntegrityError`` if fewer than two postings remain or a wallet account's wallet is not
        in ``heads``.
        """
        return _build(cls, id, kind, postings, at, heads, idempotency_key, actor, metadata,
                      refund_of, reverses)[0]

    def compute_hash(self) -> str:
        """SHA-256 over the entry's canonical content and its previous-entry links: the JSON
        text of :meth:`hash_content` with sorted keys, no spaces and ASCII escapes (written
        directly by :func:`_hash_text`, the same text, since every write hashes an entry)."""
        try:
            text = _hash_text(self)
        except TypeError:  # a value that is not text where text is expected: the generic walk
            text = json.dumps(self.hash_content(), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=True)
        return _digest(text)

    def hash_content(self) -> dict[str, object]:
        """What the hash covers, as data (the canonical JSON text of this is hashed)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "postings": [
                [p.account, p.amount.minor_units, p.amount.currency] for p in self.postings
            ],
            "effective_at": self.effective_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "wallets": [list(pair) for pair in zip(self.wallet_ids, self.prev_hashes, strict=True)],
            "key": self.idempotency_key,
            "actor": self.actor,
            "metadata": [list(pair) for pair in self.metadata],
            "refund_of": self.refund_of,
            "reverses": self.reverses,
        }

    def prev_hash(self, wallet_id: str) -> str:
        """The hash of ``wallet_id``'s entry before this one."""
        return self.prev_hashes[self.wallet_ids.index(wallet_id)]

    @property
    def meta(self) -> dict[str, str]:
        """The metadata as a dict."""
        return dict(self.metadata)

    def amount_for(self, accounts: Sequence[str] | frozenset[str]) -> dict[str, int]:
        """Net minor units this entry posts to ``accounts``, per account (absent when zero)."""
        return {p.account: p.amount.minor_units for p in self.postings if p.account in accounts}


#: ``Entry(...)`` with every field given, for entries already checked and hashed.
_new_entry = _trusted(Entry)


def check_postings(postings: Sequence[Posting]) -> None:
    """Raise unless ``postings`` are at least two and sum to zero in every currency."""
    if len(postings) < 2:
        raise IntegrityError("an entry needs at least two non-zero postings")
    # Most entries are in one currency: their total, without a dict of totals per currency.
    currency = postings[0].amount.currency
    total = 0
    for posting in postings:
        amount = posting.amount
        if amount.currency != currency:
            break
        total += amount.minor_units
    else:
        if total != 0:
            raise UnbalancedEntryError(currency, total)
        return
    for currency, total in balanced(postings).items():
        if total != 0:
            raise UnbalancedEntryError(currency, total)


_sha256: Callable[[bytes], Any] | None = None
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _hash_text(entry: Entry) -> str:
    """``json.dumps(entry.hash_content(), sort_keys=True, separators=(",", ":"),
    ensure_ascii=True)``, written key by key in sorted order."""
    return _text_of(
        entry.id, entry.kind, entry.postings, entry.effective_at, entry.recorded_at,
        entry.wallet_ids, entry.prev_hashes, entry.idempotency_key, entry.actor, entry.metadata,
        entry.refund_of, entry.reverses,
    )


def _text_of(
    id: str,
    kind: EntryKind,
    postings: Sequence[Posting],
    effective_at: datetime,
    recorded_at: datetime,
    wallet_ids: Sequence[str],
    prev_hashes: Sequence[str],
    idempotency_key: str | None,
    actor: str | None,
    metadata: Sequence[tuple[str, str]],
    refund_of: str | None,
    reverses: str | None,
) -> str:
    """:func:`_hash_text` of an entry with these fields (``Entry.build`` hashes before it
    makes the entry). ``TypeError`` where a value is not text where text is expected."""
    q = _quote
    lines = []
    for p in postings:
        amount = p.amount
        lines.append(f"[{q(p.account)},{amount.minor_units},{q(amount.currency)}]")
    if len(wallet_ids) == 1 == len(prev_hashes):
        wallets = f"[{q(wallet_ids[0])},{q(prev_hashes[0])}]"
    else:
        wallets = ",".join([
            f"[{q(w)},{q(h)}]" for w, h in zip(wallet_ids, prev_hashes, strict=True)
        ])
    meta = ",".join([f"[{q(k)},{q(v)}]" for k, v in metadata]) if metadata else ""
    effective = q(effective_at.isoformat())
    recorded = effective if recorded_at is effective_at else q(recorded_at.isoformat())
    return (
        f'{{"actor":{"null" if actor is None else q(actor)},"effective_at":{effective},'
        f'"id":{q(id)},"key":{"null" if idempotency_key is None else q(idempotency_key)},'
        f'"kind":{q(kind._value_)},"metadata":[{meta}],"postings":[{",".join(lines)}],'
        f'"recorded_at":{recorded},'
        f'"refund_of":{"null" if refund_of is None else q(refund_of)},'
        f'"reverses":{"null" if reverses is None else q(reverses)},'
        f'"wallets":[{wallets}]}}'
    )


def _build(
    cls: type[Entry],
    id: str,
    kind: EntryKind,
    postings: Iterable[Posting],
    at: datetime,
    heads: Mapping[str, str],
    idempotency_key: str | None,
    actor: str | None,
    metadata: Mapping[str, str] | None,
    refund_of: str | None,
    reverses: str | None,
) -> tuple[Entry, list[AccountRef]]:
    """:meth:`Entry.build`, also returning each posting's parsed account (``wallet._apply``
    reads them instead of parsing again).

    The hash is computed before the entry is made, from the same values
    :meth:`Entry.compute_hash` reads.
    """
    merged = _merge(postings)
    check_postings(merged)
    refs = []
    for posting in merged:
        ref = parse_account(posting.account)
        if ref.kind in _WALLET_KINDS and ref.owner not in heads:
            raise IntegrityError(f"posting to {posting.account} for a wallet not linked")
        refs.append(ref)
    wallet_ids = tuple(heads) if len(heads) == 1 else tuple(sorted(heads))
    prev_hashes = tuple([heads[w] for w in wallet_ids])
    meta = tuple(sorted(metadata.items())) if metadata else ()
    try:
        text = _text_of(id, kind, merged, at, at, wallet_ids, prev_hashes, idempotency_key,
                        actor, meta, refund_of, reverses)
    except TypeError:  # a value that is not text where text is expected: the generic walk
        entry = cls(id, kind, merged, at, at, wallet_ids, prev_hashes, idempotency_key, actor,
                    meta, refund_of, reverses)
        object.__setattr__(entry, "hash", entry.compute_hash())
        return entry, refs
    make = _new_entry if cls is Entry else cls
    return make(id, kind, merged, at, at, wallet_ids, prev_hashes, idempotency_key, actor, meta,
                refund_of, reverses, _digest(text)), refs


def _digest(text: str) -> str:
    global _sha256
    if _sha256 is None:  # only writes and verify hash entries: a read need not load OpenSSL
        import hashlib

        _sha256 = hashlib.sha256
    return _sha256(text.encode("ascii")).hexdigest()
