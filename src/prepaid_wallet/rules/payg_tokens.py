"""OpenPAYGO Token codes for pay-as-you-go devices: which tokens bring a device to a new end.

A pay-as-you-go device (a solar home system, a lamp, a pump) runs until its *end* and is
unlocked by short numeric codes, OpenPAYGO Tokens, that the customer types in. Each code is
made from the device's secret key, its starting code and a *count* that advances with every
code, and carries one value in whole *units* of time (a day by default):

* **ADD_TIME** adds the value to the device's end (a device already off adds from the moment
  the code is entered);
* **SET_TIME** sets the end to the value from the moment the code is entered (``0`` locks the
  device).

:class:`DeviceTokens` is what the library keeps per device (never the key), and :func:`issue`
is the one transition: given the device's state, its key, the new end and now, it returns the
state after and the tokens to give the customer, in the order they must be entered.

The rules, as the OpenPAYGO reference server applies them:

* **ADD or SET.** A new end beyond the furthest end ever issued is reached with ADD_TIME tokens
  whose values sum to the whole units between the device's current end (``max(now,
  issued_end)``) and the new end. Any other end (an earlier end, or one back up to the furthest
  end after a reduction) is reached with SET_TIME: the whole units from now to the new end, ``0``
  when the new end is not after now (the device locks). A SET token also marks every older count
  as used on the device, so a code issued before a reduction can no longer be entered.
* **Splitting.** One token carries at most :attr:`DeviceTokens.max_value` units (995, the
  standard's largest time value; 996-999 encode other commands). A larger ADD is several ADD
  tokens, each of the maximum but the last; a larger SET is one SET of the maximum followed by
  ADD tokens for the rest, which the device adds on top of the end the SET gave it. One call
  issues at most :data:`MAX_TOKENS_PER_ISSUE` tokens (an end further away is refused), so every
  code of one issue lies within the counts the device accepts ahead of the last one it took.
* **Counts.** Each token's count is the one openpaygo's encoder returns (ADD_TIME codes use
  even counts and SET_TIME codes odd ones, so the count advances by one or two); the state after
  holds the last one.
* **Rounding.** Values are whole units rounded down, never up: the device is never given time
  the customer was not sold. ``issued_end`` is the end the device really holds after the tokens
  (``now`` or its current end, plus the units issued), not the end asked for, so the part of a
  unit left over is not lost: the next extension is measured from ``issued_end`` and includes it,
  and it is never given twice.
* **Nothing to do.** When the tokens would leave the device's end where it is (the new end
  rounds down to the current one, or the device is already off and the new end is not after
  now), :func:`issue` returns the state unchanged and no token.

:func:`issue` is a pure function: the same state, key and arguments give the same tokens, so a
retried command that issues again from the same stored state hands out the same codes.

The secret key is the host's: a :class:`KeySource` looks it up by tenant and device when a token
is issued. The library never stores it, and no value, ``repr`` or error it makes contains it.

The codes are made by the ``openpaygo`` package (the optional extra ``payg``: ``pip install
'prepaid_wallet[payg]'``), imported only when a token is issued or a starting code derived;
without it those raise :class:`~prepaid_wallet.errors.MissingExtraError`.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import attrs

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidInputError, MissingExtraError
from prepaid_wallet.ids import check_name

__all__ = [
    "DAY_SECONDS",
    "MAX_ACTIVATION_VALUE",
    "MAX_STARTING_CODE",
    "MAX_TOKENS_PER_ISSUE",
    "DeviceTokens",
    "KeySource",
    "Token",
    "TokenKind",
    "device_key",
    "issue",
    "register",
]

#: The default unit of a token's value: one day, in seconds.
DAY_SECONDS = 86_400
#: The largest time value one standard token carries (openpaygo's
#: ``OpenPAYGOTokenShared.MAX_ACTIVATION_VALUE``; larger values encode other commands).
MAX_ACTIVATION_VALUE = 995
#: The largest starting code (nine digits).
MAX_STARTING_CODE = 999_999_999
#: The most tokens one :func:`issue` returns: 32 tokens advance the count by at most 64, the
#: furthest ahead of its last count a device accepts a code (openpaygo's ``MAX_TOKEN_JUMP``).
MAX_TOKENS_PER_ISSUE = 32

_KEY_RULE = "must be the device's secret key: 32 hexadecimal characters"
_HEX = frozenset(string.hexdigits)


class KeySource(Protocol):
    """Where the host keeps device keys: ``source(tenant_id, device_id)`` returns the device's
    secret key as 32 hexadecimal characters. The library calls it when it issues a token and
    keeps the key no longer than that call."""

    def __call__(self, tenant_id: str, device_id: str) -> str:
        """The secret key of ``device_id`` at ``tenant_id``."""
        ...


class TokenKind(StrEnum):
    """What a token does to the device's end."""

    ADD_TIME = "add_time"  #: adds its value to the end (from now if the end is past)
    SET_TIME = "set_time"  #: sets the end to its value from now (0 locks the device)


def _check_key(key: object, field: str = "key") -> str:
    """``key`` if it is a secret key; the error never carries or names the value."""
    if not isinstance(key, str) or len(key) != 32 or not _HEX.issuperset(key):
        raise InvalidInputError(field, _KEY_RULE)
    return key


def device_key(source: KeySource, tenant_id: str, device_id: str) -> str:
    """The secret key of ``device_id`` at ``tenant_id`` from the host's ``source``, checked.

    Raises ``InvalidInputError`` naming ``"key"`` when the source returns anything but 32
    hexadecimal characters (the error does not contain what it returned).
    """
    check_name(tenant_id, "tenant_id")
    check_name(device_id, "device_id")
    return _check_key(source(tenant_id, device_id))


def _whole(value: object, field: str, low: int, high: int | None = None) -> int:
    if (
        not isinstance(value, int) or isinstance(value, bool)
        or value < low or (high is not None and value > high)
    ):
        bound = f"at least {low}" if high is None else f"from {low} to {high}"
        raise InvalidInputError(field, f"must be a whole number {bound}", value)
    return value


def _value(value: object) -> int:
    return _whole(value, "value", 0, MAX_ACTIVATION_VALUE)


def _count(value: object) -> int:
    return _whole(value, "count", 0)


def _starting_code(value: object) -> int:
    return _whole(value, "starting_code", 1, MAX_STARTING_CODE)


def _unit_seconds(value: object) -> int:
    return _whole(value, "unit_seconds", 1)


def _max_value(value: object) -> int:
    return _whole(value, "max_value", 1, MAX_ACTIVATION_VALUE)


def _issued_end(value: object) -> datetime | None:
    return None if value is None else require_aware(value, "issued_end")


def _furthest_end(value: object) -> datetime | None:
    return None if value is None else require_aware(value, "furthest_end")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError("restricted_digit_set", "must be True or False", value)
    return value


def _device_id(value: object) -> str:
    return check_name(value, "device_id")


def _kind(value: object) -> TokenKind:
    try:
        return TokenKind(value)  # type: ignore[arg-type]  # anything else is refused below
    except (ValueError, TypeError):
        raise InvalidInputError("kind", "must be 'add_time' or 'set_time'", value) from None


def _code(value: object) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise InvalidInputError("code", "must be the token's digits", value)
    return value


@attrs.frozen
class Token:
    """One code to give the customer: its ``kind``, its ``value`` in the device's units, the
    ``count`` it was made with and the ``code`` itself (9 digits, or 15 digits from 1 to 4 for a
    device with the restricted digit set), kept with its leading zeros."""

    kind: TokenKind = attrs.field(converter=_kind)
    value: int = attrs.field(converter=_value)
    count: int = attrs.field(converter=_count)
    code: str = attrs.field(converter=_code)


@attrs.frozen
class DeviceTokens:
    """What the library keeps about one device's tokens (never its key).

    * ``device_id``: the host's id of the device;
    * ``starting_code``: the device's starting code, from 1 to 999999999 (given by the host at
      registration, or derived from the key: :func:`register`);
    * ``count``: the count of the last token issued (1 for a new device, as the device starts);
    * ``issued_end``: the end the device was last brought to (aware UTC), ``None`` before the
      first token;
    * ``furthest_end``: the furthest end ever issued (``None`` before the first token); a new
      end beyond it is reached with ADD_TIME tokens, any other with SET_TIME;
    * ``unit_seconds``: the seconds one unit of a token's value stands for (a day by default);
      the device must count in the same unit (codes are made with openpaygo's
      ``value_divider`` 1: a code's value is the number of units itself);
    * ``max_value``: the largest value of one token, from 1 to 995 (the standard's maximum);
    * ``restricted_digit_set``: the device's keypad has only the digits 1 to 4 (15-digit codes).

    Raises ``InvalidInputError`` (``InvalidTimeError`` for an instant) naming the field at
    fault, or ``"furthest_end"`` when it is set without ``issued_end`` (or the other way
    round) or before it.
    """

    device_id: str = attrs.field(converter=_device_id)
    starting_code: int = attrs.field(converter=_starting_code)
    count: int = attrs.field(default=1, converter=_count)
    issued_end: datetime | None = attrs.field(default=None, converter=_issued_end)
    furthest_end: datetime | None = attrs.field(default=None, converter=_furthest_end)
    unit_seconds: int = attrs.field(default=DAY_SECONDS, converter=_unit_seconds)
    max_value: int = attrs.field(default=MAX_ACTIVATION_VALUE, converter=_max_value)
    restricted_digit_set: bool = attrs.field(default=False, converter=_flag)

    def __attrs_post_init__(self) -> None:
        issued, furthest = self.issued_end, self.furthest_end
        if (issued is None) != (furthest is None) or (
            issued is not None and furthest is not None and furthest < issued
        ):
            raise InvalidInputError(
                "furthest_end", "must be set with issued_end, and not before it", furthest
            )

    @property
    def unit(self) -> timedelta:
        """One unit of a token's value, as a duration."""
        return timedelta(seconds=self.unit_seconds)


def _openpaygo() -> Any:
    """The ``openpaygo`` module, imported on first use."""
    try:
        import openpaygo
    except ImportError as exc:
        raise MissingExtraError("openpaygo", "payg", "OpenPAYGO Token codes") from exc
    return openpaygo


def register(
    device_id: str,
    *,
    key: str | None = None,
    starting_code: int | None = None,
    unit_seconds: int = DAY_SECONDS,
    max_value: int = MAX_ACTIVATION_VALUE,
    restricted_digit_set: bool = False,
) -> DeviceTokens:
    """The token state of a new device: count 1, nothing issued yet.

    ``starting_code`` is the one the device was programmed with; without it, it is derived from
    ``key`` as the standard defines (openpaygo's ``generate_starting_code``: SipHash-2-4 of the
    key), which needs the ``payg`` extra. The key is used for that only, never kept.

    Raises ``InvalidInputError`` naming ``"key"`` (a key that is not 32 hexadecimal
    characters, or neither argument given: ``"starting_code"``) or the field at fault, and
    ``MissingExtraError`` when the starting code must be derived and openpaygo is not installed.
    """
    if key is not None:
        _check_key(key)
    if starting_code is None:
        if key is None:
            raise InvalidInputError(
                "starting_code", "give the device's starting code, or its key to derive it from"
            )
        shared = _openpaygo().token_shared.OpenPAYGOTokenShared
        starting_code = int(shared.generate_starting_code(shared.load_secret_key_from_hex(key)))
    return DeviceTokens(
        device_id, starting_code, unit_seconds=unit_seconds, max_value=max_value,
        restricted_digit_set=restricted_digit_set,
    )


def _split(units: int, most: int) -> list[int]:
    """``units`` as values of at most ``most`` each, the largest first."""
    whole, rest = divmod(units, most)
    return [most] * whole + ([rest] if rest else [])


def issue(
    state: DeviceTokens, key: str, *, new_end: datetime, now: datetime
) -> tuple[DeviceTokens, tuple[Token, ...]]:
    """The tokens that bring the device of ``state`` to ``new_end``, and its state after them.

    ``key`` is the device's secret key (32 hexadecimal characters; see :func:`device_key`),
    ``new_end`` the end the device must now have and ``now`` the instant the customer gets the
    tokens (both timezone-aware). The tokens are in the order they must be entered. The rules
    (ADD_TIME beyond the furthest end, SET_TIME otherwise; splitting above
    ``state.max_value``; whole units rounded down with ``issued_end`` the end the device really
    holds; no token when nothing changes) are the module's.

    Raises ``InvalidInputError`` naming ``"state"``, ``"key"`` (without its value) or
    ``"new_end"`` (an end that needs more than :data:`MAX_TOKENS_PER_ISSUE` tokens),
    ``InvalidTimeError`` naming ``"new_end"`` or ``"now"`` for a naive instant, and
    ``MissingExtraError`` when openpaygo is not installed.
    """
    if not isinstance(state, DeviceTokens):
        raise InvalidInputError("state", "must be a DeviceTokens", state)
    _check_key(key)
    new_end = require_aware(new_end, "new_end")
    now = require_aware(now, "now")
    unit, most = state.unit, state.max_value
    current = now if state.issued_end is None else max(now, state.issued_end)
    plan: list[tuple[TokenKind, int]]
    if state.furthest_end is None or new_end > state.furthest_end:
        units = (new_end - current) // unit
        if units <= 0:
            return state, ()
        end = current + units * unit
        plan = [(TokenKind.ADD_TIME, value) for value in _split(units, most)]
    else:
        units = max(0, (new_end - now) // unit)
        end = now + units * unit
        if end == current:
            return state, ()
        first = min(units, most)
        plan = [(TokenKind.SET_TIME, first)]
        plan += [(TokenKind.ADD_TIME, value) for value in _split(units - first, most)]
    if len(plan) > MAX_TOKENS_PER_ISSUE:
        raise InvalidInputError(
            "new_end",
            f"must be reachable with at most {MAX_TOKENS_PER_ISSUE} tokens of"
            f" {most} units each",
            new_end,
        )
    tokens = _encode(state, key, plan)
    furthest = end if state.furthest_end is None else max(state.furthest_end, end)
    after = attrs.evolve(state, count=tokens[-1].count, issued_end=end, furthest_end=furthest)
    return after, tokens


def _encode(
    state: DeviceTokens, key: str, plan: list[tuple[TokenKind, int]]
) -> tuple[Token, ...]:
    """The codes of ``plan``, made by openpaygo's encoder from ``state.count`` on."""
    openpaygo = _openpaygo()
    types = {
        TokenKind.ADD_TIME: openpaygo.TokenType.ADD_TIME,
        TokenKind.SET_TIME: openpaygo.TokenType.SET_TIME,
    }
    count = state.count
    tokens = []
    for kind, value in plan:
        count, code = openpaygo.OpenPAYGOTokenEncoder.generate_token(
            secret_key=key,
            count=count,
            value=value,
            token_type=types[kind],
            starting_code=state.starting_code,
            value_divider=1,
            restricted_digit_set=state.restricted_digit_set,
        )
        tokens.append(Token(kind, value, int(count), str(code)))
    return tuple(tokens)
