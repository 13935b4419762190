"""The crash test's worker (see tests/test_crash.py): ``python tests/crash_worker.py DB WALLETS TAG
SEED`` runs a mixed workload on the SQLite file ``DB`` until it is killed.

For each operation it prints ``start KEY OP`` (OP is the operation as JSON, enough to resend it)
before the call and ``ok KEY OUTCOME`` after it returned, each line flushed: an ``ok`` line is an
acknowledgement. OUTCOME is ``ok ENTRY_ID`` or ``refused ERROR_CLASS``.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import timedelta
from typing import Any

from prepaid_wallet import (
    HoldExpiredError,
    HoldStateError,
    InsufficientFundsError,
    Money,
    PaymentMode,
    SpendDeniedError,
    SpendRequest,
    WalletService,
    open_store,
)

REFUSALS = (SpendDeniedError, InsufficientFundsError, HoldStateError, HoldExpiredError)


def execute(svc: WalletService, key: str, op: dict[str, Any]) -> tuple[str, Any]:
    """Run one operation under ``key``: ``("ok", result)`` or ``("refused", error)``."""
    amount = Money.from_minor_units(op.get("minor", 1), "EUR")
    try:
        if op["op"] == "top_up":
            return ("ok", svc.top_up(op["wallet"], amount, method="card", idempotency_key=key))
        if op["op"] == "transfer":
            return ("ok", svc.transfer(op["wallet"], op["to"], amount, idempotency_key=key))
        if op["op"] == "spend":
            request = SpendRequest(amount, mode=PaymentMode(op["mode"]))
            return ("ok", svc.spend(op["wallet"], request, idempotency_key=key))
        if op["op"] == "hold":
            return ("ok", svc.hold(op["wallet"], amount, window=timedelta(hours=1),
                                   idempotency_key=key))
        if op["op"] == "capture":
            return ("ok", svc.capture(op["hold"], amount, idempotency_key=key))
        if op["op"] == "void":
            return ("ok", svc.void(op["hold"], idempotency_key=key))
    except REFUSALS as refusal:
        return ("refused", refusal)
    raise ValueError(f"unknown operation {op!r}")


def describe(outcome: tuple[str, Any]) -> str:
    """``ok ENTRY_ID`` or ``refused ERROR_CLASS``."""
    kind, value = outcome
    if kind == "refused":
        return f"refused {type(value).__name__}"
    entry = getattr(value, "resolved_entry_id", None) or value.entry_id
    return f"ok {entry}"


def main(db: str, wallets: list[str], tag: str, seed: int) -> None:
    rng = random.Random(seed)
    store = open_store(f"sqlite:///{db}")
    svc = WalletService(store)
    holds: list[str] = []
    for i in range(1_000_000):
        key = f"{tag}-{i}"
        pick = rng.random()
        op: dict[str, Any]
        if holds and pick < 0.25:
            op = {"op": rng.choice(["capture", "void"]), "hold": holds.pop(),
                  "minor": rng.randint(1, 100)}
        elif pick < 0.4:
            op = {"op": "top_up", "wallet": rng.choice(wallets), "minor": rng.randint(1, 5_000)}
        elif pick < 0.6:
            a, b = rng.sample(wallets, 2)
            op = {"op": "transfer", "wallet": a, "to": b, "minor": rng.randint(1, 4_000)}
        elif pick < 0.8:
            op = {"op": "spend", "wallet": rng.choice(wallets), "minor": rng.randint(1, 6_000),
                  "mode": rng.choice(["credit_only", "credit_first"])}
        else:
            op = {"op": "hold", "wallet": rng.choice(wallets), "minor": rng.randint(100, 3_000)}
        print(f"start {key} {json.dumps(op, sort_keys=True)}", flush=True)
        outcome = execute(svc, key, op)
        if op["op"] == "hold" and outcome[0] == "ok":
            holds.append(outcome[1].id)
        print(f"ok {key} {describe(outcome)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4]))
