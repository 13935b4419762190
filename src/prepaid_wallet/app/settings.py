"""The per-wallet settings the application keeps in the store (text under a name, often JSON):
their record type, declared once, and reading and writing them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet import _codec
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import RecordType, UnitOfWork
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.topup import TopUpRule

__all__ = [
    "LIMITS",
    "OWNER_GROUPS",
    "PAYMENT_MODE",
    "TOP_UP_RULE",
    "TOP_UP_SCHEDULE",
    "WALLET_SETTINGS",
    "WalletSetting",
    "get_setting",
    "periodic_fee_setting",
    "put_setting",
    "stored_groups",
    "top_up_rule",
]

#: The owner's groups (a JSON list of names).
OWNER_GROUPS = "owner_groups"
#: The wallet's own limits, stricter than its tenant's (``Limits.to_data``).
LIMITS = "limits"
#: The wallet's automatic top-up rule (``TopUpRule`` as data).
TOP_UP_RULE = "top_up"
#: The last scheduled top-up occurrence started (ISO 8601).
TOP_UP_SCHEDULE = "top_up_schedule_last"
#: The member's own payment mode, overriding its tenant's (a ``PaymentMode`` value).
PAYMENT_MODE = "payment_mode"


@attrs.frozen
class WalletSetting:
    """One setting of one wallet: ``value`` (text the service encodes: JSON, an instant...)
    under ``name``."""

    wallet_id: str
    tenant_id: str
    name: str
    value: str


#: Wallet settings: one record per wallet and name (the key ``<wallet id>/<name>``; a wallet id
#: holds no ``/``), found by wallet, tenant or name (the tag).
WALLET_SETTINGS: RecordType[WalletSetting] = RecordType(
    kind="wallet_setting",
    type=WalletSetting,
    key=lambda s: f"{s.wallet_id}/{s.name}",
    tenant=lambda s: s.tenant_id,
    wallet=lambda s: s.wallet_id,
    tag=lambda s: s.name,
)


def get_setting(uow: UnitOfWork, wallet_id: str, name: str) -> str | None:
    """The wallet's setting ``name``, if set, as the unit sees it."""
    found = uow.get_record(WALLET_SETTINGS, f"{wallet_id}/{name}")
    return None if found is None else found.value


def put_setting(uow: UnitOfWork, wallet: Wallet, name: str, value: str | None) -> None:
    """Buffer the wallet's setting ``name`` (``None`` removes it). The wallet must exist
    (``WalletNotFoundError`` at commit otherwise); lock it first."""
    if value is None:
        uow.delete_record(WALLET_SETTINGS, f"{wallet.id}/{name}")
    else:
        uow.put_record(WALLET_SETTINGS, WalletSetting(wallet.id, wallet.tenant_id, name, value))


def periodic_fee_setting(name: str) -> str:
    """The setting that remembers the last occurrence of periodic fee ``name`` charged."""
    return f"periodic_fee:{name}"


def stored_groups(uow: UnitOfWork, wallet_id: str) -> frozenset[str]:
    """The groups the wallet's owner belongs to."""
    text = get_setting(uow, wallet_id, OWNER_GROUPS)
    return frozenset() if text is None else frozenset(json.loads(text))


def top_up_rule(env: Environment, uow: UnitOfWork, wallet: Wallet) -> TopUpRule | None:
    """The wallet's automatic top-up rule, when its tenant allows automatic top-ups."""
    if not env.tenant_rules(uow, wallet.tenant_id).automatic_top_ups:
        return None
    text = get_setting(uow, wallet.id, TOP_UP_RULE)
    if text is None:
        return None
    from prepaid_wallet.rules.topup import TopUpRule

    rule: TopUpRule = _codec.loads(TopUpRule, text)
    return rule
