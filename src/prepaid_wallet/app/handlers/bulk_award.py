"""Bulk awards: many awards in one call, each booked like an ``award`` command, a batch of
them per unit of work, idempotent per wallet under the call's batch key."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.actors import Actor
from prepaid_wallet.app.batches import Batch, BatchJob, batched, check_batch_size, run_batch
from prepaid_wallet.app.checks import check_common
from prepaid_wallet.app.commands import Award
from prepaid_wallet.app.commands.bulk import BulkAward
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.handlers.money_in import award
from prepaid_wallet.app.pipeline import Context, authorize, not_before
from prepaid_wallet.app.ports import IdempotencyRecord
from prepaid_wallet.errors import InvalidInputError, PrepaidWalletError
from prepaid_wallet.idempotency import canonical_request, check_replay, decode_refusal
from prepaid_wallet.ids import check_name
from prepaid_wallet.results import AwardReport, FailedRow

__all__ = ["award_many"]

#: The longest batch key: its awards' keys are ``<batch key>:<wallet id>``, at most 255.
MAX_BATCH_KEY = 128


@attrs.frozen
class _Row:
    """One award checked and ready: its place in the input, its command, key and request."""

    position: int
    command: Award
    key: str
    request: tuple[tuple[str, str], ...]
    metadata: dict[str, str]


def _check_batch_key(batch_key: object) -> str:
    if (not isinstance(batch_key, str) or not batch_key or len(batch_key) > MAX_BATCH_KEY
            or not batch_key.isprintable()):
        raise InvalidInputError("batch_key", f"must be 1-{MAX_BATCH_KEY} printable characters",
                                batch_key)
    return batch_key


def award_many(env: Environment, awards: Iterable[BulkAward], *, batch_key: str,
               batch_size: int, actor: Actor | str | None) -> AwardReport:
    """Grant each of ``awards`` as :func:`~prepaid_wallet.app.handlers.money_in.award` grants
    one, under the idempotency key ``<batch key>:<wallet id>``; ``batch_size`` awards per unit
    of work, the input read a batch at a time."""
    batch_key = _check_batch_key(batch_key)
    batch_size = check_batch_size(batch_size)
    _, _, checked_actor = check_common(None, None, actor)
    try:
        rows = iter(awards)
    except TypeError:
        raise InvalidInputError("awards", "must be an iterable of BulkAward", awards) from None
    job = _Awards(env, checked_actor)
    awarded = already = 0
    failed: list[FailedRow] = []
    for chunk in batched(zip(itertools.count(), rows, strict=False), batch_size):
        ready: list[_Row] = []
        for position, item in chunk:
            try:
                ready.append(_prepare(position, item, batch_key, checked_actor))
            except PrepaidWalletError as exc:
                failed.append(FailedRow(_row_id(item), exc, position))
        outcome = run_batch(env, job, ready)
        awarded += sum(outcome.done)
        already += len(outcome.done) - sum(outcome.done)
        failed.extend(outcome.failed)
    return AwardReport(awarded, already, tuple(failed))


def _row_id(item: object) -> str:
    wallet_id = getattr(item, "wallet_id", None)
    return wallet_id if isinstance(wallet_id, str) else repr(wallet_id)


def _prepare(position: int, item: object, batch_key: str, actor: Actor | None) -> _Row:
    """The award of one input row, checked like the ``award`` command's arguments."""
    if not isinstance(item, BulkAward):
        raise InvalidInputError("awards", "must hold BulkAward values", item)
    wallet_id = check_name(item.wallet_id, "wallet_id")
    key = f"{batch_key}:{wallet_id}"
    command = Award(
        wallet_id=wallet_id, amount=item.amount, reason=item.reason,
        expires_at=item.expires_at, priority=item.priority, condition=item.condition,
        group_id=item.group_id, idempotency_key=key, actor=actor, metadata=item.metadata)
    command.validate()
    metadata, key_checked, _ = check_common(item.metadata, key, None)
    request = canonical_request(command.operation, **command.request(metadata))
    return _Row(position, command, key_checked or key, request, metadata)


class _Awards(BatchJob[_Row, bool]):
    """Each row: already granted under its key (``False``: replayed, not granted again; a key
    stored for another request is ``IdempotencyConflictError``), else granted now (``True``)
    and its idempotency record stored with its lot, as the ``award`` command stores it."""

    def __init__(self, env: Environment, actor: Actor | None) -> None:
        self.env = env
        self.actor = actor
        self._stored: dict[tuple[str, str], IdempotencyRecord] = {}
        self._seen: set[str] = set()
        self._at = env.now()

    def wallet_of(self, row: _Row) -> str:
        return row.command.wallet_id

    def row_id(self, row: _Row) -> str:
        return row.command.wallet_id

    def position(self, row: _Row) -> int | None:
        return row.position

    def begin(self, batch: Batch, rows: Sequence[_Row]) -> None:
        if rows:
            for tenant_id in sorted({wallet.tenant_id for wallet in batch.wallets.values()}):
                authorize(self.env, batch.uow, self.actor, rows[0].command, tenant_id)
        self._stored = batch.uow.get_idempotencies(
            [(batch.wallets[row.command.wallet_id].tenant_id, row.key) for row in rows])
        self._seen = set()
        self._at = self.env.now()

    def book(self, batch: Batch, row: _Row) -> bool:
        wallet_id = row.command.wallet_id
        if wallet_id in self._seen:
            raise InvalidInputError("wallet_id", "must appear once per batch key", wallet_id)
        wallet = batch.wallet(wallet_id)
        scope = wallet.tenant_id
        stored = self._stored.get((scope, row.key))
        if stored is not None:
            check_replay(stored, row.request)
            if stored.outcome == "refused":
                raise decode_refusal(stored.payload)
            self._seen.add(wallet_id)
            return False
        at = not_before(self._at, [wallet])
        ctx = Context(self.env, batch.uow, at, row.key,
                      None if self.actor is None else self.actor.id, row.metadata,
                      {wallet_id: wallet})
        lot = award(ctx, row.command)
        batch.uow.put_idempotency(IdempotencyRecord(
            scope, row.key, row.command.operation, row.request, "ok", _codec.dumps(lot), at))
        self._seen.add(wallet_id)
        return True
