"""Copying a whole store into another, of any backend: :func:`copy_store`.

Every stored row goes across as it is -- ids, every entry with its sequence number, hash and
chain, the balance after each posting and each wallet's balance history, lots, holds, charges,
condition groups, idempotency records, events (in their order, acknowledged or not) and the
records of every record type -- so that afterwards ``target.export_state() ==
source.export_state()``.

How it runs:

1. the source is verified (:meth:`~prepaid_wallet.service.WalletService.verify`); a source
   with a problem is refused (:class:`~prepaid_wallet.errors.VerificationFailedError`): a copy
   would carry the problem along and hide where it came from. (A damaged SQLite store can
   still be copied as a file, or backed up: see ``docs/integrity.md``.)
2. the source is read from one consistent snapshot (a read-only unit of work), a batch at a
   time, and written into the target in **one transaction**, after checking that the target is
   empty (:class:`~prepaid_wallet.errors.StoreNotEmptyError` otherwise, nothing written). A copy
   that fails or is killed half-way leaves the target as empty as it found it, so running it
   again starts over cleanly: there is no partial state to resume from, and none to mistake
   for a finished copy.
3. the target is verified; a problem there raises ``VerificationFailedError``.

Writers may keep writing to the source meanwhile: the copy is the state of the snapshot it
read. Nobody must write to the target until the copy has returned.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

import prepaid_wallet.storage._transfer as _transfer
from prepaid_wallet.errors import InvalidInputError, VerificationFailedError
from prepaid_wallet.results import Progress, VerifyReport
from prepaid_wallet.storage.base import Store

__all__ = ["CopyReport", "copy_store", "verified"]


@attrs.frozen
class CopyReport:
    """What :func:`copy_store` did: the rows copied per table (``rows``, in copy order) and
    the target's verification (``verified``: ok, with the entries and wallets it checked)."""

    rows: Mapping[str, int]
    verified: VerifyReport


def verified(store: Store, role: str, *, progress: Progress | None = None) -> VerifyReport:
    """``store`` verified (:meth:`~prepaid_wallet.service.WalletService.verify`);
    ``VerificationFailedError`` naming it (with ``role``, e.g. ``"source"``) when it has a
    problem. ``progress(phase, done)`` is called as the verification goes, with phases
    ``"<role> entries checked"`` and ``"<role> wallets checked"``."""
    from prepaid_wallet.service import WalletService

    def track(phase: str, done: int) -> None:
        if progress is not None:
            progress(f"{role} {phase} checked", done)

    report = WalletService(store).verify(progress=track)
    if not report.ok:
        first = report.problems[0]
        raise VerificationFailedError(
            f"{role}: {_transfer.store_name(store)}", len(report.problems),
            f"{first.code} {first.subject}: {first.detail}")
    return report


def copy_store(source: Store, target: Store, *, progress: Progress | None = None) -> CopyReport:
    """Copy everything ``source`` holds into the empty ``target`` (any backends of this
    library: memory, SQLite, PostgreSQL, in any pair), then verify the target.

    ``progress(phase, done)``, if given, is called as the work goes: ``"source entries
    checked"`` / ``"source wallets checked"`` while the source is verified, ``"<table>
    copied"`` after every batch of a table (``wallets``, ``lots``, ``entries``, ...; see
    :data:`CopyReport.rows`), then ``"copy entries checked"`` / ``"copy wallets checked"``.
    Memory stays bounded: rows are read and written a batch at a time (the memory store, as
    a target, keeps them all anyway).

    Raises ``InvalidInputError`` (naming ``source``, ``target`` or ``progress``) for an
    argument that is not a store of this library, the same store twice, or a progress that is
    not callable; ``VerificationFailedError`` when the source has a problem (nothing is written) or
    the copy has one; ``StoreNotEmptyError`` when ``target`` holds anything (nothing is
    written); ``StorageError`` when either store fails -- the target's transaction is rolled
    back, so it is empty again and the copy may simply be run again.
    """
    for field, store in (("source", source), ("target", target)):
        if not _transfer.is_store(store):
            raise InvalidInputError(
                field, "must be a store of this library (memory, SQLite or PostgreSQL)", store)
    if target is source:
        raise InvalidInputError("target", "must be another store than the source", target)
    if progress is not None and not callable(progress):
        raise InvalidInputError("progress", "must be a callable (phase, done) or None",
                                progress)
    verified(source, "source", progress=progress)

    def copied(table: str, done: int) -> None:
        if progress is not None:
            progress(f"{table} copied", done)

    with _transfer.read(source) as batches:
        rows = _transfer.load(target, batches, progress=copied)
    return CopyReport(rows=rows, verified=verified(target, "copy", progress=progress))
