"""Webhooks: a tenant's endpoints, the fan-out of its outbox events into deliveries, and the
dispatcher that sends them, signed, with retries.

* **Endpoints** (:data:`~prepaid_wallet.app.outbox.ENDPOINTS`): :func:`add_endpoint`,
  :func:`endpoints`, :func:`remove_endpoint` (disables it), :func:`rotate_secret`.
* **Fan-out** (:func:`fan_out`): a tenant's pending outbox events become one delivery per
  enabled endpoint that wants the event's kind, and the events are acknowledged, in one unit
  of work per batch (under the locks of the events' wallets, so two fan-outs never make a
  delivery twice). A tenant with no enabled endpoint keeps its events in the outbox for
  ``WalletService.events()``; a tenant with endpoints gets every event by webhook.
* **Delivery** (:func:`deliver_webhooks`): due deliveries are claimed in a short unit of work
  (their wallets locked: the claim moves the delivery's next attempt to the end of a lease, so
  no other dispatcher takes it meanwhile, and one that crashed leaves it due again when the
  lease ends), each is sent outside any unit of work, and its outcome is recorded in another
  unit. At least once: the receiver de-duplicates by the event id (in the body and in the
  ``Prepaid-Wallet-Event-Id`` header). A 2xx answer is delivered; anything else, a network
  error or a timeout is retried on :data:`RETRY_SCHEDULE` until :data:`MAX_ATTEMPTS`, then the
  delivery is ``failed``.
* **Replay and the log**: :func:`replay` puts deliveries back to pending (attempts reset);
  :func:`deliveries` lists them.

Deliveries are a record type (``webhook_delivery``): stored by id with their tenant, tagged
with their status, ordered by their next attempt (for a delivered or failed one: its last).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from prepaid_wallet.app.access import authorize
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.outbox import (
    ENDPOINTS,
    EVENT_KINDS,
    WebhookEndpoint,
    enabled_endpoints,
    instant_text,
    money_data,
)
from prepaid_wallet.app.ports import Event, RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidInputError, InvalidTimeError
from prepaid_wallet.ids import check_name
from prepaid_wallet.webhook_signature import (
    EVENT_ID_HEADER,
    EVENT_KIND_HEADER,
    SIGNATURE_HEADER,
    sign,
)

__all__ = [
    "DELIVERIES",
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "DeliveryReport",
    "DeliveryStatus",
    "Sender",
    "WebhookDelivery",
    "add_endpoint",
    "deliver_webhooks",
    "deliveries",
    "delivery_key",
    "endpoints",
    "fan_out",
    "next_attempt",
    "remove_endpoint",
    "replay",
    "rotate_secret",
    "send_with_urllib",
]

#: How long after each failed attempt the next one is made (the last one repeats).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1),
    timedelta(hours=6), timedelta(hours=24),
)
#: Attempts made before a delivery is ``failed``.
MAX_ATTEMPTS = 8
#: How long a claimed delivery is kept from other dispatchers, at least (plus the send
#: timeout for each delivery claimed with it).
LEASE = timedelta(seconds=60)
#: The default sender's timeout, in seconds.
TIMEOUT = 5.0
#: The longest error text kept on a delivery.
_ERROR_LENGTH = 200
#: Events read per fan-out batch.
_BATCH = 100

#: ``send(url, body, headers, timeout) -> HTTP status``; raises ``OSError`` (a network
#: error, a timeout) when no answer came.
Sender = Callable[[str, bytes, Mapping[str, str], float], int]


class DeliveryStatus(StrEnum):
    """``PENDING`` to be sent (again); ``DELIVERED`` a 2xx came back; ``FAILED`` every attempt
    failed (:data:`MAX_ATTEMPTS`), or its endpoint was removed."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@attrs.frozen
class WebhookDelivery:
    """One event to send to one endpoint: the event (``event_id``, ``kind``, ``wallet_id``,
    ``event_at``, ``payload``: its data as JSON text), the ``status``, the ``attempts`` made,
    ``next_attempt_at`` (while claimed: the end of the lease; once ended: the last attempt),
    the last answer (``last_status``, an HTTP status, or ``last_error``, the error text, at
    most 200 characters), ``delivered_at``, and the ``lease`` of the dispatcher that claimed
    it (None when none has)."""

    id: str
    tenant_id: str
    endpoint_id: str
    event_id: str
    kind: str
    wallet_id: str
    event_at: datetime
    payload: str
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    lease: str | None = None

    def body(self) -> bytes:
        """The request body: ``{"id", "kind", "tenant_id", "wallet_id", "created_at",
        "data"}`` as compact JSON (UTF-8)."""
        return json.dumps({
            "id": self.event_id, "kind": self.kind, "tenant_id": self.tenant_id,
            "wallet_id": self.wallet_id, "created_at": instant_text(self.event_at),
            "data": json.loads(self.payload),
        }, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _due(d: WebhookDelivery) -> datetime:
    return d.next_attempt_at or d.created_at


#: Webhook deliveries (see the module docstring).
DELIVERIES: RecordType[WebhookDelivery] = RecordType(
    kind="webhook_delivery",
    type=WebhookDelivery,
    key=lambda d: d.id,
    tenant=lambda d: d.tenant_id,
    tag=lambda d: d.status.value,
    order=lambda d: sortable_instant(_due(d)),
)


@attrs.frozen
class DeliveryReport:
    """What one :func:`deliver_webhooks` pass did: the deliveries ``delivered``, those to be
    ``retried`` later, those that ``failed`` for good, and how many deliveries the fan-out
    before it made (``fanned_out``)."""

    delivered: tuple[str, ...] = ()
    retried: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    fanned_out: int = 0


# -- endpoints -------------------------------------------------------------------------------------


def _check_url(url: object) -> str:
    rule = "must be an absolute http or https URL with a host and no credentials"
    if not isinstance(url, str) or len(url) > 2048 or any(c.isspace() for c in url):
        raise InvalidInputError("url", rule, url)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise InvalidInputError("url", rule, url)
    return url


def _check_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return ()
    if isinstance(kinds, str | bytes) or not isinstance(kinds, Iterable):
        raise InvalidInputError("kinds", "must be a collection of event kinds", kinds)
    found = tuple(sorted(set(kinds)))
    for kind in found:
        if kind not in EVENT_KINDS:
            raise InvalidInputError("kinds", f"must be event kinds: {', '.join(EVENT_KINDS)}",
                                    kind)
    return found


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def add_endpoint(env: Environment, tenant_id: str, url: str,
                 kinds: Iterable[str] | None = None) -> WebhookEndpoint:
    """A new enabled endpoint of the tenant, with its secret (shown here and by
    :func:`rotate_secret` only)."""
    env.check_tenant(tenant_id)
    endpoint = WebhookEndpoint(
        id=env.ids.new("whe"), tenant_id=tenant_id, url=_check_url(url),
        kinds=_check_kinds(kinds), secret=_new_secret(), enabled=True, created_at=env.now())
    with env.store.unit_of_work() as uow:
        authorize(uow, None, "add_webhook_endpoint", tenant_id, default=env.principal)
        uow.put_record(ENDPOINTS, endpoint)
        uow.commit()
    return endpoint


def endpoints(env: Environment, tenant_id: str) -> list[WebhookEndpoint]:
    """The tenant's endpoints, enabled or not, oldest first, without their secrets."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        return [e.public() for e in uow.find_records(ENDPOINTS, tenant_id=tenant_id)]


def _endpoint(env: Environment, uow: UnitOfWork, endpoint_id: str) -> WebhookEndpoint:
    check_name(endpoint_id, "endpoint_id")
    found = uow.get_record(ENDPOINTS, endpoint_id)
    if found is None or not env.sees(found.tenant_id):
        raise InvalidInputError("endpoint_id", "must be the id of a webhook endpoint",
                                endpoint_id)
    return found


def remove_endpoint(env: Environment, endpoint_id: str) -> WebhookEndpoint:
    """Disable the endpoint: nothing more is sent to it (its pending deliveries fail when
    their turn comes). Returns it, without its secret."""
    with env.store.unit_of_work() as uow:
        found = _endpoint(env, uow, endpoint_id)
        authorize(uow, None, "remove_webhook_endpoint", found.tenant_id, default=env.principal)
        disabled = attrs.evolve(found, enabled=False)
        if disabled != found:
            uow.put_record(ENDPOINTS, disabled)
            uow.commit()
    return disabled.public()


def rotate_secret(env: Environment, endpoint_id: str,
                  keep_previous_for: timedelta = timedelta(0)) -> WebhookEndpoint:
    """A new secret for the endpoint (returned with it); the previous one still signs each
    request too (a second ``v1``) for ``keep_previous_for``, so receivers can switch."""
    if not isinstance(keep_previous_for, timedelta) or keep_previous_for < timedelta(0):
        raise InvalidTimeError("keep_previous_for", "must be a timedelta, not negative",
                               keep_previous_for)
    at = env.now()
    with env.store.unit_of_work() as uow:
        found = _endpoint(env, uow, endpoint_id)
        authorize(uow, None, "rotate_webhook_secret", found.tenant_id, default=env.principal)
        keep = keep_previous_for > timedelta(0)
        rotated = attrs.evolve(
            found, secret=_new_secret(), previous_secret=found.secret if keep else None,
            previous_until=at + keep_previous_for if keep else None)
        uow.put_record(ENDPOINTS, rotated)
        uow.commit()
    return rotated


# -- fan-out ---------------------------------------------------------------------------------------


def delivery_key(event_id: str, endpoint_id: str) -> str:
    """The id of the delivery of ``event_id`` to ``endpoint_id`` (one per pair)."""
    return f"{event_id}.{endpoint_id}"


def _data(event: Event) -> str:
    """The event's data as a webhook carries it (a low-balance event's amounts as amount
    objects)."""
    if event.kind != "low_balance":
        return event.payload
    from prepaid_wallet import _codec
    from prepaid_wallet.money import Money

    data = json.loads(event.payload)
    for name in ("open", "floor"):
        if isinstance(data.get(name), str):
            data[name] = money_data(_codec.from_data(Money, data[name]))
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def fan_out(env: Environment) -> int:
    """Move the pending outbox events of every tenant with an enabled endpoint (a scoped
    service: its own tenant) into deliveries, one per endpoint that wants the event's kind,
    acknowledging the events: a batch per unit of work. Returns how many deliveries were
    made."""
    with env.store.unit_of_work(read_only=True) as uow:
        tenants = sorted({e.tenant_id for e in enabled_endpoints(uow, env.tenant_id)})
    made = 0
    for tenant_id in tenants:
        while True:
            done, count = _fan_out_batch(env, tenant_id)
            made += count
            if not done:
                break
    return made


def _fan_out_batch(env: Environment, tenant_id: str) -> tuple[int, int]:
    """One batch of the tenant's events: how many events were handled, how many deliveries
    made."""
    with env.store.unit_of_work(read_only=True) as uow:
        seen = uow.pending_events(tenant_id, _BATCH)
    if not seen:
        return 0, 0
    at = env.now()
    with env.store.unit_of_work() as uow:
        locked = set(uow.lock_wallets(sorted({e.wallet_id for e in seen})))
        # Read again under the locks: another fan-out may have handled some meanwhile.
        found = [e for e in uow.pending_events(tenant_id, _BATCH) if e.wallet_id in locked]
        targets = enabled_endpoints(uow, tenant_id)
        made = 0
        for event in found:
            for endpoint in targets:
                if not endpoint.wants(event.kind):
                    continue
                key = delivery_key(event.id, endpoint.id)
                if uow.get_record(DELIVERIES, key) is not None:
                    continue
                uow.put_record(DELIVERIES, WebhookDelivery(
                    id=key, tenant_id=tenant_id, endpoint_id=endpoint.id, event_id=event.id,
                    kind=event.kind, wallet_id=event.wallet_id, event_at=event.created_at,
                    payload=_data(event), created_at=at, next_attempt_at=at))
                made += 1
        uow.ack_events(tenant_id, [e.id for e in found])
        uow.commit()
    return len(found), made


# -- delivery --------------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are answers, not followed: a 3xx is a failed attempt."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def send_with_urllib(url: str, body: bytes, headers: Mapping[str, str],
                     timeout: float = TIMEOUT) -> int:
    """POST ``body`` to ``url`` with ``headers`` (the default sender): the HTTP status of the
    answer (redirects are not followed); ``OSError`` when none came (a network error, a
    timeout)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as answer:
        answer.close()
        return int(answer.code)


def next_attempt(attempts: int, schedule: Sequence[timedelta] = RETRY_SCHEDULE) -> timedelta:
    """How long after its ``attempts``-th failed attempt a delivery is tried again (the last
    step of ``schedule`` repeats)."""
    return schedule[min(attempts, len(schedule)) - 1]


def check_schedule(schedule: object) -> tuple[timedelta, ...]:
    """``schedule`` as a retry schedule: one or more positive ``timedelta`` s, else
    ``InvalidInputError`` naming ``retry_schedule``."""
    if isinstance(schedule, str | bytes) or not isinstance(schedule, Sequence) or not schedule:
        raise InvalidInputError("retry_schedule", "must be one or more positive durations",
                                schedule)
    for step in schedule:
        if not isinstance(step, timedelta) or step <= timedelta(0):
            raise InvalidInputError("retry_schedule", "must be one or more positive durations",
                                    step)
    return tuple(schedule)


@attrs.frozen
class _Claimed:
    delivery: WebhookDelivery
    url: str
    secrets: tuple[str, ...]


def deliver_webhooks(env: Environment, send: Sender | None = None, *, limit: int = 100,
                     fan_out_first: bool = True,
                     retry_schedule: Sequence[timedelta] = RETRY_SCHEDULE) -> DeliveryReport:
    """One pass: the fan-out (unless ``fan_out_first`` is False), then up to ``limit`` due
    deliveries claimed, sent (with ``send``; default :func:`send_with_urllib`) and their
    outcomes recorded (see the module docstring); a failed attempt is tried again after the
    step of ``retry_schedule`` for its number."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError("limit", "must be a positive int", limit)
    schedule = check_schedule(retry_schedule)
    sender: Sender = send_with_urllib if send is None else send
    made = fan_out(env) if fan_out_first else 0
    claimed, ended = _claim(env, limit)
    delivered: list[str] = []
    retried: list[str] = []
    failed: list[str] = list(ended)
    for job in claimed:
        delivery = job.delivery
        at = env.now()
        body = delivery.body()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "prepaid-wallet-webhooks",
            EVENT_ID_HEADER: delivery.event_id,
            EVENT_KIND_HEADER: delivery.kind,
            SIGNATURE_HEADER: sign(job.secrets, body, at),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = sender(job.url, body, headers, TIMEOUT)
        except Exception as exc:  # a network error, a timeout: tried again later
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]
        outcome = _record(env, delivery, status, error, schedule)
        if outcome is DeliveryStatus.DELIVERED:
            delivered.append(delivery.id)
        elif outcome is DeliveryStatus.FAILED:
            failed.append(delivery.id)
        elif outcome is DeliveryStatus.PENDING:
            retried.append(delivery.id)
    return DeliveryReport(tuple(delivered), tuple(retried), tuple(failed), made)


def _is_due(delivery: WebhookDelivery, at: datetime) -> bool:
    return delivery.status is DeliveryStatus.PENDING and _due(delivery) <= at


def _claim(env: Environment, limit: int) -> tuple[list[_Claimed], list[str]]:
    """Claim up to ``limit`` due deliveries in one unit of work (their wallets locked, each
    read again under the lock): each gets a lease and its next attempt moves to the lease's
    end. A delivery whose endpoint is gone or disabled fails instead. Returns the claimed ones
    and the ids of those that failed."""
    at = env.now()
    with env.store.unit_of_work(read_only=True) as uow:
        listed = uow.find_records(DELIVERIES, tenant_id=env.tenant_id,
                                  tag=DeliveryStatus.PENDING.value, limit=limit)
    due = [d for d in listed if _is_due(d, at)]
    if not due:
        return [], []
    lease = env.ids.new("lease")
    until = at + LEASE + timedelta(seconds=TIMEOUT) * len(due)
    claimed: list[_Claimed] = []
    ended: list[str] = []
    with env.store.unit_of_work() as uow:
        uow.lock_wallets(sorted({d.wallet_id for d in due}))
        for listed_one in due:
            current = uow.get_record(DELIVERIES, listed_one.id)
            if current is None or not _is_due(current, at):
                continue  # another dispatcher has it, or it was delivered meanwhile
            endpoint = uow.get_record(ENDPOINTS, current.endpoint_id)
            if endpoint is None or not endpoint.enabled or not endpoint.secrets(at):
                uow.put_record(DELIVERIES, attrs.evolve(
                    current, status=DeliveryStatus.FAILED, next_attempt_at=at,
                    last_status=None, last_error="the endpoint was removed", lease=None))
                ended.append(current.id)
                continue
            mine = attrs.evolve(current, lease=lease, next_attempt_at=until)
            uow.put_record(DELIVERIES, mine)
            claimed.append(_Claimed(mine, endpoint.url, endpoint.secrets(at)))
        uow.commit()
    return claimed, ended


def _record(env: Environment, sent: WebhookDelivery, status: int | None,
            error: str | None, schedule: Sequence[timedelta]) -> DeliveryStatus | None:
    """Record an attempt's outcome in a unit of work of its own (the wallet locked), unless
    the delivery is no longer under this dispatcher's lease (it expired and another took the
    delivery over, or it was replayed): the new status, or None."""
    at = env.now()
    with env.store.unit_of_work() as uow:
        uow.lock_wallets([sent.wallet_id])
        current = uow.get_record(DELIVERIES, sent.id)
        if current is None or current.lease != sent.lease:
            return None
        attempts = current.attempts + 1
        ok = status is not None and 200 <= status < 300
        if ok:
            new, next_at = DeliveryStatus.DELIVERED, at
        elif attempts >= MAX_ATTEMPTS:
            new, next_at = DeliveryStatus.FAILED, at
        else:
            new, next_at = DeliveryStatus.PENDING, at + next_attempt(attempts, schedule)
        uow.put_record(DELIVERIES, attrs.evolve(
            current, status=new, attempts=attempts, next_attempt_at=next_at,
            last_status=status, last_error=error, last_attempt_at=at,
            delivered_at=at if ok else None, lease=None))
        uow.commit()
    return new


# -- replay and the log ----------------------------------------------------------------------------


def replay(env: Environment, *, delivery_id: str | None = None, event_id: str | None = None,
           tenant_id: str | None = None, since: datetime | None = None) -> tuple[str, ...]:
    """Put deliveries back to pending, due now, their attempts reset, so they are sent again:
    one (``delivery_id``), an event's (``event_id``: one per endpoint it went to), or the
    tenant's whose event was written at or after ``since`` (``tenant_id`` and ``since``).
    Returns the ids replayed (a delivery being sent right now is replayed all the same: its
    outcome is then not recorded)."""
    given = [delivery_id is not None, event_id is not None, since is not None]
    if sum(given) != 1:
        raise InvalidInputError("delivery_id", "give one of delivery_id, event_id or since")
    at = env.now()
    with env.store.unit_of_work(read_only=True) as uow:
        if delivery_id is not None:
            check_name(delivery_id, "delivery_id")
            one = uow.get_record(DELIVERIES, delivery_id)
            found = [] if one is None or not env.sees(one.tenant_id) else [one]
            if not found:
                raise InvalidInputError("delivery_id", "must be the id of a webhook delivery",
                                        delivery_id)
        elif event_id is not None:
            check_name(event_id, "event_id")
            every = uow.find_records(ENDPOINTS, tenant_id=env.tenant_id)
            found = [d for d in (uow.get_record(DELIVERIES, delivery_key(event_id, e.id))
                                 for e in every) if d is not None]
        else:
            if tenant_id is None:
                raise InvalidInputError("tenant_id", "must be given with since")
            check_name(tenant_id, "tenant_id")
            start = require_aware(since, "since")
            found = [d for d in uow.find_records(DELIVERIES, tenant_id=tenant_id)
                     if d.event_at >= start] if env.sees(tenant_id) else []
    return _reset(env, found, at)


def _reset(env: Environment, found: Sequence[WebhookDelivery], at: datetime
           ) -> tuple[str, ...]:
    if not found:
        return ()
    with env.store.unit_of_work() as uow:
        uow.lock_wallets(sorted({d.wallet_id for d in found}))
        for tenant_id in sorted({d.tenant_id for d in found}):
            authorize(uow, None, "replay_webhooks", tenant_id, default=env.principal)
        for listed in found:
            current = uow.get_record(DELIVERIES, listed.id) or listed
            uow.put_record(DELIVERIES, attrs.evolve(
                current, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=at,
                delivered_at=None, lease=None))
        uow.commit()
    return tuple(d.id for d in found)


def deliveries(env: Environment, tenant_id: str, *, status: str | None = None,
               limit: int = 100) -> list[WebhookDelivery]:
    """The tenant's deliveries (of one ``status``: ``pending``, ``delivered``, ``failed``), by
    their next attempt (a delivered or failed one: its last), at most ``limit``."""
    check_name(tenant_id, "tenant_id")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError("limit", "must be a positive int", limit)
    tag = None
    if status is not None:
        if status not in {s.value for s in DeliveryStatus}:
            raise InvalidInputError("status", "must be pending, delivered or failed", status)
        tag = status
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        return uow.find_records(DELIVERIES, tenant_id=tenant_id, tag=tag, limit=limit)
