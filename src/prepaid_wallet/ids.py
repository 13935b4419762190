"""Identifiers: how wallets, lots, holds and journal entries get their ids, and which outside
ids (owners, tenants, payment methods) the library accepts.

Ids are strings with a short prefix naming what they identify (``w_``, ``lot_``, ``hold_``,
``e_``). :class:`RandomIds` (the default) makes them from random UUIDs, safe across processes;
:class:`SequentialIds` numbers them from 1, so that the same commands give the same ids (for
tests, examples and reproducible demos -- not for several processes sharing a store).
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
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
    """Random ids: ``e_`` followed by 32 hex digits of a UUID4."""

    def new(self, prefix: str) -> str:
        """A new random id."""
        return f"{prefix}_{uuid.uuid4().hex}"


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
