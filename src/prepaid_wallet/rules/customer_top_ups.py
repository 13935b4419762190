"""A tenant's settings for customer top-ups (``TenantRules.customer_top_ups``): the least and
the most one top-up may be, and how long a pending one lives. The top-ups themselves are
:class:`prepaid_wallet.rules.topup.customer.CustomerTopUp`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import attrs

from prepaid_wallet.errors import CurrencyMismatchError, InvalidAmountError, InvalidInputError
from prepaid_wallet.money import Money

__all__ = ["DEFAULT_LIFETIME", "CustomerTopUpRules"]

#: How long a pending customer top-up lives by default: one day.
DEFAULT_LIFETIME: Final = timedelta(days=1)
#: The longest lifetime a tenant may give: 90 days.
_MAX_LIFETIME: Final = timedelta(days=90)


def _optional_money(value: object, field: str) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of) or None", value)
    if not value.is_positive():
        raise InvalidAmountError(field, "must be positive", value)
    return value


def _minimum(value: object) -> Money | None:
    return _optional_money(value, "minimum")


def _maximum(value: object) -> Money | None:
    return _optional_money(value, "maximum")


def _lifetime(value: object) -> timedelta:
    if not isinstance(value, timedelta) or not timedelta(minutes=1) <= value <= _MAX_LIFETIME:
        raise InvalidInputError("lifetime", "must be a timedelta from 1 minute to 90 days", value)
    return value


@attrs.frozen(kw_only=True)
class CustomerTopUpRules:
    """A tenant's settings for customer top-ups (``TenantRules.customer_top_ups``).

    ``minimum`` and ``maximum`` (optional, positive, in one currency) bound the amount of one
    top-up of a wallet in their currency (wallets in another currency are not bound by them);
    ``lifetime`` is how long a pending top-up lives before it expires (default
    :data:`DEFAULT_LIFETIME`, one day; from 1 minute to 90 days). The wallet's top-up limits
    and maximum balance apply besides, at start and again at credit. Raises
    ``InvalidAmountError`` naming ``minimum`` or ``maximum``, ``CurrencyMismatchError``
    naming ``maximum`` when the two differ in currency, ``InvalidInputError`` naming
    ``lifetime``.
    """

    minimum: Money | None = attrs.field(default=None, converter=_minimum)
    maximum: Money | None = attrs.field(default=None, converter=_maximum)
    lifetime: timedelta = attrs.field(default=DEFAULT_LIFETIME, converter=_lifetime)

    def __attrs_post_init__(self) -> None:
        if self.minimum is not None and self.maximum is not None:
            if self.minimum.currency != self.maximum.currency:
                raise CurrencyMismatchError(self.minimum.currency, self.maximum.currency,
                                            "maximum")
            if self.maximum < self.minimum:
                raise InvalidAmountError("maximum", "must not be less than minimum",
                                         self.maximum)

    def check(self, amount: Money) -> None:
        """``InvalidAmountError`` naming ``amount`` when ``amount`` is outside the bounds of
        its currency."""
        if self.minimum is not None and self.minimum.currency == amount.currency and \
                amount < self.minimum:
            raise InvalidAmountError("amount", f"must be at least {self.minimum} (the tenant's "
                                     "minimum customer top-up)", amount)
        if self.maximum is not None and self.maximum.currency == amount.currency and \
                amount > self.maximum:
            raise InvalidAmountError("amount", f"must be at most {self.maximum} (the tenant's "
                                     "maximum customer top-up)", amount)

    def to_data(self) -> dict[str, Any]:
        """``{"minimum": {"minor": 500, "currency": "EUR"} or null, "maximum": ... or null,
        "lifetime_seconds": 86400}``; :meth:`from_data` rebuilds equal settings."""
        return {
            "minimum": _money_data(self.minimum),
            "maximum": _money_data(self.maximum),
            "lifetime_seconds": int(self.lifetime.total_seconds()),
        }

    @classmethod
    def from_data(cls, data: object) -> CustomerTopUpRules:
        """Rebuild settings from :meth:`to_data` output (a key left out takes its default);
        ``InvalidInputError`` (or a subclass) naming the field."""
        from prepaid_wallet._data import money_from_data

        if not isinstance(data, Mapping):
            raise InvalidInputError("customer_top_ups", "must be a mapping (a JSON object)",
                                    data)
        unknown = set(data) - {"minimum", "maximum", "lifetime_seconds"}
        if unknown:
            raise InvalidInputError("customer_top_ups", f"has unknown keys {sorted(unknown)}",
                                    data)
        values: dict[str, Any] = {}
        for name in ("minimum", "maximum"):
            if data.get(name) is not None:
                values[name] = money_from_data(data[name], name)
        if "lifetime_seconds" in data:
            seconds = data["lifetime_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise InvalidInputError("lifetime_seconds", "must be an int", seconds)
            try:
                values["lifetime"] = timedelta(seconds=seconds)
            except OverflowError:
                raise InvalidInputError("lifetime_seconds", "is out of range",
                                        seconds) from None
            try:
                return cls(**values)
            except InvalidInputError as exc:
                if exc.field == "lifetime":
                    raise InvalidInputError("lifetime_seconds", exc.rule, seconds) from exc
                raise
        return cls(**values)


def _money_data(value: Money | None) -> dict[str, Any] | None:
    return None if value is None else {"minor": value.minor_units, "currency": value.currency}
