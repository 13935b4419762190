"""Idempotency: the canonical form of a request, how a retry is compared with it, and how a
stored outcome (a result or a business refusal) is encoded and replayed.

A request is reduced to a mapping of field name to text (amounts as ``"12.50 EUR"``, instants
in UTC ISO 8601). A retry under the same key must give the same mapping; otherwise
:class:`~prepaid_wallet.errors.IdempotencyConflictError` names every field that differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from prepaid_wallet import _codec, errors
from prepaid_wallet.app.ports import IdempotencyRecord
from prepaid_wallet.errors import (
    IdempotencyConflictError,
    RefusedError,
    SpendDeniedError,
)
from prepaid_wallet.money import Money, amount_text
from prepaid_wallet.policies import Decision

__all__ = ["canonical_request", "check_replay", "decode_refusal", "encode_refusal"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Money):
        return f"{amount_text(value.minor_units, value.currency)} {value.currency}"
    if not value and isinstance(value, Mapping):  # most requests carry no metadata
        return "{}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Mapping):  # values JSON has no form for (Money) as their text
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"), default=_text)
    return json.dumps(_codec.to_data(value), sort_keys=True, separators=(",", ":"))


def canonical_request(operation: str, **fields: Any) -> tuple[tuple[str, str], ...]:
    """The request as sorted ``(field, text)`` pairs, with ``operation`` first."""
    return (("operation", operation), *sorted([(k, _text(v)) for k, v in fields.items()]))


def check_replay(record: IdempotencyRecord, request: tuple[tuple[str, str], ...]) -> None:
    """Raise ``IdempotencyConflictError`` naming every field where ``request`` differs from the
    one stored in ``record``."""
    stored = dict(record.request)
    new = dict(request)
    if stored.get("operation") != new.get("operation"):
        raise IdempotencyConflictError(record.key, ["operation"])
    differing = sorted(k for k in stored.keys() | new.keys() if stored.get(k) != new.get(k))
    if differing:
        raise IdempotencyConflictError(record.key, differing)


def encode_refusal(error: RefusedError) -> str:
    """JSON text that :func:`decode_refusal` turns back into an equal refusal: its type and
    the arguments its ``fields`` name (a spend's refusal: its decision)."""
    data: dict[str, Any]
    if isinstance(error, SpendDeniedError):
        data = {"decision": _codec.to_data(error.decision)}
        if error.action != "spend":  # a spend's refusal is stored as it always was
            data["action"] = error.action
    elif error.fields:
        data = {name: _codec.to_data(getattr(error, name)) for name in error.fields}
    else:  # pragma: no cover - every refusal the service raises declares its fields
        raise TypeError(f"cannot store refusal {type(error).__name__}")
    return json.dumps({"type": type(error).__name__, **data}, sort_keys=True)


def decode_refusal(text: str) -> RefusedError:
    """The refusal stored by :func:`encode_refusal`."""
    data = json.loads(text)
    kind = data["type"]
    if kind == "SpendDeniedError":
        return SpendDeniedError(_codec.from_data(Decision, data["decision"]),
                                data.get("action", "spend"))
    refusal = getattr(errors, kind, None)
    if not (isinstance(refusal, type) and issubclass(refusal, RefusedError) and refusal.fields):
        raise TypeError(f"unknown stored refusal {kind!r}")  # pragma: no cover
    return refusal(*(_codec.from_data(Money, data[name]) if name in refusal.money
                     else data[name] for name in refusal.fields))
