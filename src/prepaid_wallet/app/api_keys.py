"""API keys: what authenticates a request to the HTTP API, as the store keeps it, and its
lifecycle (create, list, rotate, revoke, authenticate).

A key belongs to a tenant and holds roles; a request made with it runs as the key's
:class:`~prepaid_wallet.actors.Actor` (id: the key's id, roles: the key's roles), so the
library's authorizer checks those roles against the tenant's access policy like any actor's.

The secret a user receives is ``pwk_<key id>_<64 hex digits>``: 256 random bits from
:mod:`secrets`, after the key's id so that :func:`authenticate` finds the key by one
primary-key read, never a scan. The store keeps only the SHA-256 digest of the whole secret
(never the secret), compared with :func:`hmac.compare_digest`. A plain, unsalted SHA-256 is
right here: the secret is random and 256 bits long, not a password a person chose, so there is
no dictionary to try and nothing a slow, salted hash would protect better; and it keeps
authentication cheap.

A rotation gives the key a new secret; the old one keeps working until ``now + grace`` (the
``previous`` digest and the instant it stops), so clients can be moved over without a gap. A
key has at most one previous secret: rotating again during a grace period ends the older one at
once. A revoked key never authenticates again and is never rotated.

Each function is its own unit of work on the store and does not go through the command
pipeline: a result that holds a secret must never be kept in an idempotency record. Every
change of a key (creating, rotating, revoking) also writes a :class:`ApiKeyChange` that holds
the key's next generation as its unique value, so two changes of one key at once never both
commit (on PostgreSQL the later raises ``ConflictError``: a rotation cannot undo a revocation
that committed first, nor two rotations hand out two secrets of which one silently stops
working); on SQLite and in memory write units run one at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from prepaid_wallet.actors import Actor, check_roles
from prepaid_wallet.app.checks import check_optional_text
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.errors import (
    ApiKeyNotFoundError,
    ApiKeyStateError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.ids import check_name

__all__ = [
    "API_KEYS",
    "API_KEY_CHANGES",
    "SECRET_PREFIX",
    "ApiKey",
    "ApiKeyChange",
    "StoredApiKey",
    "authenticate",
    "create_key",
    "list_keys",
    "revoke_key",
    "rotate_key",
]

#: What every secret starts with (easy to recognise in a leaked log or a secret scanner).
SECRET_PREFIX = "pwk_"
#: Random bytes in a secret: 32 (256 bits), written as 64 hex digits.
_RANDOM_BYTES = 32
#: A secret: the prefix, the key's id (a name, see ``check_name``), ``_`` and 64 hex digits.
_SECRET = re.compile(r"pwk_([A-Za-z0-9][A-Za-z0-9._@+\-]{0,127})_([0-9a-f]{64})")
_ROLES_RULE = ("must be a non-empty set of role names (1-128 ASCII letters, digits or"
               " . _ @ + -)")


def _roles(value: object) -> frozenset[str]:
    """``value`` as a non-empty frozenset of role names; else ``InvalidInputError`` naming
    ``roles``."""
    roles = check_roles(value, "roles", _ROLES_RULE)
    if not roles:
        raise InvalidInputError("roles", _ROLES_RULE, value)
    return roles


def _digest(secret: str) -> str:
    """The SHA-256 hex digest of ``secret`` (see the module docstring: not a password hash,
    on purpose)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@attrs.frozen(kw_only=True)
class ApiKey:
    """An API key as users see it: no secret, no digest.

    ``id`` (``key_...``), the ``tenant_id`` it belongs to, its ``name`` (a label, or None),
    its ``roles``, ``created_at``; ``rotated_at``, when it was last given a new secret (None:
    never), ``previous_until``, until when the secret before the last rotation still works
    (None: no such secret), and ``revoked_at`` (None: not revoked)."""

    id: str
    tenant_id: str
    name: str | None
    roles: frozenset[str]
    created_at: datetime
    rotated_at: datetime | None = None
    previous_until: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None

    def actor(self) -> Actor:
        """The actor a request made with this key runs as: the key's id and roles."""
        return Actor(self.id, self.roles)


@attrs.frozen(kw_only=True)
class StoredApiKey:
    """An API key as the store keeps it: the public fields, the SHA-256 hex ``digest`` of its
    secret, the ``previous`` secret's digest (working until ``previous_until``), and its
    ``generation`` (1, then one more per change). The digests are kept out of ``repr``."""

    id: str
    tenant_id: str
    name: str | None
    roles: frozenset[str]
    created_at: datetime
    digest: str = attrs.field(repr=False)
    previous: str | None = attrs.field(default=None, repr=False)
    previous_until: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    generation: int = 1

    def public(self) -> ApiKey:
        """The key as users see it (no digest)."""
        return ApiKey(id=self.id, tenant_id=self.tenant_id, name=self.name, roles=self.roles,
                      created_at=self.created_at, rotated_at=self.rotated_at,
                      previous_until=self.previous_until, revoked_at=self.revoked_at)

    def accepts(self, digest: str, at: datetime) -> bool:
        """Whether a secret of ``digest`` authenticates as this key at ``at``: not revoked,
        and the current secret's, or the previous one's before ``previous_until``. Both
        comparisons always run, in constant time."""
        current = hmac.compare_digest(self.digest, digest)
        previous = self.previous is not None and hmac.compare_digest(self.previous, digest)
        in_grace = self.previous_until is not None and at < self.previous_until
        return self.revoked_at is None and (current or (previous and in_grace))


@attrs.frozen(kw_only=True)
class ApiKeyChange:
    """One change of a key (``action``: ``"create"``, ``"rotate"`` or ``"revoke"``) at ``at``,
    the key's ``generation`` after it; ``id`` is the change's own fresh id."""

    id: str
    key_id: str
    tenant_id: str
    generation: int
    action: str
    at: datetime


#: API keys, by id, found by tenant in creation order.
API_KEYS: RecordType[StoredApiKey] = RecordType(
    kind="api_key",
    type=StoredApiKey,
    key=lambda key: key.id,
    tenant=lambda key: key.tenant_id,
    order=lambda key: sortable_instant(key.created_at),
)

#: Every change of every key, written once; two changes to one generation of a key clash.
API_KEY_CHANGES: RecordType[ApiKeyChange] = RecordType(
    kind="api_key_change",
    type=ApiKeyChange,
    key=lambda change: f"{change.key_id}:{change.generation:010d}:{change.id}",
    tenant=lambda change: change.tenant_id,
    unique=lambda change: f"{change.key_id}:{change.generation}",
    order=lambda change: f"{change.key_id}:{change.generation:010d}",
)


def _new_secret(key_id: str) -> tuple[str, str]:
    """A new secret for the key and its digest."""
    secret = f"{SECRET_PREFIX}{key_id}_{secrets.token_hex(_RANDOM_BYTES)}"
    return secret, _digest(secret)


def _put(env: Environment, uow: UnitOfWork, key: StoredApiKey, action: str,
         at: datetime) -> None:
    """Buffer the key and the change that made it (see the module docstring)."""
    uow.put_record(API_KEYS, key)
    uow.put_record(API_KEY_CHANGES, ApiKeyChange(
        id=env.ids.new("kc"), key_id=key.id, tenant_id=key.tenant_id,
        generation=key.generation, action=action, at=at))


def _scoped(env: Environment, uow: UnitOfWork, key_id: str) -> StoredApiKey:
    """The stored key the service may see; ``ApiKeyNotFoundError`` for an unknown id and for
    another tenant's key alike."""
    found = uow.get_record(API_KEYS, key_id)
    if found is None or not env.sees(found.tenant_id):
        raise ApiKeyNotFoundError(key_id)
    return found


def create_key(env: Environment, tenant_id: str, roles: Iterable[str],
               name: str | None = None) -> tuple[ApiKey, str]:
    """A new key of ``tenant_id`` holding ``roles`` (at least one role name), labelled
    ``name`` (optional text), and its secret -- shown this once: the store keeps only its
    digest. Bad input raises ``InvalidInputError`` naming ``tenant_id``, ``roles`` or
    ``name`` (a scoped service: ``TenantMismatchError`` for another tenant); an id the store
    holds already (an id factory that repeats itself) ``ConflictError``; nothing is written
    then."""
    env.check_tenant(tenant_id)
    checked = _roles(roles)
    label = check_optional_text(name, "name", required=False)
    at = env.now()
    key_id = env.ids.new("key")
    check_name(key_id, "ids")  # the id is part of the secret, found back by _SECRET
    secret, digest = _new_secret(key_id)
    stored = StoredApiKey(id=key_id, tenant_id=tenant_id, name=label, roles=checked,
                          created_at=at, digest=digest)
    with env.store.unit_of_work() as uow:
        if uow.get_record(API_KEYS, key_id) is not None:
            raise ConflictError(f"API key {key_id!r} exists already (the id factory gave an"
                                " id it gave before)")
        _put(env, uow, stored, "create", at)
        uow.commit()
    return stored.public(), secret


def list_keys(env: Environment, tenant_id: str) -> list[ApiKey]:
    """The tenant's keys, revoked ones too, oldest first (no secret, no digest). Another
    tenant than a scoped service's answers as a tenant with none."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        return [key.public() for key in uow.find_records(API_KEYS, tenant_id=tenant_id)]


def _grace(value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidInputError("grace", "must be a timedelta of zero or more", value)
    return value


def rotate_key(env: Environment, key_id: str, grace: timedelta = timedelta(0)) -> str:
    """Give the key a new secret and return it (shown this once). The secret it had keeps
    working until ``now + grace`` (default: it stops at once); one from before an earlier
    rotation stops at once. ``ApiKeyNotFoundError`` for an unknown key (or another tenant's,
    to a scoped service), ``ApiKeyStateError`` for a revoked one, ``InvalidInputError`` naming
    ``key_id`` or ``grace`` for bad input; nothing is written then."""
    check_name(key_id, "key_id")
    grace = _grace(grace)
    at = env.now()
    try:
        until = at + grace
    except OverflowError:
        raise InvalidTimeError("grace", "ends beyond the last representable instant",
                               grace) from None
    secret, digest = _new_secret(key_id)
    with env.store.unit_of_work() as uow:
        found = _scoped(env, uow, key_id)
        if found.revoked_at is not None:
            raise ApiKeyStateError(key_id, "revoked", "rotate")
        keep = bool(grace)
        rotated = attrs.evolve(found, digest=digest, previous=found.digest if keep else None,
                               previous_until=until if keep else None, rotated_at=at,
                               generation=found.generation + 1)
        _put(env, uow, rotated, "rotate", at)
        uow.commit()
    return secret


def revoke_key(env: Environment, key_id: str) -> ApiKey:
    """Revoke the key: neither its secret nor a previous one authenticates again. Revoking a
    revoked key changes nothing and returns it. ``ApiKeyNotFoundError`` for an unknown key (or
    another tenant's, to a scoped service)."""
    check_name(key_id, "key_id")
    at = env.now()
    with env.store.unit_of_work() as uow:
        found = _scoped(env, uow, key_id)
        if found.revoked_at is not None:
            return found.public()
        revoked = attrs.evolve(found, revoked_at=at, generation=found.generation + 1)
        _put(env, uow, revoked, "revoke", at)
        uow.commit()
    return revoked.public()


def _parse(secret: object) -> str | None:
    """The key id a well-formed secret names, else None."""
    if not isinstance(secret, str) or len(secret) > 256:
        return None
    match = _SECRET.fullmatch(secret)
    return None if match is None else match[1]


def authenticate(env: Environment, secret: object) -> ApiKey:
    """The key ``secret`` authenticates as, now: one read-only unit of work reading one record
    by its key. An unknown, malformed, revoked or wrong secret (another tenant's key, to a
    scoped service) raises :class:`~prepaid_wallet.errors.AuthenticationError`, the same
    error with the same message for every one of them, holding no part of the secret."""
    key_id = _parse(secret)
    found: StoredApiKey | None = None
    if key_id is not None:
        at = env.now()
        with env.store.unit_of_work(read_only=True) as uow:
            found = uow.get_record(API_KEYS, key_id)
        if found is not None and (not env.sees(found.tenant_id)
                                  or not found.accepts(_digest(str(secret)), at)):
            found = None
    if found is None:
        raise AuthenticationError()
    return found.public()
