"""Reading and writing the plain data (JSON) of rule and condition values (private).

Every rule and condition module stores its values the same way: money as
``{"minor": <int>, "currency": <code>}``, instants as ISO 8601 text with an offset, zones as IANA
names. The checks live here once, each raising the typed error that names the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidAmountError, InvalidInputError, InvalidTimeError
from prepaid_wallet.money import Money

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = ["ZONE_RULE", "instant_from_text", "money_from_data", "money_to_data", "zone"]

ZONE_RULE: Final = "must be an IANA time zone name, e.g. Europe/Nicosia"
#: Names that follow the machine's own zone: results would depend on the host.
_HOST_ZONES: Final = frozenset({"localtime"})
_MONEY_RULE: Final = "must be {'minor': <int>, 'currency': <ISO 4217 code>}"
_INSTANT_RULE: Final = (
    "must be an ISO 8601 instant with an offset, such as '2026-01-01T00:00:00+00:00'"
)


def zone(value: object, field: str = "zone") -> ZoneInfo:
    """``value`` as a ``ZoneInfo``; ``InvalidInputError(field, ...)`` unless it names an IANA
    zone. ``ZoneInfo`` keeps its own cache, so repeated look-ups are cheap."""
    if not isinstance(value, str) or not value or value in _HOST_ZONES:
        raise InvalidInputError(field, ZONE_RULE, value)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only values with a zone need it

    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        # OSError: a directory such as "Europe" on the search path.
        raise InvalidInputError(field, ZONE_RULE, value) from exc


def money_to_data(value: Money) -> dict[str, Any]:
    """``value`` as ``{"minor": <int>, "currency": <code>}``."""
    return {"minor": value.minor_units, "currency": value.currency}


def money_from_data(value: object, field: str) -> Money:
    """The inverse of :func:`money_to_data`; ``InvalidAmountError`` naming ``field``."""
    if not isinstance(value, Mapping) or set(value) != {"minor", "currency"}:
        raise InvalidAmountError(field, _MONEY_RULE, value)
    minor = value["minor"]
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidAmountError(field, _MONEY_RULE, value)
    try:
        return Money(minor, value["currency"])
    except InvalidInputError as exc:
        raise InvalidAmountError(field, exc.rule, value) from exc


def instant_from_text(value: object, field: str) -> datetime:
    """An aware instant (UTC) from ISO 8601 text with an offset; ``InvalidTimeError``."""
    if not isinstance(value, str):
        raise InvalidTimeError(field, _INSTANT_RULE, value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidTimeError(field, _INSTANT_RULE, value) from exc
    return require_aware(parsed, field)
