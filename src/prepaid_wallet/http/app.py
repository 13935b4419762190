"""The ASGI application: every operation of the catalogue as a route, health and readiness,
the OpenAPI document, problem answers, request ids and JSON access logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, route
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPI, Operation, SecurityScheme, Tag

from prepaid_wallet.app.ports import Store
from prepaid_wallet.catalogue import Operation as CatalogueOperation
from prepaid_wallet.catalogue import catalogue
from prepaid_wallet.http.access_log import AccessLog, request_state
from prepaid_wallet.http.openapi import PROBLEM, operation_spec
from prepaid_wallet.http.problems import problem
from prepaid_wallet.http.routes import Authenticator, Principal, Routes, answer_problem

__all__ = ["API_VERSION", "build_document", "create_app", "key_authenticator"]

API_VERSION = "1"
_log = logging.getLogger("prepaid_wallet.http")


@dataclass
class _Config(OpenAPIConfig):
    """Litestar's OpenAPI configuration, with the schemas of the library's values (made by
    :func:`prepaid_wallet.wire.schema`) added to the document's components."""

    schemas: dict[str, Any] = field(default_factory=dict)

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        schemas = self.schemas

        class _Document(OpenAPI):
            def to_schema(self) -> dict[str, Any]:
                data = super().to_schema()
                components = data.setdefault("components", {})
                components["schemas"] = {**components.get("schemas", {}), **schemas}
                return data

        return _Document(**{f.name: getattr(base, f.name) for f in fields(base)})


def _operation_class(spec: dict[str, Any]) -> type[Operation]:
    class _Generated(Operation):
        def to_schema(self) -> dict[str, Any]:
            return spec

    return _Generated


def _litestar_path(path: str) -> str:
    return path.replace("}", ":str}")


def build_document(ops: tuple[CatalogueOperation, ...] | None = None,
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each operation's OpenAPI operation object (by name) and the schemas they refer to."""
    defs: dict[str, Any] = {}
    specs = {op.name: operation_spec(op, defs) for op in (ops or catalogue())}
    defs["Problem"] = PROBLEM
    return specs, dict(sorted(defs.items()))


def key_authenticator(store: Store, **options: Any) -> Authenticator:
    """Authenticate with the API keys kept in ``store`` (``prepaid-wallet key create``)."""
    from prepaid_wallet.service import WalletService

    service = WalletService(store, **options)

    def authenticate(secret: str) -> Principal:
        key = service.authenticate(secret)
        return Principal(key.id, key.tenant_id, frozenset(key.roles))

    return authenticate


def create_app(
    store: Store,
    *,
    authenticate: Authenticator | None = None,
    service_options: Mapping[str, Any] | None = None,
    on_startup: tuple[Callable[[], None], ...] = (),
    on_shutdown: tuple[Callable[[], None], ...] = (),
    access_log: bool = True,
    debug: bool = False,
) -> AccessLog:
    """The HTTP API over ``store`` as an ASGI application.

    Every request carries an API key (``Authorization: Bearer <key>``), bound to one tenant
    and a set of roles: the request runs on a service scoped to that tenant (another tenant's
    objects answer exactly like missing ones) and commands run with the key as their actor
    (its roles go through the tenant's access policy). ``authenticate`` turns a key into a
    :class:`~prepaid_wallet.http.routes.Principal` (default: the keys kept in the store);
    ``service_options`` are passed to every :class:`~prepaid_wallet.service.WalletService`
    (a clock, a gateway...). ``on_startup``/``on_shutdown`` run when the server starts and
    stops (after the requests in flight have been answered).

    The result is the Litestar application (``.app``) wrapped in the request ids and access
    log (:class:`~prepaid_wallet.http.access_log.AccessLog`); mount either.
    """
    from prepaid_wallet.service import WalletService

    options = dict(service_options or {})
    services: dict[Principal, Any] = {}
    lock = threading.Lock()

    def service_for(principal: Principal) -> Any:
        # One service per key: scoped to its tenant, the key its actor (also for the commands
        # that take no actor of their own, such as open_wallet).
        found = services.get(principal)
        if found is None:
            with lock:
                found = services.get(principal)
                if found is None:
                    found = services[principal] = WalletService(
                        store, tenant_id=principal.tenant_id, actor=principal.actor,
                        **options)
        return found

    routes = Routes(service_for, authenticate or key_authenticator(store, **options))
    specs, defs = build_document()
    handlers: list[Any] = []
    ops = catalogue()
    for op in ops:
        handlers.append(_endpoint(routes, op, specs[op.name]))

    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", include_in_schema=False)
    async def ready() -> Response[Any]:
        from litestar.concurrency import sync_to_thread

        def probe() -> None:
            with store.unit_of_work(read_only=True):
                pass

        try:
            await sync_to_thread(probe)
        except Exception:
            _log.exception("readiness probe failed")
            return Response({"status": "unavailable"}, status_code=503,
                            media_type=MediaType.JSON)
        return Response({"status": "ready"}, media_type=MediaType.JSON)

    tags = sorted({op.tag for op in ops})
    config = _Config(
        title="prepaid_wallet",
        version=API_VERSION,
        description="Prepaid customer credit: wallets, award lots, holds and spends "
                    "explained by an append-only double-entry journal.",
        tags=[Tag(name=tag) for tag in tags],
        schemas=defs,
        components=Components(
            security_schemes={"apiKey": SecurityScheme(
                type="http", scheme="bearer",
                description="An API key made by `prepaid-wallet key create`.")},
        ),
        path="/schema",
    )

    def not_http(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        request_id = request_state(request.scope)["request_id"]
        status = error.status_code if isinstance(error, HTTPException) else 500
        if status == 500:
            _log.error("request %s failed", request_id, exc_info=error)
        detail = (error.detail if isinstance(error, HTTPException)
                  else "an internal error; see the server's log")
        code = {404: "no_such_route", 405: "method_not_allowed",
                500: "internal"}.get(status, "http_error")
        return answer_problem(problem(status, code, detail, request_id))

    app = Litestar(
        route_handlers=[*handlers, health, ready],
        openapi_config=config,
        exception_handlers={HTTPException: not_http, Exception: not_http},
        on_startup=list(on_startup),
        on_shutdown=[*on_shutdown],
        debug=debug,
    )
    return AccessLog(app, enabled=access_log)


def _endpoint(routes: Routes, op: CatalogueOperation, spec: dict[str, Any]) -> Any:
    async def endpoint(request: Request[Any, Any, Any]) -> Response[Any]:
        return await routes.answer(op, request)

    endpoint.__name__ = op.name
    return route(_litestar_path(op.path), http_method=[HttpMethod(op.method)], name=op.name,
                 operation_class=_operation_class(spec))(endpoint)
