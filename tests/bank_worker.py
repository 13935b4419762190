"""The bank test's workload (see tests/test_bank.py), importable by spawned worker processes.

:func:`run_ops` runs ``ops`` random operations on a service -- transfers, credit-only spends,
holds followed by a partial capture or a void -- each under its own idempotency key, 10% of them
sent twice; it returns what was acknowledged and every error that is not a documented business
refusal. :func:`worker` does the same in a worker process on a store it opens from a URL.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Sequence
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

#: The business refusals the workload may meet; any other error is a failure.
REFUSALS = (SpendDeniedError, InsufficientFundsError, HoldStateError, HoldExpiredError)
RETRY_RATE = 0.10


def _eur(minor: int) -> Money:
    return Money.from_minor_units(minor, "EUR")


def _entry_id(result: Any) -> str | None:
    """The journal entry an acknowledged result wrote."""
    for name in ("resolved_entry_id", "entry_id"):  # a voided Hold names both; the void wrote
        value = getattr(result, name, None)  # the first
        if value is not None:
            return str(value)
    return None


def run_ops(
    svc: WalletService, wallet_ids: Sequence[str], tag: str, ops: int, seed: int
) -> dict[str, Any]:
    """Run the workload; return ``{"acks": [...], "unexpected": [...], "retried": n}``.

    An ack is ``(key, kind, outcome, entry_id, t_ack)``: ``outcome`` is ``"ok"`` or the refusal's
    class name, ``t_ack`` is ``time.monotonic()`` right after the call returned (the monotonic
    clock is shared by every process on the machine).
    """
    rng = random.Random(seed)
    acks: list[tuple[str, str, str, str | None, float]] = []
    unexpected: list[str] = []
    retried = 0

    def send(kind: str, key: str, call: Callable[[], Any]) -> Any:
        nonlocal retried
        first = _attempt(call)
        if first[0] == "unexpected":
            unexpected.append(f"{kind} {key}: {first[1]}")
            return None
        outcome = "ok" if first[0] == "ok" else type(first[1]).__name__
        acks.append((key, kind, outcome, _entry_id(first[1]) if first[0] == "ok" else None,
                     time.monotonic()))
        if rng.random() < RETRY_RATE:
            retried += 1
            again = _attempt(call)
            if again[0] == "unexpected":
                unexpected.append(f"retry of {kind} {key}: {again[1]}")
            elif not _same(first, again):
                unexpected.append(f"retry of {kind} {key} gave {again!r}, first {first!r}")
        return first[1] if first[0] == "ok" else None

    for i in range(ops):
        key = f"{tag}-{i}"
        pick = rng.random()
        if pick < 0.4:
            src, dst = rng.sample(list(wallet_ids), 2)
            amount = _eur(rng.randint(1, 3_000))
            send("transfer", key, lambda s=src, d=dst, a=amount, k=key: svc.transfer(
                s, d, a, idempotency_key=k))
        elif pick < 0.7:
            wallet = rng.choice(wallet_ids)
            amount = _eur(rng.randint(1, 4_000))
            send("spend", key, lambda w=wallet, a=amount, k=key: svc.spend(
                w, SpendRequest(a, mode=PaymentMode.CREDIT_ONLY), idempotency_key=k))
        else:
            wallet = rng.choice(wallet_ids)
            amount = rng.randint(2, 4_000)
            held = send("hold", key, lambda w=wallet, a=amount, k=key: svc.hold(
                w, _eur(a), window=timedelta(hours=1), idempotency_key=k))
            if held is None:
                continue
            if rng.random() < 0.6:
                part = _eur(rng.randint(1, amount - 1))
                send("capture", key + "-c", lambda h=held.id, p=part, k=key + "-c": svc.capture(
                    h, p, idempotency_key=k))
            else:
                send("void", key + "-v", lambda h=held.id, k=key + "-v": svc.void(
                    h, idempotency_key=k))
    return {"acks": acks, "unexpected": unexpected, "retried": retried}


def _attempt(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except REFUSALS as refusal:
        return ("refused", refusal)
    except Exception:  # every other error is what the test collects
        return ("unexpected", traceback.format_exc(limit=4))


def _same(first: tuple[str, Any], again: tuple[str, Any]) -> bool:
    if first[0] != again[0]:
        return False
    if first[0] == "ok":
        return bool(first[1] == again[1])
    return type(first[1]) is type(again[1]) and str(first[1]) == str(again[1])


def worker(url: str, wallet_ids: Sequence[str], tag: str, ops: int, seed: int) -> dict[str, Any]:
    """A worker process: open the store at ``url`` and run the workload on it."""
    store = open_store(url)
    try:
        return run_ops(WalletService(store), wallet_ids, tag, ops, seed)
    finally:
        store.close()
