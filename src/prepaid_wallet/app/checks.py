"""Argument checks every command shares (pure): each raises a typed error naming the field and
the rule, before anything is read or written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from prepaid_wallet.actors import Actor, as_actor
from prepaid_wallet.clock import require_aware
from prepaid_wallet.conditions import LineItem, SpendCondition
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.idempotency import canonical_request
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.policies import PaymentMode, SpendRequest
from prepaid_wallet.text import MAX_TEXT, check_text
from prepaid_wallet.wallet import Wallet

__all__ = [
    "KEEP",
    "Keep",
    "check_common",
    "check_condition",
    "check_currency",
    "check_groups",
    "check_horizon",
    "check_key",
    "check_limit",
    "check_metadata",
    "check_names",
    "check_optional_text",
    "check_positive",
    "check_priority",
    "check_purchase_time",
    "check_request",
    "less",
    "purchase_fields",
    "request_fields",
]

MAX_METADATA_ITEMS = 32
MAX_PRIORITY = 2**31 - 1


class Keep:
    """The type of :data:`KEEP`: "leave this field as it is"."""

    def __repr__(self) -> str:
        return "KEEP"


#: An argument left out of a change: the field keeps its value (``None`` would clear it).
KEEP = Keep()


def check_positive(amount: object, field: str = "amount") -> Money:
    """``amount`` if it is a positive :class:`Money`."""
    if not isinstance(amount, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", amount)
    if amount.minor_units <= 0:
        raise InvalidAmountError(field, "must be greater than zero", amount)
    return amount


def check_optional_text(value: object, field: str, *, required: bool = True) -> str | None:
    """A text field (:func:`~prepaid_wallet.text.check_text`); ``None`` passes unless
    ``required``."""
    if value is None and not required:
        return None
    return check_text(value, field, max_length=MAX_TEXT)


def check_metadata(metadata: object) -> dict[str, str]:
    """Metadata as a dict: at most 32 items, names as keys, text fields as values."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or len(metadata) > MAX_METADATA_ITEMS:
        raise InvalidInputError(
            "metadata", f"must be a mapping of at most {MAX_METADATA_ITEMS} items", metadata
        )
    out: dict[str, str] = {}
    for key, value in metadata.items():
        check_name(key, "metadata")
        out[key] = check_text(value, f"metadata[{key!r}]", max_length=MAX_TEXT, blank=True)
    return out


def check_key(key: object) -> str | None:
    """An idempotency key: 1 to 255 printable characters, or None."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 255 or not key.isprintable():
        raise InvalidInputError(
            "idempotency_key", "must be 1-255 printable characters", key
        )
    return key


def check_common(
    metadata: object, key: object, actor: object
) -> tuple[dict[str, str], str | None, Actor | None]:
    """The arguments every writing command takes: metadata, idempotency key, actor (an
    :class:`~prepaid_wallet.actors.Actor`, a text: an actor with no roles, or None)."""
    return check_metadata(metadata), check_key(key), as_actor(actor)


def request_fields(key: str | None, operation: str, **fields: Any) -> tuple[tuple[str, str], ...]:
    """The canonical request stored with an idempotency key; nothing without a key (the
    request is only compared on a retry under the same key)."""
    return () if key is None else canonical_request(operation, **fields)


def check_currency(wallet: Wallet, amount: Money, field: str = "amount") -> None:
    """``CurrencyMismatchError`` unless ``amount`` is in the wallet's currency."""
    if amount.currency != wallet.currency:
        raise CurrencyMismatchError(wallet.currency, amount.currency, field)


def check_priority(priority: object, field: str = "priority") -> int:
    """A lot's priority: an int within +/-(2**31 - 1)."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not (
        -MAX_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise InvalidInputError(field, "must be an int within +/-(2**31 - 1)", priority)
    return priority


def check_limit(limit: object, field: str = "limit") -> int:
    """How many items a read or a job takes at most: a positive int up to 2**31 - 1 (what
    every store's ``LIMIT`` takes)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PRIORITY:
        raise InvalidInputError(field, "must be a positive int of at most 2**31 - 1", limit)
    return limit


def check_condition(condition: object, field: str = "condition") -> SpendCondition | None:
    """A :class:`SpendCondition` or None."""
    if condition is not None and not isinstance(condition, SpendCondition):
        raise InvalidInputError(field, "must be a SpendCondition or None", condition)
    return condition


def check_names(value: object, field: str) -> frozenset[str]:
    """A frozenset of text fields."""
    if not isinstance(value, frozenset):
        raise InvalidInputError(field, "must be a set of names", value)
    for name in value:
        check_optional_text(name, field)
    return value


def check_groups(groups: object) -> frozenset[str]:
    """Owner groups: a collection of names, or None (none)."""
    if groups is None:
        return frozenset()
    if isinstance(groups, str | bytes) or not isinstance(groups, Iterable):
        raise InvalidInputError("owner_groups", "must be a collection of names", groups)
    found = frozenset(groups)
    for name in found:
        check_name(name, "owner_groups")
    return found


def purchase_fields(request: SpendRequest) -> dict[str, Any]:
    """What a request says about the purchase, for its idempotency fingerprint: only the
    fields it sets, so a request without them is fingerprinted as before they existed."""
    fields: dict[str, Any] = {}
    if request.lines:
        fields["lines"] = request.lines
    if request.merchant is not None:
        fields["merchant"] = request.merchant
    if request.merchant_groups:
        fields["merchant_groups"] = request.merchant_groups
    if request.at is not None:
        fields["purchased_at"] = request.at
    return fields


def check_request(request: object) -> SpendRequest:
    """A well-formed :class:`SpendRequest` (its lines add up to its amount, in its currency)."""
    if not isinstance(request, SpendRequest):
        raise InvalidInputError("request", "must be a SpendRequest", request)
    check_positive(request.amount, "request.amount")
    if request.mode is not None and not isinstance(request.mode, PaymentMode):
        raise InvalidInputError("request.mode", "must be a PaymentMode or None", request.mode)
    check_optional_text(request.description, "request.description", required=False)
    lines = request.lines
    if not isinstance(lines, tuple) or not all(isinstance(x, LineItem) for x in lines):
        raise InvalidInputError("request.lines", "must be a sequence of LineItem", lines)
    if lines:
        currency = request.amount.currency
        for index, item in enumerate(lines):
            if item.amount.currency != currency:
                raise CurrencyMismatchError(currency, item.amount.currency,
                                            f"request.lines[{index}].amount")
        total = Money.sum((item.amount for item in lines), currency)
        if total != request.amount:
            raise InvalidAmountError(
                "request.lines", f"must add up to request.amount ({request.amount})", total
            )
    check_optional_text(request.merchant, "request.merchant", required=False)
    check_names(request.merchant_groups, "request.merchant_groups")
    if request.at is not None:
        require_aware(request.at, "request.at")
    return request


def check_purchase_time(request: SpendRequest, at: datetime) -> None:
    """A purchase's own instant may not be later than now."""
    if request.at is not None and request.at > at:
        raise InvalidTimeError("request.at", "must not be later than now", request.at)


def less(amount: Money, fee: Money | None) -> Money:
    """``amount`` less ``fee`` (no fee: ``amount``)."""
    return amount if fee is None else amount - fee


def check_horizon(ending: datetime | timedelta | None, at: datetime, days: int, field: str,
                  value: object, rule: str) -> None:
    """``InvalidTimeError`` naming ``field`` when ``ending`` (an instant, or a duration from
    ``at``; None: no end) is more than ``days`` days after ``at``: the tenant's ``rule``
    (``hold_horizon_days``, ``award_horizon_days``). ``value`` is what the caller gave."""
    if ending is None:
        return
    ahead = ending if isinstance(ending, timedelta) else ending - at
    if ahead > timedelta(days=days):
        raise InvalidTimeError(field, f"must be at most {days} days ahead (the tenant's {rule})",
                               value)
