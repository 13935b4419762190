"""Periodic fees: the job that charges every occurrence of the tenants' periodic fees due on
each wallet, exactly once per wallet and occurrence, never below the wallet's floor."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.batches import (
    DEFAULT_BATCH_SIZE,
    Batch,
    BatchJob,
    batched,
    check_batch_size,
    run_batch,
)
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import IdempotencyRecord
from prepaid_wallet.app.settings import (
    OWNER_GROUPS,
    WALLET_SETTINGS,
    periodic_fee_setting,
    put_setting,
)
from prepaid_wallet.app.tenant_rules import RULES
from prepaid_wallet.money import Money
from prepaid_wallet.results import FailedRow, FeeReport
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.fees import PeriodicFee

__all__ = ["charge_periodic_fees"]


@attrs.frozen
class _Charge:
    """One occurrence of a fee due on a wallet: its idempotency key and request."""

    wallet_id: str
    tenant_id: str
    fee: PeriodicFee
    occurrence: datetime
    key: str
    request: tuple[tuple[str, str], ...]
    #: ``occurrence`` as ISO text (what the fee's setting stores and the entry's metadata).
    occurrence_text: str


def charge_periodic_fees(env: Environment, *, batch_size: int = DEFAULT_BATCH_SIZE
                         ) -> FeeReport:
    """Charge every occurrence due of every periodic fee of the tenants the service may act
    for, wallet by wallet: the wallets are read ``batch_size`` at a time, and their charges
    booked ``batch_size`` per unit of work. Each tenant's periodic fees are its stored rules as
    the run reads them. A charge that cannot be booked is reported in ``failed``."""
    batch_size = check_batch_size(batch_size)
    at = env.now()
    entry_ids: list[str] = []
    waived = 0
    failed: list[FailedRow] = []
    with env.store.unit_of_work(read_only=True) as uow:
        tenants = [(stored.tenant_id, RULES.decode(stored.data).periodic_fees)
                   for stored in RULES.all_current(uow, env.tenant_id)]
    job = _Fees(at)
    for tenant_id, fees in tenants:
        if not fees:
            continue
        for charges in batched(_due_charges(env, tenant_id, fees, at, batch_size), batch_size):
            outcome = run_batch(env, job, charges)
            for entry_id, short in outcome.done:
                if entry_id is not None:
                    entry_ids.append(entry_id)
                waived += short
            failed.extend(outcome.failed)
    return FeeReport(tuple(entry_ids), waived, tuple(failed))


def _due_charges(env: Environment, tenant_id: str, fees: Sequence[PeriodicFee], at: datetime,
                 page: int) -> Iterator[_Charge]:
    """The occurrences of ``fees`` due on the tenant's wallets, ``page`` wallets read at a
    time (each page in a read-only unit of its own, with their settings in one read)."""
    after: str | None = None
    names = [periodic_fee_setting(fee.name) for fee in fees]
    groups_needed = any(fee.owner_groups for fee in fees)
    seen = _Occurrences(at)
    while True:
        with env.store.unit_of_work(read_only=True) as uow:
            wallets = list(itertools.islice(uow.iter_wallets(tenant_id, after=after), page))
            if not wallets:
                return
            keys = [f"{w.id}/{name}" for w in wallets for name in names]
            if groups_needed:
                keys += [f"{w.id}/{OWNER_GROUPS}" for w in wallets]
            settings = {key: found.value
                        for key, found in uow.get_records(WALLET_SETTINGS, keys).items()}
        after = wallets[-1].id
        charges = [charge for wallet in wallets
                   for charge in _wallet_charges(wallet, fees, settings, at, seen)]
        del wallets, settings
        yield from charges


class _Occurrences:
    """The occurrences of a fee in ``(since, at]`` and their keys, computed once per fee and
    ``since`` for a run: wallets charged by the same earlier run (or opened at the same
    instant) share them. At most :data:`_MEMO` starts are kept at a time."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._found: dict[tuple[int, datetime], tuple[_Occurrence, ...]] = {}

    def of(self, index: int, fee: PeriodicFee, since: datetime) -> tuple[_Occurrence, ...]:
        """Each occurrence of ``fee`` (the ``index``-th of its tenant's fees) due after
        ``since``: the instant, its key, its ISO text and its text in a canonical request."""
        found = self._found.get((index, since))
        if found is None:
            if len(self._found) >= _MEMO:
                self._found.clear()
            found = self._found[(index, since)] = tuple(
                (occurrence, _occurrence_key(fee, occurrence), occurrence.isoformat(),
                 occurrence.astimezone(UTC).isoformat())
                for occurrence in fee.occurrences(since, self.at))
        return found


_Occurrence = tuple[datetime, str, str, str]


#: Fee starts whose occurrences a run keeps at once.
_MEMO = 1024


def _occurrence_key(fee: PeriodicFee, occurrence: datetime) -> str:
    """:meth:`PeriodicFee.occurrence_key` of an occurrence :meth:`PeriodicFee.occurrences`
    gave (an aware UTC instant of whole seconds: the same text, without computing the
    occurrences again to check it); anything else is checked by the fee."""
    if occurrence.tzinfo is UTC and not occurrence.microsecond:
        return f"{fee.name}@{occurrence.isoformat()}"
    return fee.occurrence_key(occurrence)


def _wallet_charges(wallet: Wallet, fees: Sequence[PeriodicFee], settings: dict[str, str],
                    at: datetime, seen: _Occurrences) -> Iterator[_Charge]:
    groups_text = settings.get(f"{wallet.id}/{OWNER_GROUPS}")
    groups = frozenset() if groups_text is None else frozenset(json.loads(groups_text))
    for index, fee in enumerate(fees):
        if wallet.currency != fee.amount.currency or not fee.applies(groups):
            continue
        last = settings.get(f"{wallet.id}/{periodic_fee_setting(fee.name)}")
        since = wallet.created_at if last is None else max(
            wallet.created_at, datetime.fromisoformat(last))
        for occurrence, key, text, utc_text in seen.of(index, fee, since):
            # canonical_request("periodic_fee", wallet_id=, fee=, occurrence=), its fields
            # sorted by name, built without converting the instant again per wallet.
            yield _Charge(
                wallet.id, wallet.tenant_id, fee, occurrence, f"periodic-fee:{wallet.id}:{key}",
                (("operation", "periodic_fee"), ("fee", fee.name), ("occurrence", utc_text),
                 ("wallet_id", wallet.id)), text)


class _Fees(BatchJob[_Charge, tuple[str | None, bool]]):
    """Charge each occurrence once (its idempotency record, looked up for the whole batch in
    one read, says whether another run charged it): the entry posted, if any, and whether the
    fee was waived in part or in full."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._charged: set[tuple[str, str]] = set()
        #: The last occurrence booked of each fee on each wallet of the batch:
        #: ``(wallet id, setting) -> (wallet, occurrence text)``, its setting written once.
        self._last: dict[tuple[str, str], tuple[Wallet, str]] = {}

    def wallet_of(self, row: _Charge) -> str:
        return row.wallet_id

    def row_id(self, row: _Charge) -> str:
        return row.key

    def begin(self, batch: Batch, rows: Sequence[_Charge]) -> None:
        self._charged = set(batch.uow.get_idempotencies(
            [(row.tenant_id, row.key) for row in rows]))
        self._last = {}

    def book(self, batch: Batch, row: _Charge) -> tuple[str | None, bool] | None:
        env, uow = batch.env, batch.uow
        wallet = batch.wallet(row.wallet_id)
        if (wallet.tenant_id, row.key) in self._charged:
            return None  # charged by another run
        fee = row.fee
        headroom = max(wallet.open - wallet.floor, Money.zero(wallet.currency))
        amount = min(fee.amount, headroom)
        payload: str | None = None
        if amount.is_positive():
            change = _w.charge_fee(wallet, amount, env.info(
                max(self.at, wallet.not_before), row.key, None,
                {"fee": fee.name, "occurrence": row.occurrence_text}))
            record(env, uow, change)
            payload = change.entry.id
        uow.put_idempotency(IdempotencyRecord(
            wallet.tenant_id, row.key, "periodic_fee", row.request, "ok",
            json.dumps(payload), self.at))
        self._last[(wallet.id, periodic_fee_setting(fee.name))] = (wallet, row.occurrence_text)
        return payload, amount < fee.amount

    def finish(self, batch: Batch) -> None:
        """The setting of each fee charged on each wallet: its last occurrence booked, put
        once (the batch's rows of a wallet come in the order of their occurrences)."""
        for (_, name), (wallet, text) in self._last.items():
            put_setting(batch.uow, wallet, name, text)
        self._last = {}
