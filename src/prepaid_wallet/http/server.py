"""Running the HTTP API under uvicorn: ``prepaid-wallet serve``.

The server runs ``workers`` processes (uvicorn's supervisor restarts one that dies); each opens
the store itself (:func:`from_environment`, uvicorn's application factory, reads the settings
:func:`serve` put in the environment). On SIGTERM or SIGINT a worker stops accepting
connections, answers the requests in flight (for up to ``graceful_timeout`` seconds), then
closes its store. Access logs are JSON lines on standard error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

__all__ = ["ENV_WEBHOOKS", "from_environment", "serve"]

#: Set by ``serve --webhooks`` (``<interval seconds>;<retry steps in seconds, comma
#: separated>``): each worker delivers webhooks in the background.
ENV_WEBHOOKS = "PREPAID_WALLET_SERVE_WEBHOOKS"
_ENV_DB = "PREPAID_WALLET_DB"
_ENV_SEAL_KEY_FILE = "PREPAID_WALLET_SEAL_KEY_FILE"


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("prepaid_wallet.http",):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def from_environment() -> Any:
    """The application of one worker: the store ``$PREPAID_WALLET_DB`` names (sealed with
    the key in ``$PREPAID_WALLET_SEAL_KEY_FILE``, if set)."""
    from prepaid_wallet.http.app import create_app
    from prepaid_wallet.storage import open_store

    _logging()
    seal_key = None
    if os.environ.get(_ENV_SEAL_KEY_FILE):
        from prepaid_wallet.cli.framework import read_seal_key

        seal_key = read_seal_key(os.environ[_ENV_SEAL_KEY_FILE])
    store = open_store(os.environ[_ENV_DB], seal_key=seal_key)
    startup: list[Any] = []
    shutdown: list[Any] = []
    if os.environ.get(ENV_WEBHOOKS):
        from prepaid_wallet.http.background import Deliveries

        interval, _, schedule = os.environ[ENV_WEBHOOKS].partition(";")
        deliveries = Deliveries(store, interval=float(interval), retry_schedule=tuple(
            timedelta(seconds=float(step)) for step in schedule.split(",") if step) or None)
        startup.append(deliveries.start)
        shutdown.append(deliveries.stop)
    shutdown.append(store.close)  # after the requests in flight and the deliveries
    return create_app(store, on_startup=tuple(startup), on_shutdown=tuple(shutdown))


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          graceful_timeout: float = 30.0, webhooks: bool = False,
          webhook_interval: float = 5.0, retry_schedule: Sequence[timedelta] = (),
          seal_key_file: str | None = None) -> None:
    """Serve the store at ``url`` until stopped (SIGTERM/SIGINT: graceful). With
    ``webhooks``, each worker also delivers webhooks every ``webhook_interval`` seconds
    (failed attempts tried again after ``retry_schedule``, default the library's)."""
    try:
        import uvicorn
    except ImportError as error:
        from prepaid_wallet.errors import MissingExtraError

        raise MissingExtraError("uvicorn", "server", "the HTTP API") from error
    os.environ[_ENV_DB] = url
    if seal_key_file:
        os.environ[_ENV_SEAL_KEY_FILE] = seal_key_file
    os.environ.pop(ENV_WEBHOOKS, None)
    if webhooks:
        steps = ",".join(str(step.total_seconds()) for step in retry_schedule)
        os.environ[ENV_WEBHOOKS] = f"{webhook_interval};{steps}"
    uvicorn.run(
        "prepaid_wallet.http.server:from_environment", factory=True, host=host, port=port,
        workers=workers, timeout_graceful_shutdown=max(1, round(graceful_timeout)),
        access_log=False, log_level="warning", lifespan="on", server_header=False,
    )
