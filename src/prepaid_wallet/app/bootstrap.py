"""Start-up: the dependencies a :class:`~prepaid_wallet.service.WalletService` is given (the
clock, the id factory, the spend order, the actor, the tenant scope, the tenants' welcome awards
and rules, the payment gateway), checked once and built into the
:class:`~prepaid_wallet.app.environment.Environment` every command, job and query runs with (the
rules are not part of it: the service stores them, and every unit of work reads them from the
store)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prepaid_wallet.actors import Actor, as_actor
from prepaid_wallet.app.environment import Environment, WelcomeAward
from prepaid_wallet.clock import Clock, SystemClock
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import IdFactory, RandomIds, check_name
from prepaid_wallet.policies import SpendOrder, SpendOrderFunction

if TYPE_CHECKING:
    from prepaid_wallet.app.ports import Store
    from prepaid_wallet.rules.payg_tokens import KeySource
    from prepaid_wallet.rules.tenant import TenantRules
    from prepaid_wallet.rules.topup import PaymentGateway

__all__ = ["bootstrap"]


def bootstrap(
    store: Store,
    *,
    clock: Clock | None,
    ids: IdFactory | None,
    spend_order: SpendOrder | SpendOrderFunction | None,
    actor: Actor | str | None,
    tenant_id: str | None,
    welcome_awards: Mapping[str, WelcomeAward] | None,
    rules: Mapping[str, TenantRules] | None,
    gateway: PaymentGateway | None,
    device_keys: KeySource | None = None,
) -> Environment:
    """The environment of a :class:`~prepaid_wallet.service.WalletService` over ``store`` with
    the dependencies it was given (its keyword arguments, see there): a missing clock is the
    system clock, missing ids are random; each argument is checked (``InvalidInputError`` naming
    it). A service without tenant rules, or without a gateway, does not import their modules."""
    clock = clock if clock is not None else SystemClock()
    ids = ids if ids is not None else RandomIds()
    principal = as_actor(actor)
    tenant_id = None if tenant_id is None else check_name(tenant_id, "tenant_id")
    if welcome_awards is not None and not isinstance(welcome_awards, Mapping):
        raise InvalidInputError("welcome_awards", "must map tenant ids to WelcomeAward",
                                welcome_awards)
    for tenant, welcome in (welcome_awards or {}).items():
        check_name(tenant, "welcome_awards")
        if not isinstance(welcome, WelcomeAward):
            raise InvalidInputError(f"welcome_awards[{tenant!r}]", "must be a WelcomeAward",
                                    welcome)
    if rules is not None and not isinstance(rules, Mapping):
        raise InvalidInputError("rules", "must map tenant ids to TenantRules", rules)
    if rules:  # a service without tenant rules never imports their modules
        from prepaid_wallet.rules.tenant import TenantRules
    for tenant, tenant_rules in (rules or {}).items():
        check_name(tenant, "rules")
        if not isinstance(tenant_rules, TenantRules):
            raise InvalidInputError(f"rules[{tenant!r}]", "must be a TenantRules",
                                    tenant_rules)
    if gateway is not None:  # likewise the top-up module, without a gateway
        from prepaid_wallet.rules.topup import PaymentGateway
    if gateway is not None and not isinstance(gateway, PaymentGateway):
        raise InvalidInputError("gateway", "must implement PaymentGateway (charge, lookup)",
                                gateway)
    if device_keys is not None and not callable(device_keys):
        raise InvalidInputError("device_keys", "must be a KeySource: (tenant_id, device_id) ->"
                                " the device's secret key as 32 hex characters", None)
    env = Environment(
        store=store, clock=clock, ids=ids, spend_order=spend_order, actor=principal,
        tenant_id=tenant_id, welcome_awards=welcome_awards or {}, gateway=gateway,
    )
    env.device_keys = device_keys
    return env
