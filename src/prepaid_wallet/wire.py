"""The library's values as JSON on the wire: what the faces (the HTTP API, the command line's
``call``) send and receive, and the JSON Schema of it, from one walk over the types.

* Money is ``{"amount": "12.50", "currency": "EUR"}``: the amount a decimal string, exact,
  never a JSON number.
* Instants are RFC 3339 in UTC (``"2026-12-03T06:31:35.123456Z"``); an instant read from the
  wire must carry an offset (``Z`` or ``+01:00``) and is turned to UTC.
* Durations are ISO 8601 durations of days, hours, minutes and seconds (``"PT90S"``,
  ``"P2DT4H"``); other decimals (``Decimal``) are decimal strings.
* Enums are their value; tuples, lists and sets are arrays (sets sorted); mappings are objects.
* A value with its own JSON form (``to_data``/``from_data``: conditions, tenant rules, access
  policies, limits...) uses it, as in the library's documents.
* Any other ``attrs`` class is an object of its fields.

:func:`decode` reads data into the type a signature names and raises
:class:`~prepaid_wallet.errors.InvalidInputError` naming the field (a dotted path) and the rule
for anything else; :func:`schema` says the same in JSON Schema (draft 2020-12, as OpenAPI 3.1
uses it), classes as references into a dictionary of definitions.
"""

from __future__ import annotations

import collections.abc as abc
import re
import types
import typing
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import attrs

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidInputError, PrepaidWalletError
from prepaid_wallet.money import Money, currency_exponent, plain_decimal

__all__ = ["decode", "encode", "format_duration", "format_instant", "parse_duration", "schema"]

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DURATION = re.compile(
    r"P(?:(?P<d>[0-9]+)D)?(?:T(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?"
    r"(?:(?P<s>[0-9]+(?:\.[0-9]{1,6})?)S)?)?"
)
_MAX_DURATION_DAYS = 100_000


def format_instant(value: datetime) -> str:
    """``value`` in UTC as RFC 3339 with a ``Z``."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_duration(value: timedelta) -> str:
    """``value`` as an ISO 8601 duration (``PT90S``, ``P2DT0.5S``); never negative here."""
    days, seconds, micros = value.days, value.seconds, value.microseconds
    text = "P" + (f"{days}D" if days else "")
    if seconds or micros or not days:
        fraction = f".{micros:06d}".rstrip("0") if micros else ""
        text += f"T{seconds}{fraction}S"
    return text


def parse_duration(text: object, field: str) -> timedelta:
    """An ISO 8601 duration of days, hours, minutes and seconds (up to microseconds)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or str(text).endswith("T"):
        raise InvalidInputError(field, "must be an ISO 8601 duration such as PT90S or P2DT4H",
                                text)
    parts = {k: v or "0" for k, v in match.groupdict().items()}
    longest = _MAX_DURATION_DAYS * 86_400
    if any(len(v.partition(".")[0]) > len(str(longest)) for v in parts.values()) or (
            Decimal(parts["d"]) * 86_400 + Decimal(parts["h"]) * 3_600
            + Decimal(parts["m"]) * 60 + Decimal(parts["s"]) > longest):  # all parts together
        raise InvalidInputError(field, f"must be at most {_MAX_DURATION_DAYS} days", text)
    return timedelta(days=int(parts["d"]), hours=int(parts["h"]), minutes=int(parts["m"]),
                     microseconds=int(Decimal(parts["s"]) * 1_000_000))

# -- encoding -------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """``value`` as JSON data (see the module's rules)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Decimal):
        return str(plain_decimal(value))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((encode(v) for v in value), key=_sort_key)
    if isinstance(value, abc.Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    own = getattr(value, "to_data", None)
    if own is not None and hasattr(type(value), "from_data"):
        return own()
    if attrs.has(type(value)):
        return {f.name: encode(getattr(value, f.name)) for f in attrs.fields(type(value))}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _sort_key(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


# -- decoding -------------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def decode(tp: Any, data: Any, field: str) -> Any:
    """A value of type ``tp`` read from JSON ``data``; ``InvalidInputError`` naming ``field``
    (a dotted path for nested values) and the rule when ``data`` is not one."""
    if tp is Any:
        return data
    if _is_union(tp):
        args = typing.get_args(tp)
        if data is None:
            if type(None) in args:
                return None
            raise InvalidInputError(field, "must not be null", data)
        arms = [a for a in args if a is not type(None)]
        first: PrepaidWalletError | None = None
        for arm in arms:
            try:
                return decode(arm, data, field)
            except PrepaidWalletError as error:
                first = first or error
        assert first is not None
        raise first
    if data is None:
        raise InvalidInputError(field, "must not be null", data)
    if tp is str:
        if not isinstance(data, str):
            raise InvalidInputError(field, "must be a string", data)
        return data
    if tp is bool:
        if not isinstance(data, bool):
            raise InvalidInputError(field, "must be true or false", data)
        return data
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise InvalidInputError(field, "must be an integer", data)
        return data
    if tp is Decimal:
        return _decimal(data, field)
    if tp is Money:
        return _money(data, field)
    if tp is datetime:
        if not isinstance(data, str):
            raise InvalidInputError(field, "must be an RFC 3339 instant with an offset", data)
        try:  # RFC 3339 allows a lower-case "z"; fromisoformat does not
            parsed = datetime.fromisoformat(data[:-1] + "Z" if data.endswith("z") else data)
        except ValueError:
            raise InvalidInputError(field, "must be an RFC 3339 instant with an offset",
                                    data) from None
        if parsed.tzinfo is None:
            raise InvalidInputError(field, "must be an RFC 3339 instant with an offset", data)
        return require_aware(parsed, field)
    if tp is date or tp is time:
        try:
            return tp.fromisoformat(data)
        except (TypeError, ValueError):
            raise InvalidInputError(field, f"must be an ISO 8601 {tp.__name__}", data) from None
    if tp is timedelta:
        return parse_duration(data, field)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            values = ", ".join(repr(m.value) for m in tp)
            raise InvalidInputError(field, f"must be one of {values}", data) from None
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin in (tuple, list, abc.Sequence, abc.Iterable, frozenset, set, abc.Set):
        if not isinstance(data, list):
            raise InvalidInputError(field, "must be an array", data)
        inner = args[0] if args else Any
        if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError(f"cannot decode fixed tuple {tp!r}")
        items = [decode(inner, v, f"{field}[{i}]") for i, v in enumerate(data)]
        if origin in (frozenset, set, abc.Set):
            return frozenset(items)
        return tuple(items)
    if origin in (dict, abc.Mapping):
        if not isinstance(data, dict):
            raise InvalidInputError(field, "must be an object", data)
        value_type = args[1] if args else Any
        return {k: decode(value_type, v, f"{field}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and hasattr(tp, "from_data") and hasattr(tp, "to_data"):
        return tp.from_data(data)
    if isinstance(tp, type) and attrs.has(tp):
        return _object(tp, data, field)
    raise TypeError(f"cannot decode {tp!r}")


def _decimal(data: Any, field: str) -> Decimal:
    if not isinstance(data, str) or not _DECIMAL.fullmatch(data):
        raise InvalidInputError(field, "must be a decimal string such as \"12.50\"", data)
    try:
        return Decimal(data)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise InvalidInputError(field, "must be a decimal string", data) from None


def _money(data: Any, field: str) -> Money:
    if not isinstance(data, dict) or set(data) != {"amount", "currency"}:
        raise InvalidInputError(
            field, 'must be an object {"amount": "12.50", "currency": "EUR"}', data)
    amount = _decimal(data["amount"], f"{field}.amount")
    currency = data["currency"]
    if not isinstance(currency, str):
        raise InvalidInputError(f"{field}.currency", "must be a string", currency)
    currency_exponent(currency, f"{field}.currency")
    return Money.of(amount, currency, field=f"{field}.amount")


def _object(cls: type, data: Any, field: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidInputError(field, "must be an object", data)
    hints = _hints(cls)
    known = {f.name: f for f in attrs.fields(cls)}
    for name in data:
        if name not in known:
            raise InvalidInputError(f"{field}.{name}" if field else name, "is not a field", None)
    values = {}
    for name, spec in known.items():
        path = f"{field}.{name}" if field else name
        if name in data:
            values[spec.alias] = decode(hints[name], data[name], path)
        elif spec.default is attrs.NOTHING:
            raise InvalidInputError(path, "is required", None)
    try:
        return cls(**values)
    except PrepaidWalletError:
        raise
    except (TypeError, ValueError) as error:
        raise InvalidInputError(field or cls.__name__, str(error), None) from None


# -- JSON Schema ----------------------------------------------------------------------------------

_MONEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An exact amount of money: a decimal string and an ISO 4217 currency code.",
    "required": ["amount", "currency"],
    "additionalProperties": False,
    "properties": {
        "amount": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["12.50"]},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "examples": ["EUR"]},
    },
}


def schema(tp: Any, defs: dict[str, Any], *, inbound: bool = False) -> dict[str, Any]:
    """The JSON Schema of what :func:`encode` writes for type ``tp`` or, with ``inbound``, of
    what :func:`decode` reads as one (a class's fields that have defaults may then be left
    out); classes are added to ``defs`` by name (``<name>Input`` for a class read with fields
    left out) and referenced as ``#/components/schemas/<name>``."""
    if tp is Any:
        return {}
    if _is_union(tp):
        arms = [schema(a, defs, inbound=inbound)
                for a in typing.get_args(tp) if a is not type(None)]
        nullable = type(None) in typing.get_args(tp)
        if nullable:
            arms.append({"type": "null"})
        return arms[0] if len(arms) == 1 else {"anyOf": arms}
    if tp is type(None):
        return {"type": "null"}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is Decimal:
        return {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    if tp is Money:
        return _ref("Money", lambda: dict(_MONEY_SCHEMA), defs)
    if tp is datetime:
        return {"type": "string", "format": "date-time"}
    if tp is date:
        return {"type": "string", "format": "date"}
    if tp is time:
        return {"type": "string", "format": "time"}
    if tp is timedelta:
        # not "format": "duration" (RFC 3339's), which allows no fraction of a second
        return {"type": "string", "pattern": _DURATION.pattern.join("^$"),
                "description": "An ISO 8601 duration of days, hours, minutes and seconds "
                               "(up to microseconds): PT90S, P2DT4H, PT0.5S."}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _ref(tp.__name__, lambda: {"enum": [m.value for m in tp]}, defs)
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin in (tuple, list, abc.Sequence, abc.Iterable, frozenset, set, abc.Set):
        items = schema(args[0], defs, inbound=inbound) if args else {}
        found: dict[str, Any] = {"type": "array", "items": items}
        if origin in (frozenset, set, abc.Set):
            found["uniqueItems"] = True
        return found
    if origin in (dict, abc.Mapping):
        return {"type": "object",
                "additionalProperties": schema(args[1], defs, inbound=inbound) if args else {}}
    if isinstance(tp, type) and hasattr(tp, "from_data") and hasattr(tp, "to_data"):
        # Whitespace made one space: docstrings are indented differently by Python versions.
        doc = " ".join((tp.__doc__ or "").strip().split("\n\n")[0].split())
        return _ref(tp.__name__, lambda: {
            "type": "object",
            "description": f"{doc} (its JSON document: see the library's docs)".strip(),
        }, defs)
    if isinstance(tp, type) and attrs.has(tp):
        optional = inbound and any(f.default is not attrs.NOTHING for f in attrs.fields(tp))
        name = f"{tp.__name__}Input" if optional else tp.__name__
        return _ref(name, lambda: _object_schema(tp, defs, inbound=inbound), defs)
    raise TypeError(f"no schema for {tp!r}")


def _ref(name: str, build: abc.Callable[[], dict[str, Any]],
         defs: dict[str, Any]) -> dict[str, Any]:
    if name not in defs:
        defs[name] = {}  # a placeholder first: a class may refer to itself
        defs[name] = build()
    return {"$ref": f"#/components/schemas/{name}"}


def _object_schema(cls: type, defs: dict[str, Any], *, inbound: bool) -> dict[str, Any]:
    hints = _hints(cls)
    fields = attrs.fields(cls)
    properties = {f.name: schema(hints[f.name], defs, inbound=inbound) for f in fields}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    found: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields if not inbound or f.default is attrs.NOTHING],
        "additionalProperties": False,
    }
    if doc:
        found["description"] = " ".join(doc.split())
    return found
