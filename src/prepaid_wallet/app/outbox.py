"""The events the library writes to the outbox besides low-balance ones, and the webhook
endpoints that subscribe to them.

Every event is written in the same unit of work as what caused it (a top-up credited or
ended, a pay-as-you-go upgrade's state changed, a lot or a hold expired), so none is lost and
none is written for something that was rolled back or refused. An event of these kinds is
written only for a tenant with at least one enabled endpoint that wants it (read in the same
unit): a tenant that does not use webhooks keeps an outbox of low-balance events only, as
:meth:`~prepaid_wallet.service.WalletService.events` reads it.

An event's payload is a small JSON object: ids, amounts as ``{"amount": "12.50", "currency":
"EUR"}``, instants as RFC 3339 text in UTC (``"2026-01-05T12:00:00Z"``).

Endpoints are a record type (``webhook_endpoint``): stored by id with their tenant, tagged
``enabled`` or ``disabled``, ordered by creation instant. See docs/webhooks.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import Event, RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.money import Money

__all__ = [
    "ENDPOINTS",
    "EVENT_KINDS",
    "HOLD_EXPIRED",
    "LOT_EXPIRED",
    "TOP_UP_CANCELED",
    "TOP_UP_EXPIRED",
    "TOP_UP_FAILED",
    "TOP_UP_REFUND_DUE",
    "TOP_UP_SUCCEEDED",
    "UPGRADE_CALLED",
    "UPGRADE_EXPIRED",
    "UPGRADE_INSTALLED",
    "UPGRADE_PAID",
    "WebhookEndpoint",
    "emit",
    "enabled_endpoints",
    "instant_text",
    "money_data",
]

#: A top-up (automatic or customer) credited to the open balance.
TOP_UP_SUCCEEDED = "top_up.succeeded"
#: A top-up given up (automatic: declined or over the limits) or declined (customer).
TOP_UP_FAILED = "top_up.failed"
#: A customer top-up canceled by the customer or the provider.
TOP_UP_CANCELED = "top_up.canceled"
#: A customer top-up with no answer within its lifetime.
TOP_UP_EXPIRED = "top_up.expired"
#: A customer top-up whose money was taken but could not be credited (limits): owed back.
TOP_UP_REFUND_DUE = "top_up.refund_due"
#: A pay-as-you-go upgrade called: its downpayment is due before its deadline.
UPGRADE_CALLED = "upgrade.called"
#: An upgrade's downpayment paid: the upgrade is to be installed or collected.
UPGRADE_PAID = "upgrade.paid"
#: An upgrade installed or collected: the contract is active again.
UPGRADE_INSTALLED = "upgrade.installed"
#: An upgrade whose window ended before its downpayment was paid.
UPGRADE_EXPIRED = "upgrade.expired"
#: A lot's remainder booked as breakage when it expired.
LOT_EXPIRED = "lot.expired"
#: A hold released when its window ended.
HOLD_EXPIRED = "hold.expired"

#: Every kind an endpoint may subscribe to (``low_balance``: the low-balance events).
EVENT_KINDS: tuple[str, ...] = (
    "low_balance", TOP_UP_SUCCEEDED, TOP_UP_FAILED, TOP_UP_CANCELED, TOP_UP_EXPIRED,
    TOP_UP_REFUND_DUE, UPGRADE_CALLED, UPGRADE_PAID, UPGRADE_INSTALLED, UPGRADE_EXPIRED,
    LOT_EXPIRED, HOLD_EXPIRED,
)

_ENABLED = "enabled"
_DISABLED = "disabled"


@attrs.frozen
class WebhookEndpoint:
    """Where a tenant's events are sent: ``url`` (http or https), the ``kinds`` it wants
    (empty: every kind), the ``secret`` its requests are signed with (``whsec_...``; a
    listing gives ``None`` in its place), whether it is ``enabled``, and when it was created.
    After a rotation the ``previous_secret`` still signs (as a second ``v1``) until
    ``previous_until``."""

    id: str
    tenant_id: str
    url: str
    kinds: tuple[str, ...]
    secret: str | None = attrs.field(repr=False)
    enabled: bool
    created_at: datetime
    previous_secret: str | None = attrs.field(default=None, repr=False)
    previous_until: datetime | None = None

    def wants(self, kind: str) -> bool:
        """Whether events of ``kind`` go to this endpoint (enabled, and every kind or that
        one)."""
        return self.enabled and (not self.kinds or kind in self.kinds)

    def secrets(self, at: datetime) -> tuple[str, ...]:
        """The secrets a request sent at ``at`` is signed with: the current one, then the
        previous one while it is still accepted."""
        found: tuple[str, ...] = () if self.secret is None else (self.secret,)
        if self.previous_secret is not None and self.previous_until is not None \
                and at < self.previous_until:
            found += (self.previous_secret,)
        return found

    def public(self) -> WebhookEndpoint:
        """The endpoint without its secrets (what a listing shows)."""
        return attrs.evolve(self, secret=None, previous_secret=None)


#: Webhook endpoints (see the module docstring).
ENDPOINTS: RecordType[WebhookEndpoint] = RecordType(
    kind="webhook_endpoint",
    type=WebhookEndpoint,
    key=lambda e: e.id,
    tenant=lambda e: e.tenant_id,
    tag=lambda e: _ENABLED if e.enabled else _DISABLED,
    order=lambda e: sortable_instant(e.created_at),
)


def enabled_endpoints(uow: UnitOfWork, tenant_id: str | None) -> list[WebhookEndpoint]:
    """The enabled endpoints of the tenant (or of every tenant), oldest first."""
    return uow.find_records(ENDPOINTS, tenant_id=tenant_id, tag=_ENABLED)


def money_data(amount: Money) -> dict[str, str]:
    """An amount as an event's payload holds it: ``{"amount": "12.50", "currency": "EUR"}``."""
    return {"amount": str(amount.amount), "currency": amount.currency}


def instant_text(at: datetime) -> str:
    """An instant as an event's payload holds it: RFC 3339, UTC, ``Z``
    (``2026-01-05T12:00:00Z``; microseconds only when there are some)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def emit(env: Environment, uow: UnitOfWork, *, tenant_id: str, wallet_id: str, kind: str,
         at: datetime, data: Mapping[str, object]) -> str | None:
    """Buffer an event of ``kind`` in ``uow`` (written at its commit, with its cause) when an
    enabled endpoint of the tenant wants it; its id, or None when none does."""
    if not any(e.wants(kind) for e in enabled_endpoints(uow, tenant_id)):
        return None
    event_id = env.ids.new("ev")
    uow.add_event(Event(event_id, tenant_id, wallet_id, kind, at,
                        json.dumps(dict(data), sort_keys=True, separators=(",", ":"))))
    return event_id
