"""Webhooks: the endpoints a tenant's events are sent to, and the jobs that send them.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method calls one function of :mod:`prepaid_wallet.app.webhooks` and does nothing else.
See docs/webhooks.md."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from prepaid_wallet.app.outbox import WebhookEndpoint
    from prepaid_wallet.app.webhooks import DeliveryReport, Sender, WebhookDelivery

__all__ = ["Webhooks"]


class Webhooks(Facade):
    """Webhook endpoints, the fan-out of events, their delivery, replay and log."""

    def add_webhook_endpoint(self, tenant_id: str, url: str, *,
                             kinds: Iterable[str] | None = None) -> WebhookEndpoint:
        """Register an endpoint of the tenant: ``url`` (absolute http or https, no
        credentials; ``InvalidInputError`` naming ``url`` otherwise) receives the events of
        ``kinds`` (``None``: every kind; an unknown kind: ``InvalidInputError`` naming
        ``kinds``). The result carries its signing secret (``whsec_...``): keep it, it is not
        shown again (only a rotation shows a new one). From then on the tenant's events go to
        its endpoints, not to :meth:`events`."""
        from prepaid_wallet.app.webhooks import add_endpoint

        return add_endpoint(self._env, tenant_id, url, kinds)

    def webhook_endpoints(self, tenant_id: str) -> list[WebhookEndpoint]:
        """The tenant's endpoints, enabled or not, oldest first, without their secrets."""
        from prepaid_wallet.app.webhooks import endpoints

        return endpoints(self._env, tenant_id)

    def remove_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """Disable an endpoint: nothing more is sent to it; its pending deliveries fail.
        ``InvalidInputError`` naming ``endpoint_id`` for an unknown one."""
        from prepaid_wallet.app.webhooks import remove_endpoint

        return remove_endpoint(self._env, endpoint_id)

    def rotate_webhook_secret(self, endpoint_id: str, *,
                              keep_previous_for: timedelta = timedelta(0)) -> WebhookEndpoint:
        """Give the endpoint a new secret (returned with it); the previous one still signs
        each request as well (a second ``v1`` in the signature header) for
        ``keep_previous_for``."""
        from prepaid_wallet.app.webhooks import rotate_secret

        return rotate_secret(self._env, endpoint_id, keep_previous_for)

    def fan_out_events(self) -> int:
        """Turn the pending events of every tenant with an enabled endpoint into deliveries
        (one per endpoint that wants the kind) and acknowledge them; how many deliveries were
        made. :meth:`deliver_webhooks` runs it first."""
        from prepaid_wallet.app.webhooks import fan_out

        return fan_out(self._env)

    def deliver_webhooks(self, *, send: Sender | None = None, limit: int = 100,
                         retry_schedule: Sequence[timedelta] | None = None) -> DeliveryReport:
        """One delivery pass: the fan-out, then up to ``limit`` due deliveries sent, signed,
        each outside any transaction (``send(url, body, headers, timeout) -> status``;
        default: an HTTP POST with the standard library, redirects not followed). A 2xx is
        delivered; anything else, a network error or a timeout is tried again later
        (``retry_schedule``; default 30 s, 2 min, 10 min, 1 h, 6 h, then daily; ``failed``
        after 8 attempts). Run it from a scheduler or a background thread; several may run at
        once."""
        from prepaid_wallet.app.webhooks import RETRY_SCHEDULE, deliver_webhooks

        return deliver_webhooks(self._env, send, limit=limit,
                                retry_schedule=retry_schedule or RETRY_SCHEDULE)

    def replay_webhooks(self, *, delivery_id: str | None = None, event_id: str | None = None,
                        tenant_id: str | None = None, since: datetime | None = None
                        ) -> tuple[str, ...]:
        """Send deliveries again (pending, due now, attempts reset): one ``delivery_id``, an
        ``event_id``'s, or the tenant's whose event was written at or after ``since``. The
        ids replayed."""
        from prepaid_wallet.app.webhooks import replay

        return replay(self._env, delivery_id=delivery_id, event_id=event_id,
                      tenant_id=tenant_id, since=since)

    def webhook_deliveries(self, tenant_id: str, *, status: str | None = None,
                           limit: int = 100) -> list[WebhookDelivery]:
        """The tenant's deliveries (of one ``status``: pending, delivered, failed), by next
        (or last) attempt, at most ``limit``."""
        from prepaid_wallet.app.webhooks import deliveries

        return deliveries(self._env, tenant_id, status=status, limit=limit)
