"""Hypothesis strategies shared by the whole test suite.

This is the one strategies module (see STYLE.md): extend it here rather than defining
strategies in test modules. Add new sections below the money ones (wallets, lots, holds,
clocks...) and keep every strategy a function returning a ``SearchStrategy``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import strategies as st

from prepaid_wallet.money import MAX_MINOR_UNITS, Money

# -- money ---------------------------------------------------------------------------------------

#: Currencies with every exponent in use: 0 (JPY), 2 (EUR, USD, GBP, CHF), 3 (KWD, BHD), 4 (CLF).
CURRENCIES = ("EUR", "USD", "JPY", "KWD", "GBP", "CHF", "BHD", "CLF")


def currencies() -> st.SearchStrategy[str]:
    """ISO 4217 codes of several exponents."""
    return st.sampled_from(CURRENCIES)


def minor_units(
    min_minor: int = -MAX_MINOR_UNITS, max_minor: int = MAX_MINOR_UNITS
) -> st.SearchStrategy[int]:
    """Integer minor units in ``[min_minor, max_minor]``, biased towards small and edge values."""
    candidates = (0, 1, -1, MAX_MINOR_UNITS, -MAX_MINOR_UNITS, min_minor, max_minor)
    edges = sorted({v for v in candidates if min_minor <= v <= max_minor})
    low, high = max(min_minor, -100_000), min(max_minor, 100_000)
    small = st.integers(low, high) if low <= high else st.nothing()
    return st.one_of(st.sampled_from(edges), small, st.integers(min_minor, max_minor))


def money(
    currency: str | None = None,
    min_minor: int = -MAX_MINOR_UNITS,
    max_minor: int = MAX_MINOR_UNITS,
) -> st.SearchStrategy[Money]:
    """Any ``Money`` (of ``currency``, or of one of :data:`CURRENCIES`) in a minor-unit range."""
    codes = st.just(currency) if currency is not None else currencies()
    return st.builds(Money.from_minor_units, minor_units(min_minor, max_minor), codes)


def positive_money(
    currency: str | None = None, max_minor: int = MAX_MINOR_UNITS
) -> st.SearchStrategy[Money]:
    """``Money`` strictly above zero."""
    return money(currency, min_minor=1, max_minor=max_minor)


def decimals(
    min_value: int = -1_000_000, max_value: int = 1_000_000, places: int = 6
) -> st.SearchStrategy[Decimal]:
    """Finite ``Decimal`` factors/ratios with up to ``places`` decimals (no NaN, no infinity)."""
    return st.decimals(
        min_value=min_value,
        max_value=max_value,
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


# -- time ----------------------------------------------------------------------------------------


def durations(max_days: int = 30) -> st.SearchStrategy[timedelta]:
    """Elapsed times from one minute to ``max_days`` days, in minutes, hours or days (so clock
    steps, hold windows and award lifetimes land on the same instants often)."""
    return st.one_of(
        st.integers(1, 120).map(lambda m: timedelta(minutes=m)),
        st.integers(1, 72).map(lambda h: timedelta(hours=h)),
        st.integers(1, max_days).map(lambda d: timedelta(days=d)),
    )


# -- lots ----------------------------------------------------------------------------------------


def lot_specs(max_lots: int = 12) -> st.SearchStrategy[list[tuple[int, int | None, int, int]]]:
    """Award lots of 1.00 for the storage index tests, as ``(priority, expires after this many
    days or None, granted this many minutes after the start, cents spent of it)``. Small ranges
    so that ties in priority, expiry and grant instant are common; the spent cents are 0, all
    100 or anything between."""
    return st.lists(
        st.tuples(
            st.integers(-1, 1),
            st.none() | st.integers(1, 4),
            st.integers(0, 5),
            st.sampled_from([0, 100]) | st.integers(1, 99),
        ),
        max_size=max_lots,
    )


# -- journal entries -----------------------------------------------------------------------------

#: Account keys for entry-building tests: wallets ``w1`` and ``w2`` (linked or not, as a test
#: chooses), a wallet ``w3`` never linked, tenant accounts, and a malformed key.
ENTRY_ACCOUNTS = (
    "wallet:w1:open", "wallet:w1:held", "wallet:w1:lot:l1", "wallet:w2:open",
    "wallet:w3:open", "tenant:t:revenue", "tenant:t:funding:card", "tenant:t:fees",
    "wallet:w1",
)


def entry_postings() -> st.SearchStrategy[list[tuple[str, int, str]]]:
    """Postings as ``(account, minor units, currency)``: mostly balanced-looking pairs in one
    currency, with repeated accounts, zero lines, a second currency, unlinked wallets and a
    malformed key often enough to reach every check."""
    line = st.tuples(
        st.sampled_from(ENTRY_ACCOUNTS),
        st.sampled_from([0, 1, -1, 100, -100]) | st.integers(-10**6, 10**6),
        st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
    )
    balanced = st.tuples(st.sampled_from(ENTRY_ACCOUNTS), st.sampled_from(ENTRY_ACCOUNTS),
                         st.integers(1, 10**6)).map(
        lambda t: [(t[0], -t[2], "EUR"), (t[1], t[2], "EUR")])
    return st.one_of(st.lists(line, max_size=5), balanced,
                     st.tuples(balanced, st.lists(line, max_size=2)).map(lambda t: t[0] + t[1]))
