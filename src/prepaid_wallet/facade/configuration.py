"""What a tenant configures, stored in the store for every process: its condition groups, its
rules (fees, limits, reminders, automatic top-ups, spend order, payment mode) and its access
policy (which roles may run which operations).

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.checks import KEEP, Keep
from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from prepaid_wallet.actors import Actor
    from prepaid_wallet.conditions import ConditionGroup, SpendCondition
    from prepaid_wallet.rules.access import AccessPolicy, AccessPolicyVersion
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = ["Configuration"]


class Configuration(Facade):
    """A tenant's condition groups, stored rules and access policy."""

    # -- condition groups -------------------------------------------------------------------

    def define_condition_group(
        self,
        *,
        tenant_id: str,
        name: str,
        condition: SpendCondition,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        group_id: str | None = None,
    ) -> ConditionGroup:
        """Define a named, reusable set of conditions for ``tenant_id``, valid in
        ``[valid_from, valid_until)`` (aware; None: unbounded), at version 1. ``group_id``
        defaults to a new id; an id already used raises ``ConflictError``. Awards, top-ups and
        transfers may then name the group: their lots pay only for what it allows."""
        from prepaid_wallet.app.commands import DefineConditionGroup

        return self._run(DefineConditionGroup(
            tenant_id=tenant_id, name=name, condition=condition, valid_from=valid_from,
            valid_until=valid_until, group_id=group_id))

    def change_condition_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        condition: SpendCondition | None = None,
        valid_from: datetime | Keep | None = KEEP,
        valid_until: datetime | Keep | None = KEEP,
    ) -> ConditionGroup:
        """Change a condition group. A new ``condition`` makes a new version: lots granted
        before keep the conditions they were granted under, new lots get the new ones. A new
        validity (``valid_from``/``valid_until``; None removes that bound) applies at once to
        every lot of the group: they stop paying, and fall due for the expiry sweep, at the
        group's new end (or their own expiry, if sooner)."""
        from prepaid_wallet.app.commands import ChangeConditionGroup

        return self._run(ChangeConditionGroup(
            group_id=group_id, name=name, condition=condition, valid_from=valid_from,
            valid_until=valid_until))

    def condition_group(self, group_id: str) -> ConditionGroup:
        """The condition group; ``ConditionGroupNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import condition_group

        return condition_group(self._env, group_id)

    def condition_groups(self, tenant_id: str) -> list[ConditionGroup]:
        """The tenant's condition groups, by name then id."""
        from prepaid_wallet.app.queries.wallet import condition_groups

        return condition_groups(self._env, tenant_id)

    # -- tenant rules ---------------------------------------------------------------------------

    def set_tenant_rules(
        self,
        tenant_id: str,
        rules: TenantRules,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> TenantRulesVersion:
        """Store ``rules`` as the tenant's next version (1, 2, ...) and return it, with the
        instant, the actor (the call's, else the service's), the key, the metadata and the
        ``reason`` (why; optional) that set it. Every process that opens the store applies
        them from its next command on (each command reads the current version in its own unit
        of work); a job already running keeps the rules it read when it started. Rules equal
        to the current version's write nothing and return that version. Setting rules moves no
        money: no journal entry; the versions (:meth:`tenant_rules_history`) say who set what,
        when and why.

        Under ``idempotency_key`` a retry returns the version first stored (a different
        request: ``IdempotencyConflictError``). Two sets of one tenant's rules at once never
        both become version ``n``: on PostgreSQL the later commit raises ``ConflictError``
        (nothing written; run it again to store version ``n + 1``). A scoped service sets its
        own tenant's rules only (``TenantMismatchError``); ``rules`` that are not a
        ``TenantRules`` raise ``InvalidInputError``."""
        from prepaid_wallet.app.commands.versions import SetTenantRules
        from prepaid_wallet.app.tenant_rules import public

        return public(self._run(SetTenantRules(
            tenant_id=tenant_id, rules=rules, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata, reason=reason)))

    def tenant_rules(self, tenant_id: str) -> TenantRules:
        """The rules that apply to the tenant now: its current stored version's (none stored:
        an empty ``TenantRules``, which charges no fee and limits nothing)."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules

        return tenant_rules(self._env, tenant_id)

    def tenant_rules_version(self, tenant_id: str) -> TenantRulesVersion | None:
        """The tenant's current stored version, with who set it, when and under which key;
        None when the tenant's rules were never set."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules_version

        return tenant_rules_version(self._env, tenant_id)

    def tenant_rules_history(self, tenant_id: str) -> list[TenantRulesVersion]:
        """Every version of the tenant's rules, oldest first (the last is the current one)."""
        from prepaid_wallet.app.queries.tenant_rules import tenant_rules_history

        return tenant_rules_history(self._env, tenant_id)


    # -- access policy --------------------------------------------------------------------------

    def set_access_policy(
        self,
        tenant_id: str,
        policy: AccessPolicy,
        *,
        idempotency_key: str | None = None,
        actor: Actor | str | None = None,
        metadata: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> AccessPolicyVersion:
        """Store ``policy`` (which roles may run which operations) as the tenant's next
        version (1, 2, ...) and return it, with the instant, the actor's id (the call's, else
        the service's), the key, the metadata and the ``reason``. From then on every command
        for the tenant is denied unless one of its actor's roles permits its operation (see
        docs/authorization.md); a tenant without a policy lets every actor run everything.
        A policy equal to the current version's writes nothing and returns that version.

        Setting a policy is itself authorized: the first by any actor, the next ones only by
        an actor the current policy permits ``set_access_policy`` (else
        ``PermissionDeniedError``, nothing written). An operation name that is no command's
        (nor ``"*"``) raises ``InvalidInputError`` naming ``policy.roles[<role>]``; a
        ``policy`` that is not an ``AccessPolicy`` names ``policy``. Under
        ``idempotency_key`` a retry returns the version first stored. A scoped service sets
        its own tenant's policy only (``TenantMismatchError``)."""
        from prepaid_wallet.app.access import public
        from prepaid_wallet.app.commands.access import SetAccessPolicy

        return public(self._run(SetAccessPolicy(
            tenant_id=tenant_id, policy=policy, idempotency_key=idempotency_key, actor=actor,
            metadata=metadata, reason=reason)))

    def access_policy(self, tenant_id: str) -> AccessPolicyVersion | None:
        """The tenant's current access policy version, with who set it, when and why; None
        when the tenant never set one (every actor may then run every operation)."""
        from prepaid_wallet.app.queries.access import access_policy

        return access_policy(self._env, tenant_id)

    def access_policy_history(self, tenant_id: str) -> list[AccessPolicyVersion]:
        """Every version of the tenant's access policy, oldest first (the last is the current
        one)."""
        from prepaid_wallet.app.queries.access import access_policy_history

        return access_policy_history(self._env, tenant_id)
