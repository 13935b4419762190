"""The copy crash test's worker (see tests/test_copy_crash.py): ``python tests/copy_worker.py
SOURCE_URL TARGET_URL`` copies the store ``SOURCE_URL`` into ``TARGET_URL`` with ``copy_store``
until it is killed.

It prints ``start`` once both stores are open, ``copied TABLE ROWS`` after every batch written,
and ``done`` when the copy has returned, each line flushed.
"""

from __future__ import annotations

import sys

from prepaid_wallet import open_store
from prepaid_wallet.storage import copy_store


def main(source_url: str, target_url: str) -> None:
    source = open_store(source_url, create=False)
    target = open_store(target_url)
    print("start", flush=True)

    def progress(phase: str, done: int) -> None:
        if phase.endswith(" copied"):
            print(f"copied {phase.split()[0]} {done}", flush=True)

    copy_store(source, target, progress=progress)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
