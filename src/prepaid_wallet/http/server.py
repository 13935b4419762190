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
from typing import Any

__all__ = ["ENV_WEBHOOKS", "from_environment", "serve"]

#: Set to ``1`` by ``serve --webhooks``: each worker delivers webhooks in the background.
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
    return create_app(store, on_shutdown=(store.close,))


def serve(url: str, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          graceful_timeout: float = 30.0, webhooks: bool = False,
          seal_key_file: str | None = None) -> None:
    """Serve the store at ``url`` until stopped (SIGTERM/SIGINT: graceful)."""
    try:
        import uvicorn
    except ImportError as error:
        from prepaid_wallet.errors import MissingExtraError

        raise MissingExtraError("uvicorn", "server", "the HTTP API") from error
    os.environ[_ENV_DB] = url
    if seal_key_file:
        os.environ[_ENV_SEAL_KEY_FILE] = seal_key_file
    os.environ[ENV_WEBHOOKS] = "1" if webhooks else "0"
    uvicorn.run(
        "prepaid_wallet.http.server:from_environment", factory=True, host=host, port=port,
        workers=workers, timeout_graceful_shutdown=max(1, round(graceful_timeout)),
        access_log=False, log_level="warning", lifespan="on", server_header=False,
    )
