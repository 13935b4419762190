"""The faces for programs: ``serve`` (the HTTP API), ``openapi`` (its description) and
``call`` (any operation of the catalogue, JSON in and out). See docs/http.md."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family


def _serve(ctx: _Context) -> ExitCode:
    from prepaid_wallet.http.server import serve

    ctx.service.store.close()  # the store must exist (exit 3 otherwise); each worker opens it
    args = ctx.args
    from prepaid_wallet.cli.output import _duration

    schedule = tuple(_duration(step, "--webhook-retries")
                     for step in (args.webhook_retries or "").split(",") if step)
    serve(ctx.url, host=args.host, port=args.port, workers=args.workers,
          graceful_timeout=args.graceful_timeout, webhooks=args.webhooks,
          webhook_interval=args.webhook_interval, retry_schedule=schedule,
          seal_key_file=getattr(args, "seal_key_file", None))
    return ExitCode.OK


def document() -> dict[str, Any]:
    """The OpenAPI document of the HTTP API, as the server answers it."""
    from litestar import Litestar

    from prepaid_wallet.http.app import create_app
    from prepaid_wallet.storage.memory import MemoryStore

    app = create_app(MemoryStore(), authenticate=lambda secret: None,  # type: ignore[arg-type,return-value]
                     access_log=False).app
    assert isinstance(app, Litestar)
    schema = app.openapi_schema.to_schema()
    return schema


def _openapi(ctx: _Context) -> ExitCode:
    ctx.out.write(json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return ExitCode.OK


def _call(ctx: _Context) -> ExitCode:
    from prepaid_wallet import wire
    from prepaid_wallet.catalogue import catalogue
    from prepaid_wallet.errors import InvalidInputError

    ops = {op.name: op for op in catalogue()}
    if ctx.args.operation == "list":
        for op in ops.values():
            ctx.line(f"{op.name.ljust(28)} {op.method:4} {op.path}  {op.summary}")
        return ExitCode.OK
    found = ops.get(ctx.args.operation)
    if found is None:
        raise InvalidInputError("operation", "must be an operation 'call list' lists",
                                ctx.args.operation)
    op = found
    text = ctx.args.arguments
    if text == "-":
        text = sys.stdin.read()
    try:
        given = json.loads(text or "{}", parse_float=Decimal)
    except ValueError:
        raise InvalidInputError("arguments", "must be a JSON object") from None
    if not isinstance(given, dict):
        raise InvalidInputError("arguments", "must be a JSON object")
    names = {p.name for p in op.params if p.where in ("path", "body", "query")}
    for name in given:
        if name not in names:
            raise InvalidInputError(name, "is not an argument of this operation")
    if ctx.args.tenant is None and any(p.where == "tenant" and p.required for p in op.params):
        raise InvalidInputError("--tenant", "is required by this operation")
    arguments = op.bind(given, lambda p, value: wire.decode(p.type, value, p.name),
                        tenant_id=ctx.args.tenant, actor=ctx.actor,
                        key=ctx.args.idempotency_key)
    result = op.call(ctx.service, arguments)
    if hasattr(result, "close") and hasattr(result, "__iter__"):
        with result:
            for item in result:
                ctx.emit(wire.encode(item))
        return ExitCode.OK
    ctx.emit(wire.encode(result))
    return ExitCode.OK


COMMANDS = _Family()


@COMMANDS.command("serve", _serve)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=8000, help="the port to listen on")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, how long to let requests in flight finish")
    p.add_argument("--webhooks", action="store_true",
                   help="also deliver webhooks in the background (each worker)")
    p.add_argument("--webhook-interval", type=float, default=5.0, metavar="SECONDS",
                   help="with --webhooks: seconds between delivery passes (default 5)")
    p.add_argument("--webhook-retries", metavar="DURATIONS",
                   help="with --webhooks: when to try a failed delivery again, e.g."
                        " 30s,2m,10m,1h (the last repeats; default the library's schedule)")


@COMMANDS.command("openapi", _openapi)
def _(p: argparse.ArgumentParser) -> None:
    del p


@COMMANDS.command("call", _call, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("operation", help="the operation ('list': every operation)")
    p.add_argument("arguments", nargs="?", default=None,
                   help="its arguments as one JSON object ('-': standard input)")
    p.add_argument("--tenant", help="the tenant, for operations that take one")
    p.add_argument("--actor", help="who runs the command")
    p.add_argument("--role", action="append", help="a role of the actor (repeatable)")
    p.add_argument("--idempotency-key", help="run the command at most once")
