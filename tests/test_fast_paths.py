"""The domain's fast paths give exactly what the general paths give: the same entry (hash
included), the same wallet and lot, or the same error with the same message.

Every write builds an entry and the wallets after it; those steps skip work the general code
does (building totals per currency, ``Money`` arithmetic on every balance, ``attrs.evolve``).
Each test here runs both on the same input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from hypothesis import example, given
from hypothesis import strategies as st

from prepaid_wallet import wallet as _w
from prepaid_wallet.errors import IntegrityError, UnbalancedEntryError
from prepaid_wallet.ledger import (
    Entry,
    EntryKind,
    Posting,
    _merge,
    balanced,
    parse_account,
)
from prepaid_wallet.money import MAX_MINOR_UNITS, Money
from prepaid_wallet.policies import PaymentMode
from tests import strategies as pst

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or its error as ``(type, message)``."""
    try:
        return call()
    except Exception as error:  # compared, not handled
        return type(error), str(error)


def general_build(
    postings: Iterable[Posting], heads: Mapping[str, str], key: str | None, actor: str | None,
    metadata: Mapping[str, str] | None,
) -> Entry:
    """``Entry.build`` written the general way: merge, check the totals per currency (what
    ``check_postings`` checks), check the chain links, make the entry, hash the canonical
    JSON of its content."""
    import hashlib

    merged = _merge(postings)
    if len(merged) < 2:
        raise IntegrityError("an entry needs at least two non-zero postings")
    for currency, total in balanced(merged).items():
        if total != 0:
            raise UnbalancedEntryError(currency, total)
    for posting in merged:
        ref = parse_account(posting.account)
        if ref.is_wallet and ref.owner not in heads:
            raise IntegrityError(f"posting to {posting.account} for a wallet not linked")
    wallet_ids = tuple(sorted(heads))
    entry = Entry(
        id="e_1", kind=EntryKind.SPEND, postings=merged, effective_at=AT, recorded_at=AT,
        wallet_ids=wallet_ids, prev_hashes=tuple(heads[w] for w in wallet_ids),
        idempotency_key=key, actor=actor, metadata=tuple(sorted((metadata or {}).items())),
    )
    text = json.dumps(entry.hash_content(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True)
    return attrs.evolve(entry, hash=hashlib.sha256(text.encode("ascii")).hexdigest())


texts = st.one_of(st.none(), st.text(max_size=6))


@given(pst.entry_postings(),
       st.dictionaries(st.sampled_from(["w1", "w2"]), st.text(max_size=4), min_size=1),
       texts, texts, st.one_of(st.none(), st.dictionaries(st.text(max_size=3),
                                                           st.text(max_size=3), max_size=2)))
@example([("wallet:w1:open", -5, "EUR"), ("tenant:t:revenue", 1, "EUR")], {"w1": ""}, None,
         None, None)  # unbalanced, either sign
@example([("wallet:w1:open", 5, "EUR"), ("tenant:t:revenue", -1, "EUR")], {"w1": ""}, None,
         None, None)
@example([("wallet:w1:open", 5, "EUR"), ("tenant:t:revenue", -5, "USD"),
          ("tenant:t:fees", -5, "EUR"), ("wallet:w2:open", 5, "USD")], {"w1": "", "w2": "x"},
         "k", "a", {"b": "c", "a": "d"})  # two currencies, balanced
@example([("wallet:w1:open", 5, "EUR"), ("tenant:t:revenue", -4, "USD")], {"w1": ""}, None,
         None, None)
@example([("wallet:w1:open", 5, "EUR"), ("wallet:w1:open", -5, "EUR"),
          ("tenant:t:revenue", 0, "EUR")], {"w1": ""}, None, None, None)  # nothing left
@example([("wallet:w3:open", 5, "EUR"), ("wallet:w1", -5, "EUR")], {"w1": ""}, None, None,
         None)  # not linked, then malformed
@example([("wallet:w1", 5, "EUR"), ("wallet:w3:open", -5, "EUR")], {"w1": ""}, None, None,
         None)
@example([("wallet:w1", 5, "EUR"), ("wallet:w3:open", -4, "EUR")], {"w1": ""}, None, None,
         None)  # malformed and unbalanced
def test_an_entry_is_built_as_the_general_way_builds_it(
    lines: list[tuple[str, int, str]], heads: dict[str, str], key: str | None,
    actor: str | None, metadata: dict[str, str] | None,
) -> None:
    postings = [Posting(account, Money(minor, currency)) for account, minor, currency in lines]
    built = outcome(lambda: Entry.build(
        id="e_1", kind=EntryKind.SPEND, postings=postings, at=AT, heads=heads,
        idempotency_key=key, actor=actor, metadata=metadata))
    assert built == outcome(lambda: general_build(postings, heads, key, actor, metadata))
    if isinstance(built, Entry):
        assert built.compute_hash() == built.hash


def test_a_value_that_is_not_text_is_hashed_by_the_generic_walk() -> None:
    """An id that is not a string cannot be written by the direct hash text: the entry is
    hashed from the generic JSON of its content, as before."""
    postings = [Posting("wallet:w1:open", Money(1, "EUR")),
                Posting("tenant:t:revenue", Money(-1, "EUR"))]
    entry = Entry.build(id=7, kind=EntryKind.SPEND, postings=postings,  # type: ignore[arg-type]
                        at=AT, heads={"w1": ""})
    assert entry.hash == entry.compute_hash()
    assert entry == attrs.evolve(general_build(postings, {"w1": ""}, None, None, None), id=7,
                                 hash=entry.hash)


def amounts(currency: str) -> st.SearchStrategy[Money]:
    """Mostly ``currency``, sometimes another (a wallet no store would load)."""
    return st.one_of(pst.money(currency), pst.money(currency), pst.money("USD"))


@st.composite
def wallets(draw: st.DrawFn) -> _w.Wallet:
    return _w.Wallet(
        id="w1", tenant_id="t", owner_id="o", currency="EUR",
        floor=draw(amounts("EUR")), created_at=AT, open=draw(amounts("EUR")),
        commerce=draw(amounts("EUR")), held=draw(amounts("EUR")), version=draw(st.integers(0, 9)),
        head="h", metadata=(("a", "b"),), last_at=draw(st.none() | st.just(AT)),
    )


deltas = st.one_of(st.just(0), st.integers(-1000, 1000), pst.minor_units(),
                   st.sampled_from([MAX_MINOR_UNITS, -MAX_MINOR_UNITS]))


def edge_wallet(open_: int, commerce: int, held: int, floor: int = 0) -> _w.Wallet:
    return _w.Wallet(id="w1", tenant_id="t", owner_id="o", currency="EUR",
                     floor=Money(floor, "EUR"), created_at=AT, open=Money(open_, "EUR"),
                     commerce=Money(commerce, "EUR"), held=Money(held, "EUR"))


M = MAX_MINOR_UNITS


@given(wallets(), deltas, deltas, deltas, st.sampled_from([EntryKind.SPEND,
                                                          EntryKind.CHARGEBACK]))
@example(edge_wallet(M, 0, 0), 0, 0, 1, EntryKind.SPEND)  # the total passes the range
@example(edge_wallet(M, 0, 0), 0, 1, 0, EntryKind.SPEND)
@example(edge_wallet(M - 1, 0, 0), 1, 0, 0, EntryKind.SPEND)  # the open balance reaches it
@example(edge_wallet(-M, 0, 0), -1, 0, 0, EntryKind.CHARGEBACK)
@example(edge_wallet(0, 0, -M), 0, 0, -1, EntryKind.SPEND)
@example(edge_wallet(5, 0, 0, 2), -4, 0, 0, EntryKind.SPEND)  # below the floor
@example(edge_wallet(5, 0, 0, 2), -4, 0, 0, EntryKind.CHARGEBACK)
@example(edge_wallet(5, 0, 1), 0, 0, -2, EntryKind.SPEND)  # less than nothing held
def test_a_wallet_after_an_entry_is_what_money_arithmetic_gives(
    wallet: _w.Wallet, open_delta: int, lot_delta: int, held_delta: int, kind: EntryKind,
) -> None:
    entry = Entry.build(id="e_1", kind=kind, postings=[
        Posting("wallet:w1:open", Money(1, "EUR")), Posting("tenant:t:revenue", Money(-1, "EUR"))
    ], at=AT, heads={"w1": "h"})
    fast = outcome(lambda: _w._after(wallet, kind, entry, open_delta, lot_delta, held_delta))
    general = outcome(
        lambda: _w._after_checked(wallet, kind, entry, open_delta, lot_delta, held_delta))
    assert fast == general


def test_every_field_is_rebuilt() -> None:
    """``_after`` and ``_lot_with`` name every field of ``Wallet`` and ``Lot`` in order: a field
    added to either must be added there too."""
    assert [f.name for f in attrs.fields(_w.Wallet)] == [
        "id", "tenant_id", "owner_id", "currency", "floor", "created_at", "open", "commerce",
        "held", "status", "version", "head", "metadata", "last_at"]
    assert [f.name for f in attrs.fields(_w.Lot)] == [
        "id", "wallet_id", "amount", "remaining", "granted_at", "expires_at", "priority",
        "reason", "entry_id", "expired_entry_id", "condition", "group_id", "group_version"]


@given(pst.money("EUR", 0, 10**6), st.none() | st.text(max_size=4), st.booleans())
def test_a_lot_rebuilt_is_attrs_evolve(remaining: Money, expired: str | None,
                                       conditioned: bool) -> None:
    """Every field but ``remaining`` comes through as it was."""
    from prepaid_wallet.conditions import SpendCondition

    lot = _w.Lot(
        id="l1", wallet_id="w1", amount=Money(10**6, "EUR"), remaining=Money(5, "EUR"),
        granted_at=AT, expires_at=AT, priority=3, reason="r", entry_id="e0",
        expired_entry_id=expired, condition=SpendCondition(products=frozenset({"p"}))
        if conditioned else None, group_id="g", group_version=2,
    )
    assert _w._lot_with(lot, remaining) == attrs.evolve(lot, remaining=remaining)


def trusted_classes() -> list[tuple[type, Callable[..., Any]]]:
    from prepaid_wallet import ledger, policies

    return [
        (Entry, ledger._new_entry), (_w.Wallet, _w._new_wallet), (_w.Lot, _w._new_lot),
        (_w.Change, _w._new_change), (_w.Charge, _w._new_charge),
        (policies.Decision, policies._new_decision),
        (_w.AllocationPart, policies._new_part),
    ]


@given(st.data())
def test_a_trusted_constructor_is_the_class(data: st.DataObject) -> None:
    """Each constructor the transitions use builds exactly what ``cls(...)`` builds, from
    positions, names or defaults (it sets the same fields, nothing else)."""
    for cls, make in trusted_classes():
        fields = attrs.fields(cls)
        values = [data.draw(st.integers() | st.text(max_size=3) | st.none()) for _ in fields]
        assert make(*values) == cls(*values)
        assert type(make(*values)) is cls
        named = {f.name: v for f, v in zip(fields, values, strict=True)}
        assert make(**named) == cls(**named)
        required = [v for f, v in zip(fields, values, strict=True)
                    if f.default is attrs.NOTHING]
        assert make(*required) == cls(*required)


def test_a_trusted_constructor_is_refused_for_a_class_that_checks() -> None:
    """Only classes whose ``__init__`` just sets fields get one: Money validates, a request
    converts its lines."""
    import pytest

    from prepaid_wallet.money import _trusted
    from prepaid_wallet.policies import SpendRequest

    for cls in (Money, SpendRequest):
        with pytest.raises(TypeError, match="does more than set its fields"):
            _trusted(cls)


@given(st.sampled_from(["p", "q"]), st.none() | st.text(max_size=3), st.booleans(),
       st.sampled_from(list(PaymentMode)))
def test_a_request_in_a_mode_is_attrs_evolve(product: str, merchant: str | None,
                                             lines: bool, mode: Any) -> None:
    """``SpendRequest.in_mode`` copies the converted fields through their slots: the same
    request ``attrs.evolve`` makes."""
    from prepaid_wallet.conditions import LineItem
    from prepaid_wallet.policies import SpendRequest

    request = SpendRequest(
        Money(300, "EUR"), description="d", merchant=merchant, merchant_groups=["g", "h"],
        lines=[LineItem(product, Money(100, "EUR")), LineItem("r", Money(200, "EUR"))]
        if lines else [], at=AT)
    moved = request.in_mode(mode)
    assert moved == attrs.evolve(request, mode=mode)
    assert type(moved) is SpendRequest
    assert moved.mode is mode


def test_an_expired_lot_is_swept_into_a_new_lot() -> None:
    """``expire_lot`` records its entry on the lot it has just made, never on the lot given."""
    zero = Money(0, "EUR")
    wallet = _w.new_wallet(wallet_id="w1", tenant_id="t", owner_id="o", currency="EUR",
                           floor=zero, at=AT)
    awarded = _w.award(wallet, lot_id="l1", amount=Money(250, "EUR"), expires_at=AT,
                       priority=0, reason="r", info=_w.EntryInfo("e1", AT))
    lot = awarded.lots[0]
    change = _w.expire_lot(awarded.wallet("w1"), lot, _w.EntryInfo("e2", AT))
    assert change.lots == (attrs.evolve(lot, remaining=zero, expired_entry_id="e2"),)
    assert lot.expired_entry_id is None
    assert lot.remaining == Money(250, "EUR")
    assert change.wallet("w1").commerce == zero
