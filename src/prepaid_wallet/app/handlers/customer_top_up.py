"""Customer top-ups: start one (pending, no money moved), take the provider's report of it (a
success credited exactly once), expire the pending ones whose time is up.

The credit is posted through the crediting path automatic top-ups use
(:func:`prepaid_wallet.app.customer_top_ups.credit_top_up`), under an idempotency key made of
the top-up's id, in the unit of work that records the success.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from prepaid_wallet.app.charges import (
    check_limits,
    check_max_balance,
    fee,
    top_up_allowed,
)
from prepaid_wallet.app.checks import check_currency, less
from prepaid_wallet.app.commands import ReportTopUp, StartTopUp
from prepaid_wallet.app.customer_top_ups import (
    credit_top_up,
    customer_top_up,
    due_customer_top_ups,
    put_customer_top_up,
)
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import InvalidAmountError
from prepaid_wallet.results import TopUpReport
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.rules.topup.customer import (
    CustomerTopUp,
    CustomerTopUpStatus,
    expire,
    report,
)

__all__ = ["credit_key", "expire_customer_top_ups", "report_top_up", "start_top_up"]

#: How many due top-ups the expiry job reads at a time.
_BATCH = 100


def credit_key(top_up: CustomerTopUp) -> str:
    """The idempotency key a customer top-up's credit is posted under:
    ``f"customer-top-up:{id}"``."""
    return f"customer-top-up:{top_up.id}"


def start_top_up(ctx: Context, command: StartTopUp) -> CustomerTopUp:
    """A pending customer top-up, within the tenant's bounds, the wallet's top-up limits and
    its maximum balance (as a top-up of its amount now would be)."""
    wallet = ctx.wallet(command.wallet_id)
    amount = command.amount
    check_currency(wallet, amount)
    settings = ctx.env.tenant_rules(ctx.uow, wallet.tenant_id).customer_top_ups
    settings.check(amount)
    charged = fee(ctx.env, ctx.uow, wallet, Operation.TOP_UP, amount)
    if charged is not None and charged >= amount:
        raise InvalidAmountError("amount", f"must be more than its top-up fee ({charged})",
                                 amount)
    check_limits(ctx.env, ctx.uow, wallet, Operation.TOP_UP, amount, ctx.at)
    check_max_balance(ctx.env, ctx.uow, wallet, Operation.TOP_UP,
                      less(wallet.total + amount, charged))
    top_up = CustomerTopUp(
        id=ctx.env.ids.new("ctu"), tenant_id=wallet.tenant_id, wallet_id=wallet.id,
        amount=amount, method=command.method, created_at=ctx.at,
        expires_at=ctx.at + settings.lifetime, actor=ctx.actor, metadata=dict(ctx.metadata))
    put_customer_top_up(ctx.uow, top_up)
    return top_up


def report_top_up(ctx: Context, command: ReportTopUp) -> TopUpReport:
    """Apply the provider's answer; a new success is credited here (or, when the wallet's
    limits no longer allow it, marked ``REFUND_DUE`` and not credited)."""
    current = customer_top_up(ctx.env, ctx.uow, command.top_up_id)
    assert current is not None  # the lock spec found it under the same lock
    wallet = ctx.wallet(current.wallet_id)
    updated = report(current, command.outcome, ctx.at)
    entry_id = None
    if updated.status is CustomerTopUpStatus.SUCCEEDED and updated.entry_id is None:
        if top_up_allowed(ctx.env, ctx.uow, wallet, updated.amount, ctx.at):
            source = {"customer_top_up": updated.id}
            if updated.superseded is not None:
                source["reported_after"] = updated.superseded.value
            entry_id = credit_top_up(
                ctx.env, ctx.uow, wallet, amount=updated.amount, method=updated.method,
                key=credit_key(updated), at=ctx.at, actor=updated.actor,
                metadata={**updated.metadata, **source}, operation="customer_top_up",
                request={"top_up": updated.id})
            updated = attrs.evolve(updated, entry_id=entry_id)
        else:
            updated = attrs.evolve(updated, status=CustomerTopUpStatus.REFUND_DUE)
    if updated != current:
        put_customer_top_up(ctx.uow, updated)
    ended = updated.status in (CustomerTopUpStatus.FAILED, CustomerTopUpStatus.CANCELED,
                               CustomerTopUpStatus.EXPIRED, CustomerTopUpStatus.REFUND_DUE)
    return TopUpReport(() if entry_id is None else (entry_id,),
                       (updated.id,) if ended else (),
                       (updated.id,) if updated.is_pending else ())


def expire_customer_top_ups(env: Environment, at: datetime) -> tuple[str, ...]:
    """Expire every pending customer top-up whose time is up at ``at`` (a scoped service: its
    own tenant's), each in a unit of work of its own under its wallet's lock; the ids
    expired."""
    expired: list[str] = []
    while True:
        with env.store.unit_of_work(read_only=True) as uow:
            due = due_customer_top_ups(uow, at, _BATCH, env.tenant_id)
        for top_up in due:
            with env.store.unit_of_work() as uow:
                uow.lock_wallets([top_up.wallet_id], tenant_records=WITH_LOCKS)
                current = customer_top_up(env, uow, top_up.id)
                if current is None:
                    continue
                updated = expire(current, at)
                if updated != current:
                    put_customer_top_up(uow, updated)
                    uow.commit()
                    expired.append(updated.id)
        if len(due) < _BATCH:
            return tuple(expired)
