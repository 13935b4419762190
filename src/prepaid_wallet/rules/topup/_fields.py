"""What the records of automatic top-ups share when they are read from data: a member of an enum,
a mapping with exactly the expected keys (each ``InvalidInputError`` naming the field)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from prepaid_wallet.errors import InvalidInputError

_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], value: object, field: str, *, prefix: str = "must be one of") -> _E:
    """``value`` as a member of ``kind``; ``InvalidInputError(field, ...)`` otherwise."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise InvalidInputError(field, f"{prefix} {', '.join(m.value for m in kind)}", value)


def _mapping(data: object, field: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(field, "must be a mapping (a JSON object)", data)
    if set(data) != keys:
        raise InvalidInputError(field, f"must have exactly the keys {sorted(keys)}", data)
    return data
