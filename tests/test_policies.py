"""The pure spend decision: no store, no clock, just values in and a Decision out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.money import Money
from prepaid_wallet.policies import (
    DEFAULT_ORDER,
    PaymentMode,
    Reason,
    SpendOrder,
    SpendRequest,
    decide_spend,
    default_lot_key,
)
from prepaid_wallet.wallet import Lot, new_wallet

AT = datetime(2026, 1, 5, tzinfo=UTC)


def lot(lot_id: str, minor: int, *, days: int | None, priority: int = 0, age: int = 0) -> Lot:
    return Lot(
        id=lot_id, wallet_id="w", amount=Money(minor, "EUR"), remaining=Money(minor, "EUR"),
        granted_at=AT - timedelta(days=age),
        expires_at=None if days is None else AT + timedelta(days=days), priority=priority,
        reason="test", entry_id="e",
    )


def wallet(open_minor: int, floor_minor: int = 0):  # type: ignore[no-untyped-def]
    w = new_wallet(wallet_id="w", tenant_id="t", owner_id="o", currency="EUR",
                   floor=Money(floor_minor, "EUR"), at=AT)
    import attrs

    return attrs.evolve(w, open=Money(open_minor, "EUR"))


def test_default_order_reads_lots_lazily() -> None:
    lots = sorted([lot(f"l{i}", 100, days=i + 1) for i in range(1000)], key=default_lot_key)
    read = []

    def tracking():  # type: ignore[no-untyped-def]
        for item in lots:
            read.append(item.id)
            yield item

    decision = decide_spend(wallet(0), SpendRequest(Money(150, "EUR")), tracking(), AT)
    assert decision.allowed
    assert len(read) <= 3  # only the lots it needs (plus at most one look-ahead)


def test_expired_lots_are_skipped_at_the_instant_of_expiry() -> None:
    expired = lot("old", 500, days=0)  # expires exactly at AT
    decision = decide_spend(wallet(0), SpendRequest(Money(100, "EUR")), [expired], AT)
    assert not decision.allowed
    assert decision.reasons == (Reason.INSUFFICIENT_CREDIT,)
    earlier = decide_spend(wallet(0), SpendRequest(Money(100, "EUR")), [expired],
                           AT - timedelta(microseconds=1))
    assert earlier.allowed


@given(
    lots=st.lists(st.tuples(st.integers(1, 10_000), st.one_of(st.none(), st.integers(-3, 30)),
                            st.integers(-2, 2)), max_size=8),
    open_minor=st.integers(-5_000, 20_000),
    floor_minor=st.integers(-10_000, 0),
    amount=st.integers(1, 60_000),
    mode=st.sampled_from(PaymentMode),
    order=st.sampled_from(SpendOrder),
)
def test_decision_laws(lots, open_minor, floor_minor, amount, mode, order) -> None:  # type: ignore[no-untyped-def]
    open_minor = max(open_minor, floor_minor)
    items = sorted(
        (lot(f"l{i}", m, days=d, priority=p, age=i) for i, (m, d, p) in enumerate(lots)),
        key=default_lot_key,
    )
    request = SpendRequest(Money(amount, "EUR"), mode=mode)
    decision = decide_spend(wallet(open_minor, floor_minor), request, items, AT, order)
    usable = sum(x.remaining.minor_units for x in items if not x.is_expired(AT))
    capacity = usable + max(open_minor - floor_minor, 0)
    paid = sum(p.amount.minor_units for p in decision.allocation)
    assert decision.covered.minor_units == min(amount, capacity)
    assert decision.covered + decision.shortfall + decision.remainder_due == request.amount
    assert decision.remainder_due.minor_units >= 0
    if mode is PaymentMode.CREDIT_FIRST or capacity >= amount:
        assert decision.allowed
        assert paid == decision.covered.minor_units
        # Lots pay before the open balance, each at most its remainder, never an expired one.
        by_id = {x.id: x for x in items}
        open_parts = [i for i, p in enumerate(decision.allocation) if p.lot_id is None]
        assert open_parts in ([], [len(decision.allocation) - 1])
        for part in decision.allocation:
            if part.lot_id is not None:
                source = by_id[part.lot_id]
                assert not source.is_expired(AT)
                assert 0 < part.amount.minor_units <= source.remaining.minor_units
            else:
                assert part.amount.minor_units <= open_minor - floor_minor
    else:
        assert not decision.allowed
        assert decision.allocation == ()
        assert decision.suggested_top_up >= decision.shortfall > Money.zero("EUR")


@given(st.lists(st.tuples(st.integers(-2, 2), st.one_of(st.none(), st.integers(-3, 3)),
                          st.integers(0, 3), st.booleans()), min_size=1, max_size=8))
def test_the_default_key_is_the_declared_order_term_by_term(
    specs: list[tuple[int, int | None, int, bool]],
) -> None:
    import attrs

    lots = [attrs.evolve(lot(f"l{i}", 100, days=days, priority=priority, age=age),
                         group_id="g" if grouped else None)
            for i, (priority, days, age, grouped) in enumerate(specs)]
    for each in lots:
        assert default_lot_key(each) == tuple(term(each) for _, term in DEFAULT_ORDER)


def test_the_sql_stores_know_a_column_for_every_term_of_the_order() -> None:
    from prepaid_wallet.storage import _schema

    assert list(_schema._ORDER_COLUMNS) == [name for name, _ in DEFAULT_ORDER]
