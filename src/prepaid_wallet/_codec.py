"""Turn the library's frozen values into JSON-friendly data and back (private).

Used to store idempotent outcomes and to dump a store canonically. Supports ``None``, ``str``,
``int``, ``bool``, :class:`~prepaid_wallet.money.Money` (``"12.50 EUR"``), aware ``datetime``
(ISO 8601 in UTC), ``timedelta`` (whole microseconds), enums (their value), tuples, frozensets
(sorted lists), str-keyed dicts, :class:`~prepaid_wallet.conditions.SpendCondition` (its own
``to_data``) and attrs classes made of these. A field missing from the data takes its default,
so values stored before a field was added still load.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import attrs

from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.money import Money, amount_text

__all__ = ["dumps", "dumps_parts", "from_data", "loads", "to_data"]

_MICROSECOND = timedelta(microseconds=1)


def to_data(value: Any) -> Any:
    """``value`` as JSON-friendly data."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Money):
        return f"{amount_text(value.minor_units, value.currency)} {value.currency}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, timedelta):
        return value // _MICROSECOND
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(to_data(v) for v in value)
    if isinstance(value, SpendCondition):
        return value.to_data()
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return {f.name: to_data(getattr(value, f.name)) for f in attrs.fields(type(value))}
    raise TypeError(f"cannot encode {type(value).__name__}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` from :func:`to_data` output."""
    if tp is str or tp is int or tp is bool:  # the most common leaves, first
        return data
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return from_data(inner, data)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_data(args[0], v) for v in data)
        return tuple(from_data(a, v) for a, v in zip(args, data, strict=True))
    if origin is frozenset:
        (inner,) = typing.get_args(tp)
        return frozenset(from_data(inner, v) for v in data)
    if origin is dict:
        _, value_type = typing.get_args(tp)
        return {k: from_data(value_type, v) for k, v in data.items()}
    if tp is Money:
        amount, currency = data.split(" ")
        return Money.of(amount, currency)
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is timedelta:
        return timedelta(microseconds=data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if tp is SpendCondition:
        return SpendCondition.from_data(data)
    if isinstance(tp, type) and attrs.has(tp):
        # A field missing from the data (written before the field existed) takes its default.
        hints = _hints(tp)
        return tp(**{
            f.name: from_data(hints[f.name], data[f.name])
            for f in attrs.fields(tp)
            if f.name in data or f.default is attrs.NOTHING
        })
    if tp in (str, int, bool) or tp is Any:
        return data
    raise TypeError(f"cannot decode {tp!r}")


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """Canonical JSON text of ``value``: exactly ``json.dumps(to_data(value), sort_keys=True,
    separators=(",", ":"))``, written by an encoder made once per type (see
    :func:`_encoder`) instead of building the data first: every idempotent outcome is stored
    this way."""
    return _encode(value)


_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _encode(value: Any) -> str:
    encode = _ENCODERS.get(type(value))
    if encode is None:
        encode = _encoder(type(value))
    return encode(value)


#: The encoded text of amounts already encoded, by (minor units, currency): most outcomes
#: repeat a few amounts (the spend, zero), so their text is written once. Bounded: cleared
#: when full.
_MONEY_TEXT: dict[tuple[int, str], str] = {}
_MONEY_TEXT_MAX = 4096


def _encode_money(value: Money) -> str:
    key = (value.minor_units, value.currency)
    text = _MONEY_TEXT.get(key)
    if text is None:
        if len(_MONEY_TEXT) >= _MONEY_TEXT_MAX:
            _MONEY_TEXT.clear()
        text = _MONEY_TEXT[key] = f'"{amount_text(key[0], key[1])} {key[1]}"'
    return text


def _encode_sequence(value: tuple[Any, ...] | list[Any]) -> str:
    if not value:
        return "[]"
    get = _ENCODERS.get
    return "[" + ",".join([
        (get(type(item)) or _encoder(type(item)))(item) for item in value
    ]) + "]"


def _encoder(cls: type) -> Callable[[Any], str]:
    """The encoder of values of exactly ``cls``, made once and kept: the same text
    :func:`to_data` then the canonical JSON encoder give, type by type."""
    encode: Callable[[Any], str]
    if cls is type(None):
        encode = _null
    elif issubclass(cls, bool):
        encode = _bool
    elif issubclass(cls, str):
        encode = _quote
    elif issubclass(cls, int):
        encode = int.__repr__
    elif issubclass(cls, Money):
        encode = _encode_money
    elif issubclass(cls, datetime):
        encode = _encode_instant
    elif issubclass(cls, timedelta):
        encode = _encode_duration
    elif issubclass(cls, Enum):
        encode = _encode_enum
    elif issubclass(cls, tuple | list):
        encode = _encode_sequence
    elif issubclass(cls, frozenset | set | SpendCondition | dict) or not attrs.has(cls):
        encode = _generic
    else:
        encode = _attrs_encoder(cls)
    _ENCODERS[cls] = encode
    return encode


def _attrs_encoder(cls: type) -> Callable[[Any], str]:
    """The encoder of an attrs class: its fields by name (the canonical key order), each
    encoded by its value's type. The function is written for the class (as attrs writes
    ``__init__``): one attribute read and one encoder call per field, ``null`` inline."""
    names = sorted(f.name for f in attrs.fields(cls))
    if not names:
        return lambda value: "{}"
    reads = "".join(f"    f{i} = value.{name}\n" for i, name in enumerate(names))
    # One f-string: '{"a":' + the field's text + ',"b":' ... + '}' built in one go. Field
    # names are identifiers: their JSON text holds no quote or brace, and a backslash (of a
    # non-ASCII letter's escape) is doubled to stay a backslash in the f-string.
    parts = "".join(
        ("{{" if i == 0 else ",") + _quote(name).replace("\\", "\\\\") + ":"
        + f'{{"null" if f{i} is None else (get(type(f{i})) or make(type(f{i})))(f{i})}}'
        for i, name in enumerate(names)
    )
    source = f"def encode(value):\n{reads}    return f'{parts}}}}}'\n"
    scope: dict[str, Any] = {"get": _ENCODERS.get, "make": _encoder}
    exec(compile(source, f"<prepaid_wallet encoder {cls.__qualname__}>", "exec"), scope)
    encode: Callable[[Any], str] = scope["encode"]
    return encode


def _null(value: None) -> str:
    return "null"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _encode_instant(value: datetime) -> str:
    return '"' + value.astimezone(UTC).isoformat() + '"'


def _encode_duration(value: timedelta) -> str:
    return str(value // _MICROSECOND)


def _encode_enum(value: Enum) -> str:
    return _encode(value._value_)  # what ``value.value`` reads, without the property


def _generic(value: Any) -> str:
    return _canonical(to_data(value))


_ENCODERS: dict[type, Callable[[Any], str]] = {}


def dumps_parts(parts: tuple[Any, ...]) -> str:
    """:func:`dumps` of a tuple of :class:`~prepaid_wallet.wallet.AllocationPart`, written
    directly (the same text, without the generic walk): refundable charges and holds store
    their allocation on every spend."""
    if not parts:
        return "[]"
    items = []
    for part in parts:
        expires = part.expires_at
        items.append(
            '{"amount":' + _encode_money(part.amount)
            + ',"expires_at":'
            + ("null" if expires is None else _quote(expires.astimezone(UTC).isoformat()))
            + ',"line":' + ("null" if part.line is None else str(part.line))
            + ',"lot_id":' + ("null" if part.lot_id is None else _quote(part.lot_id)) + "}"
        )
    return "[" + ",".join(items) + "]"


def loads(tp: Any, text: str) -> Any:
    """Inverse of :func:`dumps` for type ``tp``."""
    return from_data(tp, json.loads(text))
