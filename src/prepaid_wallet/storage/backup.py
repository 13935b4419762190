"""Backups of a SQLite store and restores from them: :func:`backup_sqlite`, :func:`restore`.

A backup is a SQLite file made with SQLite's online backup API
(:meth:`sqlite3.Connection.backup`) in one step: it reads one consistent snapshot of the store
while writers keep writing (the store runs in WAL mode, where a reader never blocks a writer),
so the backup is exactly the store as some commit left it. It is written next to its final
name, verified, synced and only then given its name -- never over an existing file.

A restore puts a backup in place as a new store, verified first: the backup is copied (the
backup file itself is never changed: an older schema is migrated in the copy), the copy is
verified, and only a copy without problems is given the store's name (for a SQLite URL), or
copied into the empty store the URL names (any other backend, through
:func:`~prepaid_wallet.storage.copy.copy_store`). An existing store file is never overwritten.

PostgreSQL is backed up with its own tools (``pg_dump`` / ``pg_restore``), or by copying it to a
SQLite file with :func:`~prepaid_wallet.storage.copy.copy_store` (``prepaid-wallet copy``);
``docs/integrity.md`` shows both, each with a verify after the restore.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile

from prepaid_wallet.errors import InvalidInputError, StoreNotEmptyError, StoreNotFoundError
from prepaid_wallet.results import Progress, VerifyReport
from prepaid_wallet.seals import SealKey
from prepaid_wallet.storage.copy import copy_store, verified
from prepaid_wallet.storage.factory import open_store
from prepaid_wallet.storage.sqlite import SQLiteStore, _read_only_uri, _translated

__all__ = ["backup_sqlite", "restore", "sqlite_path"]

_SQLITE = "sqlite:///"
_NOT_SQLITE = (
    "must be a SQLite store URL (sqlite:///FILE): a PostgreSQL store is backed up with"
    " pg_dump, or copied to a SQLite file with 'prepaid-wallet copy'"
)


def sqlite_path(url: str, field: str = "url") -> str:
    """The file a ``sqlite:///`` URL names; ``InvalidInputError`` naming ``field`` for any
    other URL (a PostgreSQL store is backed up with its own tools: the message says so)."""
    if not isinstance(url, str) or not url.startswith(_SQLITE) or url == _SQLITE:
        raise InvalidInputError(field, _NOT_SQLITE, url)
    return url[len(_SQLITE):]


def _file_name(field: str, value: object) -> str:
    """``value`` if it is text naming a file, else ``InvalidInputError`` naming ``field``."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInputError(field, "must name a file", value)
    return value


def _partial(path: str) -> str:
    """A file name next to ``path`` for the file being written."""
    return os.path.join(os.path.dirname(os.path.abspath(path)),
                        f".{os.path.basename(path)}.partial-{os.getpid()}")


def _refuse_existing(path: str) -> None:
    if os.path.lexists(path):
        raise StoreNotEmptyError(repr(os.path.abspath(path)), "already exists")


def _copy_file(source: sqlite3.Connection, path: str) -> None:
    """Write ``source``'s database to the new file ``path`` in one backup step (one
    snapshot)."""
    with _translated(f"writing {path!r}"):
        target = sqlite3.connect(path)
        try:
            source.backup(target)  # pages=-1: everything in one step, from one snapshot
        finally:
            target.close()


def _standalone(path: str) -> None:
    """Leave the database ``path`` in one file (rollback journal mode, no ``-wal`` file to
    keep with it; a store opened on it goes back to WAL) and sync it."""
    with _translated(f"writing {path!r}"):
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked(path: str, role: str, progress: Progress | None,
             seal_key: SealKey | None = None) -> VerifyReport:
    """The store in the file ``path`` verified (its schema migrated if older), then closed."""
    store = SQLiteStore(path, create=False, seal_key=seal_key)
    try:
        return verified(store, role, progress=progress)
    finally:
        store.close()


def _put_in_place(partial: str, path: str) -> None:
    """Give the finished file ``partial`` the name ``path``, unless a file has it meanwhile
    (a hard link is created or fails atomically)."""
    try:
        os.link(partial, path)
    except FileExistsError:
        raise StoreNotEmptyError(repr(os.path.abspath(path)), "already exists") from None
    except OSError:  # no hard links here: rename, having checked just before
        _refuse_existing(path)
        os.replace(partial, path)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove(path: str) -> None:
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


def backup_sqlite(source: str, to: str, *, progress: Progress | None = None,
                  seal_key: SealKey | None = None) -> VerifyReport:
    """Back up the SQLite store in the file ``source`` to the new file ``to``, while writers
    may keep writing, and verify the backup; returns its verification.

    The backup is one consistent snapshot of the store (SQLite's online backup API, in one
    step). ``progress(phase, done)`` is called while the backup is verified. Raises
    ``StoreNotFoundError`` when ``source`` holds no store, ``StoreNotEmptyError`` when ``to``
    exists (it is never overwritten), ``InvalidInputError`` (naming ``source`` or ``to``)
    for a name that is not text, ``VerificationFailedError`` when the backup has a problem
    (no file is left at ``to``), ``StorageError`` when SQLite fails. ``seal_key`` is the key
    the store is sealed with (``SealKeyError`` without it); the backup keeps its seals."""
    _file_name("source", source)
    _refuse_existing(_file_name("to", to))
    store = SQLiteStore(source, create=False, seal_key=seal_key)  # migrated to this schema
    partial = _partial(to)
    try:
        _copy_file(store._connection(), partial)
        store.close()
        report = _checked(partial, "backup", progress, seal_key)
        _standalone(partial)
        _put_in_place(partial, to)
        return report
    finally:
        store.close()
        _remove(partial)


def restore(backup: str, url: str, *, progress: Progress | None = None,
            seal_key: SealKey | None = None) -> VerifyReport:
    """Restore the backup file ``backup`` as the new store ``url``, verified before it is used;
    returns the verification.

    ``sqlite:///FILE``: the backup is copied next to ``FILE``, migrated if its schema is older,
    verified, and only then named ``FILE``, which must not exist. Any other URL: the verified
    copy is copied into the store ``url`` names, which must be empty
    (:func:`~prepaid_wallet.storage.copy.copy_store`). The backup file is never changed.
    Raises ``InvalidInputError`` (naming ``backup`` or ``url``) for a bad argument,
    ``StoreNotFoundError`` when ``backup`` holds no store, ``StoreNotEmptyError`` when the
    target exists or holds data, ``VerificationFailedError`` when the backup (or the copy)
    has a problem: nothing is put in place. ``seal_key`` is the key the backup is sealed
    with; the restored store is sealed with it too."""
    if not isinstance(url, str):
        raise InvalidInputError("url", "must be a store URL", url)
    if not os.path.isfile(_file_name("backup", backup)):
        raise StoreNotFoundError(os.path.abspath(backup), "there is no such file")
    path = sqlite_path(url) if url.startswith(_SQLITE) else None
    if path is not None:
        _refuse_existing(path)
    with tempfile.TemporaryDirectory(prefix="prepaid-wallet-restore-") as scratch:
        partial = _partial(path) if path is not None else os.path.join(scratch, "restore.db")
        try:
            with _translated(f"opening {backup!r}"):
                source = sqlite3.connect(_read_only_uri(backup), uri=True)
            try:
                _copy_file(source, partial)
            finally:
                source.close()
            if path is not None:
                report = _checked(partial, "backup", progress, seal_key)
                _standalone(partial)
                _put_in_place(partial, path)
                return report
            from_backup = SQLiteStore(partial, create=False, seal_key=seal_key)
            target = open_store(url, seal_key=seal_key)
            try:
                return copy_store(from_backup, target, progress=progress).verified
            finally:
                from_backup.close()
                target.close()
        finally:
            _remove(partial)
