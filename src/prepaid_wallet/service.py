"""The wallet service: the public facade of the library.

``WalletService`` holds the store and the dependencies injected once (the clock, the id
factory, the spend order, the actor, the tenant scope, the tenants' welcome awards, the payment
gateway); the tenants' rules live in the store (:meth:`WalletService.set_tenant_rules`).
Each write method builds a command record (:mod:`prepaid_wallet.app.commands`) and runs it
through the one pipeline (:mod:`prepaid_wallet.app.pipeline`): validate, lock the wallets in
sorted order, replay or store the idempotency key, run the capability's handler
(:mod:`prepaid_wallet.app.handlers`), commit the change with the events it causes. Each read
is a function of :mod:`prepaid_wallet.app.queries`; each batch job a function of its
capability's handler module. The methods are written in the facade's parts, one per
capability family (:mod:`prepaid_wallet.facade`), which this class puts together with its
constructor. See docs/architecture.md.

A business refusal (:class:`~prepaid_wallet.errors.RefusedError`) under a key commits only the
idempotency record, so a retry refuses the same way; without a key it writes nothing. Any other
error writes nothing at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prepaid_wallet.app.bootstrap import bootstrap
from prepaid_wallet.app.environment import WelcomeAward
from prepaid_wallet.clock import Clock
from prepaid_wallet.facade.api_keys import ApiKeys
from prepaid_wallet.facade.automation import Automation
from prepaid_wallet.facade.checkout import Checkout
from prepaid_wallet.facade.configuration import Configuration
from prepaid_wallet.facade.payg import PayAsYouGo
from prepaid_wallet.facade.payments import Payments
from prepaid_wallet.facade.reading import Reading
from prepaid_wallet.facade.top_ups import CustomerTopUps
from prepaid_wallet.facade.transfers import Transfers
from prepaid_wallet.facade.wallets import Wallets
from prepaid_wallet.facade.webhooks import Webhooks
from prepaid_wallet.ids import IdFactory
from prepaid_wallet.policies import SpendOrder, SpendOrderFunction
from prepaid_wallet.results import Progress

if TYPE_CHECKING:
    from prepaid_wallet.actors import Actor
    from prepaid_wallet.app.ports import Store
    from prepaid_wallet.rules.payg_tokens import KeySource
    from prepaid_wallet.rules.tenant import TenantRules
    from prepaid_wallet.rules.topup import PaymentGateway

__all__ = ["Progress", "WalletService", "WelcomeAward"]

class WalletService(Wallets, Payments, Checkout, Transfers, Configuration, Automation, Reading,
                    CustomerTopUps, PayAsYouGo, ApiKeys, Webhooks):
    """Prepaid wallets over a :class:`~prepaid_wallet.storage.base.Store`.

    ``clock`` gives "now" (default: the system clock); ``ids`` makes new ids (default: random);
    ``spend_order`` says which lot pays first in this process, for every tenant (a
    :class:`~prepaid_wallet.policies.SpendOrder` or a function; default: each tenant's stored
    ``TenantRules.spend_order``); ``actor`` (an :class:`~prepaid_wallet.actors.Actor`, or a
    text: an actor with no roles) runs every call that names no other: its id is recorded on
    their entries (and is the service's ``actor`` attribute) and its roles are checked against
    the tenants' access policies (:meth:`set_access_policy`); ``tenant_id``, when given,
    scopes the service to one tenant: another tenant's wallet, hold, lot, entry, condition
    group or top-up intent is answered exactly as an unknown id (the same ``NotFoundError``,
    message and attributes), a read naming another tenant as for a tenant with nothing, and
    creating something for another tenant (setting its rules too) raises
    :class:`~prepaid_wallet.errors.TenantMismatchError`; the jobs (``expire_due``,
    ``process_top_ups``...) touch its own tenant's objects only.
    ``welcome_awards`` maps a tenant id to the :class:`WelcomeAward` every new wallet of that
    tenant receives; ``gateway`` is the host's
    :class:`~prepaid_wallet.rules.topup.PaymentGateway`, charged by automatic top-ups;
    ``device_keys`` is the host's :class:`~prepaid_wallet.rules.payg_tokens.KeySource`, the
    secret keys of pay-as-you-go devices (never stored): with it, every change of a contract's
    service end issues the device's OpenPAYGO Token codes (``PaygOutcome.tokens``).

    The tenants' rules (:class:`~prepaid_wallet.rules.tenant.TenantRules`: fees, periodic
    fees, limits, low-balance thresholds, automatic top-ups, spend order, default payment
    mode) live in the store, in versions set by :meth:`set_tenant_rules`: every command, job
    and query reads the current version in its own unit of work, so every process that opens
    the store -- a second server, a cron job, the command line -- applies the same rules, and
    a change from its next command on. ``rules``, mapping a tenant id to its rules, is a
    convenience that stores them: for each tenant whose current stored rules differ, the
    constructor runs :meth:`set_tenant_rules` (one new version, with the service's actor;
    equal rules write nothing; a scoped service stores its own tenant's only and leaves the
    others' alone). Two processes built with different ``rules`` for one tenant
    overwrite each other: the one started last stores its rules as the next version, and from
    then on every process -- the earlier one too -- applies them. Set rules that change with
    :meth:`set_tenant_rules` (or ``prepaid-wallet rules set``) rather than in the constructor
    of several processes.

    Every amount is a :class:`~prepaid_wallet.money.Money` in the wallet's currency; every
    instant is timezone-aware (naive ones raise ``InvalidTimeError``).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        spend_order: SpendOrder | SpendOrderFunction | None = None,
        actor: Actor | str | None = None,
        tenant_id: str | None = None,
        welcome_awards: Mapping[str, WelcomeAward] | None = None,
        rules: Mapping[str, TenantRules] | None = None,
        gateway: PaymentGateway | None = None,
        device_keys: KeySource | None = None,
    ) -> None:
        env = self._env = bootstrap(
            store, clock=clock, ids=ids, spend_order=spend_order, actor=actor,
            tenant_id=tenant_id, welcome_awards=welcome_awards, rules=rules, gateway=gateway,
            device_keys=device_keys)
        self.store, self.clock, self.ids = env.store, env.clock, env.ids.factory
        self.spend_order, self.actor, self.tenant_id = env.spend_order, env.actor, env.tenant_id
        self.welcome_awards, self.gateway = env.welcome_awards, env.gateway
        #: The rules given to the constructor (stored by it); what applies is in the store.
        self.rules: dict[str, TenantRules] = dict(rules or {})
        self.expiry = env.expiry
        for tenant in sorted(self.rules):
            if env.sees(tenant) and self.tenant_rules(tenant) != self.rules[tenant]:
                self.set_tenant_rules(tenant, self.rules[tenant])
