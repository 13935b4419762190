"""The one choke point for PostgreSQL driver errors (private): every ``psycopg`` error the
store meets becomes the library error that stands for it (:func:`library_error`,
:func:`translated`), and the detail ``write_unit`` gives with a moved wallet is read in one
place (:func:`moved_wallet`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import psycopg

import prepaid_wallet.storage._schema as _schema
from prepaid_wallet.errors import (
    ConcurrencyError,
    ConflictError,
    IntegrityError,
    PrepaidWalletError,
    StorageError,
    WalletNotFoundError,
)
from prepaid_wallet.storage._postgres_ddl import NO_WALLET, STALE

__all__ = ["RETRYABLE", "library_error", "moved_wallet", "translated"]

_TRIGGER = _schema.TRIGGER
#: Deadlock detected, serialization failure.
RETRYABLE = frozenset({"40P01", "40001"})
#: Unique constraints whose violation is an integrity error rather than a conflict.
_INTEGRITY_CONSTRAINTS = frozenset({"entries_id_key"})
#: Unique constraints whose violation is a conflict, and what it means.
_CONFLICT_CONSTRAINTS = {
    "events_id_key": "an event id is already used",
    "records_unique": "a record's unique value is already taken",
}


def moved_wallet(exc: psycopg.Error) -> tuple[str, int, int] | None:
    """``(wallet id, version expected, version found)`` of a ``write_unit`` error saying a
    wallet moved (``PW001``), or None."""
    if exc.sqlstate != STALE:
        return None
    with contextlib.suppress(ValueError, TypeError):
        wallet_id, expected, actual = json.loads(exc.diag.message_detail or "")
        return str(wallet_id), int(expected), int(actual)
    return None


def library_error(action: str, exc: psycopg.Error) -> PrepaidWalletError:
    """The library error that stands for the driver error ``exc``."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    state = exc.sqlstate
    moved = moved_wallet(exc)
    if moved is not None:
        return ConcurrencyError(*moved)
    if state == NO_WALLET and exc.diag.message_detail:
        return WalletNotFoundError(exc.diag.message_detail)
    if _TRIGGER in message:
        return IntegrityError(f"{action}: {message}")
    if state == "23505":  # unique_violation
        constraint = exc.diag.constraint_name
        if constraint in _INTEGRITY_CONSTRAINTS:
            return IntegrityError(f"{action}: {message}")
        if constraint in _CONFLICT_CONSTRAINTS:
            return ConflictError(f"{action}: {_CONFLICT_CONSTRAINTS[constraint]} ({message})")
        return ConflictError(f"{action}: {message}")
    if state in RETRYABLE:
        return StorageError(
            f"{action}: the database rolled the transaction back ({message});"
            " nothing was written and the command may be retried"
        )
    return StorageError(f"{action}: {message}")


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn any psycopg (or pool) error raised inside the block into a library error."""
    try:
        yield
    except psycopg.Error as exc:
        raise library_error(action, exc) from exc
