"""Configuration a tenant keeps in versions -- its rules, its access policy -- as the store
keeps it, declared once for every kind.

Each value set for a tenant is one version (1, 2, ...), kept for ever in the kind's
``versions`` record type with the instant, actor, idempotency key, metadata and reason of the
command that set it; the latest version's number and value are also kept in the kind's
``current`` record type under the tenant's id (a small record: a unit of work finds what applies
by one primary-key lookup, and a unit that locks wallets may read it with them). The value is
stored as the canonical JSON text of its ``to_data()``.

Two units that set one tenant's value at once both read version ``n`` and both write version
``n + 1``: each version record has a key of its own (it holds a fresh id) but the unique value
``"<tenant>:<version>"``, so the later commit clashes (``ConflictError``) instead of replacing
the other's version; on SQLite and in memory write units run one at a time, and never clash.

Decoding a stored text is cached per process by the text itself, so a unit pays one lookup and
no decoding for a value it has seen before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from prepaid_wallet.app.ports import RecordType, UnitOfWork

__all__ = ["CurrentVersion", "StoredVersion", "Versioned"]

V = TypeVar("V")

_DECODED_MAX = 256


@attrs.frozen(kw_only=True)
class StoredVersion:
    """One version as the store keeps it: ``id`` its own fresh id (it makes the key of the
    version record), ``data`` the canonical JSON text of the value's ``to_data()``, ``set_at``
    the instant of the command that set it, with its ``actor`` (id), ``idempotency_key``,
    ``metadata`` and ``reason``."""

    id: str
    tenant_id: str
    version: int
    data: str
    set_at: datetime
    actor: str | None = None
    idempotency_key: str | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    reason: str | None = None

    @property
    def pointer(self) -> CurrentVersion:
        """The record that makes this version the tenant's current one."""
        return CurrentVersion(tenant_id=self.tenant_id, version=self.version, id=self.id,
                              data=self.data)

    def described(self) -> dict[str, Any]:
        """Who set it, when, why: the fields every public version class shares."""
        return {"tenant_id": self.tenant_id, "version": self.version, "set_at": self.set_at,
                "actor": self.actor, "idempotency_key": self.idempotency_key,
                "metadata": dict(self.metadata), "reason": self.reason}


@attrs.frozen(kw_only=True)
class CurrentVersion:
    """The tenant's current version as every unit of work reads it: its number, its id (which
    names its version record) and its value (canonical JSON text)."""

    tenant_id: str
    version: int
    id: str
    data: str

    @property
    def version_key(self) -> str:
        """The key of the full version record."""
        return _version_key(self.tenant_id, self.version, self.id)


def _version_key(tenant_id: str, version: int, version_id: str) -> str:
    """The key of a version record: tenant, version (fixed width) and the version's id."""
    return f"{tenant_id}:{version:010d}:{version_id}"


class Versioned(Generic[V]):
    """One kind of versioned tenant configuration: its two record types (``current``, under
    ``kind``; ``versions``, under ``<kind>_version``), the prefix of its versions' ids, and how
    its value is read back from ``to_data()`` (``load``, importing the value's module when
    first called)."""

    def __init__(self, kind: str, prefix: str, load: Callable[[Any], V]) -> None:
        self.prefix = prefix
        self._load = load
        self._decoded: dict[str, V] = {}
        #: The value that applies to each tenant now, under the tenant's id.
        self.current_type: RecordType[CurrentVersion] = RecordType(
            kind=kind,
            type=CurrentVersion,
            key=lambda found: found.tenant_id,
            tenant=lambda found: found.tenant_id,
        )
        #: Every version of every tenant's value, written once, by version.
        self.versions_type: RecordType[StoredVersion] = RecordType(
            kind=f"{kind}_version",
            type=StoredVersion,
            key=lambda stored: _version_key(stored.tenant_id, stored.version, stored.id),
            tenant=lambda stored: stored.tenant_id,
            unique=lambda stored: f"{stored.tenant_id}:{stored.version}",
            order=lambda stored: f"{stored.version:010d}",
        )

    @staticmethod
    def encode(value: Any) -> str:
        """The canonical JSON text ``value`` (anything with ``to_data()``) is stored as."""
        return json.dumps(value.to_data(), sort_keys=True, separators=(",", ":"))

    def decode(self, text: str) -> V:
        """The value stored as ``text`` (decoded once per process per text)."""
        found = self._decoded.get(text)
        if found is None:
            found = self._load(json.loads(text))
            if len(self._decoded) >= _DECODED_MAX:
                self._decoded.clear()
            self._decoded[text] = found
        return found

    def current(self, uow: UnitOfWork, tenant_id: str) -> CurrentVersion | None:
        """The tenant's current version, if any (one primary-key lookup)."""
        return uow.get_record(self.current_type, tenant_id)

    def value(self, uow: UnitOfWork, tenant_id: str) -> V | None:
        """The tenant's current value as ``uow`` sees it (None: it never set one)."""
        found = self.current(uow, tenant_id)
        return None if found is None else self.decode(found.data)

    def current_version(self, uow: UnitOfWork, tenant_id: str) -> StoredVersion | None:
        """The tenant's current version in full (who set it, when), if any."""
        found = self.current(uow, tenant_id)
        return None if found is None else uow.get_record(self.versions_type, found.version_key)

    def all_current(self, uow: UnitOfWork, tenant_id: str | None = None
                    ) -> list[CurrentVersion]:
        """The current version of every tenant that has one (or of ``tenant_id`` only), by
        tenant id."""
        if tenant_id is not None:
            found = self.current(uow, tenant_id)
            return [] if found is None else [found]
        return uow.find_records(self.current_type)

    def versions(self, uow: UnitOfWork, tenant_id: str) -> list[StoredVersion]:
        """Every version of the tenant's value, oldest first."""
        return uow.find_records(self.versions_type, tenant_id=tenant_id)

    def store(self, uow: UnitOfWork, tenant_id: str, value: Any, *, version_id: Callable[[], str],
              set_at: datetime, actor: str | None, idempotency_key: str | None,
              metadata: Mapping[str, str], reason: str | None) -> StoredVersion:
        """Buffer ``value`` as the tenant's next version (its id from ``version_id``) and make
        it the current one; the current version itself, and nothing written, when its value is
        equal."""
        found = self.current(uow, tenant_id)
        if found is not None and self.decode(found.data) == value:
            same = uow.get_record(self.versions_type, found.version_key)
            if same is not None:
                return same
        stored = StoredVersion(
            id=version_id(), tenant_id=tenant_id,
            version=1 if found is None else found.version + 1, data=self.encode(value),
            set_at=set_at, actor=actor, idempotency_key=idempotency_key,
            metadata=dict(metadata), reason=reason,
        )
        uow.put_record(self.versions_type, stored)
        uow.put_record(self.current_type, stored.pointer)
        return stored
