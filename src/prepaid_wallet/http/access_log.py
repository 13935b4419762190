"""Request ids and JSON access logs.

Every request gets an id: the client's ``X-Request-Id`` when it is a short token of letters,
digits, ``.``, ``_`` and ``-``, else a new one; it is answered in ``X-Request-Id``, named in
problems (``instance``) and in the log. Every answered request is one JSON line on the
``prepaid_wallet.http.access`` logger: instant, request id, method, path, status, duration,
tenant and key id -- never a header's value, a query's value or a body, so never a key.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["LOGGER", "STATE", "AccessLog", "request_state"]

LOGGER = "prepaid_wallet.http.access"
#: The key of the request's own state in the ASGI scope: its id, and its principal once known.
STATE = "prepaid_wallet"


def request_state(scope: Any) -> dict[str, Any]:
    """The request's own state (its id, its principal once known)."""
    found = scope.get(STATE)
    if found is None:
        found = scope[STATE] = {"request_id": "-"}
    return typing.cast(dict[str, Any], found)
_TOKEN = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_log = logging.getLogger(LOGGER)

_ASGI = Callable[..., Any]


class AccessLog:
    """ASGI middleware: the request id, then one log line per answered request."""

    def __init__(self, app: _ASGI, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: dict[str, Any], receive: _ASGI, send: _ASGI) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"")
        request_id = (given.decode() if _TOKEN.fullmatch(given)
                      else f"req_{secrets.token_hex(8)}")
        state = scope[STATE] = {"request_id": request_id}
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [
                    *message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if self.enabled and _log.isEnabledFor(logging.INFO):
                principal = state.get("principal")
                _log.info(json.dumps({
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 3),
                    "tenant": getattr(principal, "tenant_id", None),
                    "key": getattr(principal, "key_id", None),
                }, separators=(",", ":")))
