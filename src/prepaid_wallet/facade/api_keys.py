"""API keys, what requests to the HTTP API authenticate with: creating, listing, rotating and
revoking a tenant's keys, and finding the key a secret belongs to (see docs/http.md).

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method calls one function of :mod:`prepaid_wallet.app.api_keys` and does nothing else.
These functions do not go through the command pipeline (a result that holds a secret is never
kept under an idempotency key) and are not authorized by the tenant's access policy: managing
keys is the host's administrative business."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prepaid_wallet.app.api_keys import ApiKey

__all__ = ["ApiKeys"]


class ApiKeys(Facade):
    """A tenant's API keys and authenticating a secret."""

    def create_api_key(self, tenant_id: str, roles: Iterable[str],
                       name: str | None = None) -> tuple[ApiKey, str]:
        """Create a key of ``tenant_id`` holding ``roles`` (at least one role name), labelled
        ``name`` (optional), and return it with its secret (``pwk_<key id>_<64 hex digits>``).
        The secret is shown this once: the store keeps only its SHA-256 digest. Bad input
        raises ``InvalidInputError`` naming ``tenant_id``, ``roles`` or ``name``; a scoped
        service creates keys of its own tenant only (``TenantMismatchError``)."""
        from prepaid_wallet.app.api_keys import create_key

        return create_key(self._env, tenant_id, roles, name)

    def api_keys(self, tenant_id: str) -> list[ApiKey]:
        """The tenant's keys (revoked ones too), oldest first, without secrets or digests."""
        from prepaid_wallet.app.api_keys import list_keys

        return list_keys(self._env, tenant_id)

    def rotate_api_key(self, key_id: str, grace: timedelta = timedelta(0)) -> str:
        """Give the key a new secret and return it (shown this once). The current secret keeps
        working for ``grace`` more (default: none, it stops at once); a secret from before an
        earlier rotation stops at once. ``ApiKeyNotFoundError`` for an unknown key or another
        tenant's (to a scoped service), ``ApiKeyStateError`` for a revoked key."""
        from prepaid_wallet.app.api_keys import rotate_key

        return rotate_key(self._env, key_id, grace)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke the key at once: none of its secrets authenticates again (revoking it again
        changes nothing). ``ApiKeyNotFoundError`` for an unknown key or another tenant's."""
        from prepaid_wallet.app.api_keys import revoke_key

        return revoke_key(self._env, key_id)

    def authenticate(self, secret: str) -> ApiKey:
        """The key ``secret`` belongs to, if it works now; else ``AuthenticationError`` (the
        same for an unknown, malformed, revoked or wrong secret, never naming it). Run a
        request's commands as ``key.actor()``: the key's roles are then checked against the
        tenant's access policy. One read-only unit of work, one record read by its key."""
        from prepaid_wallet.app.api_keys import authenticate

        return authenticate(self._env, secret)
