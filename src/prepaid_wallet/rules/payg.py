"""Pay-as-you-go time credit: contracts, payments turned into days of service, upgrades with a
downpayment window, and the reconversion of past payments (pure: no store, no clock).

Money stays the source of truth. A payment comes into the wallet's open balance and is turned
into time at the contract's daily rate: a ``time`` entry moves it to the operator's
prepaid-service account, and an :class:`OnTime` record says which payment bought how much time
at which rate. Time is kept on the :class:`Contract` as the instant service ends.

Rules, each in one place:

* **Rounding** -- :func:`seconds_for`: money buys whole seconds, rounded down (the customer
  loses less than one second per conversion; nothing is ever given twice). Re-valuing time at
  another rate (:func:`revalue`) rounds the new time down to the second, the same way.
* **New time runs from max(now, service end)**: missed days are never charged; the gap is
  added to ``lapsed`` (:func:`grant`), which contract performance reads.
* **The time ledger balances**: ``service_end == started_at + lapsed + sum(on_time.time)``
  for every contract (:func:`check_time`).
* **Upgrades**: a call opens a window of :data:`UPGRADE_WINDOW` of elapsed time (instants are
  aware and compared in UTC, so a daylight-saving change neither shortens nor lengthens it);
  the payments made in it are held toward the downpayment (in the open balance, not turned
  into time); the moment they reach it the upgrade completes (:func:`complete`); at or after
  the deadline it expires and the held payments are turned into time at the old rate.

Which rate values what: time bought before an upgrade completes was bought at the rate in
force then; at completion the time left is re-valued (what it is worth at the old rate buys
time at the new one), because from then on the customer uses the new package at the new rate;
what is paid beyond the downpayment buys time at the new rate; payments that fall short of an
expired downpayment buy time at the old rate (the upgrade never happened). A payment turned
back into money (reconversion, unlinking) comes back whole, its amount, and the time removed is
what that amount buys at the contract's current rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

import attrs

from prepaid_wallet.errors import (
    ContractStateError,
    InvalidAmountError,
    InvalidInputError,
    NotEligibleError,
    NotEnoughTimeError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.rules.payg_tokens import DeviceTokens, Token

__all__ = [
    "DAY",
    "ELIGIBLE_PERFORMANCE",
    "UPGRADE_WINDOW",
    "Contract",
    "ContractState",
    "Conversion",
    "DeviceState",
    "OnTime",
    "OnTimeKind",
    "PaygDevice",
    "PaygOutcome",
    "PaygPayment",
    "PaymentStatus",
    "Upgrade",
    "UpgradeStatus",
    "check_eligible",
    "check_time",
    "grant",
    "performance",
    "remove",
    "revalue",
    "seconds_for",
]

#: One day of service.
DAY = timedelta(days=1)
#: How long a customer has to pay an upgrade's downpayment after the upgrade call.
UPGRADE_WINDOW = timedelta(hours=4)
#: Contract performance must be strictly above this for an upgrade.
ELIGIBLE_PERFORMANCE = Decimal("0.95")
#: Performance is reported to this many decimal places, rounded down.
_PERFORMANCE_PLACES = Decimal("0.000001")
_DAY_SECONDS = 86_400
_US = 1_000_000


class ContractState(StrEnum):
    """Where a contract is in the upgrade procedure."""

    #: Using the service; an upgrade may be called.
    ACTIVE = "active"
    #: An upgrade was called: the customer has its window to pay the downpayment.
    PAY_UPGRADE_DOWNPAYMENT = "pay_upgrade_downpayment"
    #: The downpayment is paid: the new products wait to be installed or collected.
    INSTALL_COLLECT_UPGRADE = "install_collect_upgrade"


class DeviceState(StrEnum):
    """The device's state as the host last reported it."""

    UNKNOWN = "unknown"
    ON = "on"
    OFF = "off"


class UpgradeStatus(StrEnum):
    """An upgrade's life: waiting for its downpayment, then paid (install or collect), then
    installed; or expired when the window ended first."""

    PAY_UPGRADE_DOWNPAYMENT = "pay_upgrade_downpayment"
    INSTALL_COLLECT_UPGRADE = "install_collect_upgrade"
    INSTALLED = "installed"
    EXPIRED = "expired"


class PaymentStatus(StrEnum):
    """What became of a pay-as-you-go payment."""

    #: Turned into time.
    TIME = "time"
    #: Made in an upgrade's window: held toward its downpayment (still money).
    HELD = "held"
    #: Paid (part of) an upgrade's downpayment.
    DOWNPAYMENT = "downpayment"
    #: Its time was turned back into money, which paid a downpayment.
    RECONVERTED = "reconverted"
    #: A payment made before the customer went pay-as-you-go, linked to a conversion.
    LINKED = "linked"
    #: Unlinked from its conversion and used to pay a downpayment.
    UNLINKED = "unlinked"


class OnTimeKind(StrEnum):
    """What an on-time record records."""

    #: A payment turned into time.
    PAYMENT = "payment"
    #: A conversion transaction: the payments of a customer converted to pay-as-you-go.
    CONVERSION = "conversion"
    #: Time turned back into money (a reconversion, or a payment unlinked from a conversion).
    RECONVERSION = "reconversion"
    #: An upgrade's downpayment paid (no time).
    DOWNPAYMENT = "downpayment"
    #: The time left re-valued at an upgrade's new rate.
    REVALUATION = "revaluation"
    #: What was paid beyond a downpayment, turned into time at the new rate.
    SURPLUS = "surplus"


@attrs.frozen(kw_only=True)
class Contract:
    """A pay-as-you-go contract on a wallet: its ``products`` and ``daily_rate``, the instant
    service ends (``service_end``), the time without service since ``started_at``
    (``lapsed``), the device as the host reports it, and where it is in the upgrade procedure
    (``state``, with the waiting or paid ``upgrade_id``)."""

    wallet_id: str
    tenant_id: str
    products: tuple[str, ...]
    daily_rate: Money
    started_at: datetime
    service_end: datetime
    lapsed: timedelta = timedelta(0)
    device_id: str | None = None
    device_state: DeviceState = DeviceState.UNKNOWN
    state: ContractState = ContractState.ACTIVE
    upgrade_id: str | None = None
    updated_at: datetime

    def time_left(self, at: datetime) -> timedelta:
        """Service left at ``at`` (zero once it has ended)."""
        return max(self.service_end - at, timedelta(0))


@attrs.frozen(kw_only=True)
class PaygPayment:
    """One payment into a pay-as-you-go wallet (``payment_id``: the host's reference, unique
    per tenant) and what became of it (``status``). ``time`` is what it bought (zero while
    it is held or linked), at ``daily_rate``; ``entry_id`` is its top-up entry, ``time_entry_id``
    the entry that turned it into time; ``upgrade_id`` the upgrade it was held toward or paid;
    ``conversion_id`` the conversion it is linked to."""

    payment_id: str
    tenant_id: str
    wallet_id: str
    amount: Money
    method: str
    paid_at: datetime
    status: PaymentStatus
    time: timedelta = timedelta(0)
    daily_rate: Money | None = None
    entry_id: str | None = None
    time_entry_id: str | None = None
    upgrade_id: str | None = None
    conversion_id: str | None = None


@attrs.frozen(kw_only=True)
class Conversion:
    """A conversion transaction: the payments a customer made before going pay-as-you-go,
    turned into time together (``payment_ids``, still linked; ``unlinked``, taken out since)."""

    conversion_id: str
    tenant_id: str
    wallet_id: str
    converted_at: datetime
    amount: Money
    payment_ids: tuple[str, ...]
    unlinked: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Upgrade:
    """An upgrade booked by a call: the new ``products`` and ``daily_rate``, the
    ``downpayment`` due before ``deadline``, the payments ``held`` toward it and their total,
    the contract performance it was judged on (``performance``, from ``performance_source``:
    ``"library"`` or ``"host"``) and the time the customer would have left after upgrading
    (``time_left_after``, worked out at the call). ``paid_by`` says how the downpayment was
    paid: ``"payments"``, ``"reconversion"`` or ``"unlink"``."""

    upgrade_id: str
    tenant_id: str
    wallet_id: str
    products: tuple[str, ...]
    daily_rate: Money
    old_rate: Money
    downpayment: Money
    called_at: datetime
    deadline: datetime
    status: UpgradeStatus
    performance: str
    performance_source: str
    time_left_after: timedelta
    held: tuple[str, ...] = ()
    held_total: Money
    paid_by: str | None = None
    downpayment_entry_id: str | None = None
    ended_at: datetime | None = None

    def is_late(self, at: datetime) -> bool:
        """Whether ``at`` is at or after the deadline (exactly at the deadline is late)."""
        return at >= self.deadline


@attrs.frozen(kw_only=True)
class OnTime:
    """One line of a contract's on-time history: ``amount`` of money turned into ``time``
    (negative: time turned back into money) at ``daily_rate``, for ``payment_ids``, with the
    service end after it; ``entry_id`` is its journal entry (none for a re-valuation, which
    moves no money)."""

    id: str
    tenant_id: str
    wallet_id: str
    kind: OnTimeKind
    at: datetime
    amount: Money
    daily_rate: Money
    time: timedelta
    service_end: datetime
    payment_ids: tuple[str, ...] = ()
    entry_id: str | None = None
    upgrade_id: str | None = None


@attrs.frozen(kw_only=True)
class PaygOutcome:
    """What a pay-as-you-go command did: the contract after it, the upgrade it concerned (if
    any), the payments it recorded or changed, the on-time records it wrote, and the device's
    OpenPAYGO Token codes it issued, in the order they must be entered (when the service end
    changed, on a contract with a device, for a service given the devices' keys)."""

    contract: Contract
    upgrade: Upgrade | None = None
    payments: tuple[PaygPayment, ...] = ()
    on_time: tuple[OnTime, ...] = ()
    tokens: tuple[Token, ...] = ()


@attrs.frozen(kw_only=True)
class PaygDevice:
    """A pay-as-you-go device of a tenant (``device_id`` unique per tenant), on the contract of
    ``wallet_id``, and its token state (never its key)."""

    tenant_id: str
    device_id: str
    wallet_id: str
    tokens: DeviceTokens


# -- time -----------------------------------------------------------------------------------------


def _rate(rate: Money, field: str = "daily_rate") -> int:
    if not isinstance(rate, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", rate)
    if not rate.is_positive():
        raise InvalidAmountError(field, "must be positive", rate)
    return rate.minor_units


def seconds_for(amount: Money, rate: Money) -> timedelta:
    """The service ``amount`` buys at ``rate`` per day: whole seconds, rounded down."""
    return timedelta(seconds=amount.minor_units * _DAY_SECONDS // _rate(rate))


def grant(contract: Contract, time: timedelta, at: datetime) -> Contract:
    """``time`` (zero or more) added at ``at``: it runs from the later of ``at`` and the
    current end, so a lapse is never charged (and is added to ``lapsed``)."""
    end = contract.service_end
    lapsed = contract.lapsed
    if end < at:
        lapsed += at - end
        end = at
    return attrs.evolve(contract, service_end=end + time, lapsed=lapsed, updated_at=at)


def remove(contract: Contract, time: timedelta, at: datetime) -> Contract:
    """``time`` taken back at ``at``; ``NotEnoughTimeError`` when it exceeds the time left."""
    left = contract.time_left(at)
    if time > left:
        raise NotEnoughTimeError(contract.wallet_id, _whole(time), _whole(left))
    return attrs.evolve(contract, service_end=contract.service_end - time, updated_at=at)


def _whole(time: timedelta) -> int:
    return int(time.total_seconds())


def revalued(left: timedelta, old_rate: Money, new_rate: Money) -> timedelta:
    """What ``left`` at ``old_rate`` is worth in time at ``new_rate``: whole seconds, rounded
    down."""
    micro = left // timedelta(microseconds=1)
    return timedelta(seconds=micro * _rate(old_rate) // (_rate(new_rate) * _US))


def revalue(contract: Contract, new_rate: Money, at: datetime) -> Contract:
    """The contract at ``new_rate``: the time left at ``at`` re-valued (:func:`revalued`)."""
    left = contract.time_left(at)
    end = contract.service_end
    if left > timedelta(0):
        end = at + revalued(left, contract.daily_rate, new_rate)
    return attrs.evolve(contract, daily_rate=new_rate, service_end=end, updated_at=at)


def check_time(contract: Contract, on_time: Sequence[OnTime]) -> None:
    """Raise ``InvalidInputError`` unless the time ledger balances:
    the service end is the start plus the lapses plus every on-time record's time."""
    total = sum((line.time for line in on_time), timedelta(0))
    if contract.started_at + contract.lapsed + total != contract.service_end:
        raise InvalidInputError(
            "contract", "service end is not start + lapsed + the on-time history",
            contract.wallet_id)


# -- performance and eligibility ------------------------------------------------------------------


def performance(contract: Contract, at: datetime) -> Decimal:
    """The share of the contract's time since it started during which service ran, at ``at``
    (1 for a contract started at ``at``): ``(elapsed - without service) / elapsed``, where the
    time without service is every lapse between payments plus the current one, if service
    has ended. Reported to six decimal places, rounded down (the same value decides
    eligibility)."""
    elapsed = at - contract.started_at
    if elapsed <= timedelta(0):
        return Decimal(1).quantize(_PERFORMANCE_PLACES)
    without = contract.lapsed + max(at - contract.service_end, timedelta(0))
    share = Decimal((elapsed - without) // timedelta(microseconds=1)) / Decimal(
        elapsed // timedelta(microseconds=1))
    return share.quantize(_PERFORMANCE_PLACES, rounding=ROUND_DOWN)


def check_eligible(contract: Contract, at: datetime, score: Decimal) -> None:
    """Refuse an upgrade call at ``at`` unless the contract is active (no upgrade waiting or
    waiting to be installed: ``ContractStateError``), and ``NotEligibleError`` unless its
    performance ``score`` is strictly above :data:`ELIGIBLE_PERFORMANCE`, the device is
    reported on and service ends after ``at``."""
    if contract.state is not ContractState.ACTIVE:
        raise ContractStateError(contract.wallet_id, contract.state.value, "call an upgrade")
    if not score > ELIGIBLE_PERFORMANCE:
        raise NotEligibleError(contract.wallet_id, "performance",
                               f"{score} is not above {ELIGIBLE_PERFORMANCE}")
    if contract.device_state is not DeviceState.ON:
        raise NotEligibleError(contract.wallet_id, "device",
                               f"the device is {contract.device_state.value}")
    if not contract.service_end > at:
        raise NotEligibleError(contract.wallet_id, "service_end",
                               f"service ended at {contract.service_end.isoformat()}")
