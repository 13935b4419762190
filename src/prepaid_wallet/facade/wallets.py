"""Opening wallets and what the host attaches to them: owner groups, a wallet's own limits.

Part of :class:`~prepaid_wallet.service.WalletService` (see :mod:`prepaid_wallet.facade`):
each method builds a command and runs it, or calls one query or job, and does nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.facade import Facade

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from prepaid_wallet.money import Money
    from prepaid_wallet.rules.limits import Limits
    from prepaid_wallet.wallet import Wallet

__all__ = ["Wallets"]


class Wallets(Facade):
    """Wallets: open one, read them, the owner's groups and a wallet's own limits."""

    # -- wallets ----------------------------------------------------------------------------

    def open_wallet(
        self,
        *,
        owner_id: str,
        tenant_id: str,
        currency: str,
        floor: Money | None = None,
        metadata: Mapping[str, str] | None = None,
        owner_groups: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Wallet:
        """Open an empty wallet for ``owner_id`` at ``tenant_id`` in ``currency``.

        ``floor`` (zero or negative, in ``currency``; default: the tenant's default floor for
        ``currency``, ``TenantRules.default_floors``, else zero) is the lowest the open
        balance may go. One owner has at most one wallet per tenant and currency
        (``DuplicateWalletError``); the same owner at two tenants has two wallets. When the
        tenant has a :class:`WelcomeAward` in ``currency``, it is granted in the same unit of
        work and the wallet is returned with it. ``owner_groups`` are the classifications the
        host attaches to the owner (names; fee rules may apply to some groups only).
        """
        from prepaid_wallet.app.commands import OpenWallet

        return self._run(OpenWallet(
            owner_id=owner_id, tenant_id=tenant_id, currency=currency, floor=floor,
            metadata=metadata, owner_groups=owner_groups, idempotency_key=idempotency_key))

    def get_wallet(self, wallet_id: str) -> Wallet:
        """The wallet's current state; ``WalletNotFoundError`` if unknown."""
        from prepaid_wallet.app.queries.wallet import get_wallet

        return get_wallet(self._env, wallet_id)

    def find_wallet(self, *, tenant_id: str, owner_id: str, currency: str) -> Wallet | None:
        """The owner's wallet at the tenant in the currency, or None (also for a tenant a scoped
        service does not serve)."""
        from prepaid_wallet.app.queries.wallet import find_wallet

        return find_wallet(self._env, tenant_id=tenant_id, owner_id=owner_id, currency=currency)

    def wallets(self, tenant_id: str | None = None) -> list[Wallet]:
        """Every wallet (of one tenant), by id. For very many, :meth:`iter_wallets`."""
        from prepaid_wallet.app.queries.wallet import wallets

        return wallets(self._env, tenant_id)

    def iter_wallets(self, tenant_id: str | None = None) -> Iterator[Wallet]:
        """:meth:`wallets` read lazily, a page at a time from one snapshot, in bounded memory.
        Bad arguments raise at the call. The snapshot's unit of work stays open while
        iterating: open no other unit of work on the same thread meanwhile."""
        from prepaid_wallet.app.queries.wallet import iter_wallets

        return iter_wallets(self._env, tenant_id)

    def set_owner_groups(self, wallet_id: str, owner_groups: Iterable[str]) -> frozenset[str]:
        """Replace the groups the owner of the wallet belongs to (names; empty removes them).
        Fee rules limited to some groups follow the change from the next operation on."""
        from prepaid_wallet.app.commands import SetOwnerGroups

        return self._run(SetOwnerGroups(wallet_id=wallet_id, owner_groups=owner_groups))

    def owner_groups(self, wallet_id: str) -> frozenset[str]:
        """The groups the owner of the wallet belongs to."""
        from prepaid_wallet.app.queries.wallet import owner_groups

        return owner_groups(self._env, wallet_id)

    def set_limits(self, wallet_id: str, limits: Limits | None) -> Limits:
        """Give the wallet its own limits on top of the tenant's: an override replaces the
        tenant rule of the same operation and window, adds new ones, and may lower the maximum
        balance -- only ever stricter (a looser override raises ``InvalidInputError`` naming
        ``limits`` and what is looser). Only a tenant with limits of its own
        (``TenantRules.limits``) has wallet overrides: its wallets' operations are the only ones
        that read them. ``None`` removes the overrides. Returns the wallet's effective
        limits."""
        from prepaid_wallet.app.commands import SetLimits

        return self._run(SetLimits(wallet_id=wallet_id, limits=limits))

    def limits(self, wallet_id: str) -> Limits:
        """The wallet's effective limits: the tenant's, with the wallet's overrides."""
        from prepaid_wallet.app.queries.wallet import limits

        return limits(self._env, wallet_id)

