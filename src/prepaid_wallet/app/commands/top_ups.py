"""The commands of customer top-ups: start one, report the provider's answer, book a
chargeback; and the lock spec of a command that names a customer top-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.checks import (
    check_optional_text,
    check_positive,
)
from prepaid_wallet.app.commands import _HANDLERS
from prepaid_wallet.app.pipeline import (
    Command,
    Locked,
    LockSpec,
)
from prepaid_wallet.app.tenant_rules import WITH_LOCKS
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import Money
from prepaid_wallet.results import TopUpReport

if TYPE_CHECKING:
    from prepaid_wallet.app.environment import Environment
    from prepaid_wallet.app.ports import UnitOfWork
    from prepaid_wallet.rules.topup import ChargeOutcome
    from prepaid_wallet.rules.topup.customer import CustomerTopUp

__all__ = [
    "ChargeBackTopUp",
    "CustomerTopUpWallet",
    "ReportTopUp",
    "StartTopUp",
]


# -- customer top-ups -----------------------------------------------------------------------------


@attrs.frozen
class CustomerTopUpWallet(LockSpec):
    """The wallet of the customer top-up the command names (``InvalidInputError`` naming the
    attribute when it is unknown or, for a scoped service, another tenant's)."""

    attribute: str = "top_up_id"
    #: The argument an unknown id is reported as, and what it must be.
    field: str = "top_up_id"
    rule: str = "must be the id of a customer top-up"

    def lock(self, env: Environment, uow: UnitOfWork, command: Any) -> Locked:
        from prepaid_wallet.app.customer_top_ups import customer_top_up

        top_up_id = getattr(command, self.attribute)
        found = None
        if isinstance(top_up_id, str) and top_up_id:
            found = customer_top_up(env, uow, top_up_id)
        if found is None:
            raise InvalidInputError(self.field, self.rule, top_up_id)
        wallets = uow.lock_wallets([found.wallet_id], tenant_records=WITH_LOCKS)
        return Locked(wallets, found.tenant_id)


class _ReturnsCustomerTopUp(Command["CustomerTopUp"]):
    """A command that returns a customer top-up."""

    @property
    def result(self) -> type[CustomerTopUp]:
        """The stored outcome's type, imported only when an outcome is replayed."""
        from prepaid_wallet.rules.topup.customer import CustomerTopUp

        return CustomerTopUp


@attrs.frozen(kw_only=True)
class StartTopUp(_ReturnsCustomerTopUp):
    """Start a customer top-up of ``amount`` paid with ``method``: pending, no money moved."""

    operation: ClassVar[str] = "start_top_up"
    handler: ClassVar[str] = f"{_HANDLERS}.customer_top_up:start_top_up"

    wallet_id: str
    amount: Money
    method: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_name(self.wallet_id, "wallet_id")
        check_positive(self.amount)
        check_name(self.method, "method")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"wallet_id": self.wallet_id, "amount": self.amount, "method": self.method,
                "metadata": metadata}


@attrs.frozen(kw_only=True)
class ReportTopUp(Command[TopUpReport]):
    """The provider's ``outcome`` of the customer top-up ``top_up_id`` (what
    ``WalletService.report_charge`` runs for a key that names a customer top-up)."""

    operation: ClassVar[str] = "report_top_up"
    locks: ClassVar[LockSpec] = CustomerTopUpWallet(
        "top_up_id", "idempotency_key",
        "must be the key of a top-up attempt or the id of a customer top-up")
    handler: ClassVar[str] = f"{_HANDLERS}.customer_top_up:report_top_up"
    #: It takes no idempotency key: a report is idempotent by the top-up's own state.
    result: ClassVar[Any] = None

    top_up_id: str
    outcome: ChargeOutcome

    def validate(self) -> None:
        from prepaid_wallet.rules.topup import ChargeOutcome

        if not isinstance(self.outcome, ChargeOutcome):
            raise InvalidInputError("outcome", "must be a ChargeOutcome", self.outcome)


@attrs.frozen(kw_only=True)
class ChargeBackTopUp(_ReturnsCustomerTopUp):
    """Book the provider taking back ``amount`` (None: all that is left) of a customer top-up
    (a dispute lost): out of the open balance, below the floor if need be."""

    operation: ClassVar[str] = "charge_back_top_up"
    locks: ClassVar[LockSpec] = CustomerTopUpWallet("top_up_id")
    handler: ClassVar[str] = f"{_HANDLERS}.customer_top_up:charge_back_top_up"

    top_up_id: str
    amount: Money | None = None
    reason: str
    idempotency_key: str | None = None
    actor: Actor | str | None = None
    metadata: Mapping[str, str] | None = None

    def validate(self) -> None:
        check_name(self.top_up_id, "top_up_id")
        if self.amount is not None:
            check_positive(self.amount)
        check_optional_text(self.reason, "reason")

    def request(self, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"top_up_id": self.top_up_id, "amount": self.amount, "reason": self.reason,
                "metadata": metadata}
