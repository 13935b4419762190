"""Bulk jobs in batches -- the expiry sweep, periodic fees and ``award_many`` -- on every backend:
the same results as one row per unit of work, a crash between batches then a rerun books exactly
the rest, a failing row is reported and the others booked, and ``award_many`` is idempotent per
wallet, authorized like ``award``, streams its input in flat memory and checks its arguments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prepaid_wallet import (
    AccessPolicy,
    Actor,
    BulkAward,
    CurrencyMismatchError,
    FailedRow,
    FixedClock,
    IdempotencyConflictError,
    InvalidAmountError,
    InvalidInputError,
    Money,
    PermissionDeniedError,
    SequentialIds,
    StorageError,
    Store,
    WalletNotFoundError,
    WalletService,
)
from prepaid_wallet import wallet as _w
from prepaid_wallet.app import batches
from prepaid_wallet.app.handlers import bulk_award, expiry, periodic_fee
from prepaid_wallet.ledger import Entry
from prepaid_wallet.rules.fees import PeriodicFee
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.storage.sqlite import SQLiteStore
from tests.backends import available_backends
from tests.test_long_jobs import _peak

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TENANT = "hub"


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def _service(store: Store) -> tuple[WalletService, FixedClock]:
    clock = FixedClock(T0)
    return WalletService(store, clock=clock, ids=SequentialIds()), clock


def _lots_world(svc: WalletService, clock: FixedClock, wallets: int = 7) -> list[str]:
    """Wallets with three lots each (two due in a day, one never), and a hold of the open
    balance due in an hour on every other wallet; then the clock moves past it all."""
    ids = []
    for i in range(wallets):
        wallet = svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR")
        ids.append(wallet.id)
        svc.top_up(wallet.id, eur("5.00"), method="card")
        if i % 2 == 0:  # from the open balance: placed before the awards
            svc.hold(wallet.id, eur("2.00"), window=timedelta(hours=1))
        svc.award(wallet.id, eur("1.00"), reason="promo", expires_at=T0 + DAY)
        svc.award(wallet.id, eur(f"0.{i + 1:02d}"), reason="promo", expires_at=T0 + DAY)
        svc.award(wallet.id, eur("3.00"), reason="keep")
    clock.advance(2 * DAY)
    return ids


def _entries(store: Store, kind: str) -> list[Entry]:
    with store.unit_of_work(read_only=True) as uow:
        return [e for e in uow.iter_entries() if e.kind.value == kind]


def _field(row: FailedRow) -> tuple[str, str | None]:
    """A failed row's error type and the field it names."""
    return row.error_type, getattr(row.error, "field", None)


def _summary(svc: WalletService, wallet_ids: list[str]) -> list[tuple[Money, Money, Money]]:
    out = []
    for wallet_id in wallet_ids:
        balance = svc.balance(wallet_id)
        out.append((balance.open, balance.commerce, balance.held))
    return out


def _other_store(store: Store, tmp_path: Path, name: str) -> Store:
    """A fresh store of the same backend as ``store``."""
    for made in available_backends().values():
        (tmp_path / name).mkdir(exist_ok=True)
        other = made(tmp_path / name)
        if type(other) is type(store):
            return other
        other.close()
    raise AssertionError(type(store))


# -- results equal to one row per unit of work -----------------------------------------------------


def test_the_batched_sweep_books_what_one_row_at_a_time_books(store: Store, tmp_path: Path
                                                              ) -> None:
    single = _other_store(store, tmp_path, "single")
    try:
        results = []
        for target, size in ((store, 4), (single, 1)):
            svc, clock = _service(target)
            wallet_ids = _lots_world(svc, clock)
            report = svc.expire_due(batch_size=size)
            assert (report.lots_expired, report.holds_released, report.failed) == (14, 4, ())
            assert svc.verify().ok
            breakage = [report.entry_ids.index(e.id) for e in _entries(target, "breakage")]
            results.append((_summary(svc, wallet_ids), report.entry_ids, breakage,
                            target.export_state()))
            assert svc.expire_due(batch_size=size).entry_ids == ()
        assert results[0][:3] == results[1][:3]
        assert results[0][3] == results[1][3]  # the very same rows, ids and instants
    finally:
        single.close()


def _fee_rules(svc: WalletService) -> None:
    svc.set_tenant_rules(TENANT, TenantRules(periodic_fees=(PeriodicFee(
        "monthly", eur("0.40"), "FREQ=DAILY", T0, "UTC"),)))


def _funded_wallets(svc: WalletService, count: int) -> list[str]:
    """``count`` wallets of the tenant (owners ``o0``, ``o1``...), each topped up with 9.00."""
    wallet_ids = []
    for i in range(count):
        wallet = svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR")
        wallet_ids.append(wallet.id)
        svc.top_up(wallet.id, eur("9.00"), method="card")
    return wallet_ids


def _three_wallets_owing_fees(store: Store) -> tuple[WalletService, FixedClock, list[str]]:
    """Three wallets holding 9.00 each, a daily fee of 0.40, and the clock three days and an
    hour later: three occurrences due on each."""
    svc, clock = _service(store)
    wallet_ids = _funded_wallets(svc, 3)
    _fee_rules(svc)
    clock.advance(3 * DAY + timedelta(hours=1))
    return svc, clock, wallet_ids


def test_batched_periodic_fees_charge_what_one_row_at_a_time_charges(
        store: Store, tmp_path: Path) -> None:
    single = _other_store(store, tmp_path, "single")
    try:
        states = []
        for target, size in ((store, 3), (single, 1)):
            svc, clock = _service(target)
            wallet_ids = []
            for i in range(5):
                wallet = svc.open_wallet(owner_id=f"o{i}", tenant_id=TENANT, currency="EUR")
                wallet_ids.append(wallet.id)
                svc.top_up(wallet.id, eur(f"{i}.50"), method="card")
            _fee_rules(svc)
            clock.advance(3 * DAY + timedelta(hours=1))
            report = svc.charge_periodic_fees(batch_size=size)
            assert report.failed == ()
            # three days, five wallets: o0 pays 0.40, then 0.10 (0.30 waived), then nothing
            assert (len(report.entry_ids), report.waived) == (14, 2)
            assert svc.verify().ok
            again = svc.charge_periodic_fees(batch_size=size)
            assert (again.entry_ids, again.waived) == ((), 0)
            states.append((_summary(svc, wallet_ids), report, target.export_state()))
        assert states[0] == states[1]
    finally:
        single.close()


# -- a crash between batches, then a rerun ---------------------------------------------------------


def _crash_after(monkeypatch: pytest.MonkeyPatch, module: Any, batches_done: int) -> None:
    """The job's ``run_batch`` raises (as a killed process would stop) once it has committed
    ``batches_done`` batches."""
    real = module.run_batch
    calls = {"n": 0}

    def crashing(*args: Any, **kwargs: Any) -> Any:
        if calls["n"] == batches_done:
            raise KeyboardInterrupt("crash")
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "run_batch", crashing)


def test_a_sweep_that_crashes_is_finished_by_the_next(store: Store,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    svc, clock = _service(store)
    wallet_ids = _lots_world(svc, clock)
    with monkeypatch.context() as patch:
        _crash_after(patch, expiry, 2)  # the holds' batch and one batch of lots
        with pytest.raises(KeyboardInterrupt):
            svc.expire_due(batch_size=4)
    first = _entries(store, "breakage")
    assert len(first) == 4
    rest = svc.expire_due(batch_size=4)
    assert (rest.lots_expired, rest.holds_released, rest.failed) == (10, 0, ())
    assert len(_entries(store, "breakage")) == 14
    assert [c for _, c, _ in _summary(svc, wallet_ids)] == [eur("3.00")] * 7
    assert svc.verify().ok


def test_periodic_fees_that_crash_are_finished_by_the_next_run(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, clock = _service(store)
    _funded_wallets(svc, 5)
    _fee_rules(svc)
    clock.advance(3 * DAY + timedelta(hours=1))
    with monkeypatch.context() as patch:
        _crash_after(patch, periodic_fee, 2)
        with pytest.raises(KeyboardInterrupt):
            svc.charge_periodic_fees(batch_size=4)
    assert len(_entries(store, "fee")) == 8
    rest = svc.charge_periodic_fees(batch_size=4)
    assert len(rest.entry_ids) == 7
    fees = _entries(store, "fee")
    assert len(fees) == 15 == len({e.idempotency_key for e in fees})
    assert all(svc.balance(w.id).open == eur("7.80") for w in svc.wallets(TENANT))
    assert svc.verify().ok


def _awards(wallet_ids: list[str], amount: str = "2.00") -> Iterator[BulkAward]:
    for wallet_id in wallet_ids:
        yield BulkAward(wallet_id=wallet_id, amount=eur(amount), reason="spring",
                        expires_at=T0 + 30 * DAY)


def _wallets(svc: WalletService, count: int, tenant: str = TENANT) -> list[str]:
    return [svc.open_wallet(owner_id=f"{tenant}-o{i}", tenant_id=tenant, currency="EUR").id
            for i in range(count)]


def test_award_many_that_crashes_is_finished_by_the_same_call(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = _service(store)
    wallet_ids = _wallets(svc, 10)
    with monkeypatch.context() as patch:
        _crash_after(patch, bulk_award, 1)
        with pytest.raises(KeyboardInterrupt):
            svc.award_many(_awards(wallet_ids), batch_key="spring", batch_size=4)
    assert [svc.balance(w).commerce for w in wallet_ids] == [eur("2.00")] * 4 + [eur("0")] * 6
    report = svc.award_many(_awards(wallet_ids), batch_key="spring", batch_size=4)
    assert (report.awarded, report.already_done, report.failed) == (6, 4, ())
    assert [svc.balance(w).commerce for w in wallet_ids] == [eur("2.00")] * 10
    assert svc.verify().ok


# -- a failing row ---------------------------------------------------------------------------------


def test_a_lot_that_fails_is_reported_and_the_rest_booked(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, clock = _service(store)
    wallet_ids = _lots_world(svc, clock, wallets=3)
    bad = svc.lots(wallet_ids[1])[0]
    real = _w.expire_lot

    def failing(wallet: Any, lot: Any, info: Any) -> Any:
        if lot.id == bad.id:
            raise InvalidAmountError("amount", "refused for the test")
        return real(wallet, lot, info)

    with monkeypatch.context() as patch:
        patch.setattr(_w, "expire_lot", failing)
        report = svc.expire_due(batch_size=10)
        assert [(row.row_id, row.error_type) for row in report.failed] == [
            (bad.id, "InvalidAmountError")]
        assert report.lots_expired == 5
        with pytest.raises(InvalidAmountError):  # the stream books the rest, then raises
            list(svc.sweep_expired())
    assert svc.expire_due().lots_expired == 1
    assert svc.verify().ok


def test_a_row_that_fails_after_it_began_writing_is_rolled_back_alone(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, clock = _service(store)
    wallet_ids = _lots_world(svc, clock, wallets=3)
    bad = svc.lots(wallet_ids[2])[0]
    real = expiry.record

    def failing(env: Any, uow: Any, change: Any) -> None:
        real(env, uow, change)  # the change is buffered: the batch must not commit it
        if any(lot.id == bad.id for lot in change.lots):
            raise StorageError("failed after writing")

    monkeypatch.setattr(expiry, "record", failing)
    report = svc.expire_due(batch_size=10)
    assert [(row.row_id, row.error_type) for row in report.failed] == [(bad.id, "StorageError")]
    assert report.lots_expired == 5
    monkeypatch.undo()
    assert bad.id in [lot.id for lot in svc.lots(wallet_ids[2])]  # not booked, still due
    assert svc.expire_due().lots_expired == 1
    assert svc.verify().ok


def test_a_commit_that_fails_books_its_batch_row_by_row(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = _service(store)
    wallet_ids = _wallets(svc, 6)
    real = store.unit_of_work

    def unit_of_work(*, read_only: bool = False) -> Any:
        uow = real(read_only=read_only)
        commit = uow.commit

        def failing() -> None:
            if any(wallet_ids[2] in change.entry.wallet_ids for change in uow._changes):
                raise StorageError("the database refused the commit")
            commit()

        uow.commit = failing
        return uow

    monkeypatch.setattr(store, "unit_of_work", unit_of_work)
    report = svc.award_many(_awards(wallet_ids), batch_key="b", batch_size=10)
    assert (report.awarded, report.already_done) == (5, 0)
    assert [(row.row_id, row.position, row.error_type) for row in report.failed] == [
        (wallet_ids[2], 2, "StorageError")]
    monkeypatch.undo()
    assert [svc.balance(w).commerce for w in wallet_ids] == [
        eur("0") if w == wallet_ids[2] else eur("2.00") for w in wallet_ids]
    assert svc.verify().ok


def test_award_many_reports_bad_rows_by_field_and_grants_the_others(store: Store) -> None:
    svc, _ = _service(store)
    good = _wallets(svc, 3)
    usd = svc.open_wallet(owner_id="u", tenant_id=TENANT, currency="USD").id
    rows: list[Any] = [
        BulkAward(wallet_id=good[0], amount=eur("1.00"), reason="r"),
        BulkAward(wallet_id="w_unknown", amount=eur("1.00"), reason="r"),
        BulkAward(wallet_id=usd, amount=eur("1.00"), reason="r"),
        BulkAward(wallet_id=good[1], amount=eur("-1.00"), reason="r"),
        BulkAward(wallet_id=good[1], amount=eur("1.00"), reason="r", expires_at=T0 - DAY),
        "not an award",
        BulkAward(wallet_id=good[2], amount=eur("1.00"), reason="r", priority=True),
        BulkAward(wallet_id=good[2], amount=eur("3.00"), reason="r"),
        BulkAward(wallet_id=good[2], amount=eur("4.00"), reason="r"),
    ]
    report = svc.award_many(rows, batch_key="mixed", batch_size=4)
    assert (report.awarded, report.already_done) == (2, 0)
    found = {row.position: row for row in report.failed}
    assert sorted(found) == [1, 2, 3, 4, 5, 6, 8]
    assert isinstance(found[1].error, WalletNotFoundError)
    assert isinstance(found[2].error, CurrencyMismatchError)
    assert isinstance(found[3].error, InvalidAmountError)
    assert _field(found[4]) == ("InvalidTimeError", "expires_at")
    assert _field(found[5]) == ("InvalidInputError", "awards")
    assert _field(found[6]) == ("InvalidInputError", "priority")
    # a wallet's second award under the key, in a later batch: the key holds another award
    assert isinstance(found[8].error, IdempotencyConflictError)
    assert [svc.balance(w).commerce for w in good] == [eur("1.00"), eur("0"), eur("3.00")]
    assert svc.verify().ok


def test_a_wallet_twice_in_one_batch_fails_the_second_row(store: Store) -> None:
    svc, _ = _service(store)
    (wallet_id,) = _wallets(svc, 1)
    report = svc.award_many([*_awards([wallet_id]), *_awards([wallet_id], "3.00")],
                            batch_key="b")
    assert report.awarded == 1
    (row,) = report.failed
    assert (row.position, row.error_type) == (1, "InvalidInputError")
    assert _field(row) == ("InvalidInputError", "wallet_id")
    assert svc.balance(wallet_id).commerce == eur("2.00")


def test_an_expiry_in_the_past_fails_its_row(store: Store) -> None:
    svc, _ = _service(store)
    (wallet_id,) = _wallets(svc, 1)
    report = svc.award_many([BulkAward(wallet_id=wallet_id, amount=eur("1.00"), reason="r",
                                       expires_at=T0 - DAY)], batch_key="b")
    (row,) = report.failed
    assert _field(row) == ("InvalidTimeError", "expires_at")


# -- award_many: idempotent, authorized, flat, checked --------------------------------------------


def test_award_many_again_awards_nothing_twice(store: Store) -> None:
    svc, _ = _service(store)
    wallet_ids = _wallets(svc, 5)
    first = svc.award_many(_awards(wallet_ids), batch_key="spring", batch_size=2)
    assert (first.awarded, first.already_done, first.failed) == (5, 0, ())
    before = store.export_state()
    again = svc.award_many(_awards(wallet_ids), batch_key="spring", batch_size=3)
    assert (again.awarded, again.already_done, again.failed) == (0, 5, ())
    assert store.export_state() == before
    # one award of the batch is the award command's under its key: a replay, not a new lot
    lot = svc.award(wallet_ids[0], eur("2.00"), reason="spring", expires_at=T0 + 30 * DAY,
                    idempotency_key=f"spring:{wallet_ids[0]}")
    assert svc.lots(wallet_ids[0]) == [lot]
    # another amount under the same key conflicts, row by row
    other = svc.award_many(_awards(wallet_ids, "5.00"), batch_key="spring")
    assert other.awarded == 0
    assert {type(row.error) for row in other.failed} == {IdempotencyConflictError}
    assert store.export_state() == before
    # another batch key awards again
    assert svc.award_many(_awards(wallet_ids), batch_key="autumn").awarded == 5


def test_award_many_is_authorized_like_award(store: Store) -> None:
    svc, _ = _service(store)
    wallet_ids = _wallets(svc, 3)
    svc.set_access_policy(TENANT, AccessPolicy({"admin": {"*"}, "clerk": {"award"},
                                                "cashier": {"top_up"}}))
    before = store.export_state()
    for actor in (None, "walk-in", Actor("c", frozenset({"cashier"}))):
        with pytest.raises(PermissionDeniedError):
            svc.award_many(_awards(wallet_ids), batch_key="b", actor=actor)
        assert store.export_state() == before
    report = svc.award_many(_awards(wallet_ids), batch_key="b",
                            actor=Actor("k", frozenset({"clerk"})))
    assert report.awarded == 3
    assert {e.actor for e in _entries(store, "award")} == {"k"}


def test_a_scoped_service_awards_its_own_tenant_only(store: Store) -> None:
    svc, clock = _service(store)
    own = _wallets(svc, 2)
    foreign = _wallets(svc, 1, tenant="other")
    scoped = WalletService(store, clock=clock, ids=SequentialIds(), tenant_id=TENANT)
    report = scoped.award_many(_awards([*own, *foreign]), batch_key="b")
    assert report.awarded == 2
    assert [(row.row_id, type(row.error)) for row in report.failed] == [
        (foreign[0], WalletNotFoundError)]
    assert svc.balance(foreign[0]).commerce == eur("0")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"batch_key": ""}, "batch_key"),
    ({"batch_key": "x" * 129}, "batch_key"),
    ({"batch_key": 7}, "batch_key"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": True}, "batch_size"),
    ({"batch_size": 10_001}, "batch_size"),
    ({"actor": 5}, "actor"),
    ({"awards": 5}, "awards"),
])
def test_award_many_checks_its_arguments(store: Store, kwargs: dict[str, Any], field: str
                                         ) -> None:
    svc, _ = _service(store)
    wallet_ids = _wallets(svc, 1)
    before = store.export_state()
    args: dict[str, Any] = {"awards": list(_awards(wallet_ids)), "batch_key": "b", **kwargs}
    with pytest.raises(InvalidInputError) as info:
        svc.award_many(args.pop("awards"), **args)
    assert info.value.field == field
    assert store.export_state() == before


@pytest.mark.parametrize("job", ["expire_due", "sweep_expired", "charge_periodic_fees"])
def test_the_jobs_check_their_batch_size(store: Store, job: str) -> None:
    svc, _ = _service(store)
    with pytest.raises(InvalidInputError) as info:
        getattr(svc, job)(batch_size=-1)
    assert info.value.field == "batch_size"


def test_award_many_streams_its_input_in_flat_memory(tmp_path: Path) -> None:
    peaks = {}
    for n in (300, 3000):
        svc, _ = _service(SQLiteStore(str(tmp_path / f"{n}.db"), synchronous="NORMAL"))
        report = svc.award_many(
            (BulkAward(wallet_id=f"w{i}", amount=eur("1.00"), reason="r") for i in range(n)),
            batch_key="open", batch_size=100)
        assert len(report.failed) == n  # no such wallets: warms every code path up
        wallet_ids = _wallets(svc, n)

        def job(svc: WalletService = svc, wallet_ids: list[str] = wallet_ids) -> int:
            report = svc.award_many(_awards(wallet_ids), batch_key="b", batch_size=100)
            return report.awarded

        rows, peaks[n] = _peak(job)
        assert rows == n
    assert peaks[3000] < 2 * peaks[300] + 64 * 1024, peaks


def test_batch_sizes_are_read_lazily() -> None:
    taken = []

    def rows() -> Iterator[int]:
        for i in range(7):
            taken.append(i)
            yield i

    chunks = batches.batched(rows(), 3)
    assert next(chunks) == [0, 1, 2]
    assert taken == [0, 1, 2]
    assert list(chunks) == [[3, 4, 5], [6]]


# -- what a batch computes once for its rows -------------------------------------------------------


def _setting(store: Store, wallet_id: str, name: str) -> str | None:
    from prepaid_wallet.app.settings import get_setting

    with store.unit_of_work(read_only=True) as uow:
        return get_setting(uow, wallet_id, name)


def test_periodic_fee_keys_and_requests_are_the_fees_own_across_a_clock_change(
        store: Store) -> None:
    """Each occurrence's idempotency key, request and setting are what the fee and the
    canonical request say, in a zone whose clocks move (the run computes each start's
    occurrences once and reuses them for every wallet)."""
    from prepaid_wallet.idempotency import canonical_request

    svc, clock = _service(store)
    wallet_ids = _funded_wallets(svc, 4)
    start = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # midnight in Nicosia (UTC+2, then +3)
    fee = PeriodicFee("night", eur("0.10"), "FREQ=DAILY", start, "Europe/Nicosia")
    svc.set_tenant_rules(TENANT, TenantRules(periodic_fees=(fee,)))
    clock.advance(30 * DAY)  # past the change to summer time on 29 March
    report = svc.charge_periodic_fees(batch_size=7)
    assert report.failed == ()
    occurrences = fee.occurrences(T0, clock.now())
    assert len(report.entry_ids) == 4 * len(occurrences)
    with store.unit_of_work(read_only=True) as uow:
        for wallet_id in wallet_ids:
            for occurrence in occurrences:
                key = f"periodic-fee:{wallet_id}:{fee.occurrence_key(occurrence)}"
                stored = uow.get_idempotency(TENANT, key)
                assert stored is not None, key
                assert stored.request == canonical_request(
                    "periodic_fee", wallet_id=wallet_id, fee="night", occurrence=occurrence)
    for wallet_id in wallet_ids:
        assert _setting(store, wallet_id, "periodic_fee:night") == occurrences[-1].isoformat()
    assert svc.charge_periodic_fees(batch_size=7).entry_ids == ()
    assert svc.verify().ok


def test_a_fee_batch_booked_row_by_row_keeps_each_wallets_last_occurrence(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fee's setting is written once per wallet and batch (its last occurrence); when the
    batch is rolled back and booked row by row, each row writes its own, and a row that fails
    leaves the setting at the wallet's last occurrence booked."""
    svc, clock, wallet_ids = _three_wallets_owing_fees(store)
    bad = wallet_ids[1]
    real = periodic_fee.record
    calls = {"bad": 0}

    def failing(env: Any, uow: Any, change: Any) -> None:
        real(env, uow, change)
        if bad in change.entry.wallet_ids:
            calls["bad"] += 1
            if calls["bad"] in (3, 6):  # its third occurrence, in the batch and row by row
                raise StorageError("failed after writing")

    monkeypatch.setattr(periodic_fee, "record", failing)
    report = svc.charge_periodic_fees(batch_size=100)
    monkeypatch.undo()
    assert [row.error_type for row in report.failed] == ["StorageError"]
    assert len(report.entry_ids) == 8
    fee = PeriodicFee("monthly", eur("0.40"), "FREQ=DAILY", T0, "UTC")
    days = fee.occurrences(T0, clock.now())
    assert len(days) == 3
    assert [_setting(store, w, "periodic_fee:monthly") for w in wallet_ids] == [
        days[2].isoformat(), days[1].isoformat(), days[2].isoformat()]
    again = svc.charge_periodic_fees(batch_size=100)  # the failed occurrence, and only it
    assert (len(again.entry_ids), again.failed) == (1, ())
    assert _setting(store, bad, "periodic_fee:monthly") == days[2].isoformat()
    assert svc.verify().ok


def test_the_sweep_lists_what_the_due_index_holds(store: Store) -> None:
    """The SQL stores list due lots for the sweep from the due index alone
    (``due_lot_rows``): the same lots, in the same order, as ``due_lots``."""
    svc, clock = _service(store)
    _lots_world(svc, clock)
    with store.unit_of_work(read_only=True) as uow:
        lots = [(lot.id, lot.wallet_id) for lot in uow.due_lots(clock.now(), 100)]
        assert len(lots) == 14
        assert uow.due_lot_rows(clock.now(), 100) == lots
        assert uow.due_lot_rows(clock.now(), 5) == lots[:5]
        assert uow.due_lot_rows(clock.now(), 0) == []
        assert uow.due_lot_rows(T0, 100) == []


def test_a_batch_whose_settings_fail_is_booked_again_row_by_row(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing a batch's fee settings after its last row failing rolls the batch back; booked
    again one row per unit of work, every occurrence is charged once and each wallet's setting
    is its last occurrence."""
    svc, clock, wallet_ids = _three_wallets_owing_fees(store)
    real = periodic_fee.put_setting
    calls = {"n": 0}

    def failing_once(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("the setting could not be written")
        real(*args)

    monkeypatch.setattr(periodic_fee, "put_setting", failing_once)
    report = svc.charge_periodic_fees(batch_size=100)
    monkeypatch.undo()
    assert (len(report.entry_ids), report.failed) == (9, ())
    assert calls["n"] == 1 + 9  # the batch's first put, then one per row booked alone
    days = PeriodicFee("monthly", eur("0.40"), "FREQ=DAILY", T0, "UTC").occurrences(
        T0, clock.now())
    assert [_setting(store, w, "periodic_fee:monthly") for w in wallet_ids] == [
        days[-1].isoformat()] * 3
    assert len(_entries(store, "fee")) == 9
    assert svc.charge_periodic_fees(batch_size=100).entry_ids == ()
    assert svc.verify().ok
