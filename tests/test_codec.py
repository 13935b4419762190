"""The stored form of values (idempotent outcomes, settings): the encoder made per type writes
exactly the text of the generic walk (``to_data``) through the canonical JSON encoder, so
outcomes stored before and after read back the same on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet import _codec
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.money import Money, amount_text
from prepaid_wallet.policies import Decision, PaymentMode, Reason
from prepaid_wallet.results import SpendResult
from prepaid_wallet.wallet import AllocationPart
from tests import strategies as pst


def reference(value: Any) -> str:
    """The canonical text as the generic walk gives it."""
    return json.dumps(_codec.to_data(value), sort_keys=True, separators=(",", ":"))


@given(pst.money())
def test_amount_text_is_the_decimal_amount(money: Money) -> None:
    assert amount_text(money.minor_units, money.currency) == str(money.amount)
    assert str(money) == f"{money.amount} {money.currency}"


_Pair = attrs.make_class("_Pair", ["zeta", "alpha", "mid"], frozen=True)
_Empty = attrs.make_class("_Empty", [], frozen=True)

instants = st.datetimes(
    min_value=datetime(2, 1, 2), max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                               timezone(-timedelta(hours=11))]))
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(), pst.money(), instants,
    st.timedeltas(), st.sampled_from([*PaymentMode, *Reason, *EntryKind]),
    st.frozensets(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4),
        st.builds(_Pair, inner, inner, inner),
        st.just(_Empty()),
    ),
    max_leaves=12,
)


@given(values)
def test_dumps_writes_the_canonical_text(value: Any) -> None:
    assert _codec.dumps(value) == reference(value)


@given(pst.money("EUR"), pst.money("EUR"), st.booleans(),
       st.one_of(st.none(), st.text(min_size=1, max_size=8)), st.one_of(st.none(), instants))
def test_a_spend_result_round_trips(amount: Money, covered: Money, allowed: bool,
                                    lot_id: str | None, expires_at: datetime | None) -> None:
    part = AllocationPart(lot_id=lot_id, amount=amount, expires_at=expires_at, line=None)
    decision = Decision(
        allowed=allowed, mode=PaymentMode.CREDIT_FIRST, amount=amount,
        reasons=() if allowed else (Reason.INSUFFICIENT_CREDIT,), allocation=(part,),
        covered=covered, shortfall=covered, suggested_top_up=amount, remainder_due=covered,
        fee=None, limits=())
    result = SpendResult("e_1", (part,), amount, covered, decision, None)
    text = _codec.dumps(result)
    assert text == reference(result)
    assert _codec.loads(SpendResult, text) == result


@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), pst.minor_units(-10**6, 10**6)),
                min_size=1, max_size=4),
       st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
       st.one_of(st.none(), st.text(max_size=8)), st.one_of(st.none(), st.text(max_size=8)),
       instants, st.sampled_from(list(EntryKind)))
def test_an_entry_hash_covers_the_canonical_text(
        accounts: list[tuple[str, int]], metadata: dict[str, str], key: str | None,
        actor: str | None, at: datetime, kind: EntryKind) -> None:
    """The entry's hash is SHA-256 of the canonical JSON of its content (the text every
    stored journal was chained with), however its strings are escaped."""
    import hashlib

    from prepaid_wallet.ledger import Entry, Posting

    postings = tuple(Posting(account, Money(units, "EUR")) for account, units in accounts)
    entry = Entry(id="e_1", kind=kind, postings=postings, effective_at=at, recorded_at=at,
                  wallet_ids=("w_ä", "w_2"), prev_hashes=("", "\\"), idempotency_key=key,
                  actor=actor, metadata=tuple(sorted(metadata.items())), refund_of=key,
                  reverses=actor)
    text = json.dumps(entry.hash_content(), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True)
    assert entry.compute_hash() == hashlib.sha256(text.encode("ascii")).hexdigest()


row_values = st.lists(st.one_of(st.text(), st.integers(), st.none(), st.booleans(),
                                st.lists(st.text(max_size=3), max_size=2).map(tuple)),
                      max_size=8)


@given(row_values)
def test_a_row_text_is_its_compact_json(values: list[Any]) -> None:
    """Seals cover this text of a row's values: it must stay the JSON encoder's, character
    for character (non-ASCII kept), or every stored seal would stop matching."""
    from prepaid_wallet.seals import row_text

    assert row_text(values) == json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    assert row_text(tuple(values)) == row_text(values)
