"""How one HTTP request runs one operation of the catalogue: authenticate, read the arguments
from the path, the query, the body and the headers, call the service of the key's tenant, and
answer the result (JSON, a page of a list, or a stream) or a problem."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import queue
import threading
import types
import typing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
from litestar import Request, Response
from litestar.concurrency import sync_to_thread
from litestar.response import Stream

from prepaid_wallet import wire
from prepaid_wallet.actors import Actor
from prepaid_wallet.catalogue import Operation, Param
from prepaid_wallet.errors import (
    AuthenticationError,
    InvalidInputError,
    PrepaidWalletError,
    StorageError,
)
from prepaid_wallet.http.access_log import request_state
from prepaid_wallet.http.openapi import DEFAULT_LIMIT, MAX_LIMIT, is_list, stream_item
from prepaid_wallet.http.problems import MEDIA_TYPE, problem, problem_of

__all__ = ["JSON", "MAX_BODY", "Principal", "Routes", "answer_problem", "dumps"]

JSON = "application/json"
_log = logging.getLogger("prepaid_wallet.http")


@attrs.frozen
class Principal:
    """Who a request is from: the API key's ``key_id``, its tenant and its roles (the actor
    of the commands it runs: id the key's id)."""

    key_id: str
    tenant_id: str
    roles: frozenset[str]

    @property
    def actor(self) -> Actor:
        """The actor commands run as."""
        return Actor(self.key_id, self.roles)


#: Turns the secret of an ``Authorization: Bearer`` header into a principal, or raises
#: ``AuthenticationError``.
Authenticator = Callable[[str], Principal]


class Unauthenticated(Exception):
    """No valid key: answered 401 (the text never contains the key)."""


class AuthenticationFailed(Exception):
    """Checking a key failed unexpectedly: answered 500; says only the kind of error."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"checking an API key failed unexpectedly ({kind})")


def dumps(data: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def answer_problem(body: dict[str, Any], headers: Mapping[str, str] | None = None,
                   ) -> Response[bytes]:
    """A problem answer."""
    return Response(dumps(body), status_code=body["status"], media_type=MEDIA_TYPE,
                    headers=dict(headers or {}))


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInputError("body", "must be a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidInputError("body", "must be a JSON object")
    return data


def _from_query(tp: Any, text: str, field: str) -> Any:
    """A query parameter's text as a value of ``tp``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = arms[0] if len(arms) == 1 else tp
    if tp is int:
        if not text.lstrip("-").isdigit() or not text.isascii():
            raise InvalidInputError(field, "must be an integer", text)
        return int(text)
    if tp is bool:
        if text not in ("true", "false"):
            raise InvalidInputError(field, "must be true or false", text)
        return text == "true"
    return wire.decode(tp, text, field)


def _decode(param: Param, value: Any) -> Any:
    """A request's value of ``param``: a path segment as it is, a query parameter's text, or
    a body field's JSON."""
    if param.where == "path":
        return value
    if param.where == "query":
        return _from_query(param.type, value, param.name)
    return wire.decode(param.type, value, param.name)


def _cursor_text(value: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(dumps(value)).decode().rstrip("=")


def _cursor(text: str | None) -> Mapping[str, Any] | None:
    if text is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        data = None
    if not isinstance(data, dict) or not (isinstance(data.get("after"), str)
                                          or isinstance(data.get("at"), int)):
        raise InvalidInputError("cursor", "must be a next_cursor this API returned", text)
    return data


def _page(items: list[Any], cursor: Mapping[str, Any] | None,
          limit: int) -> tuple[list[Any], str | None]:
    """The page of ``items`` after ``cursor``: by the last item's id where items have ids
    (stable while items are added), else by position."""
    start = 0
    if cursor is not None:
        if "after" in cursor:
            ids = [getattr(item, "id", None) for item in items]
            if cursor["after"] not in ids:
                raise InvalidInputError("cursor", "names an item no longer listed",
                                        cursor["after"])
            start = ids.index(cursor["after"]) + 1
        else:
            start = max(0, cursor["at"])
    page = items[start:start + limit]
    if start + limit >= len(items) or not page:
        return page, None
    last = page[-1]
    ident = getattr(last, "id", None)
    return page, _cursor_text({"after": ident} if isinstance(ident, str)
                              else {"at": start + limit})


class Routes:
    """The operations' endpoint logic, shared by every route: ``service_for(principal)``
    gives the service of a key (scoped to its tenant, run by it), ``authenticate`` the key's
    principal."""

    def __init__(self, service_for: Callable[[Principal], Any],
                 authenticate: Authenticator) -> None:
        self.service_for = service_for
        self.authenticate = authenticate

    def principal(self, request: Request[Any, Any, Any]) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("send an API key: Authorization: Bearer <key>")
        try:
            return self.authenticate(secret.strip())
        except AuthenticationError:
            raise Unauthenticated("the API key is not valid") from None
        except PrepaidWalletError:
            raise
        except Exception as error:
            # Whatever went wrong, its text and traceback may hold the secret: neither is
            # kept, only the kind of error.
            raise AuthenticationFailed(type(error).__name__) from None

    def arguments(self, op: Operation, request: Request[Any, Any, Any], raw: bytes,
                  principal: Principal) -> dict[str, Any]:
        """The call's keyword arguments, decoded; ``InvalidInputError`` for bad ones."""
        body = _json_body(raw) if op.method == "POST" else {}
        query = request.query_params
        known = {p.name for p in op.params if p.where == "query"}
        if is_list(op.result):
            known |= {"limit", "cursor"}
        if stream_item(op.result) is not None:
            known.add("format")
        for name in query:
            if name not in known:
                raise InvalidInputError(name, "is not a parameter of this operation")
        body_names = {p.name for p in op.params if p.where == "body"}
        for name in body:
            if name not in body_names:
                raise InvalidInputError(name, "is not a field of this operation")
        given = {**body, **{p.name: query[p.name] for p in op.params
                            if p.where == "query" and p.name in query},
                 **{p.name: request.path_params[p.name] for p in op.params
                    if p.where == "path"}}
        return op.bind(given, _decode, tenant_id=principal.tenant_id,
                       actor=principal.actor, key=request.headers.get("idempotency-key"))

    async def answer(self, op: Operation, request: Request[Any, Any, Any]) -> Response[Any]:
        """Run ``op`` for ``request`` and answer."""
        state = request_state(request.scope)
        request_id = state["request_id"]
        try:  # a key is checked in the store: on a worker thread, like every store call
            principal = await sync_to_thread(self.principal, request)
        except StorageError as error:
            return answer_problem(problem_of(error, request_id))
        except Unauthenticated as error:
            return answer_problem(problem(401, "unauthenticated", str(error), request_id),
                                  {"WWW-Authenticate": 'Bearer realm="prepaid-wallet"'})
        state["principal"] = principal
        try:
            raw = await _body(request) if op.method == "POST" else b""
        except _TooLarge:
            return answer_problem(problem(
                413, "request_too_large", f"the body is larger than {MAX_BODY} bytes",
                request_id))
        try:
            arguments = self.arguments(op, request, raw, principal)
            service = self.service_for(principal)
            item = stream_item(op.result)
            if item is not None:
                return await self._stream(op, service, arguments, request)
            result = await sync_to_thread(op.call, service, arguments)
            data = self._encode(op, result, request)
        except PrepaidWalletError as error:
            body = problem_of(error, request_id)
            if body["status"] == 500:
                _log.error("request %s: %s failed", request_id, op.name, exc_info=error)
            return answer_problem(body)
        return Response(dumps(data), status_code=200, media_type=JSON)

    def _encode(self, op: Operation, result: Any, request: Request[Any, Any, Any]) -> Any:
        if not is_list(op.result):
            return wire.encode(result)
        query = request.query_params
        own_limit = any(p.name == "limit" for p in op.params)
        limit = DEFAULT_LIMIT if own_limit else _limit(query.get("limit"))
        page, following = _page(list(result), _cursor(query.get("cursor")),
                                len(result) if own_limit else limit)
        return {"items": [wire.encode(item) for item in page], "next_cursor": following}

    async def _stream(self, op: Operation, service: Any, arguments: dict[str, Any],
                      request: Request[Any, Any, Any]) -> Response[Any]:
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise InvalidInputError("format", "must be jsonl or csv", fmt)
        chunks = _Chunks(lambda: op.call(service, arguments), fmt)
        chunks.start()
        first = await chunks.first()  # an error before the first line is answered as one
        media = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return Stream(chunks.read(first), media_type=media)


#: The largest request body read, in bytes (a larger one is answered 413 unread).
MAX_BODY = 1_000_000


class _TooLarge(Exception):
    pass


async def _body(request: Request[Any, Any, Any]) -> bytes:
    """The request's body, read up to :data:`MAX_BODY` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    value = _from_query(int, text, "limit")
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInputError("limit", f"must be from 1 to {MAX_LIMIT}", value)
    return typing.cast(int, value)


#: Lines per chunk a stream hands from its reading thread to the answer.
_CHUNK_LINES = 200


class _Chunks:
    """A stream read on a thread of its own (a stream holds a read-only unit of work, which
    belongs to the thread that opened it), handed over in chunks through a bounded queue:
    memory stays bounded however long the stream, and a client that goes away stops it."""

    def __init__(self, open_stream: Callable[[], Any], fmt: str) -> None:
        self._open = open_stream
        self._fmt = fmt
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _lines(self, result: Any) -> Iterator[str]:
        if self._fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            header: list[str] | None = None
            for item in result:
                data = _flat(wire.encode(item), item)
                if header is None:
                    header = list(data)
                    writer.writerow(header)
                writer.writerow([data.get(name, "") for name in header])
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        else:
            for item in result:
                data = wire.encode(item)
                if hasattr(item, "total_after"):
                    data["total_after"] = wire.encode(item.total_after)
                yield json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"

    def _run(self) -> None:
        try:
            result = self._open()
            close = getattr(result, "close", None)
            try:
                buffer: list[str] = []
                for line in self._lines(result):
                    buffer.append(line)
                    if len(buffer) >= _CHUNK_LINES:
                        if not self._put("".join(buffer).encode()):
                            return
                        buffer = []
                    if self._stop.is_set():
                        return
                if buffer and not self._put("".join(buffer).encode()):
                    return
            finally:
                if close is not None:
                    close()
            self._put(None)
        except BaseException as error:  # handed to the answer, which ends the stream
            self._put(error)

    async def first(self) -> bytes | None:
        """The first chunk (None: the stream is empty); raises what opening the stream
        raised."""
        item = await sync_to_thread(self._queue.get)
        if isinstance(item, BaseException):
            self._stop.set()
            raise item
        return item

    async def read(self, first: bytes | None) -> AsyncIterator[bytes]:
        try:
            if first is None:
                return
            yield first
            while True:
                item = await sync_to_thread(self._queue.get)
                if item is None:
                    return
                if isinstance(item, BaseException):
                    _log.error("a stream failed", exc_info=item)
                    return
                yield item
        finally:
            self._stop.set()


def _flat(data: Any, item: Any) -> dict[str, Any]:
    """A record's columns for CSV: money as two columns (``x`` and ``x_currency``), nested
    values as JSON text."""
    row: dict[str, Any] = {}
    if hasattr(item, "total_after"):
        data = {**data, "total_after": wire.encode(item.total_after)}
    for name, value in data.items():
        if isinstance(value, dict) and set(value) == {"amount", "currency"}:
            row[name] = value["amount"]
            row[f"{name}_currency"] = value["currency"]
        elif isinstance(value, dict | list):
            row[name] = json.dumps(value, separators=(",", ":"))
        else:
            row[name] = "" if value is None else value
    return row
