"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the library raises becomes one problem object: ``type`` (a URN naming the error,
``urn:prepaid-wallet:error:<code>``), ``title``, ``status``, ``detail`` (the error's message),
``instance`` (the request's id) and the extensions ``code`` (the error class's name in snake
case, e.g. ``insufficient_funds``), ``field`` and ``rule`` for bad input, and the values a
refusal carries (a refused spend's ``decision`` with its ``shortfall`` and
``suggested_top_up``; a value named like one of the problem's own members is named after the
object the refusal is about: a hold's ``hold_status``). An unexpected error is a 500 that says
nothing of its cause (it is logged with the request id). A secret is never part of one: the
API key never reaches the library, and the value of a bad field is not echoed.
"""

from __future__ import annotations

import re
from typing import Any

from prepaid_wallet import wire
from prepaid_wallet.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PrepaidWalletError,
    RefusedError,
    SpendDeniedError,
    StorageError,
)

__all__ = ["MEDIA_TYPE", "STATUS", "code_of", "problem", "problem_of"]

MEDIA_TYPE = "application/problem+json"

#: The HTTP status of each kind of error (the most specific class listed wins).
STATUS: tuple[tuple[type[PrepaidWalletError], int], ...] = (
    (InvalidInputError, 422),
    (NotFoundError, 404),
    (RefusedError, 402),
    (ConflictError, 409),
    (PermissionDeniedError, 403),
    (StorageError, 503),
    (IntegrityError, 500),
)

_TITLES = {400: "Bad request", 401: "Unauthorized", 402: "Refused", 403: "Forbidden",
           404: "Not found", 405: "Method not allowed", 409: "Conflict",
           413: "Request too large", 415: "Unsupported media type",
           422: "Invalid input", 500: "Internal error", 503: "Unavailable"}


def code_of(error_type: type[BaseException]) -> str:
    """The error's code: its class name in snake case, without ``Error``."""
    name = error_type.__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def problem(status: int, code: str, detail: str, request_id: str,
            **extensions: Any) -> dict[str, Any]:
    """A problem object."""
    return {"type": f"urn:prepaid-wallet:error:{code}", "title": _TITLES.get(status, "Error"),
            "status": status, "detail": detail, "instance": f"urn:request:{request_id}",
            "code": code, **extensions}


#: The members every problem has; a refusal's value of the same name is renamed.
_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "code"})


def _extension(error: RefusedError, name: str) -> str:
    """The member a refusal's value ``name`` is answered as: its own name, or for a name a
    problem already has (a hold's ``status``, a rule's ``detail``) that name after the object
    the refusal names (``hold_status``, ``wallet_detail``)."""
    if name not in _MEMBERS:
        return name
    subject = error.fields[0].removesuffix("_id") if error.fields[0].endswith("_id") else "refusal"
    return f"{subject}_{name}"


def problem_of(error: PrepaidWalletError, request_id: str) -> dict[str, Any]:
    """The problem object of a library error."""
    status = next((s for t, s in STATUS if isinstance(error, t)), 500)
    extensions: dict[str, Any] = {}
    if isinstance(error, InvalidInputError):
        extensions = {"field": error.field, "rule": error.rule}
    elif isinstance(error, SpendDeniedError):
        extensions = {"decision": wire.encode(error.decision), "action": error.action}
    elif isinstance(error, RefusedError):
        extensions = {_extension(error, name): wire.encode(getattr(error, name))
                      for name in error.fields}
    elif isinstance(error, ConflictError | NotFoundError):
        extensions = {k: wire.encode(v) for k, v in vars(error).items()
                      if k in ("fields", "id", "wallet_id") and not k.startswith("_")}
    detail = str(error) if status != 500 else "an internal error; see the server's log"
    return problem(status, code_of(type(error)), detail, request_id, **extensions)
