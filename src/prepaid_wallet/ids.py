"""Identifiers: how wallets, lots, holds and journal entries get their ids, and which outside
ids (owners, tenants, payment methods) the library accepts.

Ids are strings with a short prefix naming what they identify (``w_``, ``lot_``, ``hold_``,
``e_``). :class:`RandomIds` (the default) makes them time-ordered and random (the layout of a
UUID version 7: a millisecond timestamp, then 74 random bits), safe across processes -- ids made
later sort later, so a database index on them grows at its end instead of being written all over;
:class:`SequentialIds` numbers them from 1, so that the same commands give the same ids (for
tests, examples and reproducible demos -- not for several processes sharing a store).
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from typing import Protocol

from prepaid_wallet.errors import InvalidInputError

__all__ = ["IdFactory", "RandomIds", "SequentialIds", "check_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}")


def check_name(value: object, field: str) -> str:
    """Validate an outside identifier (owner, tenant, payment method, wallet id...).

    One to 128 ASCII characters: letters, digits and ``. _ @ + -``, starting with a letter or
    digit. Raises ``InvalidInputError`` naming ``field`` otherwise.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInputError(
            field,
            "must be 1-128 ASCII letters, digits or . _ @ + - starting with a letter or digit",
            value,
        )
    return value


class IdFactory(Protocol):
    """Makes a fresh id with the given prefix (``"w"``, ``"lot"``, ``"hold"``, ``"e"``)."""

    def new(self, prefix: str) -> str:
        """A new id, unique in the store, of the form ``f"{prefix}_..."``."""
        ...


class RandomIds:
    """Time-ordered random ids: ``e_`` followed by the 32 hex digits of a UUID version 7 (48
    bits of Unix milliseconds, the version, 74 random bits and the variant).

    Unique without coordination (two ids made in the same millisecond differ in 74 random
    bits); ids sort by the millisecond they were made in, which keeps the indexes on them
    compact. The timestamp says when an id was made, nothing more: order the journal by its
    sequence, not by ids.
    """

    def new(self, prefix: str) -> str:
        """A new time-ordered random id."""
        rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 of them used
        value = (
            (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80
            | 0x7 << 76
            | (rand >> 68 & 0xFFF) << 64
            | 0b10 << 62
            | rand & 0x3FFF_FFFF_FFFF_FFFF
        )
        return f"{prefix}_{value:032x}"


class SequentialIds:
    """Deterministic ids numbered per prefix from ``start``: ``w_000001``, ``lot_000001``...

    Only for one process: two processes would hand out the same ids.
    """

    def __init__(self, start: int = 1) -> None:
        self._start = start
        self._counters: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        """The next id for ``prefix``."""
        with self._lock:
            counter = self._counters.setdefault(prefix, itertools.count(self._start))
            return f"{prefix}_{next(counter):06d}"
