"""Seals: the proof each stored row carries that the library wrote it as it is (private).

The journal proves itself: every entry's hash covers its content and its wallets' previous
entries. Every other row the library keeps -- wallets, lots, holds, charges, idempotency
records, condition groups, events and records -- carries a *seal* in its ``seal`` column, over
what the row holds:

* without a key, ``sha256:<hex>``, the SHA-256 of the row's canonical text: it catches a row
  edited by anyone who does not also recompute the seal (a careless script, a restore that
  mixed two copies, a manual fix-up);
* with a key (:class:`SealKey`, from the host), ``hmac-sha256:<key id>:<hex>``, an HMAC-SHA256
  with the host's secret: whoever can write the database but cannot read the key cannot seal a
  row they changed. A wallet's seal covers its head (the hash of its latest entry), so a
  wallet's whole chain is sealed through it: a forged or deleted entry changes the head.

The canonical text of a row is the compact JSON array ``[table, value, ...]`` of the row as
:class:`~prepaid_wallet.storage._rows.Rows` maps it for SQLite (amounts in minor units,
instants in microseconds since the Unix epoch, lists as JSON text), whatever the backend: a
seal means the same on every store, and a copy between stores keeps it. What a row's seal
leaves out is what the database itself computes and ``verify`` recomputes from the rest (a
lot's ``due_at``, an event's sequence and acknowledgement instant).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

import attrs

from prepaid_wallet.errors import InvalidInputError

__all__ = ["SealKey", "Sealer", "check_seal_key", "row_text"]

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_encode = _encoder.encode
# The JSON module's C encoder, as ``_encoder.encode`` makes it for every list it encodes, made
# once (without the check for a list that contains itself: a row's values are flat).
_make_chunks: Any = getattr(json.encoder, "c_make_encoder", None)
_chunks: Any = None if _make_chunks is None else _make_chunks(
    None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)


def row_text(values: Sequence[Any]) -> str:
    """``json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)``: the canonical
    text of a row's values, written by the JSON module's C encoder directly (what
    ``json.dumps`` runs, without building it and its Python wrapper for every row)."""
    if _chunks is None:  # pragma: no cover - a Python without the json module's C part
        return _encode(list(values))
    return "".join(_chunks(list(values), 0))


@attrs.frozen(repr=False)
class SealKey:
    """The host's secret for sealing rows: ``key_id`` names it (stored with every seal, so a
    store sealed with one key is never read as sealed with another) and ``secret`` is at least
    32 bytes. The secret never appears in a seal, an error or a ``repr``."""

    key_id: str
    secret: bytes

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key_id, str) or not self.key_id or ":" in self.key_id \
                or not self.key_id.isprintable() or len(self.key_id) > 64:
            raise InvalidInputError("key_id", "must be 1 to 64 printable characters, no ':'")
        if not isinstance(self.secret, bytes) or len(self.secret) < 32:
            raise InvalidInputError("secret", "must be at least 32 bytes")

    def __repr__(self) -> str:
        return f"SealKey(key_id={self.key_id!r}, secret=<hidden>)"

    @classmethod
    def from_text(cls, text: str) -> SealKey:
        """The key written as ``<key id>:<secret in hexadecimal>`` (at least 64 hexadecimal
        digits), e.g. one line of a key file; surrounding white space is ignored.
        ``InvalidInputError`` naming ``seal_key`` otherwise (the text is never repeated)."""
        key_id, sep, secret = text.strip().partition(":") if isinstance(text, str) else ("", "", "")
        try:
            raw = bytes.fromhex(secret)
        except ValueError:
            raw = b""
        if not sep or len(raw) < 32:
            raise InvalidInputError(
                "seal_key", "must be '<key id>:<at least 64 hexadecimal digits>'")
        return cls(key_id, raw)


def check_seal_key(value: object, field: str = "seal_key") -> SealKey | None:
    """``value`` if it is a :class:`SealKey` or ``None``; ``InvalidInputError`` naming
    ``field`` otherwise (never repeating what it was: it may be a secret)."""
    if value is not None and not isinstance(value, SealKey):
        raise InvalidInputError(field, "must be a SealKey or None")
    return value


class Sealer:
    """Computes and checks seals, with the host's key or without one."""

    def __init__(self, key: SealKey | None = None) -> None:
        self._key = key
        self.prefix = "sha256:" if key is None else f"hmac-sha256:{key.key_id}:"

    @property
    def key_id(self) -> str | None:
        """The id of the key seals are made with (``None``: unkeyed)."""
        return None if self._key is None else self._key.key_id

    def seal(self, table: str, row: Sequence[Any]) -> str:
        """The seal of ``row`` (its canonical values) of ``table``."""
        text = row_text([table, *row]).encode()
        if self._key is None:
            return self.prefix + hashlib.sha256(text).hexdigest()
        return self.prefix + hmac.new(self._key.secret, text, hashlib.sha256).hexdigest()

    def check(self, table: str, row: Sequence[Any], seal: object) -> str | None:
        """What is wrong with ``seal`` as the seal of ``row``, or ``None``."""
        if not isinstance(seal, str) or not seal:
            return "carries no seal"
        if not seal.startswith(self.prefix):
            kind = seal.split(":", 2)
            if kind[0] == "hmac-sha256" and len(kind) == 3:
                return f"is sealed with key {kind[1]!r}, not with {self.key_id or 'no key'}"
            return ("is not sealed with the key" if self._key is not None
                    else "carries a seal this library does not make")
        if not hmac.compare_digest(seal, self.seal(table, row)):
            return "does not match its seal"
        return None
