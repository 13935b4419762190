"""Pay-as-you-go state as the store keeps it: the record types of contracts, payments,
conversion transactions, upgrades and the on-time history, declared once, and reading them.

* a contract per wallet, keyed by the wallet's id, tagged with its state;
* a payment under ``<wallet id>/<payment id>``, tagged with its status, in payment order; the
  host's payment reference is unique per tenant (``<tenant id>/<payment id>``: the database
  refuses a second record holding it, on any wallet, even from a concurrent writer);
* a conversion transaction likewise (its id unique per tenant);
* an upgrade under its id, tagged with its status, ordered by its deadline (so the expiry job
  reads the waiting ones soonest first);
* a device under ``<tenant id>/<device id>``, with its token state;
* an on-time line under its id, in the order it was written (its instant, then its place in
  its command).
"""

from __future__ import annotations

from prepaid_wallet.app.ports import RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.errors import ContractNotFoundError, PaygPaymentNotFoundError
from prepaid_wallet.rules.payg import (
    Contract,
    Conversion,
    OnTime,
    PaygDevice,
    PaygPayment,
    Upgrade,
    UpgradeStatus,
)

__all__ = [
    "CONTRACTS",
    "CONVERSIONS",
    "DEVICES",
    "ON_TIME",
    "PAYMENTS",
    "UPGRADES",
    "contract_of",
    "conversion_of",
    "due_upgrades",
    "find_contract",
    "payment_key",
    "payment_of",
    "payment_taken",
]


def payment_key(owner: str, payment_id: str) -> str:
    """``<owner>/<payment id>``: a payment's (or a conversion's) key under its wallet, or its
    unique value under its tenant."""
    return f"{owner}/{payment_id}"


#: Pay-as-you-go contracts, one per wallet.
CONTRACTS: RecordType[Contract] = RecordType(
    kind="payg_contract",
    type=Contract,
    key=lambda c: c.wallet_id,
    tenant=lambda c: c.tenant_id,
    wallet=lambda c: c.wallet_id,
    tag=lambda c: c.state.value,
)

#: Payments into pay-as-you-go wallets.
PAYMENTS: RecordType[PaygPayment] = RecordType(
    kind="payg_payment",
    type=PaygPayment,
    key=lambda p: payment_key(p.wallet_id, p.payment_id),
    tenant=lambda p: p.tenant_id,
    unique=lambda p: payment_key(p.tenant_id, p.payment_id),
    wallet=lambda p: p.wallet_id,
    tag=lambda p: p.status.value,
    order=lambda p: f"{sortable_instant(p.paid_at)}/{p.payment_id}",
)

#: Conversion transactions (payments made before a customer went pay-as-you-go).
CONVERSIONS: RecordType[Conversion] = RecordType(
    kind="payg_conversion",
    type=Conversion,
    key=lambda c: payment_key(c.wallet_id, c.conversion_id),
    tenant=lambda c: c.tenant_id,
    unique=lambda c: payment_key(c.tenant_id, c.conversion_id),
    wallet=lambda c: c.wallet_id,
    order=lambda c: sortable_instant(c.converted_at),
)

#: Upgrades, waiting, paid, installed or expired.
UPGRADES: RecordType[Upgrade] = RecordType(
    kind="payg_upgrade",
    type=Upgrade,
    key=lambda u: u.upgrade_id,
    tenant=lambda u: u.tenant_id,
    wallet=lambda u: u.wallet_id,
    tag=lambda u: u.status.value,
    order=lambda u: sortable_instant(u.deadline),
)


def _on_time_order(line: OnTime) -> str:
    # The id ends with the line's place in its command (see handlers.payg).
    return f"{sortable_instant(line.at)}/{line.id.rsplit('.', 1)[-1]}"


#: The on-time history: every change of a contract's time, and every downpayment.
ON_TIME: RecordType[OnTime] = RecordType(
    kind="payg_on_time",
    type=OnTime,
    key=lambda t: t.id,
    tenant=lambda t: t.tenant_id,
    wallet=lambda t: t.wallet_id,
    order=_on_time_order,
)


#: Pay-as-you-go devices and their token state, under ``<tenant id>/<device id>``.
DEVICES: RecordType[PaygDevice] = RecordType(
    kind="payg_device",
    type=PaygDevice,
    key=lambda d: payment_key(d.tenant_id, d.device_id),
    tenant=lambda d: d.tenant_id,
    wallet=lambda d: d.wallet_id,
)


def find_contract(uow: UnitOfWork, wallet_id: str) -> Contract | None:
    """The wallet's contract, if it has one."""
    return uow.get_record(CONTRACTS, wallet_id)


def contract_of(uow: UnitOfWork, wallet_id: str) -> Contract:
    """The wallet's contract; ``ContractNotFoundError`` when it has none."""
    found = find_contract(uow, wallet_id)
    if found is None:
        raise ContractNotFoundError(wallet_id)
    return found


def payment_taken(uow: UnitOfWork, tenant_id: str, payment_id: str) -> bool:
    """Whether the tenant already has a payment or a conversion under ``payment_id``."""
    unique = payment_key(tenant_id, payment_id)
    return bool(uow.find_records(PAYMENTS, unique=unique, limit=1)
                or uow.find_records(CONVERSIONS, unique=unique, limit=1))


def payment_of(uow: UnitOfWork, wallet_id: str, payment_id: str) -> PaygPayment:
    """The wallet's payment ``payment_id``; ``PaygPaymentNotFoundError`` when the wallet has
    none under that id."""
    found = uow.get_record(PAYMENTS, payment_key(wallet_id, payment_id))
    if found is None:
        raise PaygPaymentNotFoundError(payment_id)
    return found


def conversion_of(uow: UnitOfWork, wallet_id: str, conversion_id: str) -> Conversion:
    """The wallet's conversion transaction; ``PaygPaymentNotFoundError`` when it has none."""
    found = uow.get_record(CONVERSIONS, payment_key(wallet_id, conversion_id))
    if found is None:
        raise PaygPaymentNotFoundError(conversion_id)
    return found


def due_upgrades(uow: UnitOfWork, tenant_id: str | None, limit: int) -> list[Upgrade]:
    """Up to ``limit`` upgrades still waiting for their downpayment, soonest deadline first
    (of ``tenant_id`` only, when given)."""
    return uow.find_records(UPGRADES, tenant_id=tenant_id,
                            tag=UpgradeStatus.PAY_UPGRADE_DOWNPAYMENT.value, limit=limit)
