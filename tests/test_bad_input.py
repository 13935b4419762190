"""Every bad input, sent to every public call that takes it, fails with a typed error and
leaves the store exactly as it was (DESIGN.md invariant I9).

Each row of ``BAD_INPUT`` is: a callable that receives a freshly built, populated store (see
:func:`build_world`), the exact exception type it must raise, and -- for an
``InvalidInputError`` -- the ``field`` the error must name. For every row the test compares a
canonical dump of the store (``store.export_state()``) before and after the call and runs
``verify()``.

Money-level rows call ``Money.of`` (or the ``Money`` constructor) inside the callable, so they
show that a float, NaN, an extra decimal... fails before the store is touched; other rows pass a
well-formed ``Money`` that is zero, negative or of the wrong currency into each amount-taking call.

The second half checks idempotency keys: a business refusal under a key stores only the
idempotency record and replays as an equal refusal; invalid input under a key stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from prepaid_wallet import (
    AccessPolicy,
    Actor,
    AlreadyReversedError,
    ConditionGroupNotFoundError,
    ConflictError,
    CurrencyMismatchError,
    DuplicateWalletError,
    EndOfLocalDay,
    EntryNotFoundError,
    FixedClock,
    HoldExpiredError,
    HoldNotFoundError,
    HoldStateError,
    HoldStatus,
    IdempotencyConflictError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidInputError,
    InvalidTimeError,
    LineItem,
    LotNotFoundError,
    Money,
    PaymentMode,
    PrepaidWalletError,
    RefundExceedsOriginalError,
    RefusedError,
    SequentialIds,
    SpendCondition,
    SpendDeniedError,
    SpendRequest,
    StoreNotEmptyError,
    TenantMismatchError,
    WalletNotFoundError,
    WalletService,
    open_store,
)
from prepaid_wallet.errors import (
    ApiKeyNotFoundError,
    ContractNotFoundError,
    ContractStateError,
    DownpaymentNotCoveredError,
    NoCreditOwedError,
    OrderNotFoundError,
    PaygPaymentNotFoundError,
    PaymentStateError,
    PermissionDeniedError,
)
from prepaid_wallet.rules.checkout import CreditClaim
from prepaid_wallet.rules.limits import Limits
from prepaid_wallet.rules.payg import DeviceState
from prepaid_wallet.rules.tenant import TenantRules
from prepaid_wallet.storage import copy_store
from prepaid_wallet.storage.base import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NAIVE = datetime(2026, 3, 1, 12, 0)  # no tzinfo
LATER = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAST = datetime(2025, 12, 31, 0, 0, tzinfo=UTC)
UNKNOWN = "nope-404"


def bad(value: object) -> Any:
    """Pass ``value`` where the signature wants another type (the point of these tests)."""
    return value


OFFICER = Actor("officer-1", frozenset({"system_process_officer"}))
ADMIN_ACTOR = Actor("admin-1", frozenset({"admin"}))


def kes(value: str | int) -> Money:
    return Money.of(value, "KES")


def eur(value: str | int) -> Money:
    return Money.of(value, "EUR")


def jpy(value: str | int) -> Money:
    return Money.of(value, "JPY")


@dataclass(frozen=True)
class World:
    """A populated store and the ids of what is in it."""

    store: Store
    clock: FixedClock
    svc: WalletService  # unscoped
    scoped: WalletService  # scoped to tenant hub-a, same store, clock and ids
    ann: str  # hub-a, EUR, floor -50
    bob: str  # hub-a, EUR, floor 0, holds 5.00 received by transfer
    yen: str  # hub-a, JPY (ann)
    kwd: str  # hub-a, KWD (carl)
    dan: str  # hub-b, EUR
    topup_entry: str  # ann +100.00, key "pay-1"
    reversed_entry: str  # ann +10.00, reversed once
    reversal_entry: str
    award_entry: str  # lot of 20.00 expiring in 30 days, then fully spent
    lot: str
    spend_entry: str  # ann -30.00: 20.00 from the lot, 10.00 from open
    refunded_entry: str  # ann -5.00, refunded in full
    transfer_entry: str  # ann -> bob 5.00
    yen_entry: str  # yen +1000 JPY
    dan_entry: str  # dan +40.00
    dan_spend_entry: str  # dan -1.00
    dan_hold: str  # active hold of dan, 10.00 for a day
    expired_hold: str  # ann, 10.00, window of one hour that has passed (still ACTIVE)
    active_hold: str  # ann, 10.00 for a day
    captured_hold: str  # ann, 8.00 held, 5.00 captured
    capture_entry: str
    voided_hold: str  # ann, 3.00, voided
    eve: str  # hub-a, KES, a pay-as-you-go contract at 50.00 a day, device on: 10 days bought
    # (payment "eve-1"), 3.00 held toward an upgrade (downpayment 1000.00) called two hours
    # before now (its deadline two hours after now), payments "old-1" and "old-2" linked to
    # conversion "conv-1"


def build_world() -> World:
    """A fresh populated store: two tenants, EUR/JPY/KWD wallets, every kind of entry and hold."""
    clock = FixedClock(T0)
    ids = SequentialIds()
    store = open_store("memory:")
    svc = WalletService(store, clock=clock, ids=ids)
    scoped = WalletService(store, clock=clock, ids=ids, tenant_id="hub-a")

    ann = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR", floor=eur("-50"))
    bob = svc.open_wallet(owner_id="bob", tenant_id="hub-a", currency="EUR")
    yen = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="JPY")
    kwd = svc.open_wallet(owner_id="carl", tenant_id="hub-a", currency="KWD")
    dan = svc.open_wallet(owner_id="dan", tenant_id="hub-b", currency="EUR")

    topup = svc.top_up(ann.id, eur("100"), method="card", idempotency_key="pay-1")
    to_reverse = svc.top_up(ann.id, eur("10"), method="card")
    reversal = svc.reverse(to_reverse.entry_id, reason="duplicate payment")
    lot = svc.award(ann.id, eur("20"), reason="welcome", expires_at=T0 + 30 * DAY)
    spent = svc.spend(ann.id, SpendRequest(eur("30")))
    assert spent.entry_id is not None
    small = svc.spend(ann.id, SpendRequest(eur("5")))
    assert small.entry_id is not None
    svc.refund(small.entry_id, reason="cancelled")
    transfer = svc.transfer(ann.id, bob.id, eur("5"))
    yen_topup = svc.top_up(yen.id, jpy("1000"), method="cash")
    svc.top_up(kwd.id, Money.of("1.250", "KWD"), method="cash")
    dan_topup = svc.top_up(dan.id, eur("40"), method="card")
    dan_spend = svc.spend(dan.id, SpendRequest(eur("1")))
    assert dan_spend.entry_id is not None
    dan_hold = svc.hold(dan.id, eur("10"), window=DAY)
    with pytest.raises(SpendDeniedError):  # a refusal stored under a key
        svc.spend(ann.id, SpendRequest(eur("5000")), idempotency_key="order-big")

    eve = svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="KES")
    svc.open_contract(eve.id, products=["lamp"], daily_rate=kes("50"))
    svc.payg_payment(eve.id, payment_id="eve-1", amount=kes("500"))
    svc.record_conversion(eve.id, conversion_id="conv-1",
                          payments={"old-1": kes("100"), "old-2": kes("200")})
    svc.report_device(eve.id, state=DeviceState.ON)
    svc.call_upgrade(eve.id, products=["lamp", "tv"], daily_rate=kes("100"),
                     downpayment=kes("1000"))
    svc.payg_payment(eve.id, payment_id="eve-2", amount=kes("3"))

    expired_hold = svc.hold(ann.id, eur("10"), window=HOUR)
    clock.advance(2 * HOUR)
    active_hold = svc.hold(ann.id, eur("10"), window=DAY)
    captured_hold = svc.hold(ann.id, eur("8"), window=DAY)
    capture = svc.capture(captured_hold.id, eur("5"))
    voided_hold = svc.hold(ann.id, eur("3"), window=DAY)
    svc.void(voided_hold.id)
    svc.define_condition_group(tenant_id="hub-a", name="Shoes",  # cg_000001
                               condition=SpendCondition(categories={"shoes"}))

    return World(
        store=store, clock=clock, svc=svc, scoped=scoped,
        ann=ann.id, bob=bob.id, yen=yen.id, kwd=kwd.id, dan=dan.id,
        topup_entry=topup.entry_id, reversed_entry=to_reverse.entry_id,
        reversal_entry=reversal.entry_id, award_entry=lot.entry_id, lot=lot.id,
        spend_entry=spent.entry_id, refunded_entry=small.entry_id,
        transfer_entry=transfer.entry_id, yen_entry=yen_topup.entry_id,
        dan_entry=dan_topup.entry_id, dan_spend_entry=dan_spend.entry_id,
        dan_hold=dan_hold.id, expired_hold=expired_hold.id,
        active_hold=active_hold.id, captured_hold=captured_hold.id,
        capture_entry=capture.entry_id, voided_hold=voided_hold.id, eve=eve.id,
    )


def test_world_is_as_described() -> None:
    """The fixture really holds what the rows rely on, so no row passes for the wrong reason."""
    w = build_world()
    assert w.svc.verify().ok
    now = w.clock.now()
    expired = w.svc.get_hold(w.expired_hold)
    assert expired.status is HoldStatus.ACTIVE
    assert expired.expires_at <= now
    active = w.svc.get_hold(w.active_hold)
    assert active.status is HoldStatus.ACTIVE
    assert active.expires_at > now
    assert w.svc.get_hold(w.captured_hold).status is HoldStatus.CAPTURED
    assert w.svc.get_hold(w.voided_hold).status is HoldStatus.VOIDED
    assert w.svc.get_hold(w.dan_hold).status is HoldStatus.ACTIVE
    [lot] = w.svc.lots(w.ann, include_empty=True)
    assert lot.id == w.lot
    assert lot.remaining.is_zero()
    assert w.svc.get_wallet(w.bob).open == eur("5")
    assert w.svc.get_wallet(w.dan).tenant_id == "hub-b"
    assert w.svc.entry(w.reversal_entry).reverses == w.reversed_entry
    balance = w.svc.balance(w.ann)
    # 100 + 10 - 10 - 10 (spend, open part) - 5 + 5 (refund) - 5 (transfer) - 10 - 10 - 8 - 3 + 3
    # + 3 (capture released) = 60; held: the expired and the active hold.
    assert balance.open == eur("60")
    assert balance.held == eur("20")


Call = Callable[[World], object]

def row(
    case_id: str, call: Call, expected: type[Exception], field: str | None = None,
    *marks: pytest.MarkDecorator,
) -> Any:
    return pytest.param(call, expected, field, id=case_id, marks=marks)


BAD_INPUT = [
    # -- Money.of / Money itself refuses, before any call reaches the store -----------------
    row("money-float-top_up",
        lambda w: w.svc.top_up(w.ann, Money.of(bad(10.5), "EUR"), method="card"),
        InvalidAmountError, "amount"),
    row("money-bool-award",
        lambda w: w.svc.award(w.ann, Money.of(bad(True), "EUR"), reason="r"),
        InvalidAmountError, "amount"),
    row("money-nan-spend",
        lambda w: w.svc.spend(w.ann, SpendRequest(Money.of(Decimal("NaN"), "EUR"))),
        InvalidAmountError, "amount"),
    row("money-snan-hold",
        lambda w: w.svc.hold(w.ann, Money.of(Decimal("sNaN"), "EUR"), window=HOUR),
        InvalidAmountError, "amount"),
    row("money-infinity-transfer",
        lambda w: w.svc.transfer(w.ann, w.bob, Money.of(Decimal("Infinity"), "EUR")),
        InvalidAmountError, "amount"),
    row("money-minus-infinity-capture",
        lambda w: w.svc.capture(w.active_hold, Money.of(Decimal("-Infinity"), "EUR")),
        InvalidAmountError, "amount"),
    row("money-negative-zero-refund",
        lambda w: w.svc.refund(w.spend_entry, Money.of(Decimal("-0"), "EUR"), reason="r"),
        InvalidAmountError, "amount"),
    row("money-negative-zero-text-floor",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    floor=Money.of("-0.00", "EUR", field="floor")),
        InvalidAmountError, "floor"),
    row("money-eur-three-decimals-top_up",
        lambda w: w.svc.top_up(w.ann, Money.of("10.005", "EUR"), method="card"),
        InvalidAmountError, "amount"),
    row("money-jpy-decimals-top_up",
        lambda w: w.svc.top_up(w.yen, Money.of("100.5", "JPY"), method="cash"),
        InvalidAmountError, "amount"),
    row("money-kwd-four-decimals-top_up",
        lambda w: w.svc.top_up(w.kwd, Money.of("1.2345", "KWD"), method="cash"),
        InvalidAmountError, "amount"),
    row("money-tiny-exponent-check_spend",
        lambda w: w.svc.check_spend(w.ann, SpendRequest(Money.of(Decimal("1E-30"), "EUR"))),
        InvalidAmountError, "amount"),
    row("money-2**63-minor-units-jpy-top_up",
        lambda w: w.svc.top_up(w.yen, Money.of(2**63, "JPY"), method="cash"),
        InvalidAmountError, "amount"),
    row("money-minus-2**63-minor-units-jpy-check_spend",
        lambda w: w.svc.check_spend(w.yen, SpendRequest(Money.of(-(2**63), "JPY"))),
        InvalidAmountError, "amount"),
    row("money-2**63-minor-units-eur-award",
        lambda w: w.svc.award(w.ann, Money.from_minor_units(2**63, "EUR"), reason="r"),
        InvalidAmountError, "minor_units"),
    row("money-huge-exponent-hold",
        lambda w: w.svc.hold(w.ann, Money.of(Decimal("1E+30"), "EUR"), window=HOUR),
        InvalidAmountError, "amount"),
    row("money-exponent-text-transfer",
        lambda w: w.svc.transfer(w.ann, w.bob, Money.of("1e3", "EUR")),
        InvalidAmountError, "amount"),
    row("money-bool-minor-units",
        lambda w: w.svc.top_up(w.ann, Money(bad(True), "EUR"), method="card"),
        InvalidAmountError, "minor_units"),
    row("money-lower-case-currency-top_up",
        lambda w: w.svc.top_up(w.ann, Money.of("10", "eur"), method="card"),
        InvalidCurrencyError, "currency"),
    row("money-unknown-currency-spend",
        lambda w: w.svc.spend(w.ann, SpendRequest(Money.of("10", "ABC"))),
        InvalidCurrencyError, "currency"),
    # -- open_wallet -----------------------------------------------------------------------
    row("open_wallet-lower-case-currency",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="eur"),
        InvalidCurrencyError, "currency"),
    row("open_wallet-unknown-currency",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="ABC"),
        InvalidCurrencyError, "currency"),
    row("open_wallet-currency-none",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency=bad(None)),
        InvalidCurrencyError, "currency"),
    row("open_wallet-positive-floor",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    floor=eur("1")),
        InvalidAmountError, "floor"),
    row("open_wallet-float-floor",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    floor=bad(-10.0)),
        InvalidAmountError, "floor"),
    row("open_wallet-floor-other-currency",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    floor=jpy("-100")),
        CurrencyMismatchError, "floor"),
    row("open_wallet-blank-owner",
        lambda w: w.svc.open_wallet(owner_id="", tenant_id="hub-a", currency="EUR"),
        InvalidInputError, "owner_id"),
    row("open_wallet-owner-with-space",
        lambda w: w.svc.open_wallet(owner_id="eve smith", tenant_id="hub-a", currency="EUR"),
        InvalidInputError, "owner_id"),
    row("open_wallet-tenant-none",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id=bad(None), currency="EUR"),
        InvalidInputError, "tenant_id"),
    row("open_wallet-metadata-not-a-mapping",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    metadata=bad(["k", "v"])),
        InvalidInputError, "metadata"),
    row("open_wallet-metadata-value-not-text",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    metadata=bad({"k": 1})),
        InvalidInputError, "metadata['k']"),
    row("open_wallet-key-not-text",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    idempotency_key=bad(7)),
        InvalidInputError, "idempotency_key"),
    row("open_wallet-duplicate",
        lambda w: w.svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR"),
        DuplicateWalletError),
    row("open_wallet-scoped-other-tenant",
        lambda w: w.scoped.open_wallet(owner_id="eve", tenant_id="hub-b", currency="EUR"),
        TenantMismatchError, "tenant_id"),
    row("open_wallet-key-used-by-top_up",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    idempotency_key="pay-1"),
        IdempotencyConflictError),
    # -- top_up ----------------------------------------------------------------------------
    row("top_up-raw-float",
        lambda w: w.svc.top_up(w.ann, bad(10.0), method="card"), InvalidAmountError, "amount"),
    row("top_up-raw-decimal",
        lambda w: w.svc.top_up(w.ann, bad(Decimal("10")), method="card"),
        InvalidAmountError, "amount"),
    row("top_up-zero", lambda w: w.svc.top_up(w.ann, eur("0"), method="card"),
        InvalidAmountError, "amount"),
    row("top_up-negative", lambda w: w.svc.top_up(w.ann, eur("-5"), method="card"),
        InvalidAmountError, "amount"),
    row("top_up-other-currency", lambda w: w.svc.top_up(w.ann, jpy("500"), method="card"),
        CurrencyMismatchError, "amount"),
    row("top_up-beyond-2**63-1-minor-units",
        lambda w: w.svc.top_up(w.ann, Money.from_minor_units(2**63 - 1, "EUR"), method="card"),
        InvalidAmountError, "amount"),
    row("top_up-blank-method", lambda w: w.svc.top_up(w.ann, eur("5"), method=""),
        InvalidInputError, "method"),
    row("top_up-method-with-space",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="credit card"),
        InvalidInputError, "method"),
    row("top_up-unknown-wallet", lambda w: w.svc.top_up(UNKNOWN, eur("5"), method="card"),
        WalletNotFoundError),
    row("top_up-wallet-id-none", lambda w: w.svc.top_up(bad(None), eur("5"), method="card"),
        InvalidInputError, "wallet_id"),
    row("top_up-scoped-other-tenant",
        lambda w: w.scoped.top_up(w.dan, eur("5"), method="card"),
        WalletNotFoundError),
    row("top_up-key-int",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="card", idempotency_key=bad(1)),
        InvalidInputError, "idempotency_key"),
    row("top_up-key-conflict",
        lambda w: w.svc.top_up(w.ann, eur("101"), method="card", idempotency_key="pay-1"),
        IdempotencyConflictError),
    row("top_up-metadata-too-many",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="card",
                               metadata={f"k{i}": "v" for i in range(33)}),
        InvalidInputError, "metadata"),
    row("top_up-actor-not-text",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="card", actor=bad(object())),
        InvalidInputError, "actor"),
    row("top_up-actor-blank",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="card", actor=""),
        InvalidInputError, "actor"),
    # -- award -----------------------------------------------------------------------------
    row("award-zero", lambda w: w.svc.award(w.ann, eur("0"), reason="r"),
        InvalidAmountError, "amount"),
    row("award-negative", lambda w: w.svc.award(w.ann, eur("-1"), reason="r"),
        InvalidAmountError, "amount"),
    row("award-other-currency", lambda w: w.svc.award(w.ann, jpy("1"), reason="r"),
        CurrencyMismatchError, "amount"),
    row("award-wallet-total-beyond-2**63-1-minor-units",
        lambda w: w.svc.award(w.yen, Money.from_minor_units(2**63 - 1, "JPY"), reason="r"),
        InvalidAmountError, "amount"),
    row("award-naive-expires_at",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", expires_at=NAIVE),
        InvalidTimeError, "expires_at"),
    row("award-past-expires_at",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", expires_at=PAST),
        InvalidTimeError, "expires_at"),
    row("award-expires_at-now",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", expires_at=w.clock.now()),
        InvalidTimeError, "expires_at"),
    row("award-expires_at-text",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=bad("2026-03-01T00:00:00+00:00")),
        InvalidTimeError, "expires_at"),
    row("award-priority-bool",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", priority=True),
        InvalidInputError, "priority"),
    row("award-priority-float",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", priority=bad(1.0)),
        InvalidInputError, "priority"),
    row("award-priority-too-big",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", priority=2**31),
        InvalidInputError, "priority"),
    row("award-blank-reason", lambda w: w.svc.award(w.ann, eur("1"), reason="   "),
        InvalidInputError, "reason"),
    row("award-reason-too-long", lambda w: w.svc.award(w.ann, eur("1"), reason="x" * 501),
        InvalidInputError, "reason"),
    # Text fields refuse what would change how a line, a table or a terminal shows them.
    row("award-reason-newline", lambda w: w.svc.award(w.ann, eur("1"), reason="a\nb"),
        InvalidInputError, "reason"),
    row("award-reason-escape-code",
        lambda w: w.svc.award(w.ann, eur("1"), reason="\x1b[2Jwelcome"),
        InvalidInputError, "reason"),
    row("award-reason-lone-surrogate",
        lambda w: w.svc.award(w.ann, eur("1"), reason="welcome \ud800"),
        InvalidInputError, "reason"),
    row("award-metadata-value-tab",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", metadata={"note": "a\tb"}),
        InvalidInputError, "metadata['note']"),
    row("spend-description-carriage-return",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), description="paid\rrefunded")),
        InvalidInputError, "request.description"),
    row("spend-description-bidi-override",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), description="order \u202e1001")),
        InvalidInputError, "request.description"),
    row("spend-description-c1-control",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), description="order\x9b31m")),
        InvalidInputError, "request.description"),
    row("refund-reason-line-separator",
        lambda w: w.svc.refund(w.spend_entry, reason="cancelled\u2028by phone"),
        InvalidInputError, "reason"),
    row("award-unknown-wallet", lambda w: w.svc.award(UNKNOWN, eur("1"), reason="r"),
        WalletNotFoundError),
    row("award-scoped-other-tenant", lambda w: w.scoped.award(w.dan, eur("1"), reason="r"),
        WalletNotFoundError),
    row("award-metadata-not-a-mapping",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", metadata=bad("k=v")),
        InvalidInputError, "metadata"),
    # -- check_spend -----------------------------------------------------------------------
    row("check_spend-not-a-request", lambda w: w.svc.check_spend(w.ann, bad(eur("5"))),
        InvalidInputError, "request"),
    row("check_spend-zero", lambda w: w.svc.check_spend(w.ann, SpendRequest(eur("0"))),
        InvalidAmountError, "request.amount"),
    row("check_spend-negative", lambda w: w.svc.check_spend(w.ann, SpendRequest(eur("-5"))),
        InvalidAmountError, "request.amount"),
    row("check_spend-raw-float", lambda w: w.svc.check_spend(w.ann, SpendRequest(bad(5.0))),
        InvalidAmountError, "request.amount"),
    row("check_spend-other-currency",
        lambda w: w.svc.check_spend(w.ann, SpendRequest(jpy("5"))),
        CurrencyMismatchError, "request.amount"),
    row("check_spend-mode-text",
        lambda w: w.svc.check_spend(w.ann, SpendRequest(eur("5"), mode=bad("credit_only"))),
        InvalidInputError, "request.mode"),
    row("check_spend-blank-description",
        lambda w: w.svc.check_spend(w.ann, SpendRequest(eur("5"), description=" ")),
        InvalidInputError, "request.description"),
    row("check_spend-unknown-wallet",
        lambda w: w.svc.check_spend(UNKNOWN, SpendRequest(eur("5"))), WalletNotFoundError),
    row("check_spend-scoped-other-tenant",
        lambda w: w.scoped.check_spend(w.dan, SpendRequest(eur("5"))),
        WalletNotFoundError),
    # -- spend -----------------------------------------------------------------------------
    row("spend-not-a-request", lambda w: w.svc.spend(w.ann, bad(eur("5"))),
        InvalidInputError, "request"),
    row("spend-zero", lambda w: w.svc.spend(w.ann, SpendRequest(eur("0"))),
        InvalidAmountError, "request.amount"),
    row("spend-negative", lambda w: w.svc.spend(w.ann, SpendRequest(eur("-0.01"))),
        InvalidAmountError, "request.amount"),
    row("spend-other-currency", lambda w: w.svc.spend(w.yen, SpendRequest(eur("5"))),
        CurrencyMismatchError, "request.amount"),
    row("spend-mode-number",  # None is a mode: the tenant's default
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), mode=bad(1))),
        InvalidInputError, "request.mode"),
    row("spend-description-too-long",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), description="d" * 501)),
        InvalidInputError, "request.description"),
    row("spend-beyond-credit-only",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1000"), mode=PaymentMode.CREDIT_ONLY)),
        SpendDeniedError),
    row("spend-unknown-wallet", lambda w: w.svc.spend(UNKNOWN, SpendRequest(eur("5"))),
        WalletNotFoundError),
    row("spend-scoped-other-tenant", lambda w: w.scoped.spend(w.dan, SpendRequest(eur("5"))),
        WalletNotFoundError),
    row("spend-key-empty",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5")), idempotency_key=""),
        InvalidInputError, "idempotency_key"),
    row("spend-metadata-bad-key",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5")), metadata={"bad key": "v"}),
        InvalidInputError, "metadata"),
    row("spend-replays-stored-refusal",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5000")), idempotency_key="order-big"),
        SpendDeniedError),
    row("spend-key-conflict",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5")), idempotency_key="order-big"),
        IdempotencyConflictError),
    # -- hold ------------------------------------------------------------------------------
    row("hold-zero", lambda w: w.svc.hold(w.ann, eur("0"), window=HOUR),
        InvalidAmountError, "amount"),
    row("hold-negative", lambda w: w.svc.hold(w.ann, eur("-5"), window=HOUR),
        InvalidAmountError, "amount"),
    row("hold-raw-int", lambda w: w.svc.hold(w.ann, bad(5), window=HOUR),
        InvalidAmountError, "amount"),
    row("hold-other-currency", lambda w: w.svc.hold(w.ann, jpy("5"), window=HOUR),
        CurrencyMismatchError, "amount"),
    row("hold-naive-expires_at", lambda w: w.svc.hold(w.ann, eur("5"), expires_at=NAIVE),
        InvalidTimeError, "expires_at"),
    row("hold-past-expires_at", lambda w: w.svc.hold(w.ann, eur("5"), expires_at=PAST),
        InvalidTimeError, "expires_at"),
    row("hold-both-expires_at-and-window",
        lambda w: w.svc.hold(w.ann, eur("5"), expires_at=LATER, window=HOUR),
        InvalidInputError, "expires_at"),
    row("hold-neither-expires_at-nor-window", lambda w: w.svc.hold(w.ann, eur("5")),
        InvalidInputError, "expires_at"),
    row("hold-negative-window", lambda w: w.svc.hold(w.ann, eur("5"), window=-HOUR),
        InvalidTimeError, "window"),
    row("hold-zero-window", lambda w: w.svc.hold(w.ann, eur("5"), window=timedelta(0)),
        InvalidTimeError, "window"),
    row("hold-window-seconds-int", lambda w: w.svc.hold(w.ann, eur("5"), window=bad(3600)),
        InvalidTimeError, "window"),
    row("hold-window-beyond-calendar",
        lambda w: w.svc.hold(w.ann, eur("5"), window=timedelta.max),
        InvalidTimeError, "window"),
    row("hold-beyond-credit", lambda w: w.svc.hold(w.ann, eur("1000"), window=HOUR),
        SpendDeniedError),
    row("hold-unknown-wallet", lambda w: w.svc.hold(UNKNOWN, eur("5"), window=HOUR),
        WalletNotFoundError),
    row("hold-scoped-other-tenant", lambda w: w.scoped.hold(w.dan, eur("5"), window=HOUR),
        WalletNotFoundError),
    row("hold-key-not-printable",
        lambda w: w.svc.hold(w.ann, eur("5"), window=HOUR, idempotency_key="a\nb"),
        InvalidInputError, "idempotency_key"),
    # -- capture ---------------------------------------------------------------------------
    row("capture-after-expiry", lambda w: w.svc.capture(w.expired_hold), HoldExpiredError),
    row("capture-second-time", lambda w: w.svc.capture(w.captured_hold, eur("1")),
        HoldStateError),
    row("capture-voided", lambda w: w.svc.capture(w.voided_hold), HoldStateError),
    row("capture-more-than-held", lambda w: w.svc.capture(w.active_hold, eur("10.01")),
        InvalidAmountError, "amount"),
    row("capture-zero", lambda w: w.svc.capture(w.active_hold, eur("0")),
        InvalidAmountError, "amount"),
    row("capture-negative", lambda w: w.svc.capture(w.active_hold, eur("-1")),
        InvalidAmountError, "amount"),
    row("capture-other-currency", lambda w: w.svc.capture(w.active_hold, jpy("1")),
        CurrencyMismatchError, "amount"),
    row("capture-unknown-hold", lambda w: w.svc.capture(UNKNOWN), HoldNotFoundError),
    row("capture-hold-id-blank", lambda w: w.svc.capture(""), InvalidInputError, "hold_id"),
    row("capture-scoped-other-tenant", lambda w: w.scoped.capture(w.dan_hold),
        HoldNotFoundError),
    row("capture-metadata-value-too-long",
        lambda w: w.svc.capture(w.active_hold, metadata={"k": "v" * 501}),
        InvalidInputError, "metadata['k']"),
    # -- void ------------------------------------------------------------------------------
    row("void-captured", lambda w: w.svc.void(w.captured_hold), HoldStateError),
    row("void-voided", lambda w: w.svc.void(w.voided_hold), HoldStateError),
    row("void-unknown-hold", lambda w: w.svc.void(UNKNOWN), HoldNotFoundError),
    row("void-scoped-other-tenant", lambda w: w.scoped.void(w.dan_hold),
        HoldNotFoundError),
    row("void-key-too-long",
        lambda w: w.svc.void(w.active_hold, idempotency_key="k" * 256),
        InvalidInputError, "idempotency_key"),
    # -- credit at checkout: apply credit, place, abandon, credit owed ----------------------
    row("apply-credit-negative-total",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=eur("-1")),
        InvalidAmountError, "total"),
    row("apply-credit-raw-total",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=bad(5)),
        InvalidAmountError, "total"),
    row("apply-credit-other-currency",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=jpy("5")),
        CurrencyMismatchError, "total"),
    row("apply-credit-blank-order",
        lambda w: w.svc.apply_credit(w.ann, order_id="", total=eur("5")),
        InvalidInputError, "order_id"),
    row("apply-credit-bad-mode",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=eur("5"), mode=bad("cash")),
        InvalidInputError, "mode"),
    row("apply-credit-zero-window",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=eur("5"),
                                     window=timedelta(0)),
        InvalidTimeError, "window"),
    row("apply-credit-unknown-wallet",
        lambda w: w.svc.apply_credit(UNKNOWN, order_id="o-1", total=eur("5")),
        WalletNotFoundError),
    row("apply-credit-scoped-other-tenant",
        lambda w: w.scoped.apply_credit(w.dan, order_id="o-1", total=eur("5")),
        WalletNotFoundError),
    row("apply-credit-key-not-printable",
        lambda w: w.svc.apply_credit(w.ann, order_id="o-1", total=eur("5"),
                                     idempotency_key="a\nb"),
        InvalidInputError, "idempotency_key"),
    row("place-order-unknown", lambda w: w.svc.place_order(w.ann, order_id="o-1"),
        OrderNotFoundError),
    row("place-order-blank-order", lambda w: w.svc.place_order(w.ann, order_id=" "),
        InvalidInputError, "order_id"),
    row("place-order-bad-wallet", lambda w: w.svc.place_order(bad(1), order_id="o-1"),
        InvalidInputError, "wallet_id"),
    row("abandon-order-unknown", lambda w: w.svc.abandon_order(w.ann, order_id="o-1"),
        OrderNotFoundError),
    row("abandon-order-bad-metadata",
        lambda w: w.svc.abandon_order(w.ann, order_id="o-1", metadata=bad({"k": 1})),
        InvalidInputError, "metadata['k']"),
    row("credit-owed-no-actor",
        lambda w: w.svc.credit_owed(w.ann, order_id="o-1", total=eur("5"),
                                    paid_by_other_methods=eur("5"), actor=bad(None)),
        InvalidInputError, "actor"),
    row("credit-owed-negative-paid",
        lambda w: w.svc.credit_owed(w.ann, order_id="o-1", total=eur("5"),
                                    paid_by_other_methods=eur("-5"), actor="staff"),
        InvalidAmountError, "paid_by_other_methods"),
    row("credit-owed-mixed-currencies",
        lambda w: w.svc.credit_owed(w.ann, order_id="o-1", total=eur("5"),
                                    paid_by_other_methods=jpy("5"), actor="staff"),
        CurrencyMismatchError, "paid_by_other_methods"),
    row("credit-owed-other-currency",
        lambda w: w.svc.credit_owed(w.ann, order_id="o-1", total=jpy("5"),
                                    paid_by_other_methods=jpy("5"), actor="staff"),
        CurrencyMismatchError, "total"),
    row("credit-owed-unseen-order-nothing-owed",  # paid by other methods only, exactly
        lambda w: w.svc.credit_owed(w.ann, order_id="o-1", total=eur("5"),
                                    paid_by_other_methods=eur("5"), actor="staff"),
        NoCreditOwedError),
    row("credit-owed-many-not-a-claim",
        lambda w: w.svc.credit_owed_many([bad("o-1")], actor="staff"),
        InvalidInputError, "claims[0]"),
    row("credit-owed-many-bad-claim-total",
        lambda w: w.svc.credit_owed_many(
            [CreditClaim(wallet_id=w.ann, order_id="o-1", total=eur("-1"),
                         paid_by_other_methods=eur("0"))], actor="staff"),
        InvalidInputError, "claims[0].total"),
    row("order-payment-unknown", lambda w: w.svc.order_payment(w.ann, "o-1"),
        OrderNotFoundError),
    # -- hub settings: a member's payment mode, a wallet's floor ----------------------------
    row("set-payment-mode-hub-disallows",
        lambda w: w.svc.set_payment_mode(w.ann, PaymentMode.CREDIT_FIRST, actor="staff"),
        InvalidInputError, "mode"),
    row("set-payment-mode-raw-mode",
        lambda w: w.svc.set_payment_mode(w.ann, bad("credit_first")),
        InvalidInputError, "mode"),
    row("set-payment-mode-blank-reason",
        lambda w: w.svc.set_payment_mode(w.ann, None, reason=" "),
        InvalidInputError, "reason"),
    row("set-payment-mode-bad-actor",
        lambda w: w.svc.set_payment_mode(w.ann, None, actor=bad(5)),
        InvalidInputError, "actor"),
    row("set-payment-mode-unknown-wallet",
        lambda w: w.svc.set_payment_mode(UNKNOWN, None), WalletNotFoundError),
    row("set-payment-mode-scoped-other-tenant",
        lambda w: w.scoped.set_payment_mode(w.dan, None), WalletNotFoundError),
    row("set-floor-positive",
        lambda w: w.svc.set_floor(w.ann, eur("1"), actor="staff", reason=None),
        InvalidAmountError, "floor"),
    row("set-floor-raw",
        lambda w: w.svc.set_floor(w.ann, bad(-5), actor="staff", reason=None),
        InvalidAmountError, "floor"),
    row("set-floor-other-currency",
        lambda w: w.svc.set_floor(w.ann, jpy("-5"), actor="staff", reason=None),
        CurrencyMismatchError, "floor"),
    row("set-floor-no-actor",
        lambda w: w.svc.set_floor(w.ann, eur("-5"), actor=bad(None), reason=None),
        InvalidInputError, "actor"),
    row("set-floor-blank-reason",
        lambda w: w.svc.set_floor(w.ann, eur("-5"), actor="staff", reason=""),
        InvalidInputError, "reason"),
    row("set-floor-key-too-long",
        lambda w: w.svc.set_floor(w.ann, eur("-5"), actor="staff", reason=None,
                                  idempotency_key="k" * 256),
        InvalidInputError, "idempotency_key"),
    row("set-floor-unknown-wallet",
        lambda w: w.svc.set_floor(UNKNOWN, eur("-5"), actor="staff", reason=None),
        WalletNotFoundError),
    row("set-floor-scoped-other-tenant",
        lambda w: w.scoped.set_floor(w.dan, eur("-5"), actor="staff", reason=None),
        WalletNotFoundError),
    row("payment-mode-unknown-wallet", lambda w: w.svc.payment_mode(UNKNOWN),
        WalletNotFoundError),
    row("wallet-term-changes-bad-term",
        lambda w: w.svc.wallet_term_changes(w.ann, "colour"), InvalidInputError, "term"),
    # -- transfer --------------------------------------------------------------------------
    row("transfer-to-itself", lambda w: w.svc.transfer(w.ann, w.ann, eur("1")),
        InvalidInputError, "to_wallet_id"),
    row("transfer-cross-tenant", lambda w: w.svc.transfer(w.ann, w.dan, eur("1")),
        TenantMismatchError, "to_wallet_id"),
    row("transfer-scoped-to-other-tenant", lambda w: w.scoped.transfer(w.ann, w.dan, eur("1")),
        WalletNotFoundError),
    row("transfer-scoped-from-other-tenant",
        lambda w: w.scoped.transfer(w.dan, w.ann, eur("1")),
        WalletNotFoundError),
    row("transfer-to-other-currency-wallet", lambda w: w.svc.transfer(w.ann, w.yen, eur("1")),
        CurrencyMismatchError, "to_wallet_id"),
    row("transfer-amount-other-currency", lambda w: w.svc.transfer(w.ann, w.bob, jpy("1")),
        CurrencyMismatchError, "amount"),
    row("transfer-beyond-floor", lambda w: w.svc.transfer(w.ann, w.bob, eur("110.01")),
        InsufficientFundsError),
    row("transfer-beyond-zero-floor", lambda w: w.svc.transfer(w.bob, w.ann, eur("5.01")),
        InsufficientFundsError),
    row("transfer-zero", lambda w: w.svc.transfer(w.ann, w.bob, eur("0")),
        InvalidAmountError, "amount"),
    row("transfer-negative", lambda w: w.svc.transfer(w.ann, w.bob, eur("-1")),
        InvalidAmountError, "amount"),
    row("transfer-raw-text", lambda w: w.svc.transfer(w.ann, w.bob, bad("1.00")),
        InvalidAmountError, "amount"),
    row("transfer-unknown-source", lambda w: w.svc.transfer(UNKNOWN, w.bob, eur("1")),
        WalletNotFoundError),
    row("transfer-unknown-target", lambda w: w.svc.transfer(w.ann, UNKNOWN, eur("1")),
        WalletNotFoundError),
    row("transfer-target-none", lambda w: w.svc.transfer(w.ann, bad(None), eur("1")),
        InvalidInputError, "to_wallet_id"),
    row("transfer-metadata-bad-key",
        lambda w: w.svc.transfer(w.ann, w.bob, eur("1"), metadata=bad({3: "v"})),
        InvalidInputError, "metadata"),
    # -- refund ----------------------------------------------------------------------------
    row("refund-beyond-original",
        lambda w: w.svc.refund(w.spend_entry, eur("30.01"), reason="r"),
        RefundExceedsOriginalError),
    row("refund-already-fully-refunded",
        lambda w: w.svc.refund(w.refunded_entry, reason="r"), RefundExceedsOriginalError),
    row("refund-capture-beyond-captured",
        lambda w: w.svc.refund(w.capture_entry, eur("5.01"), reason="r"),
        RefundExceedsOriginalError),
    row("refund-of-top_up", lambda w: w.svc.refund(w.topup_entry, eur("1"), reason="r"),
        InvalidInputError, "entry_id"),
    row("refund-of-transfer", lambda w: w.svc.refund(w.transfer_entry, reason="r"),
        InvalidInputError, "entry_id"),
    row("refund-unknown-entry", lambda w: w.svc.refund(UNKNOWN, reason="r"),
        EntryNotFoundError),
    row("refund-zero", lambda w: w.svc.refund(w.spend_entry, eur("0"), reason="r"),
        InvalidAmountError, "amount"),
    row("refund-negative", lambda w: w.svc.refund(w.spend_entry, eur("-1"), reason="r"),
        InvalidAmountError, "amount"),
    row("refund-other-currency", lambda w: w.svc.refund(w.spend_entry, jpy("1"), reason="r"),
        CurrencyMismatchError, "amount"),
    row("refund-blank-reason", lambda w: w.svc.refund(w.spend_entry, reason=""),
        InvalidInputError, "reason"),
    row("refund-key-bytes",
        lambda w: w.svc.refund(w.spend_entry, reason="r", idempotency_key=bad(b"k")),
        InvalidInputError, "idempotency_key"),
    row("refund-scoped-other-tenant",
        lambda w: w.scoped.refund(w.dan_spend_entry, reason="r"),
        EntryNotFoundError),
    # -- reverse ---------------------------------------------------------------------------
    row("reverse-of-spend", lambda w: w.svc.reverse(w.spend_entry, reason="r"),
        InvalidInputError, "entry_id"),
    row("reverse-of-capture", lambda w: w.svc.reverse(w.capture_entry, reason="r"),
        InvalidInputError, "entry_id"),
    row("reverse-of-reversal", lambda w: w.svc.reverse(w.reversal_entry, reason="r"),
        InvalidInputError, "entry_id"),
    row("reverse-twice", lambda w: w.svc.reverse(w.reversed_entry, reason="r"),
        AlreadyReversedError),
    row("reverse-award-already-spent", lambda w: w.svc.reverse(w.award_entry, reason="r"),
        InsufficientFundsError),
    row("reverse-unknown-entry", lambda w: w.svc.reverse(UNKNOWN, reason="r"),
        EntryNotFoundError),
    row("reverse-blank-reason", lambda w: w.svc.reverse(w.yen_entry, reason=" "),
        InvalidInputError, "reason"),
    row("reverse-metadata-not-a-mapping",
        lambda w: w.svc.reverse(w.yen_entry, reason="r", metadata=bad([("k", "v")])),
        InvalidInputError, "metadata"),
    row("reverse-scoped-other-tenant", lambda w: w.scoped.reverse(w.dan_entry, reason="r"),
        EntryNotFoundError),
    # -- reading calls ---------------------------------------------------------------------
    row("balance-naive-as_of", lambda w: w.svc.balance(w.ann, as_of=NAIVE),
        InvalidTimeError, "as_of"),
    row("balance-as_of-text", lambda w: w.svc.balance(w.ann, as_of=bad("2026-01-05")),
        InvalidTimeError, "as_of"),
    row("balance-unknown-wallet", lambda w: w.svc.balance(UNKNOWN), WalletNotFoundError),
    row("balance-scoped-other-tenant", lambda w: w.scoped.balance(w.dan),
        WalletNotFoundError),
    row("statement-naive-since", lambda w: w.svc.statement(w.ann, since=NAIVE),
        InvalidTimeError, "since"),
    row("statement-naive-until", lambda w: w.svc.statement(w.ann, until=NAIVE),
        InvalidTimeError, "until"),
    row("statement-until-before-since",
        lambda w: w.svc.statement(w.ann, since=LATER, until=T0), InvalidTimeError, "until"),
    row("statement-unknown-wallet", lambda w: w.svc.statement(UNKNOWN), WalletNotFoundError),
    row("statement-scoped-other-tenant", lambda w: w.scoped.statement(w.dan),
        WalletNotFoundError),
    row("get_wallet-unknown", lambda w: w.svc.get_wallet(UNKNOWN), WalletNotFoundError),
    row("get_wallet-scoped-other-tenant", lambda w: w.scoped.get_wallet(w.dan),
        WalletNotFoundError),
    row("get_hold-unknown", lambda w: w.svc.get_hold(UNKNOWN), HoldNotFoundError),
    row("get_hold-scoped-other-tenant", lambda w: w.scoped.get_hold(w.dan_hold),
        HoldNotFoundError),
    row("entry-unknown", lambda w: w.svc.entry(UNKNOWN), EntryNotFoundError),
    row("entry-scoped-other-tenant", lambda w: w.scoped.entry(w.dan_entry),
        EntryNotFoundError),
    row("lots-unknown-wallet", lambda w: w.svc.lots(UNKNOWN), WalletNotFoundError),
    row("lots-scoped-other-tenant", lambda w: w.scoped.lots(w.dan),
        WalletNotFoundError),
    row("holds-unknown-wallet", lambda w: w.svc.holds(UNKNOWN), WalletNotFoundError),
    row("holds-scoped-other-tenant", lambda w: w.scoped.holds(w.dan),
        WalletNotFoundError),
    row("find_wallet-lower-case-currency",
        lambda w: w.svc.find_wallet(tenant_id="hub-a", owner_id="ann", currency="eur"),
        InvalidCurrencyError, "currency"),
    row("wallets-bad-tenant-id", lambda w: w.svc.wallets(tenant_id="hub b"),
        InvalidInputError, "tenant_id"),
    # -- purchases: line items, merchant, instant ------------------------------------------
    row("spend-lines-not-line-items",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), lines=bad(("p", eur("1"))))),
        InvalidInputError, "request.lines"),
    row("spend-lines-do-not-add-up",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5"), lines=(
            LineItem("p", eur("2")), LineItem("q", eur("2"))))),
        InvalidAmountError, "request.lines"),
    row("check_spend-line-other-currency",
        lambda w: w.svc.check_spend(w.ann, SpendRequest(eur("1"), lines=(
            LineItem("p", jpy("1")),))),
        CurrencyMismatchError, "request.lines[0].amount"),
    row("line-item-zero-amount",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), lines=(
            LineItem("p", eur("0")),))),
        InvalidAmountError, "amount"),
    row("line-item-blank-product",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), lines=(LineItem("", eur("1")),))),
        InvalidInputError, "product_id"),
    row("spend-blank-merchant",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), merchant=" ")),
        InvalidInputError, "request.merchant"),
    row("spend-merchant-groups-not-names",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), merchant_groups=bad("malls"))),
        InvalidInputError, "request.merchant_groups"),
    row("spend-naive-purchase-instant",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), at=bad(NAIVE))),
        InvalidTimeError, "request.at"),
    row("spend-purchase-after-now",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("1"), at=LATER + 365 * DAY)),
        InvalidTimeError, "request.at"),
    row("breakdown-request-other-currency",
        lambda w: w.svc.breakdown(w.ann, request=SpendRequest(jpy("1"))),
        CurrencyMismatchError, "request.amount"),
    row("breakdown-naive-at", lambda w: w.svc.breakdown(w.ann, at=bad(NAIVE)),
        InvalidTimeError, "at"),
    # -- conditions and condition groups ---------------------------------------------------
    row("award-condition-not-a-condition",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", condition=bad({"merchants": "m"})),
        InvalidInputError, "condition"),
    row("award-condition-and-group",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", condition=SpendCondition(),
                              group_id="cg_000001"),
        InvalidInputError, "condition"),
    row("award-unknown-group",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", group_id=UNKNOWN),
        ConditionGroupNotFoundError),
    row("award-group-of-another-tenant",
        lambda w: w.svc.award(w.dan, eur("1"), reason="r", group_id="cg_000001"),
        TenantMismatchError, "group_id"),
    row("award-expiry-not-an-instant",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r", expires_at=bad("tomorrow")),
        InvalidTimeError, "expires_at"),
    row("award-end-of-local-day-past",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=EndOfLocalDay(date(2025, 1, 1), "Europe/Nicosia")),
        InvalidTimeError, "expires_at"),
    row("top_up-bad-group-id",
        lambda w: w.svc.top_up(w.ann, eur("1"), method="card", group_id="a group"),
        InvalidInputError, "group_id"),
    row("transfer-unknown-group",
        lambda w: w.svc.transfer(w.ann, w.bob, eur("1"), group_id=UNKNOWN),
        ConditionGroupNotFoundError),
    row("define-group-condition-missing",
        lambda w: w.svc.define_condition_group(tenant_id="hub-a", name="n",
                                               condition=bad(None)),
        InvalidInputError, "condition"),
    row("define-group-blank-name",
        lambda w: w.svc.define_condition_group(tenant_id="hub-a", name=" ",
                                               condition=SpendCondition()),
        InvalidInputError, "name"),
    row("define-group-ends-before-it-starts",
        lambda w: w.svc.define_condition_group(tenant_id="hub-a", name="n",
                                               condition=SpendCondition(), valid_from=LATER,
                                               valid_until=PAST),
        InvalidTimeError, "valid_until"),
    row("define-group-scoped-other-tenant",
        lambda w: w.scoped.define_condition_group(tenant_id="hub-b", name="n",
                                                  condition=SpendCondition()),
        TenantMismatchError, "tenant_id"),
    row("define-group-id-taken",
        lambda w: w.svc.define_condition_group(tenant_id="hub-a", name="n",
                                               condition=SpendCondition(),
                                               group_id="cg_000001"),
        ConflictError),
    row("change-group-unknown",
        lambda w: w.svc.change_condition_group(UNKNOWN, name="n"),
        ConditionGroupNotFoundError),
    row("change-group-naive-end",
        lambda w: w.svc.change_condition_group("cg_000001", valid_until=bad(NAIVE)),
        InvalidTimeError, "valid_until"),
    row("extend-expiry-more-than-the-lot-holds",
        lambda w: w.svc.extend_expiry(w.lot, LATER, amount=eur("0.01")),
        InvalidAmountError, "amount"),
    row("extend-expiry-unknown-lot", lambda w: w.svc.extend_expiry(UNKNOWN, LATER),
        LotNotFoundError),
    row("extend-expiry-naive", lambda w: w.svc.extend_expiry(w.lot, bad(NAIVE)),
        InvalidTimeError, "expires_at"),
    # -- payouts, adjustments, owner groups, limits, reminders ------------------------------
    row("payout-zero", lambda w: w.svc.payout(w.ann, eur("0"), method="bank"),
        InvalidAmountError, "amount"),
    row("payout-bad-method", lambda w: w.svc.payout(w.ann, eur("1"), method="a bank"),
        InvalidInputError, "method"),
    row("payout-wrong-currency", lambda w: w.svc.payout(w.ann, jpy("1"), method="bank"),
        CurrencyMismatchError, "amount"),
    row("payout-unknown-wallet", lambda w: w.svc.payout(UNKNOWN, eur("1"), method="bank"),
        WalletNotFoundError),
    row("credit-blank-reason", lambda w: w.svc.credit(w.ann, eur("1"), reason=" "),
        InvalidInputError, "reason"),
    row("debit-negative", lambda w: w.svc.debit(w.ann, eur("-1"), reason="r"),
        InvalidAmountError, "amount"),
    row("debit-scoped-other-tenant", lambda w: w.scoped.debit(w.dan, eur("1"), reason="r"),
        WalletNotFoundError),
    row("open-owner-groups-a-string",
        lambda w: w.svc.open_wallet(owner_id="eve", tenant_id="hub-a", currency="EUR",
                                    owner_groups=bad("students")),
        InvalidInputError, "owner_groups"),
    row("set-owner-groups-bad-name", lambda w: w.svc.set_owner_groups(w.ann, ["a b"]),
        InvalidInputError, "owner_groups"),
    row("set-limits-not-limits", lambda w: w.svc.set_limits(w.ann, bad({"max_balance": 1})),
        InvalidInputError, "limits"),
    row("set-limits-tenant-without-limits",
        lambda w: w.svc.set_limits(w.ann, Limits(max_balance=eur("100"))),
        InvalidInputError, "limits"),
    row("events-bad-limit", lambda w: w.svc.events("hub-a", limit=0),
        InvalidInputError, "limit"),
    row("events-limit-beyond-a-store-int", lambda w: w.svc.events("hub-a", limit=2**63),
        InvalidInputError, "limit"),
    row("ack-events-scoped-other-tenant", lambda w: w.scoped.ack_events("hub-b", ["ev_1"]),
        TenantMismatchError, "tenant_id"),
    row("ack-events-a-string", lambda w: w.svc.ack_events("hub-a", bad("ev_1")),
        InvalidInputError, "event_ids"),
    row("report-no-thresholds", lambda w: w.svc.low_balance_report("hub-a", "warn"),
        InvalidInputError, "threshold"),
    row("report-bad-threshold", lambda w: w.svc.low_balance_report("hub-a", bad(10)),
        InvalidInputError, "threshold"),
    # -- webhooks ----------------------------------------------------------------------------
    row("webhook-url-not-http", lambda w: w.svc.add_webhook_endpoint("hub-a", "ftp://x.test/"),
        InvalidInputError, "url"),
    row("webhook-url-relative", lambda w: w.svc.add_webhook_endpoint("hub-a", "/hook"),
        InvalidInputError, "url"),
    row("webhook-url-credentials",
        lambda w: w.svc.add_webhook_endpoint("hub-a", "https://u:p@x.test/"),
        InvalidInputError, "url"),
    row("webhook-url-not-text", lambda w: w.svc.add_webhook_endpoint("hub-a", bad(7)),
        InvalidInputError, "url"),
    row("webhook-unknown-kind",
        lambda w: w.svc.add_webhook_endpoint("hub-a", "https://x.test/", kinds=["nope"]),
        InvalidInputError, "kinds"),
    row("webhook-kinds-a-string",
        lambda w: w.svc.add_webhook_endpoint("hub-a", "https://x.test/",
                                             kinds=bad("lot.expired")),
        InvalidInputError, "kinds"),
    row("webhook-bad-tenant", lambda w: w.svc.add_webhook_endpoint("a b", "https://x.test/"),
        InvalidInputError, "tenant_id"),
    row("webhook-scoped-other-tenant",
        lambda w: w.scoped.add_webhook_endpoint("hub-b", "https://x.test/"),
        TenantMismatchError, "tenant_id"),
    row("webhook-remove-unknown", lambda w: w.svc.remove_webhook_endpoint("whe_x"),
        InvalidInputError, "endpoint_id"),
    row("webhook-rotate-negative",
        lambda w: w.svc.rotate_webhook_secret("whe_x", keep_previous_for=timedelta(-1)),
        InvalidTimeError, "keep_previous_for"),
    row("webhook-deliver-bad-limit", lambda w: w.svc.deliver_webhooks(limit=0),
        InvalidInputError, "limit"),
    row("webhook-replay-nothing-named", lambda w: w.svc.replay_webhooks(),
        InvalidInputError, "delivery_id"),
    row("webhook-replay-unknown", lambda w: w.svc.replay_webhooks(delivery_id="d_x"),
        InvalidInputError, "delivery_id"),
    row("webhook-replay-naive-since",
        lambda w: w.svc.replay_webhooks(tenant_id="hub-a", since=datetime(2026, 1, 1)),
        InvalidTimeError, "since"),
    row("webhook-log-bad-status", lambda w: w.svc.webhook_deliveries("hub-a", status="sent"),
        InvalidInputError, "status"),
    # -- tenant rules ------------------------------------------------------------------------
    row("set-tenant-rules-not-rules",
        lambda w: w.svc.set_tenant_rules("hub-a", bad({"fees": []})),
        InvalidInputError, "rules"),
    row("set-tenant-rules-blank-reason",
        lambda w: w.svc.set_tenant_rules("hub-a", TenantRules(), reason=" "),
        InvalidInputError, "reason"),
    row("set-tenant-rules-bad-tenant", lambda w: w.svc.set_tenant_rules("a b", TenantRules()),
        InvalidInputError, "tenant_id"),
    row("set-tenant-rules-bad-key",
        lambda w: w.svc.set_tenant_rules("hub-a", TenantRules(), idempotency_key=""),
        InvalidInputError, "idempotency_key"),
    row("set-tenant-rules-bad-metadata",
        lambda w: w.svc.set_tenant_rules("hub-a", TenantRules(), metadata=bad({"k": 1})),
        InvalidInputError, "metadata['k']"),
    row("set-tenant-rules-scoped-other-tenant",
        lambda w: w.scoped.set_tenant_rules("hub-b", TenantRules(automatic_top_ups=True)),
        TenantMismatchError, "tenant_id"),
    row("tenant-rules-version-bad-tenant", lambda w: w.svc.tenant_rules_version(bad(1)),
        InvalidInputError, "tenant_id"),
    # -- actors and access policies ----------------------------------------------------------
    row("top_up-actor-roles-a-string",
        lambda w: w.svc.top_up(w.ann, eur("5"), method="card",
                               actor=Actor("kim", bad("admin"))),
        InvalidInputError, "actor"),
    row("spend-actor-blank-id",
        lambda w: w.svc.spend(w.ann, SpendRequest(eur("5")), actor=Actor(" ")),
        InvalidInputError, "actor"),
    row("set-access-policy-not-a-policy",
        lambda w: w.svc.set_access_policy("hub-a", bad({"roles": {"admin": ["*"]}})),
        InvalidInputError, "policy"),
    row("set-access-policy-unknown-operation",
        lambda w: w.svc.set_access_policy("hub-a", AccessPolicy({"clerk": {"top-up"}})),
        InvalidInputError, "policy.roles['clerk']"),
    row("set-access-policy-bad-role",
        lambda w: w.svc.set_access_policy("hub-a", AccessPolicy({"head clerk": {"*"}})),
        InvalidInputError, "policy.roles"),
    row("set-access-policy-scoped-other-tenant",
        lambda w: w.scoped.set_access_policy("hub-b", AccessPolicy({"admin": {"*"}})),
        TenantMismatchError, "tenant_id"),
    row("access-policy-bad-tenant", lambda w: w.svc.access_policy("a b"),
        InvalidInputError, "tenant_id"),
    # -- API keys ------------------------------------------------------------------------------
    row("create_api_key-no-roles", lambda w: w.svc.create_api_key("hub-a", set()),
        InvalidInputError, "roles"),
    row("create_api_key-roles-a-string", lambda w: w.svc.create_api_key("hub-a", bad("admin")),
        InvalidInputError, "roles"),
    row("create_api_key-bad-role", lambda w: w.svc.create_api_key("hub-a", {"head clerk"}),
        InvalidInputError, "roles"),
    row("create_api_key-blank-name",
        lambda w: w.svc.create_api_key("hub-a", {"clerk"}, name=" "),
        InvalidInputError, "name"),
    row("create_api_key-bad-tenant", lambda w: w.svc.create_api_key("a b", {"clerk"}),
        InvalidInputError, "tenant_id"),
    row("create_api_key-scoped-other-tenant",
        lambda w: w.scoped.create_api_key("hub-b", {"clerk"}),
        TenantMismatchError, "tenant_id"),
    row("rotate_api_key-bad-id", lambda w: w.svc.rotate_api_key("key 1"),
        InvalidInputError, "key_id"),
    row("rotate_api_key-unknown", lambda w: w.svc.rotate_api_key("key_999999"),
        ApiKeyNotFoundError),
    row("rotate_api_key-negative-grace",
        lambda w: w.svc.rotate_api_key("key_999999", timedelta(seconds=-1)),
        InvalidInputError, "grace"),
    row("revoke_api_key-unknown", lambda w: w.svc.revoke_api_key("key_999999"),
        ApiKeyNotFoundError),
    row("api_keys-bad-tenant", lambda w: w.svc.api_keys("a b"), InvalidInputError, "tenant_id"),
    # -- customer top-ups --------------------------------------------------------------------
    row("start_top_up-zero", lambda w: w.svc.start_top_up(w.ann, eur("0"), method="card"),
        InvalidAmountError, "amount"),
    row("start_top_up-negative", lambda w: w.svc.start_top_up(w.ann, eur("-5"), method="card"),
        InvalidAmountError, "amount"),
    row("start_top_up-float", lambda w: w.svc.start_top_up(w.ann, bad(5.0), method="card"),
        InvalidAmountError, "amount"),
    row("start_top_up-other-currency",
        lambda w: w.svc.start_top_up(w.ann, jpy("500"), method="card"),
        CurrencyMismatchError, "amount"),
    row("start_top_up-bad-method",
        lambda w: w.svc.start_top_up(w.ann, eur("5"), method="visa card"),
        InvalidInputError, "method"),
    row("start_top_up-method-none",
        lambda w: w.svc.start_top_up(w.ann, eur("5"), method=bad(None)),
        InvalidInputError, "method"),
    row("start_top_up-bad-wallet-id",
        lambda w: w.svc.start_top_up(bad(7), eur("5"), method="card"),
        InvalidInputError, "wallet_id"),
    row("start_top_up-unknown-wallet",
        lambda w: w.svc.start_top_up(UNKNOWN, eur("5"), method="card"),
        WalletNotFoundError),
    row("start_top_up-scoped-other-tenant",
        lambda w: w.scoped.start_top_up(w.dan, eur("5"), method="card"),
        WalletNotFoundError),
    row("start_top_up-bad-metadata",
        lambda w: w.svc.start_top_up(w.ann, eur("5"), method="card", metadata=bad({"k": 1})),
        InvalidInputError, "metadata['k']"),
    row("start_top_up-bad-actor",
        lambda w: w.svc.start_top_up(w.ann, eur("5"), method="card", actor="bad\nactor"),
        InvalidInputError, "actor"),
    row("start_top_up-key-used-by-top_up",
        lambda w: w.svc.start_top_up(w.ann, eur("5"), method="card", idempotency_key="pay-1"),
        IdempotencyConflictError),
    row("report_charge-unknown-top-up", lambda w: w.svc.report_charge(UNKNOWN, _succeeded()),
        InvalidInputError, "idempotency_key"),
    row("report_charge-unknown-attempt",
        lambda w: w.svc.report_charge("tu_1:card:1", _succeeded()),
        InvalidInputError, "idempotency_key"),
    row("report_charge-empty-key", lambda w: w.svc.report_charge("", _succeeded()),
        InvalidInputError, "idempotency_key"),
    row("report_charge-key-not-text", lambda w: w.svc.report_charge(bad(None), _succeeded()),
        InvalidInputError, "idempotency_key"),
    row("report_charge-not-an-outcome",
        lambda w: w.svc.report_charge(UNKNOWN, bad("succeeded")),
        InvalidInputError, "outcome"),
    row("customer_top_up-bad-id", lambda w: w.svc.customer_top_up(bad(None)),
        InvalidInputError, "top_up_id"),
    row("pending_top_ups-neither", lambda w: w.svc.pending_top_ups(),
        InvalidInputError, "tenant_id"),
    row("pending_top_ups-both",
        lambda w: w.svc.pending_top_ups(tenant_id="hub-a", wallet_id=w.ann),
        InvalidInputError, "tenant_id"),
    row("pending_top_ups-bad-limit",
        lambda w: w.svc.pending_top_ups(wallet_id=w.ann, limit=0),
        InvalidInputError, "limit"),
    row("pending_top_ups-limit-beyond-a-store-int",
        lambda w: w.svc.pending_top_ups(wallet_id=w.ann, limit=2**63),
        InvalidInputError, "limit"),
    row("pending_top_ups-scoped-other-wallet",
        lambda w: w.scoped.pending_top_ups(wallet_id=w.dan),
        WalletNotFoundError),
    row("refund_top_up-no-gateway",
        lambda w: w.svc.refund_top_up("ctu_000001", reason="asked"),
        InvalidInputError, "gateway"),
    row("refund_top_up-zero",
        lambda w: w.svc.refund_top_up("ctu_000001", eur("0"), reason="asked"),
        InvalidAmountError, "amount"),
    row("refund_top_up-bad-id", lambda w: w.svc.refund_top_up("a b", reason="asked"),
        InvalidInputError, "top_up_id"),
    row("refund_top_up-blank-reason", lambda w: w.svc.refund_top_up("ctu_1", reason=" "),
        InvalidInputError, "reason"),
    row("refund_top_up-bad-key",
        lambda w: w.svc.refund_top_up("ctu_1", reason="r", idempotency_key=bad(3)),
        InvalidInputError, "idempotency_key"),
    row("charge_back_top_up-unknown",
        lambda w: w.svc.charge_back_top_up(UNKNOWN, reason="dispute"),
        InvalidInputError, "top_up_id"),
    row("charge_back_top_up-negative",
        lambda w: w.svc.charge_back_top_up("ctu_1", eur("-1"), reason="dispute"),
        InvalidAmountError, "amount"),
    row("charge_back_top_up-reason-none",
        lambda w: w.svc.charge_back_top_up("ctu_1", reason=bad(None)),
        InvalidInputError, "reason"),
    row("customer-top-up-rules-short-lifetime",
        lambda w: _customer_rules(lifetime=timedelta(seconds=59)),
        InvalidInputError, "lifetime"),
    row("customer-top-up-rules-minimum-not-money",
        lambda w: _customer_rules(minimum=bad(5)),
        InvalidAmountError, "minimum"),
    row("customer-top-up-rules-maximum-below-minimum",
        lambda w: _customer_rules(minimum=eur("10"), maximum=eur("5")),
        InvalidAmountError, "maximum"),
    row("customer-top-up-rules-currencies-differ",
        lambda w: _customer_rules(minimum=eur("10"), maximum=jpy("5000")),
        CurrencyMismatchError, "maximum"),
    # -- pay-as-you-go ------------------------------------------------------------------------
    row("open_contract-no-products",
        lambda w: w.svc.open_contract(w.bob, products=[], daily_rate=eur("1")),
        InvalidInputError, "products"),
    row("open_contract-products-a-string",
        lambda w: w.svc.open_contract(w.bob, products=bad("lamp"), daily_rate=eur("1")),
        InvalidInputError, "products"),
    row("open_contract-product-twice",
        lambda w: w.svc.open_contract(w.bob, products=["lamp", "lamp"], daily_rate=eur("1")),
        InvalidInputError, "products"),
    row("open_contract-zero-rate",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=eur("0")),
        InvalidAmountError, "daily_rate"),
    row("open_contract-rate-not-money",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=bad(1.5)),
        InvalidAmountError, "daily_rate"),
    row("open_contract-rate-other-currency",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=jpy("100")),
        CurrencyMismatchError, "daily_rate"),
    row("open_contract-bad-device",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=eur("1"),
                                      device_id="a b"),
        InvalidInputError, "device_id"),
    row("open_contract-starting-code-without-device",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=eur("1"),
                                      starting_code=5),
        InvalidInputError, "starting_code"),
    row("open_contract-starting-code-zero",
        lambda w: w.svc.open_contract(w.bob, products=["lamp"], daily_rate=eur("1"),
                                      device_id="d1", starting_code=0),
        InvalidInputError, "starting_code"),
    row("open_contract-second",
        lambda w: w.svc.open_contract(w.eve, products=["lamp"], daily_rate=kes("1")),
        ContractStateError),
    row("open_contract-unknown-wallet",
        lambda w: w.svc.open_contract(UNKNOWN, products=["lamp"], daily_rate=eur("1")),
        WalletNotFoundError),
    row("open_contract-scoped-other-tenant",
        lambda w: w.scoped.open_contract(w.dan, products=["lamp"], daily_rate=eur("1")),
        WalletNotFoundError),
    row("report_device-state-text",
        lambda w: w.svc.report_device(w.eve, state=bad("on")), InvalidInputError, "state"),
    row("report_device-no-contract",
        lambda w: w.svc.report_device(w.ann, state=DeviceState.ON), ContractNotFoundError),
    row("payg_payment-zero",
        lambda w: w.svc.payg_payment(w.eve, payment_id="p9", amount=kes("0")),
        InvalidAmountError, "amount"),
    row("payg_payment-negative",
        lambda w: w.svc.payg_payment(w.eve, payment_id="p9", amount=kes("-5")),
        InvalidAmountError, "amount"),
    row("payg_payment-other-currency",
        lambda w: w.svc.payg_payment(w.eve, payment_id="p9", amount=eur("5")),
        CurrencyMismatchError, "amount"),
    row("payg_payment-bad-id",
        lambda w: w.svc.payg_payment(w.eve, payment_id=bad(9), amount=kes("5")),
        InvalidInputError, "payment_id"),
    row("payg_payment-id-recorded",
        lambda w: w.svc.payg_payment(w.eve, payment_id="eve-1", amount=kes("5")),
        InvalidInputError, "payment_id"),
    row("payg_payment-id-of-a-conversion",
        lambda w: w.svc.payg_payment(w.eve, payment_id="conv-1", amount=kes("5")),
        InvalidInputError, "payment_id"),
    row("payg_payment-bad-method",
        lambda w: w.svc.payg_payment(w.eve, payment_id="p9", amount=kes("5"), method="m m"),
        InvalidInputError, "method"),
    row("payg_payment-no-contract",
        lambda w: w.svc.payg_payment(w.ann, payment_id="p9", amount=eur("5")),
        ContractNotFoundError),
    row("record_conversion-no-payments",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="c9", payments={}),
        InvalidInputError, "payments"),
    row("record_conversion-reuses-its-id",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="c9",
                                          payments={"c9": kes("5")}),
        InvalidInputError, "payments"),
    row("record_conversion-currencies-differ",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="c9",
                                          payments={"a": kes("5"), "b": eur("5")}),
        CurrencyMismatchError, "payments"),
    row("record_conversion-zero-amount",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="c9", payments={"a": kes("0")}),
        InvalidAmountError, "payments"),
    row("record_conversion-id-recorded",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="conv-1",
                                          payments={"a": kes("5")}),
        InvalidInputError, "conversion_id"),
    row("record_conversion-payment-recorded",
        lambda w: w.svc.record_conversion(w.eve, conversion_id="c9",
                                          payments={"eve-1": kes("5")}),
        InvalidInputError, "payments"),
    row("call_upgrade-downpayment-other-currency",
        lambda w: w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                                     downpayment=eur("5")),
        CurrencyMismatchError, "downpayment"),
    row("call_upgrade-performance-above-one",
        lambda w: w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                                     downpayment=kes("5"), performance=Decimal("1.5")),
        InvalidInputError, "performance"),
    row("call_upgrade-performance-float",
        lambda w: w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                                     downpayment=kes("5"), performance=bad(0.99)),
        InvalidInputError, "performance"),
    row("call_upgrade-performance-nan",
        lambda w: w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                                     downpayment=kes("5"), performance=Decimal("NaN")),
        InvalidInputError, "performance"),
    row("call_upgrade-while-one-waits",
        lambda w: w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                                     downpayment=kes("5")),
        ContractStateError),
    row("reconvert_payments-none",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=[], actor=OFFICER),
        InvalidInputError, "payment_ids"),
    row("reconvert_payments-twice-the-same",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=["eve-1", "eve-1"], actor=OFFICER),
        InvalidInputError, "payment_ids"),
    row("reconvert_payments-a-string",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=bad("eve-1"), actor=OFFICER),
        InvalidInputError, "payment_ids"),
    row("reconvert_payments-unknown",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=[UNKNOWN], actor=OFFICER),
        PaygPaymentNotFoundError),
    row("reconvert_payments-held",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=["eve-2"], actor=OFFICER),
        PaymentStateError),
    row("reconvert_payments-linked",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=["old-1"], actor=OFFICER),
        PaymentStateError),
    row("reconvert_payments-short-just-before-the-deadline",
        lambda w: (w.clock.advance(2 * HOUR - timedelta(microseconds=1)),
                   w.svc.reconvert_payments(w.eve, payment_ids=["eve-1"], actor=OFFICER)),
        DownpaymentNotCoveredError),
    row("reconvert_payments-at-the-deadline",
        lambda w: (w.clock.advance(2 * HOUR),
                   w.svc.reconvert_payments(w.eve, payment_ids=["eve-1"], actor=OFFICER)),
        ContractStateError),
    row("reconvert_payments-no-role",
        lambda w: w.svc.reconvert_payments(w.eve, payment_ids=["eve-1"], actor="clerk"),
        PermissionDeniedError),
    row("unlink-officer-is-not-admin",
        lambda w: w.svc.unlink_conversion_payment(w.eve, conversion_id="conv-1",
                                                  actor=OFFICER),
        PermissionDeniedError),
    row("unlink-bad-conversion-id",
        lambda w: w.svc.unlink_conversion_payment(w.eve, conversion_id="", actor=ADMIN_ACTOR),
        InvalidInputError, "conversion_id"),
    row("unlink-unknown-conversion",
        lambda w: w.svc.unlink_conversion_payment(w.eve, conversion_id=UNKNOWN,
                                                  actor=ADMIN_ACTOR),
        PaygPaymentNotFoundError),
    row("unlink-payment-not-linked-to-it",
        lambda w: w.svc.unlink_conversion_payment(w.eve, conversion_id="conv-1",
                                                  payment_id="eve-1", actor=ADMIN_ACTOR),
        PaymentStateError),
    row("unlink-not-covering",
        lambda w: w.svc.unlink_conversion_payment(w.eve, conversion_id="conv-1",
                                                  actor=ADMIN_ACTOR),
        DownpaymentNotCoveredError),
    row("confirm_upgrade_installed-not-paid",
        lambda w: w.svc.confirm_upgrade_installed(w.eve), ContractStateError),
    row("contract_performance-naive",
        lambda w: w.svc.contract_performance(w.eve, at=NAIVE), InvalidTimeError, "at"),
    row("contract-no-contract", lambda w: w.svc.contract(w.ann), ContractNotFoundError),
    # -- copying a whole store: the store copied into, or from, stays as it was --------------
    row("copy_store-into-a-store-with-data",
        lambda w: copy_store(open_store("memory:"), w.store), StoreNotEmptyError),
    row("copy_store-into-itself", lambda w: copy_store(w.store, w.store),
        InvalidInputError, "target"),
    row("copy_store-source-not-a-store", lambda w: copy_store("memory:", w.store),
        InvalidInputError, "source"),
    row("copy_store-target-not-a-store", lambda w: copy_store(w.store, "memory:"),
        InvalidInputError, "target"),
    row("copy_store-progress-not-callable",
        lambda w: copy_store(w.store, open_store("memory:"), progress="yes"),
        InvalidInputError, "progress"),
]

#: Aware instants at the edges of the calendar: in UTC the first is in year 0 and the second in
#: year 10000, so converting them (or doing arithmetic on them) overflows.
EDGES = {
    "first-day": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    "last-day": datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14))),
    "first-day-utc": datetime(1, 1, 1, tzinfo=UTC),
    "last-day-utc": datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
}
EdgeCall = Callable[[World, datetime], object]


def _stream(w: World, since: datetime | None, until: datetime | None) -> object:
    with w.svc.stream_statement(w.ann, since=since, until=until) as stream:
        return list(stream)


#: Every public parameter that takes an instant: ``(name, call, field)``.
INSTANT_PARAMETERS: list[tuple[str, EdgeCall, str]] = [
    ("award-expires_at",
     lambda w, t: w.svc.award(w.ann, eur("1"), reason="r", expires_at=t), "expires_at"),
    ("hold-expires_at", lambda w, t: w.svc.hold(w.ann, eur("5"), expires_at=t), "expires_at"),
    ("extend_expiry-expires_at", lambda w, t: w.svc.extend_expiry(w.lot, t), "expires_at"),
    ("balance-as_of", lambda w, t: w.svc.balance(w.ann, as_of=t), "as_of"),
    ("statement-since", lambda w, t: w.svc.statement(w.ann, since=t), "since"),
    ("statement-until", lambda w, t: w.svc.statement(w.ann, until=t), "until"),
    ("stream_statement-since", lambda w, t: _stream(w, t, None), "since"),
    ("stream_statement-until", lambda w, t: _stream(w, None, t), "until"),
    ("breakdown-at", lambda w, t: w.svc.breakdown(w.ann, at=t), "at"),
    ("spend-request.at",
     lambda w, t: w.svc.spend(w.ann, SpendRequest(eur("1"), at=t)), "request.at"),
    ("check_spend-request.at",
     lambda w, t: w.svc.check_spend(w.ann, SpendRequest(eur("1"), at=t)), "request.at"),
    ("define-group-valid_from",
     lambda w, t: w.svc.define_condition_group(tenant_id="hub-a", name="n",
                                               condition=SpendCondition(), valid_from=t),
     "valid_from"),
    ("define-group-valid_until",
     lambda w, t: w.svc.define_condition_group(tenant_id="hub-a", name="n",
                                               condition=SpendCondition(), valid_until=t),
     "valid_until"),
    ("change-group-valid_from",
     lambda w, t: w.svc.change_condition_group("cg_000001", valid_from=t), "valid_from"),
    ("change-group-valid_until",
     lambda w, t: w.svc.change_condition_group("cg_000001", valid_until=t), "valid_until"),
    ("contract_performance-at", lambda w, t: w.svc.contract_performance(w.eve, at=t), "at"),
]


def _edge_row(name: str, call: EdgeCall, field: str, edge: str) -> Any:
    instant = EDGES[edge]
    return row(f"{name}-{edge}", lambda w: call(w, instant), InvalidTimeError, field)


BAD_INPUT += [
    _edge_row(name, call, field, edge)
    for name, call, field in INSTANT_PARAMETERS for edge in EDGES
]
BAD_INPUT += [
    row("award-end-of-local-day-last-day",  # the day after it cannot be represented
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=EndOfLocalDay(date(9999, 12, 31), "Etc/GMT+12")),
        InvalidInputError, "day"),
    row("award-end-of-local-day-after-the-latest-instant",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=EndOfLocalDay(date(9999, 12, 30), "Etc/GMT+12")),
        InvalidTimeError, "expires_at"),
    row("extend_expiry-end-of-local-day-after-the-latest-instant",
        lambda w: w.svc.extend_expiry(w.lot, EndOfLocalDay(date(9999, 12, 30), "Etc/GMT+12")),
        InvalidTimeError, "expires_at"),
    # -- the tenant's horizons (defaults: holds 31 days, awards 3653) ---------------------
    row("hold-window-past-the-horizon",
        lambda w: w.svc.hold(w.ann, eur("5"), window=31 * DAY + timedelta(seconds=1)),
        InvalidTimeError, "window"),
    row("hold-expires_at-past-the-horizon",
        lambda w: w.svc.hold(w.ann, eur("5"), expires_at=w.clock.now() + 32 * DAY),
        InvalidTimeError, "expires_at"),
    row("award-expires_at-past-the-horizon",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=w.clock.now() + 3654 * DAY),
        InvalidTimeError, "expires_at"),
    row("award-end-of-local-day-past-the-horizon",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=EndOfLocalDay(date(2046, 1, 1), "Europe/Nicosia")),
        InvalidTimeError, "expires_at"),
    row("extend_expiry-past-the-horizon",
        lambda w: w.svc.extend_expiry(w.lot, w.clock.now() + 3654 * DAY),
        InvalidTimeError, "expires_at"),
    row("hold-window-past-the-calendar",
        lambda w: w.svc.hold(w.ann, eur("5"), window=timedelta(days=999_999_999)),
        InvalidTimeError, "window"),
    row("award-end-of-local-day-first-day",
        lambda w: w.svc.award(w.ann, eur("1"), reason="r",
                              expires_at=EndOfLocalDay(date(1, 1, 1), "Pacific/Kiritimati")),
        InvalidTimeError, "expires_at"),
]



class Disguised(Decimal):
    """A ``Decimal`` whose methods lie: whatever it holds (NaN, an infinity, too many places),
    it says it is the finite number 1."""

    def is_nan(self) -> bool:
        return False

    def is_snan(self) -> bool:
        return False

    def is_finite(self) -> bool:
        return True

    def is_infinite(self) -> bool:
        return False

    def as_tuple(self) -> Any:
        return Decimal(1).as_tuple()

    def __str__(self) -> str:
        return "1"

    def __repr__(self) -> str:
        return "Decimal('1')"


class AnyMode:
    """Not a rounding mode, though it says it equals every one (and hashes as ROUND_UP)."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("ROUND_UP")


def _upgrade(w: World, performance: Decimal) -> object:
    return w.svc.call_upgrade(w.eve, products=["tv"], daily_rate=kes("100"),
                              downpayment=kes("5"), performance=performance)


def _percent_fee(percent: Decimal) -> Any:
    from prepaid_wallet.rules.fees import FeeRule
    from prepaid_wallet.rules.operations import Operation

    return FeeRule(name="f", operations={Operation.SPEND}, percent=percent)


BAD_INPUT += [
    row(f"top_up-amount-disguised-{name}",
        lambda w, text=text: w.svc.top_up(w.ann, Money.of(Disguised(text), "EUR"),
                                          method="card"),
        InvalidAmountError, "amount")
    for name, text in (("nan", "NaN"), ("snan", "sNaN"), ("infinity", "-Infinity"),
                       ("extra-place", "1.001"), ("negative-zero", "-0"))
] + [
    row("hold-amount-disguised-nan",
        lambda w: w.svc.hold(w.ann, Money.of(Disguised("NaN"), "EUR"), window=HOUR),
        InvalidAmountError, "amount"),
    row("spend-amount-disguised-nan",
        lambda w: w.svc.spend(w.ann, SpendRequest(Money.of(Disguised("NaN"), "EUR"))),
        InvalidAmountError, "amount"),
    row("top_up-amount-multiplied-by-disguised-nan",
        lambda w: w.svc.top_up(w.ann, eur("1").multiply(Disguised("NaN")), method="card"),
        InvalidAmountError, "factor"),
    row("top_up-amount-times-disguised-infinity",
        lambda w: w.svc.top_up(w.ann, eur("1") * Disguised("Infinity"), method="card"),
        InvalidAmountError, "factor"),
    row("top_up-amount-multiplied-with-a-disguised-rounding-mode",
        lambda w: w.svc.top_up(w.ann, eur("1").multiply(Decimal("0.5"), bad(AnyMode())),
                               method="card"),
        InvalidAmountError, "rounding"),
    row("top_up-amount-divided-by-disguised-nan",
        lambda w: w.svc.top_up(w.ann, eur("1").divide(Disguised("NaN")), method="card"),
        InvalidAmountError, "divisor"),
    row("top_up-amount-allocated-by-disguised-nan",
        lambda w: w.svc.top_up(w.ann, eur("1").allocate([Disguised("NaN"), 1])[0],
                               method="card"),
        InvalidAmountError, "ratios"),
    row("set_tenant_rules-fee-percent-disguised-nan",
        lambda w: w.svc.set_tenant_rules("hub-a", TenantRules(
            fees=(_percent_fee(Disguised("NaN")),))),
        InvalidInputError, "percent"),
    row("set_tenant_rules-fee-percent-disguised-extra-places",
        lambda w: w.svc.set_tenant_rules("hub-a", TenantRules(
            fees=(_percent_fee(Disguised("1.123456789")),))),
        InvalidInputError, "percent"),
    row("call_upgrade-performance-disguised-nan",
        lambda w: _upgrade(w, Disguised("NaN")), InvalidInputError, "performance"),
    row("call_upgrade-performance-disguised-snan",
        lambda w: _upgrade(w, Disguised("sNaN")), InvalidInputError, "performance"),
    row("call_upgrade-performance-disguised-above-one",
        lambda w: _upgrade(w, Disguised("1.5")), InvalidInputError, "performance"),
]


def _succeeded() -> Any:
    from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus

    return ChargeOutcome(ChargeStatus.SUCCEEDED)


def _customer_rules(**values: Any) -> Any:
    from prepaid_wallet.rules.customer_top_ups import CustomerTopUpRules

    return CustomerTopUpRules(**values)


def test_table_is_large_and_unique() -> None:
    ids = [p.id for p in BAD_INPUT]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 80


@pytest.mark.parametrize(("call", "expected", "field"), BAD_INPUT)
def test_bad_input_raises_typed_error_and_changes_nothing(
    call: Call, expected: type[Exception], field: str | None
) -> None:
    world = build_world()
    assert issubclass(expected, PrepaidWalletError)
    before = world.store.export_state()
    with pytest.raises(expected) as info:
        call(world)
    error = info.value
    assert type(error) is expected
    assert isinstance(error, PrepaidWalletError)
    if isinstance(error, InvalidInputError):
        assert field is not None, "an InvalidInputError row must name its field"
        assert error.field == field
        assert isinstance(error.rule, str)
        assert error.rule.strip()
        assert field in str(error)
    else:
        assert field is None
    assert world.store.export_state() == before
    assert world.svc.verify().ok


# -- idempotency keys: refusals are stored, invalid input is not ---------------------------------

KeyedCall = Callable[[World, str], object]

REFUSALS_UNDER_A_KEY = [
    pytest.param(
        lambda w, k: w.svc.spend(w.ann, SpendRequest(eur("1000")), idempotency_key=k),
        SpendDeniedError, id="spend-denied"),
    pytest.param(
        lambda w, k: w.svc.hold(w.ann, eur("1000"), window=HOUR, idempotency_key=k),
        SpendDeniedError, id="hold-denied"),
    pytest.param(
        lambda w, k: w.svc.transfer(w.ann, w.bob, eur("110.01"), idempotency_key=k),
        InsufficientFundsError, id="transfer-beyond-floor"),
    pytest.param(
        lambda w, k: w.svc.capture(w.expired_hold, idempotency_key=k),
        HoldExpiredError, id="capture-after-expiry"),
    pytest.param(
        lambda w, k: w.svc.capture(w.captured_hold, idempotency_key=k),
        HoldStateError, id="capture-second-time"),
    pytest.param(
        lambda w, k: w.svc.void(w.voided_hold, idempotency_key=k),
        HoldStateError, id="void-voided"),
    pytest.param(
        lambda w, k: w.svc.refund(w.spend_entry, eur("30.01"), reason="r", idempotency_key=k),
        RefundExceedsOriginalError, id="refund-beyond-original"),
    pytest.param(
        lambda w, k: w.svc.reverse(w.reversed_entry, reason="r", idempotency_key=k),
        AlreadyReversedError, id="reverse-twice"),
    pytest.param(
        lambda w, k: w.svc.reverse(w.award_entry, reason="r", idempotency_key=k),
        InsufficientFundsError, id="reverse-spent-award"),
]


def _without_idempotency(dump: dict[str, Any]) -> dict[str, Any]:
    return {name: part for name, part in dump.items() if name != "idempotency"}


@pytest.mark.parametrize(("call", "expected"), REFUSALS_UNDER_A_KEY)
def test_refusal_under_a_key_stores_only_the_record_and_replays(
    call: KeyedCall, expected: type[RefusedError]
) -> None:
    world = build_world()
    before = world.store.export_state()

    with pytest.raises(expected) as first:
        call(world, "refused-1")
    after = world.store.export_state()

    # Only one thing changed: a new idempotency record, stored as a refusal under the key.
    assert _without_idempotency(after) == _without_idempotency(before)
    added = [record for record in after["idempotency"] if record not in before["idempotency"]]
    assert len(after["idempotency"]) == len(before["idempotency"]) + 1
    assert all(record in after["idempotency"] for record in before["idempotency"])
    [record] = added
    assert record["key"] == "refused-1"
    assert record["outcome"] == "refused"
    assert world.svc.verify().ok

    # The retry refuses the same way, with equal data, and writes nothing.
    with pytest.raises(expected) as second:
        call(world, "refused-1")
    assert type(second.value) is type(first.value) is expected
    assert vars(second.value) == vars(first.value)
    assert str(second.value) == str(first.value)
    assert world.store.export_state() == after

    # The same key for another request is a conflict and writes nothing either.
    with pytest.raises(IdempotencyConflictError):
        world.svc.top_up(world.ann, eur("1"), method="card", idempotency_key="refused-1")
    assert world.store.export_state() == after


def test_stored_refusal_replays_even_once_the_wallet_could_pay() -> None:
    world = build_world()
    request = SpendRequest(eur("500"))
    with pytest.raises(SpendDeniedError) as first:
        world.svc.spend(world.ann, request, idempotency_key="order-9")
    world.svc.top_up(world.ann, eur("1000"), method="card")
    assert world.svc.check_spend(world.ann, request).allowed
    dump = world.store.export_state()
    with pytest.raises(SpendDeniedError) as replay:
        world.svc.spend(world.ann, request, idempotency_key="order-9")
    assert replay.value.decision == first.value.decision
    assert world.store.export_state() == dump
    assert world.svc.verify().ok


# Each row: an invalid call under a key (failing before or inside the unit of work), the error,
# and a valid call under the same key that must then go through. Another tenant's wallet is an
# unknown one: nothing is stored under the key either.
INVALID_UNDER_A_KEY = [
    pytest.param(
        lambda w, k: w.svc.top_up(w.ann, eur("0"), method="card", idempotency_key=k),
        InvalidAmountError,
        lambda w, k: w.svc.top_up(w.ann, eur("5"), method="card", idempotency_key=k),
        id="top_up-zero"),
    pytest.param(
        lambda w, k: w.svc.top_up(w.ann, jpy("5"), method="card", idempotency_key=k),
        CurrencyMismatchError,
        lambda w, k: w.svc.top_up(w.ann, eur("5"), method="card", idempotency_key=k),
        id="top_up-other-currency"),
    pytest.param(
        lambda w, k: w.svc.award(w.ann, eur("5"), reason="r", expires_at=PAST,
                                 idempotency_key=k),
        InvalidTimeError,
        lambda w, k: w.svc.award(w.ann, eur("5"), reason="r", expires_at=LATER,
                                 idempotency_key=k),
        id="award-past-expiry"),
    pytest.param(
        lambda w, k: w.svc.hold(w.ann, eur("5"), expires_at=PAST, idempotency_key=k),
        InvalidTimeError,
        lambda w, k: w.svc.hold(w.ann, eur("5"), expires_at=T0 + 7 * DAY, idempotency_key=k),
        id="hold-past-expiry"),
    pytest.param(
        lambda w, k: w.svc.spend(w.yen, SpendRequest(eur("5")), idempotency_key=k),
        CurrencyMismatchError,
        lambda w, k: w.svc.spend(w.ann, SpendRequest(eur("5")), idempotency_key=k),
        id="spend-other-currency"),
    pytest.param(
        lambda w, k: w.svc.capture(w.active_hold, eur("10.01"), idempotency_key=k),
        InvalidAmountError,
        lambda w, k: w.svc.capture(w.active_hold, eur("10"), idempotency_key=k),
        id="capture-more-than-held"),
    pytest.param(
        lambda w, k: w.svc.transfer(w.ann, w.dan, eur("1"), idempotency_key=k),
        TenantMismatchError,
        lambda w, k: w.svc.transfer(w.ann, w.bob, eur("1"), idempotency_key=k),
        id="transfer-cross-tenant"),
    pytest.param(
        lambda w, k: w.svc.refund(w.topup_entry, eur("1"), reason="r", idempotency_key=k),
        InvalidInputError,
        lambda w, k: w.svc.refund(w.spend_entry, eur("1"), reason="r", idempotency_key=k),
        id="refund-of-top_up"),
    pytest.param(
        lambda w, k: w.svc.reverse(w.spend_entry, reason="r", idempotency_key=k),
        InvalidInputError,
        lambda w, k: w.svc.reverse(w.yen_entry, reason="r", idempotency_key=k),
        id="reverse-of-spend"),
    pytest.param(
        lambda w, k: w.scoped.top_up(w.dan, eur("1"), method="card", idempotency_key=k),
        WalletNotFoundError,
        lambda w, k: w.scoped.top_up(w.ann, eur("1"), method="card", idempotency_key=k),
        id="scoped-other-tenant"),
    pytest.param(
        lambda w, k: w.svc.start_top_up(w.ann, eur("0"), method="card", idempotency_key=k),
        InvalidAmountError,
        lambda w, k: w.svc.start_top_up(w.ann, eur("5"), method="card", idempotency_key=k),
        id="start_top_up-zero"),
]


@pytest.mark.parametrize(("bad_call", "expected", "good_call"), INVALID_UNDER_A_KEY)
def test_invalid_input_under_a_key_stores_nothing(
    bad_call: KeyedCall, expected: type[PrepaidWalletError], good_call: KeyedCall
) -> None:
    world = build_world()
    before = world.store.export_state()
    with pytest.raises(expected) as info:
        bad_call(world, "k-1")
    assert type(info.value) is expected
    assert world.store.export_state() == before

    # The key is still free: a valid request under it goes through and is then stored.
    result = good_call(world, "k-1")
    stored = world.store.export_state()
    assert stored != before
    assert [r["key"] for r in stored["idempotency"] if r not in before["idempotency"]] == ["k-1"]
    assert world.svc.verify().ok
    # ... and its retry replays the stored result without writing.
    assert good_call(world, "k-1") == result
    assert world.store.export_state() == stored
