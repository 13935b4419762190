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
    AlreadyReversedError,
    FloorAboveBalanceError,
    HoldExpiredError,
    HoldStateError,
    IdempotencyConflictError,
    InsufficientFundsError,
    LimitExceededError,
    NoCreditOwedError,
    OrderExpiredError,
    OrderNotCoveredError,
    OrderStateError,
    PaygRefusedError,
    RefundExceedsOriginalError,
    RefusedError,
    SpendDeniedError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.policies import Decision

__all__ = ["canonical_request", "check_replay", "decode_refusal", "encode_refusal"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
    return json.dumps(_codec.to_data(value), sort_keys=True, separators=(",", ":"))


def canonical_request(operation: str, **fields: Any) -> tuple[tuple[str, str], ...]:
    """The request as sorted ``(field, text)`` pairs, with ``operation`` first."""
    return (("operation", operation), *sorted((k, _text(v)) for k, v in fields.items()))


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
    """JSON text that :func:`decode_refusal` turns back into an equal refusal."""
    data: dict[str, Any]
    if isinstance(error, SpendDeniedError):
        data = {"decision": _codec.to_data(error.decision)}
        if error.action != "spend":  # a spend's refusal is stored as it always was
            data["action"] = error.action
    elif isinstance(error, InsufficientFundsError):
        data = {
            "wallet_id": error.wallet_id,
            "requested": _codec.to_data(error.requested),
            "available": _codec.to_data(error.available),
        }
    elif isinstance(error, HoldExpiredError):
        data = {"hold_id": error.hold_id, "action": error.action}
    elif isinstance(error, HoldStateError):
        data = {"hold_id": error.hold_id, "status": error.status, "action": error.action}
    elif isinstance(error, RefundExceedsOriginalError):
        data = {
            "entry_id": error.entry_id,
            "requested": _codec.to_data(error.requested),
            "refundable": _codec.to_data(error.refundable),
        }
    elif isinstance(error, AlreadyReversedError):
        data = {"entry_id": error.entry_id, "reversal_id": error.reversal_id}
    elif isinstance(error, OrderExpiredError):
        data = {"order_id": error.order_id, "action": error.action}
    elif isinstance(error, OrderStateError):
        data = {"order_id": error.order_id, "status": error.status, "action": error.action}
    elif isinstance(error, OrderNotCoveredError):
        data = {"order_id": error.order_id,
                "remainder_due": _codec.to_data(error.remainder_due)}
    elif isinstance(error, NoCreditOwedError):
        data = {"order_id": error.order_id, "credited_entry_id": error.credited_entry_id}
    elif isinstance(error, FloorAboveBalanceError):
        data = {"wallet_id": error.wallet_id, "floor": _codec.to_data(error.floor),
                "open": _codec.to_data(error.open)}
    elif isinstance(error, LimitExceededError):
        data = {"wallet_id": error.wallet_id, "operation": error.operation,
                "breaches": list(error.breaches)}
    elif isinstance(error, PaygRefusedError):
        data = {name: _codec.to_data(getattr(error, name)) for name in error.fields}
    else:  # pragma: no cover - every refusal the service raises is listed above
        raise TypeError(f"cannot store refusal {type(error).__name__}")
    return json.dumps({"type": type(error).__name__, **data}, sort_keys=True)


def decode_refusal(text: str) -> RefusedError:
    """The refusal stored by :func:`encode_refusal`."""
    data = json.loads(text)
    kind = data["type"]
    if kind == "SpendDeniedError":
        return SpendDeniedError(_codec.from_data(Decision, data["decision"]),
                                data.get("action", "spend"))
    if kind == "InsufficientFundsError":
        return InsufficientFundsError(
            data["wallet_id"],
            _codec.from_data(Money, data["requested"]),
            _codec.from_data(Money, data["available"]),
        )
    if kind == "HoldExpiredError":
        return HoldExpiredError(data["hold_id"], data["action"])
    if kind == "HoldStateError":
        return HoldStateError(data["hold_id"], data["status"], data["action"])
    if kind == "RefundExceedsOriginalError":
        return RefundExceedsOriginalError(
            data["entry_id"],
            _codec.from_data(Money, data["requested"]),
            _codec.from_data(Money, data["refundable"]),
        )
    if kind == "AlreadyReversedError":
        return AlreadyReversedError(data["entry_id"], data["reversal_id"])
    if kind == "OrderExpiredError":
        return OrderExpiredError(data["order_id"], data["action"])
    if kind == "OrderStateError":
        return OrderStateError(data["order_id"], data["status"], data["action"])
    if kind == "OrderNotCoveredError":
        return OrderNotCoveredError(data["order_id"],
                                    _codec.from_data(Money, data["remainder_due"]))
    if kind == "NoCreditOwedError":
        return NoCreditOwedError(data["order_id"], data["credited_entry_id"])
    if kind == "FloorAboveBalanceError":
        return FloorAboveBalanceError(data["wallet_id"], _codec.from_data(Money, data["floor"]),
                                      _codec.from_data(Money, data["open"]))
    if kind == "LimitExceededError":
        return LimitExceededError(data["wallet_id"], data["operation"], data["breaches"])
    payg = getattr(errors, kind, None)
    if isinstance(payg, type) and issubclass(payg, PaygRefusedError):
        return payg(*(_codec.from_data(Money, data[name]) if name in payg.money else data[name]
                      for name in payg.fields))
    raise TypeError(f"unknown stored refusal {kind!r}")  # pragma: no cover
