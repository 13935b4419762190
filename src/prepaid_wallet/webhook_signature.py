"""Signing and verifying webhook requests: the ``Prepaid-Wallet-Signature`` header.

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256>``: the HMAC, keyed with the endpoint's
secret (``whsec_...``, as text, UTF-8), of ``"<t>." + <the raw body bytes>``. While a rotated
secret is still accepted, the header carries one ``v1=`` per secret. A receiver recomputes the
HMAC over the body exactly as it arrived (before any JSON parsing), compares it in constant
time, and refuses a timestamp older (or further ahead) than its tolerance, so a captured
request cannot be replayed later::

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    >>> body = b'{"id":"ev_1"}'
    >>> header = sign("whsec_test", body, now)
    >>> header
    't=1767614400,v1=4c6ee31aec2aa9f196b9d90d93b6cae8c8af5bd3a23672d379c7485b256a9252'
    >>> verify_signature("whsec_test", header, body, now)
    >>> verify_signature("whsec_other", header, body, now)
    Traceback (most recent call last):
    ...
    prepaid_wallet.errors.SignatureError: no v1 signature matches the body

This module does no I/O; it is what a receiver written in Python needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidInputError, SignatureError

__all__ = [
    "EVENT_ID_HEADER",
    "EVENT_KIND_HEADER",
    "SIGNATURE_HEADER",
    "SignatureError",
    "sign",
    "signature",
    "verify_signature",
]

#: The header that carries the signature.
SIGNATURE_HEADER = "Prepaid-Wallet-Signature"
#: The header that carries the event's id (the receiver de-duplicates by it).
EVENT_ID_HEADER = "Prepaid-Wallet-Event-Id"
#: The header that carries the event's kind.
EVENT_KIND_HEADER = "Prepaid-Wallet-Event-Kind"

#: How far from now a signature's timestamp may be by default.
DEFAULT_TOLERANCE = timedelta(seconds=300)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` keyed with ``secret``."""
    if not isinstance(secret, str) or not secret:
        raise InvalidInputError("secret", "must be non-empty text", secret)
    if not isinstance(body, bytes):
        raise InvalidInputError("body", "must be bytes (the raw request body)", body)
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, at: datetime) -> str:
    """The ``Prepaid-Wallet-Signature`` header of ``body`` sent at ``at``: one ``v1`` per
    secret given (the current one first)."""
    stamp = int(require_aware(at, "at").timestamp())
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    if not secrets_:
        raise InvalidInputError("secret", "must name at least one secret", secret)
    return ",".join([f"t={stamp}", *(f"v1={signature(s, stamp, body)}" for s in secrets_)])


def verify_signature(secret: str, header: str, body: bytes, now: datetime,
                     tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
    """Check a webhook request: ``header`` (the ``Prepaid-Wallet-Signature`` value) must hold
    a timestamp within ``tolerance`` of ``now`` and a ``v1`` signature of ``body`` (the raw
    bytes received) made with ``secret``. Returns None; raises :class:`SignatureError`
    otherwise."""
    require_aware(now, "now")
    if not isinstance(tolerance, timedelta) or tolerance < timedelta(0):
        raise InvalidInputError("tolerance", "must be a timedelta, not negative", tolerance)
    if not isinstance(header, str):
        raise SignatureError("the signature header is missing")
    stamp: int | None = None
    given: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("the signature header is malformed")
        if name == "t":
            if not value.isdigit():
                raise SignatureError("the signature header's timestamp is not a number")
            stamp = int(value)
        elif name == "v1":
            given.append(value)
    if stamp is None or not given:
        raise SignatureError("the signature header needs t= and v1=")
    if abs(now.timestamp() - stamp) > tolerance.total_seconds():
        raise SignatureError("the signature's timestamp is outside the tolerance")
    expected = signature(secret, stamp, body)
    if not any(hmac.compare_digest(expected, value) for value in given):
        raise SignatureError("no v1 signature matches the body")
