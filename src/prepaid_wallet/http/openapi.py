"""The OpenAPI 3.1 description of every operation, generated from the catalogue.

Each operation's parameters, body and result are described by :func:`prepaid_wallet.wire.schema`
from the same type hints the requests are decoded with and the answers encoded with, so the
document cannot drift from what the server does. ``docs/openapi.json`` is this document, written
by ``prepaid-wallet openapi`` (a test fails when it differs).
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from prepaid_wallet import wire
from prepaid_wallet.catalogue import Operation, Param
from prepaid_wallet.http.problems import MEDIA_TYPE

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PROBLEM", "is_list", "is_stream", "operation_spec",
           "stream_item"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "field": {"type": "string"},
        "rule": {"type": "string"},
    },
}

_ERRORS = {
    "401": "No valid API key (Authorization: Bearer <key>)",
    "403": "The key's roles may not run this operation for its tenant",
    "404": "No such object for the key's tenant",
    "409": "A conflict: an idempotency key reused for another request, a duplicate",
    "422": "Invalid input; the problem names the field and the rule",
    "503": "The store is unavailable",
}


def is_list(tp: Any) -> bool:
    """Whether results of ``tp`` are lists (answered a page at a time)."""
    return typing.get_origin(tp) is list


def stream_item(tp: Any) -> Any:
    """The type of the items a streamed result yields, or None for a result that is not
    streamed (a statement stream, an iterator)."""
    from prepaid_wallet.results import StatementLine, StatementStream

    if tp is StatementStream:
        return StatementLine
    if typing.get_origin(tp) is Iterator:
        return typing.get_args(tp)[0]
    return None


def is_stream(tp: Any) -> bool:
    """Whether results of ``tp`` are streamed."""
    return stream_item(tp) is not None


def _parameter(param: Param, where: str, defs: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": param.name, "in": where, "required": where == "path" or param.required,
        "schema": wire.schema(param.type, defs, inbound=True)}
    if where == "query" and param.default is not None and not param.required:
        encoded = wire.encode(param.default)
        if isinstance(encoded, str | int | bool):
            found["schema"] = {**found["schema"], "default": encoded}
    return found


def _paging(op: Operation) -> Iterator[dict[str, Any]]:
    if all(p.name != "limit" for p in op.params):
        yield {"name": "limit", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                          "default": DEFAULT_LIMIT}}
    yield {"name": "cursor", "in": "query", "required": False,
           "schema": {"type": "string"},
           "description": "The next_cursor of the page before; absent: the first page."}


def operation_spec(op: Operation, defs: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation object of ``op``; the schemas it refers to are added to ``defs``."""
    parameters = [_parameter(p, "path", defs) for p in op.params if p.where == "path"]
    parameters += [_parameter(p, "query", defs) for p in op.params if p.where == "query"]
    if op.param("key") is not None:
        parameters.append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "Run the command at most once: a retry with the same key and body "
                           "answers the same status and body; another body is a conflict.",
        })
    spec: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary or op.name,
        "description": op.description,
        "tags": [op.tag],
        "security": [{"apiKey": []}],
    }
    body = [p for p in op.params if p.where == "body"]
    if body:
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {p.name: wire.schema(p.type, defs, inbound=True) for p in body},
            "required": [p.name for p in body if p.required],
            "additionalProperties": False,
        }}}}
    item = stream_item(op.result)
    if item is not None:
        parameters.append({"name": "format", "in": "query", "required": False,
                           "schema": {"enum": ["jsonl", "csv"], "default": "jsonl"}})
        ok: dict[str, Any] = {"description": "Streamed, one line at a time", "content": {
            "application/x-ndjson": {"schema": wire.schema(item, defs)},
            "text/csv": {"schema": {"type": "string"}},
        }}
    elif is_list(op.result):
        parameters.extend(_paging(op))
        ok = {"description": "One page", "content": {"application/json": {"schema": {
            "type": "object", "required": ["items", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "items": wire.schema(op.result, defs),
                "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }}}}
    else:
        ok = {"description": "The result",
              "content": {"application/json": {"schema": wire.schema(op.result, defs)}}}
    responses: dict[str, Any] = {"200": ok}
    errors = dict(_ERRORS)
    if op.write:
        errors["402"] = "Refused by the business rules (not enough credit, a limit...)"
    for status in sorted(errors):
        responses[status] = {"description": errors[status], "content": {
            MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    spec["responses"] = responses
    if parameters:
        spec["parameters"] = parameters
    return spec
