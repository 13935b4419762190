"""Automatic top-ups: a wallet's rule (``set_top_up_rule``), and the jobs that charge the host's
payment gateway and credit what it took (``process_top_ups``, ``report_charge``,
``start_scheduled_top_ups``).

An intent is driven as a state machine (:mod:`prepaid_wallet.rules.topup`) one step at a time,
and every state change is committed in a unit of work of its own before and after each call to
the gateway: a process that dies anywhere leaves an intent that a later run settles (never
charged twice, never followed by the backup method while an attempt's answer is unknown), and
a succeeded charge is credited exactly once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from prepaid_wallet import _codec
from prepaid_wallet.app.access import authorize
from prepaid_wallet.app.charges import top_up_allowed
from prepaid_wallet.app.checks import check_limit
from prepaid_wallet.app.commands import SetTopUpRule
from prepaid_wallet.app.customer_top_ups import credit_top_up
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.intents import (
    get_top_up_intent,
    pending_top_up_intent,
    pending_top_up_intents,
    put_top_up_intent,
)
from prepaid_wallet.app.outbox import TOP_UP_FAILED, TOP_UP_SUCCEEDED, emit, money_data
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.settings import (
    TOP_UP_RULE,
    TOP_UP_SCHEDULE,
    get_setting,
    put_setting,
    top_up_rule,
)
from prepaid_wallet.app.tenant_rules import RULES, WITH_LOCKS
from prepaid_wallet.errors import CurrencyMismatchError, InvalidInputError
from prepaid_wallet.results import TopUpReport
from prepaid_wallet.wallet import Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.topup import Charge as ChargeStep
    from prepaid_wallet.rules.topup import (
        ChargeOutcome,
        Credit,
        PaymentGateway,
        TopUpIntent,
        TopUpRule,
    )

__all__ = [
    "drive",
    "process_top_ups",
    "report_charge",
    "require_gateway",
    "set_top_up_rule",
    "start_scheduled_top_ups",
]

#: At most this many state changes per intent in one run (a run never loops forever).
_MAX_STEPS = 12


def set_top_up_rule(ctx: Context, command: SetTopUpRule) -> TopUpRule | None:
    """Store the wallet's rule (the tenant must allow automatic top-ups; the rule is in the
    wallet's currency), or remove it."""
    wallet = ctx.wallet(command.wallet_id)
    rule = command.rule
    if rule is not None:
        if not ctx.env.tenant_rules(ctx.uow, wallet.tenant_id).automatic_top_ups:
            raise InvalidInputError("rule", "needs a tenant with automatic top-ups "
                                    "(TenantRules.automatic_top_ups)", rule)
        if rule.currency != wallet.currency:
            raise CurrencyMismatchError(wallet.currency, rule.currency, "rule")
    put_setting(ctx.uow, wallet, TOP_UP_RULE, None if rule is None else _codec.dumps(rule))
    return rule


def process_top_ups(env: Environment, *, limit: int = 100) -> TopUpReport:
    """Drive every intent in flight (at most ``limit``; a scoped service's own tenant's only)
    as far as it can go now: those whose credit is due first, then the pending ones. An intent
    whose step raises (the gateway or the store failed on it) is left as it was committed and
    reported as stalled; the others are driven all the same."""
    from prepaid_wallet.rules.topup import IntentStatus

    gateway = require_gateway(env)
    check_limit(limit)
    pending = _pending_intents(env, limit)
    credited: list[str] = []
    given_up: list[str] = []
    still: list[str] = []
    stalled: list[str] = []
    for intent in pending:
        try:
            final, entry_id = drive(env, gateway, intent.id)
        except Exception:  # one intent never blocks the others; a later run tries it again
            stalled.append(intent.id)
            continue
        if entry_id is not None:
            credited.append(entry_id)
        if final is not None and final.status is IntentStatus.FAILED:
            given_up.append(final.id)
        elif final is not None and final.status is IntentStatus.PENDING:
            still.append(final.id)
    return TopUpReport(tuple(credited), tuple(given_up), tuple(still), tuple(stalled))


def _pending_intents(env: Environment, limit: int) -> list[TopUpIntent]:
    """The oldest ``limit`` pending intents the service may see: a scoped service reads its own
    tenant's only (the records of intents are found by tenant)."""
    with env.store.unit_of_work(read_only=True) as uow:
        return [intent for _, intent in pending_top_up_intents(uow, limit, env.tenant_id)]


_KEY_RULE = "must be the key of a top-up attempt or the id of a customer top-up"


def report_charge(env: Environment, idempotency_key: str, outcome: ChargeOutcome
                  ) -> TopUpReport:
    """Record the provider's report of the charge made under ``idempotency_key``: an
    automatic top-up's attempt (its key has a ``:``), recorded on its intent, then the intent
    driven (a success credited exactly once); or a customer top-up (its id), reported through
    the pipeline (:class:`~prepaid_wallet.app.commands.top_ups.ReportTopUp`)."""
    from prepaid_wallet.rules.topup import (
        ChargeOutcome,
        ChargeStatus,
        IntentStatus,
        record_outcome,
    )

    if not isinstance(outcome, ChargeOutcome):
        raise InvalidInputError("outcome", "must be a ChargeOutcome", outcome)
    if not isinstance(idempotency_key, str) or not idempotency_key:
        raise InvalidInputError("idempotency_key", _KEY_RULE, idempotency_key)
    if ":" not in idempotency_key:  # a customer top-up's id
        from prepaid_wallet.app.commands.top_ups import ReportTopUp
        from prepaid_wallet.app.pipeline import run

        return run(env, ReportTopUp(top_up_id=idempotency_key, outcome=outcome))
    intent_id = idempotency_key.split(":", 1)[0]
    with env.store.unit_of_work(read_only=True) as uow:
        intent = env.top_up_intent(uow, intent_id)
        if intent is None or not any(a.idempotency_key == idempotency_key
                                     for a in intent.attempts):
            raise InvalidInputError("idempotency_key", _KEY_RULE, idempotency_key)
        tenant_id = env.wallet(uow, intent.wallet_id).tenant_id
        authorize(uow, None, "report_charge", tenant_id, default=env.principal)
    if outcome.status is not ChargeStatus.UNKNOWN:
        _save_intent(env, intent_id, functools.partial(
            record_outcome, idempotency_key=idempotency_key, outcome=outcome, now=env.now()))
    # Without a gateway the intent is still driven as far as it goes without one: a success
    # is credited here and now, whichever process hears of it.
    final, entry_id = drive(env, env.gateway, intent_id)
    failed = final is not None and final.status is IntentStatus.FAILED
    pending = final is not None and final.status is IntentStatus.PENDING
    return TopUpReport(() if entry_id is None else (entry_id,),
                       (intent_id,) if failed else (), (intent_id,) if pending else ())


def start_scheduled_top_ups(env: Environment) -> tuple[str, ...]:
    """Start, wallet by wallet, the intents that the rules' schedules have come due for;
    the ids of the intents started."""
    at = env.now()
    started: list[str] = []
    with env.store.unit_of_work(read_only=True) as uow:
        tenants = [stored.tenant_id for stored in RULES.all_current(uow, env.tenant_id)
                   if RULES.decode(stored.data).automatic_top_ups]
    for tenant_id in tenants:
        with env.store.unit_of_work(read_only=True) as uow:
            wallet_ids = [w.id for w in uow.iter_wallets(tenant_id)]
        for wallet_id in wallet_ids:
            intent_id = _scheduled_intent(env, wallet_id, at)
            if intent_id is not None:
                started.append(intent_id)
    return tuple(started)


def _scheduled_intent(env: Environment, wallet_id: str, at: datetime) -> str | None:
    """In one unit of work: the wallet's latest occurrence due since the last one started
    remembered, and its intent started (unless one is in flight or none is needed)."""
    from prepaid_wallet.rules.topup import (
        TopUpIntent,
        TopUpReason,
        next_occurrence,
        scheduled_top_up,
    )

    with env.store.unit_of_work() as uow:
        wallet = uow.lock_wallets([wallet_id], tenant_records=WITH_LOCKS)[wallet_id]
        rule = top_up_rule(env, uow, wallet)
        if rule is None or rule.schedule is None or rule.currency != wallet.currency:
            return None
        last_text = get_setting(uow, wallet.id, TOP_UP_SCHEDULE)
        after = wallet.created_at if last_text is None else datetime.fromisoformat(last_text)
        due = None
        occurrence = next_occurrence(rule, after, anchor=wallet.created_at)
        while occurrence is not None and occurrence <= at:
            due = occurrence
            occurrence = next_occurrence(rule, occurrence, anchor=wallet.created_at)
        if due is None:
            return None
        put_setting(uow, wallet, TOP_UP_SCHEDULE, due.isoformat())
        amount = scheduled_top_up(rule, wallet.open)
        intent_id = None
        if amount is not None and pending_top_up_intent(uow, wallet.id) is None and \
                top_up_allowed(env, uow, wallet, amount, at):
            intent_id = env.ids.new("tu")
            put_top_up_intent(uow, wallet.tenant_id, TopUpIntent(
                id=intent_id, wallet_id=wallet.id, amount=amount,
                reason=TopUpReason.SCHEDULE, created_at=at))
        uow.commit()
        return intent_id


def require_gateway(env: Environment) -> PaymentGateway:
    """The service's payment gateway (``InvalidInputError`` naming ``gateway`` without one)."""
    if env.gateway is None:
        raise InvalidInputError("gateway", "automatic top-ups need the service to have a "
                                "payment gateway (WalletService(gateway=...))")
    return env.gateway


def _locked_intent(uow: UnitOfWork, intent_id: str) -> tuple[Wallet, TopUpIntent] | None:
    """The intent's wallet, locked, and the intent as it is under that lock; None if the
    intent is unknown."""
    stored = get_top_up_intent(uow, intent_id)
    if stored is None:
        return None
    wallet = uow.lock_wallets([stored.wallet_id], tenant_records=WITH_LOCKS)[stored.wallet_id]
    return wallet, get_top_up_intent(uow, intent_id) or stored


def _save_intent(env: Environment, intent_id: str,
                 change: Callable[[TopUpIntent], TopUpIntent]) -> TopUpIntent | None:
    """Apply ``change`` to the stored intent in a unit of work of its own (wallet locked)."""
    with env.store.unit_of_work() as uow:
        locked = _locked_intent(uow, intent_id)
        if locked is None:
            return None
        wallet, current = locked
        updated = change(current)
        if updated != current:
            put_top_up_intent(uow, wallet.tenant_id, updated)
            _failed_event(env, uow, wallet, current, updated)
            uow.commit()
        return updated


def _intent_data(intent: TopUpIntent) -> dict[str, object]:
    """What a top-up event says of an automatic top-up."""
    return {"top_up_id": intent.id, "source": "automatic", "reason": intent.reason.value,
            "amount": money_data(intent.amount)}


def _failed_event(env: Environment, uow: UnitOfWork, wallet: Wallet, before: TopUpIntent,
                  after: TopUpIntent) -> None:
    """A ``top_up.failed`` event, in ``uow``, when the intent was just given up."""
    from prepaid_wallet.rules.topup import IntentStatus

    if after.status is IntentStatus.FAILED and before.status is not IntentStatus.FAILED:
        failure = None if after.failure is None else after.failure.value
        emit(env, uow, tenant_id=wallet.tenant_id, wallet_id=wallet.id, kind=TOP_UP_FAILED,
             at=after.finished_at or env.now(), data={**_intent_data(after), "failure": failure})


def _start_attempt(env: Environment, intent_id: str, rule: TopUpRule, step: ChargeStep,
                   now: datetime) -> bool:
    """Store the attempt ``step`` describes, under the wallet's lock, if it is still the
    intent's next step there; whether this call started it. Another process running the same
    intent may have started (or settled) it meanwhile: then the attempt is theirs, and this run
    finds the work done instead of an error."""
    from prepaid_wallet.rules.topup import (
        GiveUp,
        GiveUpReason,
        give_up,
        next_step,
        start_attempt,
    )

    with env.store.unit_of_work() as uow:
        locked = _locked_intent(uow, intent_id)
        if locked is None:
            return False
        wallet, current = locked
        if next_step(current, rule, now) != step:
            return False
        if not top_up_allowed(env, uow, wallet, step.amount, now):
            # The wallet's limits no longer allow it (another top-up came first, the limits
            # were lowered): nothing is charged.
            given_up = give_up(current, GiveUp(GiveUpReason.LIMIT_EXCEEDED), now)
            put_top_up_intent(uow, wallet.tenant_id, given_up)
            _failed_event(env, uow, wallet, current, given_up)
            uow.commit()
            return False
        put_top_up_intent(uow, wallet.tenant_id, start_attempt(current, step, now))
        uow.commit()
        return True


def drive(env: Environment, gateway: PaymentGateway | None, intent_id: str
          ) -> tuple[TopUpIntent | None, str | None]:
    """Run one intent's state machine until it waits or ends; returns its last state and
    the credit entry posted by this run, if any. Without a gateway it stops at the first step
    that needs one (a charge or a lookup) and takes every other (a credit, giving up)."""
    from prepaid_wallet.rules.topup import Charge as _Charge
    from prepaid_wallet.rules.topup import (
        ChargeStatus,
        Credit,
        Done,
        GiveUp,
        Settle,
        Step,
        credit_key,
        give_up,
        next_step,
        record_outcome,
    )

    entry_id: str | None = None
    intent: TopUpIntent | None = None
    for _ in range(_MAX_STEPS):
        now = env.now()
        with env.store.unit_of_work(read_only=True) as uow:
            intent = get_top_up_intent(uow, intent_id)
            if intent is None:
                return None, entry_id
            wallet = uow.get_wallet(intent.wallet_id)
            rule = top_up_rule(env, uow, wallet)
        succeeded = intent.succeeded_attempt
        if rule is None:
            # The rule was removed: nothing more is charged, but money taken is credited.
            if succeeded is None or intent.credited:
                return intent, entry_id
            step: Step = Credit(succeeded, intent.amount, credit_key(intent))
        else:
            step = next_step(intent, rule, now)
        if isinstance(step, _Charge):
            if gateway is None or rule is None:
                return intent, entry_id  # left to a process with a gateway
            if not _start_attempt(env, intent_id, rule, step, now):
                continue  # another run got there first: read where it stands
            outcome = gateway.charge(method=step.method, amount=step.amount,
                                     idempotency_key=step.idempotency_key)
            _save_intent(env, intent_id, functools.partial(
                record_outcome, idempotency_key=step.idempotency_key, outcome=outcome,
                now=env.now()))
        elif isinstance(step, Settle):
            if gateway is None:
                return intent, entry_id  # left to a process with a gateway
            outcome = gateway.lookup(idempotency_key=step.idempotency_key)
            if outcome.status is ChargeStatus.UNKNOWN:
                # The request may never have arrived: send it again under the same key (the
                # gateway never charges a key twice), never on another method.
                outcome = gateway.charge(method=step.method, amount=intent.amount,
                                         idempotency_key=step.idempotency_key)
            if outcome.status is ChargeStatus.UNKNOWN:
                return intent, entry_id  # still unknown: settled by a later run
            _save_intent(env, intent_id, functools.partial(
                record_outcome, idempotency_key=step.idempotency_key, outcome=outcome,
                now=env.now()))
        elif isinstance(step, Credit):
            posted = _credit_intent(env, intent_id, step, now)
            entry_id = posted if posted is not None else entry_id
        elif isinstance(step, GiveUp):
            _save_intent(env, intent_id, functools.partial(give_up, step=step, now=now))
        elif isinstance(step, Done):
            return intent, entry_id
        else:  # Wait: a back-off is running
            return intent, entry_id
    return intent, entry_id


def _credit_intent(env: Environment, intent_id: str, step: Credit, at: datetime) -> str | None:
    """Post a succeeded automatic top-up to the open balance exactly once (idempotency key
    of the intent; the crediting path customer top-ups share) and mark the intent credited,
    in one unit of work."""
    from prepaid_wallet.rules.topup import credit_key, mark_credited

    with env.store.unit_of_work() as uow:
        locked = _locked_intent(uow, intent_id)
        if locked is None:
            return None
        wallet, intent = locked
        if intent.credited:
            return None
        entry_id = credit_top_up(
            env, uow, wallet, amount=step.amount, method=step.attempt.method,
            key=credit_key(intent), at=at, actor=None, metadata={"top_up_intent": intent.id},
            operation="automatic_top_up", request={"intent": intent.id})
        put_top_up_intent(uow, wallet.tenant_id, mark_credited(intent))
        if entry_id is not None:
            emit(env, uow, tenant_id=wallet.tenant_id, wallet_id=wallet.id,
                 kind=TOP_UP_SUCCEEDED, at=at, data={
                     **_intent_data(intent), "amount": money_data(step.amount),
                     "method": step.attempt.method, "entry_id": entry_id})
        uow.commit()
        return entry_id
