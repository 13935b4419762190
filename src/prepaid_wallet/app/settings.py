"""The per-wallet settings the application keeps in the store (JSON text under a name), and
reading them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from prepaid_wallet import _codec
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.topup import TopUpRule

__all__ = [
    "LIMITS",
    "OWNER_GROUPS",
    "TOP_UP_RULE",
    "TOP_UP_SCHEDULE",
    "periodic_fee_setting",
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


def periodic_fee_setting(name: str) -> str:
    """The setting that remembers the last occurrence of periodic fee ``name`` charged."""
    return f"periodic_fee:{name}"


def stored_groups(uow: UnitOfWork, wallet_id: str) -> frozenset[str]:
    """The groups the wallet's owner belongs to."""
    text = uow.get_setting(wallet_id, OWNER_GROUPS)
    return frozenset() if text is None else frozenset(json.loads(text))


def top_up_rule(env: Environment, uow: UnitOfWork, wallet: Wallet) -> TopUpRule | None:
    """The wallet's automatic top-up rule, when its tenant allows automatic top-ups."""
    if not env.tenant_rules(uow, wallet.tenant_id).automatic_top_ups:
        return None
    text = uow.get_setting(wallet.id, TOP_UP_RULE)
    if text is None:
        return None
    from prepaid_wallet.rules.topup import TopUpRule

    rule: TopUpRule = _codec.loads(TopUpRule, text)
    return rule
