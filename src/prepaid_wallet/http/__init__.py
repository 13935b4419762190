"""The HTTP API (the ``server`` extra): every operation of the library over HTTP with JSON.

``prepaid-wallet serve --db URL`` runs it under uvicorn; :func:`create_app` builds the ASGI
application for a host that runs it its own way. The routes are generated from the library's
own definitions (:mod:`prepaid_wallet.catalogue`): a new command is a new route. See
docs/http.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prepaid_wallet.http.app import create_app as create_app
    from prepaid_wallet.http.routes import Principal as Principal

__all__ = ["Principal", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from prepaid_wallet.errors import MissingExtraError

        try:
            from prepaid_wallet.http import app, routes
        except ImportError as error:  # litestar or uvicorn missing
            raise MissingExtraError(error.name or "litestar", "server",
                                    "the HTTP API") from error
        return app.create_app if name == "create_app" else routes.Principal
    raise AttributeError(name)
