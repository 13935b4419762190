"""The commands of webhooks: ``webhook add`` (prints the signing secret), ``webhook list``,
``webhook remove``, ``webhook deliver`` (one fan-out and delivery pass), ``webhook log`` and
``webhook replay``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _OnFirstUse
from prepaid_wallet.cli.output import _instant, _iso, _listing
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.app.outbox import WebhookEndpoint
    from prepaid_wallet.app.webhooks import WebhookDelivery

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")

#: The statuses ``webhook log --status`` takes.
_STATUSES = ("pending", "delivered", "failed")


def _endpoint_row(endpoint: WebhookEndpoint) -> tuple[str, ...]:
    return (endpoint.id, "enabled" if endpoint.enabled else "disabled",
            ",".join(endpoint.kinds) or "*", endpoint.url)


def _add(ctx: _Context) -> ExitCode:
    args = ctx.args
    endpoint = ctx.service.add_webhook_endpoint(args.tenant, args.url, kinds=args.kind)
    if ctx.json:
        ctx.emit({**_codec.to_data(endpoint), "secret": endpoint.secret})
    else:
        ctx.table([("endpoint", endpoint.id), ("url", endpoint.url),
                   ("kinds", ", ".join(endpoint.kinds) or "every kind"),
                   ("secret", endpoint.secret or "-")])
        ctx.line("keep the secret: it is not shown again")
    return ExitCode.OK


def _list(ctx: _Context) -> ExitCode:
    found = ctx.service.webhook_endpoints(ctx.args.tenant)
    return _listing(ctx, found, "no webhook endpoints", ("ENDPOINT", "STATE", "KINDS", "URL"),
                    _endpoint_row)


def _remove(ctx: _Context) -> ExitCode:
    endpoint = ctx.service.remove_webhook_endpoint(ctx.args.endpoint)
    if ctx.json:
        ctx.emit(_codec.to_data(endpoint))
    else:
        ctx.table([("endpoint", endpoint.id), ("state", "disabled")])
    return ExitCode.OK


def _deliver(ctx: _Context) -> ExitCode:
    report = ctx.service.deliver_webhooks(limit=ctx.args.limit)
    if ctx.json:
        ctx.emit(_codec.to_data(report))
    else:
        ctx.table([("fanned out", str(report.fanned_out)),
                   ("delivered", str(len(report.delivered))),
                   ("to retry", str(len(report.retried))),
                   ("failed", str(len(report.failed)))])
    return ExitCode.OK


def _delivery_row(delivery: WebhookDelivery) -> tuple[str, ...]:
    answer = (str(delivery.last_status) if delivery.last_status is not None
              else delivery.last_error or "-")
    return (delivery.id, delivery.kind, delivery.status.value, str(delivery.attempts),
            _iso(delivery.next_attempt_at), answer)


def _log(ctx: _Context) -> ExitCode:
    args = ctx.args
    found = ctx.service.webhook_deliveries(args.tenant, status=args.status, limit=args.limit)
    return _listing(ctx, found, "no webhook deliveries",
                    ("DELIVERY", "KIND", "STATUS", "ATTEMPTS", "NEXT/LAST", "ANSWER"),
                    _delivery_row)


def _replay(ctx: _Context) -> ExitCode:
    args = ctx.args
    if args.since is not None and args.tenant is None:
        raise InvalidInputError("tenant_id", "must be given with --since")
    if args.tenant is not None and args.since is None:
        raise InvalidInputError("since", "must be given with --tenant")
    replayed = ctx.service.replay_webhooks(
        delivery_id=args.delivery, event_id=args.event, tenant_id=args.tenant,
        since=_instant(args.since, "since"))
    if ctx.json:
        ctx.emit({"replayed": list(replayed)})
    else:
        ctx.line(f"replayed {len(replayed)} deliveries" if replayed else "nothing to replay")
        for delivery_id in replayed:
            ctx.line(f"  {delivery_id}")
    return ExitCode.OK


# -- arguments -------------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("webhook add", _add, _ONE,
                  help="register an endpoint of a tenant (prints its signing secret)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the tenant whose events it receives")
    p.add_argument("--url", required=True, help="an http or https URL")
    p.add_argument("--kind", action="append",
                   help="an event kind it wants (repeat; default: every kind)")


@COMMANDS.command("webhook list", _list, help="a tenant's endpoints (without secrets)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the tenant")


@COMMANDS.command("webhook remove", _remove, _ONE, help="disable an endpoint")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("endpoint", metavar="ID", help="the endpoint's id")


@COMMANDS.command("webhook deliver", _deliver, _ONE,
                  help="one pass: events into deliveries, then the due ones sent")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=100,
                   help="send at most this many deliveries (default 100)")


@COMMANDS.command("webhook log", _log, help="a tenant's deliveries")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the tenant")
    p.add_argument("--status", choices=_STATUSES, help="only deliveries in this status")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


@COMMANDS.command("webhook replay", _replay, _ONE,
                  help="send deliveries again (one, an event's, or a tenant's since an instant)")
def _(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--delivery", help="one delivery's id")
    which.add_argument("--event", help="an event's id: its delivery to each endpoint")
    which.add_argument("--since", help="the tenant's events written at or after this instant"
                       " (ISO 8601; with --tenant)")
    p.add_argument("--tenant", help="the tenant (with --since)")
