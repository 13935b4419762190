"""Crash test of ``copy_store``: a process copying a SQLite store into SQLite (and into
PostgreSQL when the test server is configured; required with ``CI=true``) is killed with SIGKILL
at random (seeded) moments -- while the source is verified, after any batch written, during the
commit or the verification of the copy -- and the copy is then run again on the same target.

The target is written in one transaction, so the run after a kill either finds it empty and
finishes the copy, or (the kill came after the commit) finds the finished copy and refuses to
write into it. Either way the target then verifies and its ``export_state()`` equals the
source's.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prepaid_wallet import Money, SpendDeniedError, SpendRequest, WalletService, open_store
from prepaid_wallet.errors import StoreNotEmptyError
from prepaid_wallet.storage import copy_store
from prepaid_wallet.storage._transfer import BATCH
from tests import pg

WORKER = Path(__file__).with_name("copy_worker.py")
_CI = os.environ.get("CI", "").lower() == "true"
ROUNDS = int(os.environ.get("COPY_CRASH_ROUNDS", "12" if _CI else "4"))
#: A kill lands after a random number of batch lines, then after at most this many seconds.
KILL_JITTER = 0.05
#: Only a worker that prints nothing for this long is a failure (a hang, not load).
STALL_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite store of a few batches of entries and history rows (filled in memory, then
    copied)."""
    memory = open_store("memory:")
    svc = WalletService(memory)
    wallets = [svc.open_wallet(owner_id=f"o{i}", tenant_id="crash", currency="EUR").id
               for i in range(40)]
    rng = random.Random(20261202)
    for n in range(BATCH * 3):
        wallet = wallets[n % len(wallets)]
        if n < len(wallets) or rng.random() < 0.6:
            svc.top_up(wallet, Money.from_minor_units(rng.randint(100, 5000), "EUR"),
                       method="card", idempotency_key=f"k{n}")
        else:
            with contextlib.suppress(SpendDeniedError):  # a refusal is stored too
                svc.spend(wallet, SpendRequest(Money.from_minor_units(rng.randint(1, 90), "EUR")),
                          idempotency_key=f"k{n}")
    url = f"sqlite:///{tmp_path_factory.mktemp('copy-crash')}/source.db"
    store = open_store(url)
    copy_store(memory, store)
    store.close()
    return url


def _targets(tmp_path: Path) -> Callable[[str], str]:
    counter = iter(range(10**6))

    def new(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path}/target-{next(counter)}.db"
        return pg.fresh_postgres_dsn()

    return new


def _kill_after(child: subprocess.Popen[bytes], batches: int, jitter: float) -> bytes:
    """Read the worker's lines until it has started and written ``batches`` batches (or is
    done), wait ``jitter`` seconds, kill it with SIGKILL; everything it printed."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    out = b""
    deadline = time.monotonic() + STALL_TIMEOUT
    while b"start\n" not in out or out.count(b"\ncopied ") < batches:
        if b"done\n" in out:
            break
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            child.kill()
            child.communicate(timeout=60)
            raise AssertionError(f"the worker printed nothing for {STALL_TIMEOUT} s")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            _, err = child.communicate(timeout=60)
            raise AssertionError(f"the worker exited {child.returncode}: {err.decode()}")
        out += chunk
        deadline = time.monotonic() + STALL_TIMEOUT
    time.sleep(jitter)
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    return out + rest


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_copy_run_again_gives_the_whole_store(source: str, tmp_path: Path,
                                                       backend: str) -> None:
    if backend == "postgresql":
        pg.postgres_dsn()  # skips without a server (fails in CI)
    new_target = _targets(tmp_path)
    reference = open_store(source, create=False)
    expected = reference.export_state()
    rows = copy_store(reference, open_store("memory:")).rows
    reference.close()
    batches = sum(-(-count // BATCH) for count in rows.values())
    rng = random.Random(f"copy-crash-{backend}")
    outcomes = {"finished": 0, "refused": 0}
    for _ in range(ROUNDS):
        url = new_target(backend)
        child = subprocess.Popen([sys.executable, str(WORKER), source, url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _kill_after(child, rng.randint(0, batches), rng.uniform(0.0, KILL_JITTER))
        target = open_store(url)
        try:
            again = open_store(source, create=False)
            try:
                copy_store(again, target)
                outcomes["finished"] += 1
            except StoreNotEmptyError:  # the killed copy had committed: it is whole
                outcomes["refused"] += 1
            finally:
                again.close()
            assert WalletService(target).verify().ok
            assert target.export_state() == expected
        finally:
            target.close()
    assert outcomes["finished"], outcomes
    print(f"copy crash ({backend}): {ROUNDS} kills, {outcomes}")
