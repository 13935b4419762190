"""The double-entry core: entries balance, merge, hash and chain; account keys parse."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import IntegrityError, UnbalancedEntryError
from prepaid_wallet.ledger import (
    AccountKind,
    AccountRef,
    Entry,
    EntryKind,
    Posting,
    breakage_account,
    funding_account,
    held_account,
    lot_account,
    open_account,
    parse_account,
    revenue_account,
)
from prepaid_wallet.money import Money

AT = datetime(2026, 1, 5, tzinfo=UTC)


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def build(postings: list[Posting], heads: dict[str, str] | None = None) -> Entry:
    return Entry.build(id="e_1", kind=EntryKind.TOP_UP, postings=postings, at=AT,
                       heads={"w1": ""} if heads is None else heads)


def test_entry_must_balance_per_currency() -> None:
    with pytest.raises(UnbalancedEntryError) as info:
        build([Posting(open_account("w1"), eur("10")),
               Posting(funding_account("t", "card"), eur("-9.99"))])
    assert info.value.currency == "EUR"
    assert info.value.total == 1
    with pytest.raises(UnbalancedEntryError):
        build([Posting(open_account("w1"), eur("10")),
               Posting(funding_account("t", "card"), Money.of("-10", "USD"))])


def test_postings_merge_per_account_and_zero_lines_drop() -> None:
    entry = build([
        Posting(open_account("w1"), eur("10")),
        Posting(open_account("w1"), eur("-4")),
        Posting(held_account("w1"), eur("4")),
        Posting(held_account("w1"), eur("-4")),
        Posting(funding_account("t", "card"), eur("-6")),
    ])
    assert entry.postings == (
        Posting(open_account("w1"), eur("6")),
        Posting(funding_account("t", "card"), eur("-6")),
    )
    with pytest.raises(IntegrityError):
        build([Posting(open_account("w1"), eur("1")), Posting(open_account("w1"), eur("-1"))])


def test_wallet_postings_need_a_chain_link() -> None:
    with pytest.raises(IntegrityError):
        build([Posting(open_account("w2"), eur("1")),
               Posting(funding_account("t", "card"), eur("-1"))])


def test_hash_covers_content_and_links() -> None:
    postings = [Posting(open_account("w1"), eur("1")),
                Posting(funding_account("t", "card"), eur("-1"))]
    entry = build(postings)
    assert entry.hash == entry.compute_hash()
    assert len(entry.hash) == 64
    assert build(postings, {"w1": "x"}).hash != entry.hash
    for change in ({"actor": "mallory"}, {"metadata": (("a", "b"),)},
                   {"postings": tuple(reversed(entry.postings))}, {"kind": EntryKind.SPEND}):
        assert attrs.evolve(entry, **change).compute_hash() != entry.hash  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        (open_account("w1"), AccountRef(AccountKind.OPEN, "w1")),
        (held_account("w1"), AccountRef(AccountKind.HELD, "w1")),
        (lot_account("w1", "lot_1"), AccountRef(AccountKind.LOT, "w1", "lot_1")),
        (funding_account("hub", "card"), AccountRef(AccountKind.FUNDING, "hub", "card")),
        (revenue_account("hub"), AccountRef(AccountKind.REVENUE, "hub")),
        (breakage_account("hub"), AccountRef(AccountKind.BREAKAGE, "hub")),
    ],
)
def test_account_keys_round_trip(key: str, ref: AccountRef) -> None:
    assert parse_account(key) == ref
    assert ref.key == key


@pytest.mark.parametrize(
    "key", ["", "wallet:w1", "wallet:w1:nope", "tenant:w1:open", "wallet:w1:lot",
            "tenant:t:revenue:extra", "wallet:w1:open:x"],
)
def test_malformed_account_keys_are_integrity_errors(key: str) -> None:
    with pytest.raises(IntegrityError):
        parse_account(key)


@given(st.lists(st.integers(min_value=-10**6, max_value=10**6), min_size=1, max_size=8))
def test_any_balanced_set_of_postings_builds(amounts: list[int]) -> None:
    postings = [Posting(open_account("w1"), Money(a, "EUR")) for a in amounts]
    postings.append(Posting(funding_account("t", "card"), Money(-sum(amounts), "EUR")))
    if sum(amounts) == 0:
        with pytest.raises(IntegrityError):
            build(postings)
        return
    entry = build(postings)
    assert sum(p.amount.minor_units for p in entry.postings) == 0


def test_an_entry_carries_every_other_wallet_field_unchanged() -> None:
    """Applying an entry rebuilds the wallet field by field (no generic copy on the hot path):
    every field but the balances, version, head and last recorded instant must come through
    as it was."""
    from prepaid_wallet import wallet as _w

    at = datetime(2026, 1, 1, tzinfo=UTC)
    eur = Money.of("-5.00", "EUR")
    wallet = attrs.evolve(
        _w.new_wallet(wallet_id="w1", tenant_id="hub", owner_id="ann", currency="EUR",
                      floor=eur, at=at, metadata={"tier": "gold"}),
        version=3,
        head="abc",
    )
    change = _w.top_up(wallet, Money.of("2.00", "EUR"), "card", _w.EntryInfo("e1", at))
    after = change.wallet("w1")
    moved = {"open", "version", "head", "last_at"}
    for field in attrs.fields(_w.Wallet):
        if field.name not in moved:
            assert getattr(after, field.name) == getattr(wallet, field.name), field.name
    assert (after.open, after.version, after.head, after.last_at) == (
        Money.of("2.00", "EUR"), 4, change.entry.hash, at)
