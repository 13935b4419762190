"""Jobs that book many rows, a batch at a time: one unit of work per batch.

A job (the expiry sweep, periodic fees, a bulk award) hands :func:`run_batch` the rows of one
batch. The batch's wallets are locked together (sorted by id, with their tenants' rules, as
every unit locks), each row is booked with the same pure transitions and the same recording as
a row booked alone -- so every entry is balanced and chained to its wallet's head exactly as
it would be -- and the batch commits once: the SQL stores send its writes in a few statements
(SQLite: ``executemany``; PostgreSQL: one call of ``write_unit``).

* A row whose booking raises before it writes anything (a bad amount, an unknown lot, a refusal
  of the domain) is left out of the batch and reported (:class:`~prepaid_wallet.results.FailedRow`:
  the row's id and its typed error); the batch's other rows are booked.
* A row whose wallet is unknown (or, for a scoped service, another tenant's) is reported with
  ``WalletNotFoundError``; the other wallets stay locked and booked.
* When anything fails after a row began writing, or the commit itself fails, the batch is rolled
  back and its rows are booked again one unit of work each, so only the bad row is reported.
* ``PermissionDeniedError`` is never a row's failure: it ends the job (batches committed before
  stay committed).

A crash leaves every committed batch booked and the rest untouched; what makes a rerun book
exactly what is left is each job's own: the sweep books what is still due, periodic fees and
bulk awards store an idempotency record per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.outbox import emit, enabled_endpoints
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.settings import TOP_UP_RULE, WALLET_SETTINGS
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import (
    InvalidInputError,
    PermissionDeniedError,
    PrepaidWalletError,
    WalletNotFoundError,
)
from prepaid_wallet.results import FailedRow
from prepaid_wallet.wallet import Wallet

__all__ = ["DEFAULT_BATCH_SIZE", "MAX_BATCH_SIZE", "Batch", "BatchJob", "batched",
           "check_batch_size", "run_batch"]

#: Rows booked per unit of work unless a job is told otherwise.
DEFAULT_BATCH_SIZE = 500
#: The most rows a job books in one unit of work.
MAX_BATCH_SIZE = 10_000

B = TypeVar("B")
R = TypeVar("R")


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` checked: an int from 1 to :data:`MAX_BATCH_SIZE` (``InvalidInputError``
    naming ``batch_size`` otherwise)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not (
            1 <= batch_size <= MAX_BATCH_SIZE):
        raise InvalidInputError("batch_size", f"must be an int from 1 to {MAX_BATCH_SIZE}",
                                batch_size)
    return batch_size


def batched(rows: Iterable[B], size: int) -> Iterator[list[B]]:
    """``rows`` in lists of ``size`` (the last one shorter), read lazily."""
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _Watched:
    """A unit of work that counts the writes buffered through it, so that a row that fails
    after it began writing is told apart from one that wrote nothing."""

    _WRITES = frozenset({
        "record", "put_record", "delete_record", "put_idempotency", "add_event", "ack_events",
        "add_wallet", "change_terms", "put_condition_group",
    })

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._count = [0]

    @property
    def writes(self) -> int:
        """How many writes were buffered through this unit."""
        return self._count[0]

    def __getattr__(self, name: str) -> Any:
        # Looked up once: the bound method (or its counting wrapper) is kept on the instance,
        # so that the batch's later rows reach it without coming back here. The wrapper holds
        # the counter, not this object: no cycle keeps a committed batch's unit alive.
        found = getattr(self.uow, name)
        if name in self._WRITES:
            count = self._count

            def write(*args: Any, **kwargs: Any) -> Any:
                count[0] += 1
                return found(*args, **kwargs)
            self.__dict__[name] = write
            return write
        if callable(found):
            self.__dict__[name] = found
        return found


class Batch:
    """What the rows of one batch share while it is booked: the unit of work, the locked
    wallets, and what was read once for all of them (which tenants' webhook endpoints want an
    event kind)."""

    def __init__(self, env: Environment, uow: UnitOfWork, wallets: dict[str, Wallet]) -> None:
        self.env = env
        self.uow = uow
        self.wallets = wallets
        self._wants: dict[tuple[str, str], bool] = {}

    def wallet(self, wallet_id: str) -> Wallet:
        """The wallet as the unit sees it now (after the batch's earlier rows)."""
        return self.uow.get_wallet(wallet_id)

    def emit(self, *, tenant_id: str, wallet_id: str, kind: str, at: Any,
             data: dict[str, object]) -> None:
        """:func:`prepaid_wallet.app.outbox.emit`, the tenant's endpoints read once a batch."""
        wants = self._wants.get((tenant_id, kind))
        if wants is None:
            wants = self._wants[(tenant_id, kind)] = any(
                e.wants(kind) for e in enabled_endpoints(self.uow, tenant_id))
        if wants:
            emit(self.env, self.uow, tenant_id=tenant_id, wallet_id=wallet_id, kind=kind,
                 at=at, data=data)


class BatchJob(Generic[B, R]):
    """How a job books its rows: which wallet a row is booked on, its id in a report, what
    the batch reads once for all its rows, and the booking of one row (``None``: nothing to
    book after all)."""

    def wallet_of(self, row: B) -> str:
        """The wallet the row is booked on."""
        raise NotImplementedError

    def row_id(self, row: B) -> str:
        """The row's id in a report."""
        raise NotImplementedError

    def position(self, row: B) -> int | None:
        """The row's place in the job's input, if it has one."""
        return None

    def begin(self, batch: Batch, rows: Sequence[B]) -> None:
        """Read what the rows need, once for the batch (the wallets are locked)."""

    def book(self, batch: Batch, row: B) -> R | None:
        """Book one row in the batch's unit of work; raise a typed error before writing
        anything when it cannot be booked."""
        raise NotImplementedError

    def finish(self, batch: Batch) -> None:
        """Write what the batch's booked rows left to write once for all of them (a state
        each row would rewrite: only its last value), after the last row. An error here
        books the batch again row by row."""


class Outcome(Generic[B, R]):
    """What a batch did: each row booked (its result), failed (its report) or passed over."""

    def __init__(self) -> None:
        self.done: list[R] = []
        self.failed: list[FailedRow] = []
        self.passed: list[B] = []


class _RowWrote(Exception):
    """A row failed after it began writing: the batch is booked again row by row."""

    def __init__(self, error: PrepaidWalletError) -> None:
        super().__init__(str(error))
        self.error = error


def _lock(env: Environment, uow: UnitOfWork, wallet_ids: list[str]
          ) -> tuple[dict[str, Wallet], dict[str, WalletNotFoundError]]:
    """Lock the wallets; the ids of unknown wallets (and, for a scoped service, of another
    tenant's) apart, each with its error."""
    missing: dict[str, WalletNotFoundError] = {}
    ids = list(wallet_ids)
    while True:
        try:
            wallets = uow.lock_wallets(ids, tenant_records=WITH_LOCKS) if ids else {}
            break
        except WalletNotFoundError as exc:
            if exc.id not in ids:
                raise
            missing[exc.id] = exc
            ids.remove(exc.id)
    if env.tenant_id is not None:
        for wallet_id, wallet in list(wallets.items()):
            if wallet.tenant_id != env.tenant_id:
                missing[wallet_id] = WalletNotFoundError(wallet_id)
                del wallets[wallet_id]
    return wallets, missing


def _prefetch(env: Environment, uow: UnitOfWork, wallets: dict[str, Wallet]) -> None:
    """Read the automatic top-up rules of the wallets whose tenants allow automatic top-ups
    in one read (recording a change looks each up)."""
    allowed = {tenant_id: env.tenant_rules(uow, tenant_id).automatic_top_ups
               for tenant_id in {wallet.tenant_id for wallet in wallets.values()}}
    keys = [f"{wallet_id}/{TOP_UP_RULE}" for wallet_id, wallet in wallets.items()
            if allowed[wallet.tenant_id]]
    if keys:
        uow.get_records(WALLET_SETTINGS, keys)


def _book(env: Environment, uow: UnitOfWork, job: BatchJob[B, R], rows: Sequence[B],
          outcome: Outcome[B, R]) -> None:
    wallet_ids = sorted({job.wallet_of(row) for row in rows})
    wallets, missing = _lock(env, uow, wallet_ids)
    watched = _Watched(uow)
    batch = Batch(env, cast(UnitOfWork, watched), wallets)
    kept = []
    for row in rows:
        error = missing.get(job.wallet_of(row))
        if error is None:
            kept.append(row)
        else:
            outcome.failed.append(FailedRow(job.row_id(row), error, job.position(row)))
    _prefetch(env, uow, wallets)
    job.begin(batch, kept)
    for row in kept:
        mark = watched.writes
        try:
            done = job.book(batch, row)
        except PermissionDeniedError:
            raise
        except PrepaidWalletError as exc:
            if watched.writes != mark:
                raise _RowWrote(exc) from exc
            outcome.failed.append(FailedRow(job.row_id(row), exc, job.position(row)))
            continue
        if done is None:
            outcome.passed.append(row)
        else:
            outcome.done.append(done)
    try:
        job.finish(batch)
    except PermissionDeniedError:
        raise
    except PrepaidWalletError as exc:
        raise _RowWrote(exc) from exc


def run_batch(env: Environment, job: BatchJob[B, R], rows: Sequence[B]) -> Outcome[B, R]:
    """Book ``rows`` in one unit of work (see the module's docstring); when a row fails after
    it began writing or the commit fails, one unit of work per row."""
    outcome: Outcome[B, R] = Outcome()
    try:
        with env.store.unit_of_work() as uow:
            _book(env, uow, job, rows, outcome)
            uow.commit()
        return outcome
    except PermissionDeniedError:
        raise
    except (PrepaidWalletError, _RowWrote):
        pass
    outcome = Outcome()
    for row in rows:
        one: Outcome[B, R] = Outcome()
        try:
            with env.store.unit_of_work() as uow:
                _book(env, uow, job, [row], one)
                uow.commit()
        except PermissionDeniedError:
            raise
        except _RowWrote as exc:
            one = Outcome()
            one.failed.append(FailedRow(job.row_id(row), exc.error, job.position(row)))
        except PrepaidWalletError as exc:
            one = Outcome()
            one.failed.append(FailedRow(job.row_id(row), exc, job.position(row)))
        outcome.done.extend(one.done)
        outcome.failed.extend(one.failed)
        outcome.passed.extend(one.passed)
    return outcome
