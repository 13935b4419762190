"""Low-balance thresholds: which ones an operation crosses, so the host can remind the owner.

A tenant sets one or several thresholds on the *open* balance (commerce lots are ignored: a
reminder is about money the member tops up), each with a label, e.g. 40.00 EUR "notice" and
30.00 EUR "warn". An operation that takes a wallet's open balance from above a threshold to at or
below it *crosses* it (a balance equal to a threshold has crossed it). One operation may cross
several thresholds at once; it then emits one event naming every threshold crossed, highest
first. Staying at or below a threshold crosses nothing more; going back above it re-arms it, so
the next fall crosses it again. Crossing is a function of the balance before and after one
operation: nothing else is remembered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet._data import money_to_data as _money_to_data
from prepaid_wallet.errors import CurrencyMismatchError, InvalidAmountError, InvalidInputError
from prepaid_wallet.money import Money
from prepaid_wallet.text import check_text

__all__ = ["LowBalanceRule", "Threshold", "crossed"]


def _label(value: object) -> str:
    return check_text(value, "label", max_length=100)


def _amount(value: object) -> Money:
    if not isinstance(value, Money):
        raise InvalidAmountError("amount", "must be a Money (use Money.of)", value)
    return value


@attrs.frozen
class Threshold:
    """One low-balance level: ``amount`` (any sign: a threshold may sit below zero for a wallet
    with a negative floor) and its ``label``."""

    amount: Money = attrs.field(converter=_amount)
    label: str = attrs.field(converter=_label)

    def to_data(self) -> dict[str, Any]:
        """``{"amount": {"minor": 4000, "currency": "EUR"}, "label": "notice"}``;
        :meth:`from_data` rebuilds an equal threshold."""
        return {"amount": _money_to_data(self.amount), "label": self.label}

    @classmethod
    def from_data(cls, data: object) -> Threshold:
        """Rebuild a threshold from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` naming ``"threshold"`` when ``data`` is not a mapping with
        exactly the keys ``amount`` and ``label``, ``InvalidAmountError("amount", ...)`` and
        ``InvalidInputError("label", ...)``.
        """
        if not isinstance(data, Mapping) or set(data) != {"amount", "label"}:
            raise InvalidInputError("threshold", "must be {'amount': <money>, 'label': <text>}",
                                    data)
        return cls(_money_from_data(data["amount"], "amount"), data["label"])


def _thresholds(value: Iterable[Threshold]) -> tuple[Threshold, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError("thresholds", "must be a sequence of Threshold", value)
    items = tuple(value)
    if not items or not all(isinstance(t, Threshold) for t in items):
        raise InvalidInputError("thresholds", "must be one or more Threshold values", value)
    currency = items[0].amount.currency
    for item in items:
        if item.amount.currency != currency:
            raise CurrencyMismatchError(currency, item.amount.currency, "thresholds")
    ordered = tuple(sorted(items, key=lambda t: t.amount, reverse=True))
    amounts = [t.amount for t in ordered]
    labels = [t.label for t in ordered]
    if len(set(amounts)) != len(amounts) or len(set(labels)) != len(labels):
        raise InvalidInputError("thresholds", "must have distinct amounts and labels", value)
    return ordered


@attrs.frozen
class LowBalanceRule:
    """A tenant's low-balance thresholds, in one currency, kept highest first."""

    thresholds: tuple[Threshold, ...] = attrs.field(converter=_thresholds)

    @property
    def currency(self) -> str:
        """The currency of the thresholds (wallets in other currencies are not watched)."""
        return self.thresholds[0].amount.currency

    def to_data(self) -> dict[str, Any]:
        """``{"thresholds": [<Threshold.to_data()>, ...]}``, highest first; :meth:`from_data`
        rebuilds an equal rule."""
        return {"thresholds": [item.to_data() for item in self.thresholds]}

    @classmethod
    def from_data(cls, data: object) -> LowBalanceRule:
        """Rebuild a rule from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` (or a subclass) naming ``"low_balance"`` when ``data`` is
        not a mapping with the one key ``thresholds``, ``"thresholds"`` for a non-list (or
        thresholds the constructor refuses) and ``"thresholds[i].<field>"`` for a bad
        threshold.
        """
        if not isinstance(data, Mapping) or set(data) != {"thresholds"}:
            raise InvalidInputError("low_balance", "must be {'thresholds': [...]}", data)
        raw = data["thresholds"]
        if not isinstance(raw, list):
            raise InvalidInputError("thresholds", "must be a list of thresholds", raw)
        items = []
        for index, item in enumerate(raw):
            try:
                items.append(Threshold.from_data(item))
            except InvalidInputError as exc:
                path = f"thresholds[{index}]"
                if exc.field != "threshold":
                    path = f"{path}.{exc.field}"
                kind = InvalidAmountError if isinstance(exc, InvalidAmountError) else (
                    InvalidInputError)
                raise kind(path, exc.rule, exc.value) from exc
        return cls(tuple(items))

    def threshold(self, label: str) -> Threshold:
        """The threshold called ``label``; ``InvalidInputError`` if there is none."""
        for item in self.thresholds:
            if item.label == label:
                return item
        raise InvalidInputError("threshold", f"must be one of the tenant's thresholds "
                                f"({', '.join(t.label for t in self.thresholds)})", label)


def crossed(rule: LowBalanceRule, before: Money, after: Money) -> tuple[Threshold, ...]:
    """The thresholds of ``rule`` that a move of the open balance from ``before`` to ``after``
    crosses (``before > amount >= after``), highest first; empty for a wallet in another
    currency."""
    if before.currency != rule.currency or after.currency != rule.currency:
        return ()
    return tuple(t for t in rule.thresholds if before > t.amount >= after)
