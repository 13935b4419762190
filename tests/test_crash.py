"""Crash test on SQLite: a process killed with SIGKILL at random moments loses nothing it
acknowledged and leaves nothing half-applied.

A child process (tests/crash_worker.py) runs a mixed workload -- top-ups, transfers, spends in
both modes, holds then captures or voids -- on one SQLite file, printing ``start KEY OP`` before
each call and ``ok KEY OUTCOME`` after it. The parent kills it with SIGKILL once it has
acknowledged a random (seeded) number of operations, after a random pause of a few
milliseconds, ``CRASH_ROUNDS`` times (20 with ``CI=true``, else 5), restarting it on the same
file each time. After every kill the parent reopens the file and checks:

* ``verify().ok`` -- every entry balances, balances equal the journal, holds and lots add up, so
  no operation is half-applied;
* every acknowledged operation (of this round and every earlier one) has exactly one
  idempotency record with the acknowledged outcome, and exactly one journal entry under its key
  (the acknowledged entry id), none if refused;
* the in-flight operation (started, not acknowledged), resent with its key, is applied exactly
  once: if it had committed before the kill, the resend replays the stored outcome and writes
  nothing; otherwise it applies now. Either way the journal then holds it once.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prepaid_wallet import Money, WalletService, open_store
from tests.crash_worker import describe, execute

TENANT = "crash"
WORKER = Path(__file__).with_name("crash_worker.py")
_CI = os.environ.get("CI", "").lower() == "true"
CRASH_ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20" if _CI else "5"))
#: A round kills its worker once it has acknowledged this many operations (seeded, inclusive),
#: then after a random pause of at most KILL_JITTER seconds, so the kill lands anywhere in an
#: operation. Progress is counted, not waited for: under load a round only takes longer.
ACKS_BEFORE_KILL = (3, 40)
KILL_JITTER = 0.01
#: Only a worker that acknowledges nothing for this long is a failure (a hang, not load).
STALL_TIMEOUT = 300.0


def _parse(stdout: bytes) -> tuple[dict[str, str], tuple[str, dict[str, Any]] | None]:
    """The acknowledged outcomes by key, and the in-flight operation (key, op) if any."""
    acked: dict[str, str] = {}
    started: dict[str, dict[str, Any]] = {}
    for raw in stdout.decode().splitlines(keepends=True):
        if not raw.endswith("\n"):  # a line cut by the kill
            continue
        word, key, rest = raw.rstrip("\n").split(" ", 2)
        if word == "start":
            started[key] = json.loads(rest)
        else:
            acked[key] = rest
    pending = [k for k in started if k not in acked]
    assert len(pending) <= 1, pending
    return acked, ((pending[0], started[pending[0]]) if pending else None)


def _kill_after_progress(child: subprocess.Popen[bytes], acks: int,
                         jitter: float) -> tuple[bytes, bytes]:
    """Read the worker's output until it has acknowledged ``acks`` operations, wait ``jitter``
    seconds, kill it with SIGKILL and return everything it printed (stdout, stderr)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    out = b""
    deadline = time.monotonic() + STALL_TIMEOUT
    while _acknowledged(out) < acks:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            child.kill()
            child.communicate(timeout=60)
            raise AssertionError(f"the worker acknowledged nothing for {STALL_TIMEOUT} s")
        chunk = os.read(fd, 1 << 16)
        if not chunk:  # the worker ended by itself: a crash of its own, not ours
            _, err = child.communicate(timeout=60)
            raise AssertionError(f"the worker exited {child.returncode}: {err.decode()}")
        if _acknowledged(out + chunk) > _acknowledged(out):
            deadline = time.monotonic() + STALL_TIMEOUT
        out += chunk
    time.sleep(jitter)
    child.send_signal(signal.SIGKILL)
    rest, err = child.communicate(timeout=60)
    return out + rest, err


def _acknowledged(out: bytes) -> int:
    """How many whole ``ok`` lines ``out`` holds."""
    whole = out[: out.rfind(b"\n") + 1]
    return whole.count(b"\nok ") + whole.startswith(b"ok ")


def _check_acked(state: dict[str, Any], acked: dict[str, str]) -> None:
    records: dict[str, list[dict[str, Any]]] = {}
    for r in state["idempotency"]:
        if r["scope"] == TENANT:
            records.setdefault(r["key"], []).append(r)
    by_key: dict[str, list[str]] = {}
    for e in state["entries"]:
        if e["idempotency_key"] is not None:
            by_key.setdefault(e["idempotency_key"], []).append(e["id"])
    for key, outcome in acked.items():
        found = records.get(key, [])
        assert len(found) == 1, (key, outcome, found)
        kind, detail = outcome.split(" ", 1)
        assert found[0]["outcome"] == ("ok" if kind == "ok" else "refused"), (key, found)
        expected = [detail] if kind == "ok" and detail != "None" else []
        assert by_key.get(key, []) == expected, (key, outcome, by_key.get(key))


def test_sigkill_loses_no_acknowledged_operation_and_half_applies_nothing() -> None:
    rng = random.Random(20261123)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "crash.db")
        store = open_store(f"sqlite:///{db}")
        svc = WalletService(store)
        wallets = []
        for i in range(4):
            floor = Money.from_minor_units(-5_000 if i % 2 else 0, "EUR")
            w = svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR", floor=floor)
            svc.top_up(w.id, Money.from_minor_units(20_000, "EUR"), method="card")
            wallets.append(w.id)
        store.close()
        all_acked: dict[str, str] = {}
        resent = replayed = 0
        for round_no in range(CRASH_ROUNDS):
            child = subprocess.Popen(
                [sys.executable, str(WORKER), db, ",".join(wallets), f"r{round_no}",
                 str(rng.randrange(2**32))],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            stdout, stderr = _kill_after_progress(child, rng.randint(*ACKS_BEFORE_KILL),
                                                  rng.uniform(0.0, KILL_JITTER))
            assert child.returncode == -signal.SIGKILL, stderr.decode()
            acked, pending = _parse(stdout)
            all_acked.update(acked)

            store = open_store(f"sqlite:///{db}")
            try:
                svc = WalletService(store)
                report = svc.verify()
                assert report.ok, (round_no, report)
                before = store.export_state()
                _check_acked(before, all_acked)
                if pending is not None:
                    key, op = pending
                    had_record = any(r["key"] == key for r in before["idempotency"])
                    outcome = describe(execute(svc, key, op))
                    after = store.export_state()
                    if had_record:  # it committed before the kill: a pure replay
                        replayed += 1
                        assert after == before, (round_no, key)
                    resent += 1
                    all_acked[key] = outcome
                    _check_acked(after, all_acked)
                    assert svc.verify().ok
            finally:
                store.close()
        assert len(all_acked) >= CRASH_ROUNDS * ACKS_BEFORE_KILL[0]
        assert resent, "no kill landed inside an operation"
        print(f"crash: {CRASH_ROUNDS} kills, {len(all_acked)} acked ops, "
              f"{resent} in-flight resent ({replayed} had committed)")
