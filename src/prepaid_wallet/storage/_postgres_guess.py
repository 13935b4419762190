"""The optimistic path of a PostgreSQL unit of work (private): how a unit guesses, and how the
guess is checked (the protocol is in :mod:`prepaid_wallet.storage.postgres`).

:class:`GuessingUnit` is mixed into :class:`~prepaid_wallet.storage.postgres.PostgresUnitOfWork`;
what it keeps of the store's view is in :mod:`prepaid_wallet.storage._postgres_seen`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import psycopg
from psycopg.rows import TupleRow

from prepaid_wallet.errors import PrepaidWalletError, StaleStateError
from prepaid_wallet.storage._postgres_ddl import RECORD_MOVED
from prepaid_wallet.storage._postgres_errors import moved_wallet
from prepaid_wallet.storage._postgres_prepared import LOCK, READ, run_reads
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.storage._postgres_seen import Seen
    from prepaid_wallet.storage._rows import Rows

__all__ = [
    "BEGIN_READ", "LOCK", "READ", "GuessingUnit", "key_stale_error", "records_read", "stale_error",
]

BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
#: Deadlock detected, serialization failure.
_ROLLED_BACK = ("40P01", "40001")
_UNIQUE = "23505"


def stale_error(exc: psycopg.Error) -> StaleStateError | None:
    """The ``StaleStateError`` of an optimistic unit's failed commit -- a guessed wallet moved
    (``PW001``), a guessed record moved (``PW003``), or the database rolled it back (a
    deadlock or a serialization failure) -- or None for any other error."""
    moved = moved_wallet(exc)
    if moved is not None:
        return StaleStateError(f"wallet {moved[0]!r}", *moved)
    if exc.sqlstate == RECORD_MOVED:
        return StaleStateError(f"record {exc.diag.message_detail or ''!r}")
    stale_key = key_stale_error(exc)
    if stale_key is not None:
        return stale_key
    if exc.sqlstate in _ROLLED_BACK:
        return StaleStateError(f"what the unit read (the database rolled it back: {exc.sqlstate})")
    return None


def key_stale_error(exc: psycopg.Error) -> StaleStateError | None:
    """The ``StaleStateError`` of a commit that stored an idempotency key already stored (a
    key the unit took to be new), or None."""
    if exc.sqlstate == _UNIQUE and exc.diag.constraint_name == "idempotency_pkey":
        return StaleStateError("an idempotency key the unit took to be new")
    return None


def records_read(wallets: Iterable[Wallet], kinds: Sequence[str],
                 rows: Sequence[Any]) -> dict[tuple[str, str], str | None]:
    """The records of ``kinds`` under the tenants of ``wallets``, from the ``(kind, key,
    data)`` rows read: None for each one not stored."""
    read: dict[tuple[str, str], str | None] = {
        (kind, tenant_id): None for kind in kinds for tenant_id in {w.tenant_id for w in wallets}
    }
    for kind, key, data in rows:
        read[(kind, key)] = data
    return read


class _SeeingStore(Protocol):
    """What the unit needs of its store here: what it last saw."""

    _seen: Seen


class GuessingUnit:
    """The optimistic path of a PostgreSQL unit of work (a mixin)."""

    _store: _SeeingStore
    _ROWS: ClassVar[Rows]
    _locked: dict[str, Wallet]
    _read_ahead: dict[tuple[str, str], str | None]
    _done: bool

    if TYPE_CHECKING:  # what the unit it is mixed into provides
        def _check_open(self) -> psycopg.Connection[TupleRow]: ...
        def _in_transaction(self, conn: Any) -> bool: ...
        def _has_writes(self) -> bool: ...
        def _translated(self, action: str) -> contextlib.AbstractContextManager[None]: ...
        def _lock_rows(self, query: str, ids: list[str], kinds: list[str]
                       ) -> tuple[list[Any], list[Any]]: ...

    def _init_guess(self, optimistic: bool) -> None:
        #: Whether ``lock_wallets`` (and a wallet read) may still answer from what the store
        #: last saw: until the unit sends or buffers anything.
        self._may_guess = optimistic
        #: The wallets and tenant records this unit decided on without locking them (until
        #: they are checked), and why they failed the check if they did.
        self._guess: dict[str, Wallet] | None = None
        self._guess_records: dict[tuple[str, str], str | None] = {}
        self._stale: StaleStateError | None = None
        #: Idempotency keys this unit took to be new without reading them (a guessing unit's
        #: lookup): the commit's insert of the key proves it (a key already stored violates
        #: its primary key, and the unit is stale), and so does a check when the unit ends on
        #: an error without writing.
        self._assumed_keys: set[tuple[str, str]] = set()

    def _assume_new_key(self, scope: str, key: str) -> bool:
        """A guessing unit's idempotency lookup, before it has sent anything: take the key to
        be new (True), sending nothing; False when the unit must read it."""
        if self._guess is None or self._stale is not None:
            return False
        self._assumed_keys.add((scope, key))
        return True

    def _check_assumed_keys(self) -> None:
        """A unit that assumed keys new ends on an error without writing: is each still not
        stored? (In the unit's transaction if it has one, else in a snapshot of its own.)
        ``StaleStateError`` if one is: the command is run again, the ordinary way, and
        replays what is stored under it."""
        if not self._assumed_keys:
            return
        conn = self._check_open()
        scopes = [scope for scope, _ in sorted(self._assumed_keys)]
        keys = [key for _, key in sorted(self._assumed_keys)]
        query = ("SELECT scope, key FROM idempotency WHERE (scope, key) IN"
                 " (SELECT * FROM unnest(%s::text[], %s::text[])) LIMIT 1")
        with self._translated("checking the unit's idempotency keys"):
            if self._in_transaction(conn):
                found = conn.execute(query, (scopes, keys)).fetchone()
            else:
                with conn.transaction():
                    found = conn.execute(query, (scopes, keys)).fetchone()
        if found is not None:
            raise StaleStateError(f"idempotency key {found[1]!r}")

    def _guessed(self, ids: list[str], kinds: list[str]) -> dict[str, Wallet] | None:
        """``lock_wallets`` (or a wallet read) of an optimistic unit that has sent and buffered
        nothing yet: the wallets and tenant records as the store last saw them, locking
        nothing, if it saw them all (added to what the unit guessed already); None otherwise,
        and the unit guesses no more."""
        conn = self._check_open()
        guess = None
        if not self._in_transaction(conn) and not self._has_writes():
            guess = self._store._seen.guess(ids, kinds)
        if guess is None:
            self._may_guess = False
            return None
        wallets, records = guess
        self._guess = {**(self._guess or {}), **wallets}
        self._guess_records.update(records)
        self._locked.update(wallets)
        self._read_ahead.update(records)
        return wallets

    def _confirm(self) -> None:
        """Before any statement but the commit of a unit that guessed: lock the guessed
        wallets with ``BEGIN`` (and read the tenant records) as an ordinary unit would have,
        and check they are what the unit decided on. From then on the unit is an ordinary
        one; ``StaleStateError`` (now and at every later statement) if they moved."""
        if self._stale is not None:
            raise self._stale
        guess, self._guess = self._guess, None
        if guess is None:
            return
        ids = sorted(guess)
        kinds = sorted({kind for kind, _ in self._guess_records})
        try:
            with self._translated("locking wallets"):
                rows, records = self._lock_rows(LOCK, ids, kinds)
        except PrepaidWalletError:
            self._store._seen.forget(ids)
            raise
        self._compare(guess, rows, kinds, records)

    def _check_guess(self) -> None:
        """A unit that guessed ends without writing (a refusal, say): are the guessed wallets
        and records still stored so? One snapshot, one round trip, no lock: if they are, what
        the unit decided was decided on the state as it still is. ``StaleStateError`` if
        not."""
        guess, self._guess = self._guess, None
        if guess is None:
            return
        ids = sorted(guess)
        kinds = sorted({kind for kind, _ in self._guess_records})
        conn = self._check_open()
        with self._translated("checking what the unit read"):
            cursor = run_reads(conn, BEGIN_READ.encode() + b"; ", READ, ids, kinds, b"; COMMIT")
            cursor.nextset()  # past BEGIN's result
            rows = cursor.fetchall()
            records = []
            if kinds:
                cursor.nextset()
                records = cursor.fetchall()
        self._compare(guess, rows, kinds, records)

    def _compare(self, guess: dict[str, Wallet], rows: Sequence[Any], kinds: Sequence[str],
                 records: Sequence[Any]) -> None:
        """The guess against the wallets and records found: note the outcome, keep what was
        found, raise ``StaleStateError`` (kept for later statements) if anything moved."""
        seen = self._store._seen
        found = {row[0]: self._ROWS.wallet(row) for row in rows}
        read = records_read(found.values(), kinds, records)
        seen.saw(found.values(), read)
        moved = [wallet_id for wallet_id in sorted(guess)
                 if found.get(wallet_id) != guess[wallet_id]]
        seen.outcome(not moved and read == self._guess_records)
        if moved:
            wallet_id = moved[0]
            now = found.get(wallet_id)
            self._stale = StaleStateError(f"wallet {wallet_id!r}", wallet_id,
                                          guess[wallet_id].version,
                                          -1 if now is None else now.version)
        elif read != self._guess_records:
            pair = next(p for p in sorted(read) if read[p] != self._guess_records.get(p))
            self._stale = StaleStateError(f"record {pair[0]}/{pair[1]!r}")
        if self._stale is not None:
            raise self._stale

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """End the unit; a unit that guessed and ends on a library error (a refusal decided on
        the guess, say) first checks its guess, and raises ``StaleStateError`` instead if it
        no longer holds."""
        stale: StaleStateError | None = None
        if (isinstance(exc, PrepaidWalletError) and not isinstance(exc, StaleStateError)
                and (self._guess is not None or self._assumed_keys) and not self._done):
            try:
                self._check_guess()
                self._check_assumed_keys()
            except StaleStateError as error:
                stale = error
            except PrepaidWalletError:  # the original error is the one that matters
                pass
        super().__exit__(exc_type, exc, tb)  # type: ignore[misc]
        if stale is not None:
            raise stale from exc
