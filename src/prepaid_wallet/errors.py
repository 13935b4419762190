"""Every exception the library raises, under one root: :class:`PrepaidWalletError`.

The tree is grouped by what a caller does about an error:

* :class:`InvalidInputError` (also a :class:`ValueError`) -- the request itself is wrong; fix it.
  Carries ``field`` (the argument or attribute at fault) and ``rule`` (what it broke). Invalid
  input is never stored under an idempotency key.
* :class:`NotFoundError` (also a :class:`LookupError`) -- a wallet, lot, hold or entry is unknown,
  or there is no store where one was to be opened without creating it.
* :class:`RefusedError` -- a valid request the business rules refuse (not enough credit, a hold
  that was already captured, a refund beyond the original). A refusal is stored under its
  idempotency key and replays as the same refusal.
* :class:`ConflictError` -- the request collides with another one (an idempotency key reused
  for a different request, a concurrent update, a duplicate wallet).
* :class:`PermissionDeniedError` -- the actor may not run the operation for the tenant (its
  access policy, or roles the command requires); nothing is written.
* :class:`AuthenticationError` -- an API key's secret is not one that works (unknown,
  malformed, revoked or wrong: one message for all, never naming the secret).
* :class:`StorageError` -- the store failed or refused (driver errors are translated into it).
* :class:`IntegrityError` -- a ledger rule would be broken (an unbalanced entry); a bug, never a
  business outcome.
* :class:`SignatureError` (also a :class:`ValueError`) -- a webhook request whose signature
  does not verify (:func:`prepaid_wallet.webhook_signature.verify_signature`); ``reason`` says
  why. Refuse the request.
* :class:`MissingExtraError` (also an :class:`ImportError`) -- a capability needs a package of an
  optional extra that is not installed; install the extra.

Every error leaves the store exactly as it was before the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# This module imports nothing from the package (every other module imports it), so the values
# an error carries -- a Money, a Decision -- are typed Any here; each docstring names the type.

__all__ = [
    "AlreadyReversedError",
    "ApiKeyNotFoundError",
    "ApiKeyStateError",
    "AuthenticationError",
    "ConcurrencyError",
    "ConditionGroupNotFoundError",
    "ConflictError",
    "ContractNotFoundError",
    "ContractStateError",
    "CurrencyMismatchError",
    "DownpaymentNotCoveredError",
    "DuplicateWalletError",
    "EntryNotFoundError",
    "FloorAboveBalanceError",
    "HoldExpiredError",
    "HoldNotFoundError",
    "HoldStateError",
    "IdempotencyConflictError",
    "InexactMoneyError",
    "InsufficientFundsError",
    "IntegrityError",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidInputError",
    "InvalidTimeError",
    "LimitExceededError",
    "LotNotFoundError",
    "MissingExtraError",
    "NoCreditOwedError",
    "NotEligibleError",
    "NotEnoughTimeError",
    "NotFoundError",
    "OrderExpiredError",
    "OrderNotCoveredError",
    "OrderNotFoundError",
    "OrderStateError",
    "PaygPaymentNotFoundError",
    "PaymentStateError",
    "PermissionDeniedError",
    "PrepaidWalletError",
    "RefundExceedsOriginalError",
    "RefusedError",
    "SchemaVersionError",
    "SealKeyError",
    "SignatureError",
    "SpendDeniedError",
    "StaleStateError",
    "StorageError",
    "StoreNotEmptyError",
    "StoreNotFoundError",
    "TenantMismatchError",
    "UnbalancedEntryError",
    "VerificationFailedError",
    "WalletNotFoundError",
]


class PrepaidWalletError(Exception):
    """Root of every exception raised by :mod:`prepaid_wallet`."""


# -- invalid input -------------------------------------------------------------------------------


class InvalidInputError(PrepaidWalletError, ValueError):
    """The request is malformed: ``field`` names the argument, ``rule`` what it must satisfy."""

    def __init__(self, field: str, rule: str, value: object = None) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"{field}: {rule}")


class InvalidAmountError(InvalidInputError):
    """An amount is not acceptable money: a float, NaN, too many decimals, zero where a positive
    amount is needed, or out of range."""


class InexactMoneyError(InvalidAmountError):
    """Arithmetic would lose precision and no rounding mode was given."""


class InvalidCurrencyError(InvalidInputError):
    """A currency code is not an upper-case ISO 4217 code known to babel."""


class InvalidTimeError(InvalidInputError):
    """An instant is naive (no time zone), or in the past where a future one is needed."""


class CurrencyMismatchError(InvalidInputError):
    """Two amounts (or an amount and a wallet) are in different currencies.

    ``left`` and ``right`` are the two currency codes.
    """

    def __init__(self, left: str, right: str, field: str = "currency") -> None:
        self.left = left
        self.right = right
        super().__init__(field, f"currencies must match ({left} != {right})", right)


class TenantMismatchError(InvalidInputError):
    """A call names or pairs tenants it may not: ``expected`` is the tenant it must be,
    ``actual`` the one given.

    Raised when a service scoped to a tenant is asked to create something for another tenant
    by name (``open_wallet``, ``define_condition_group``, ``ack_events``; ``field`` is
    ``tenant_id``), and when an unscoped service pairs two tenants (a ``transfer`` between their
    wallets, one tenant's condition group for another's wallet). Never for an object looked up
    by id: to a scoped service another tenant's wallet, hold, lot, entry or condition group is
    not found, with the same error as an id that does not exist; and a read naming another
    tenant answers as for a tenant with nothing (``find_wallet`` returns None).
    """

    def __init__(self, field: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(field, f"must belong to tenant {expected!r} (it belongs to {actual!r})")


# -- not found -----------------------------------------------------------------------------------


class NotFoundError(PrepaidWalletError, LookupError):
    """Something looked up by id does not exist (or is not visible to the caller)."""

    kind = "object"

    def __init__(self, id: str) -> None:
        self.id = id
        super().__init__(f"{self.kind} {id!r} not found")


class WalletNotFoundError(NotFoundError):
    """No wallet with this id."""

    kind = "wallet"


class LotNotFoundError(NotFoundError):
    """No lot with this id."""

    kind = "lot"


class HoldNotFoundError(NotFoundError):
    """No hold with this id."""

    kind = "hold"


class EntryNotFoundError(NotFoundError):
    """No journal entry with this id."""

    kind = "entry"


class ConditionGroupNotFoundError(NotFoundError):
    """No condition group with this id."""

    kind = "condition group"


class ApiKeyNotFoundError(NotFoundError):
    """No API key with this id (or one of another tenant, to a scoped service)."""

    kind = "API key"


class StoreNotFoundError(NotFoundError):
    """A store was to be opened without creating it (``open_store(url, create=False)``) and
    there is none at ``location``: no such file, or a file or database without the library's
    tables. ``reason`` says which. Nothing was created."""

    kind = "store"

    def __init__(self, location: str, reason: str) -> None:
        self.id = location
        self.location = location
        self.reason = reason
        PrepaidWalletError.__init__(self, f"no store at {location}: {reason}")


# -- business refusals ---------------------------------------------------------------------------


class RefusedError(PrepaidWalletError):
    """A valid request that the business rules refuse. Stored under its idempotency key:
    ``fields`` names the constructor's arguments, in order, each kept as an attribute of the
    same name (so a retry refuses the same way), ``money`` those of them that are
    :class:`~prepaid_wallet.money.Money`."""

    fields: tuple[str, ...] = ()
    money: tuple[str, ...] = ()


class SpendDeniedError(RefusedError):
    """A spend (or hold) was refused; ``decision`` (a :class:`~prepaid_wallet.policies.Decision`)
    says why, with the shortfall and a top-up. ``action`` names what was refused: ``"spend"`` or
    ``"hold"``."""

    def __init__(self, decision: Any, action: str = "spend") -> None:
        self.decision = decision
        self.action = action
        reasons = ", ".join(r.value for r in decision.reasons) or "refused"
        super().__init__(
            f"{action} of {decision.amount} refused ({reasons}); shortfall {decision.shortfall}"
        )


class LimitExceededError(RefusedError):
    """An operation would breach one of the wallet's limits (a count or total per window, or the
    maximum balance). ``operation`` names the kind of operation; ``breaches`` says which limits,
    each with what is left of its allowance, in words."""

    fields: tuple[str, ...] = ("wallet_id", "operation", "breaches")

    def __init__(self, wallet_id: str, operation: str, breaches: Sequence[str]) -> None:
        self.wallet_id = wallet_id
        self.operation = operation
        self.breaches = tuple(breaches)
        super().__init__(
            f"{operation} on wallet {wallet_id!r} refused: limit exceeded "
            f"({'; '.join(self.breaches)})"
        )


class InsufficientFundsError(RefusedError):
    """The wallet cannot give ``requested`` without going below its floor; ``available`` is the
    most it can give (both :class:`~prepaid_wallet.money.Money`)."""

    fields: tuple[str, ...] = ("wallet_id", "requested", "available")
    money: tuple[str, ...] = ("requested", "available")

    def __init__(self, wallet_id: str, requested: Any, available: Any) -> None:
        self.wallet_id = wallet_id
        self.requested = requested
        self.available = available
        super().__init__(
            f"wallet {wallet_id!r}: {requested} requested but only {available} can be taken"
            " without going below the floor"
        )


class HoldStateError(RefusedError):
    """A hold cannot do this in its current ``status`` (it was captured, voided or expired)."""

    fields: tuple[str, ...] = ("hold_id", "status", "action")

    def __init__(self, hold_id: str, status: str, action: str) -> None:
        self.hold_id = hold_id
        self.status = status
        self.action = action
        super().__init__(f"hold {hold_id!r} is {status}; cannot {action}")


class HoldExpiredError(HoldStateError):
    """The hold's window has ended: it can no longer be captured."""

    fields: tuple[str, ...] = ("hold_id", "action")

    def __init__(self, hold_id: str, action: str = "capture") -> None:
        super().__init__(hold_id, "expired", action)


class RefundExceedsOriginalError(RefusedError):
    """Refunds of an entry may add up to at most what it took; ``refundable`` is what is left
    (``requested`` and ``refundable`` are :class:`~prepaid_wallet.money.Money`)."""

    fields: tuple[str, ...] = ("entry_id", "requested", "refundable")
    money: tuple[str, ...] = ("requested", "refundable")

    def __init__(self, entry_id: str, requested: Any, refundable: Any) -> None:
        self.entry_id = entry_id
        self.requested = requested
        self.refundable = refundable
        if refundable.is_zero():
            message = f"entry {entry_id!r}: nothing is left to refund ({requested} requested)"
        else:
            message = (
                f"entry {entry_id!r}: refund of {requested} exceeds the {refundable}"
                " still refundable"
            )
        super().__init__(message)


class AlreadyReversedError(RefusedError):
    """An entry may be reversed at most once; ``reversal_id`` is the entry that reversed it."""

    fields: tuple[str, ...] = ("entry_id", "reversal_id")

    def __init__(self, entry_id: str, reversal_id: str) -> None:
        self.entry_id = entry_id
        self.reversal_id = reversal_id
        super().__init__(f"entry {entry_id!r} was already reversed by {reversal_id!r}")


# -- credit at checkout --------------------------------------------------------------------------


class OrderNotFoundError(NotFoundError):
    """No credit payment for this order id (for this wallet)."""

    kind = "order"


class OrderStateError(RefusedError):
    """An order's credit payment cannot do this in its current ``status`` (``"placed"`` or
    ``"abandoned"``; ``"expired"`` for :class:`OrderExpiredError`)."""

    fields: tuple[str, ...] = ("order_id", "status", "action")

    def __init__(self, order_id: str, status: str, action: str) -> None:
        self.order_id = order_id
        self.status = status
        self.action = action
        super().__init__(f"order {order_id!r} is {status}; cannot {action}")


class OrderExpiredError(OrderStateError):
    """The order's pending credit payment has ended (its hold's window is over): it cannot be
    placed until credit is applied to it again."""

    fields: tuple[str, ...] = ("order_id", "action")

    def __init__(self, order_id: str, action: str = "place") -> None:
        super().__init__(order_id, "expired", action)


class OrderNotCoveredError(RefusedError):
    """In ``CREDIT_ONLY`` mode an order is placed only when credit pays all of it;
    ``remainder_due`` (a :class:`~prepaid_wallet.money.Money`) is what credit does not cover
    (top up at least that much, then apply credit again)."""

    fields: tuple[str, ...] = ("order_id", "remainder_due")
    money: tuple[str, ...] = ("remainder_due",)

    def __init__(self, order_id: str, remainder_due: Any) -> None:
        self.order_id = order_id
        self.remainder_due = remainder_due
        super().__init__(
            f"order {order_id!r} is not covered by credit ({remainder_due} due) and the "
            "payment mode is credit only"
        )


class NoCreditOwedError(RefusedError):
    """The order was not paid more than its total, or what it was owed has already been
    credited (``credited_entry_id``, the entry that did)."""

    fields: tuple[str, ...] = ("order_id", "credited_entry_id")

    def __init__(self, order_id: str, credited_entry_id: str | None = None) -> None:
        self.order_id = order_id
        self.credited_entry_id = credited_entry_id
        done = "" if credited_entry_id is None else f" (credited by {credited_entry_id!r})"
        super().__init__(f"no credit owed on order {order_id!r}{done}")



class ApiKeyStateError(RefusedError):
    """An API key cannot do ``action`` in its ``status`` (a revoked key is never rotated)."""

    fields: tuple[str, ...] = ("key_id", "status", "action")

    def __init__(self, key_id: str, status: str, action: str) -> None:
        self.key_id = key_id
        self.status = status
        self.action = action
        super().__init__(f"API key {key_id!r} is {status}; cannot {action}")


class FloorAboveBalanceError(RefusedError):
    """A wallet's floor cannot be raised to ``floor``: its open balance (``open``) is below it,
    and a wallet is never below its floor (both :class:`~prepaid_wallet.money.Money`)."""

    fields: tuple[str, ...] = ("wallet_id", "floor", "open")
    money: tuple[str, ...] = ("floor", "open")

    def __init__(self, wallet_id: str, floor: Any, open: Any) -> None:
        self.wallet_id = wallet_id
        self.floor = floor
        self.open = open
        super().__init__(f"wallet {wallet_id!r}: floor {floor} is above its open balance {open}")

# -- pay-as-you-go -------------------------------------------------------------------------------


class ContractNotFoundError(NotFoundError):
    """The wallet has no pay-as-you-go contract (the id is the wallet's)."""

    kind = "pay-as-you-go contract"


class PaygPaymentNotFoundError(NotFoundError):
    """No pay-as-you-go payment or conversion transaction with this id on this wallet."""

    kind = "payment"


class NotEligibleError(RefusedError):
    """The customer may not upgrade: ``rule`` is the eligibility rule not met
    (``"performance"``: contract performance not strictly above the threshold; ``"device"``:
    the device is not reported on; ``"service_end"``: service has already ended) and ``detail``
    says by how much."""

    fields: tuple[str, ...] = ("wallet_id", "rule", "detail")

    def __init__(self, wallet_id: str, rule: str, detail: str) -> None:
        self.wallet_id = wallet_id
        self.rule = rule
        self.detail = detail
        super().__init__(f"wallet {wallet_id!r} may not upgrade: {rule} ({detail})")


class ContractStateError(RefusedError):
    """The contract cannot do ``action`` in its ``state`` (e.g. reconverting payments when no
    upgrade waits for its downpayment)."""

    fields: tuple[str, ...] = ("wallet_id", "state", "action")

    def __init__(self, wallet_id: str, state: str, action: str) -> None:
        self.wallet_id = wallet_id
        self.state = state
        self.action = action
        super().__init__(f"contract of wallet {wallet_id!r} is {state}; cannot {action}")


class PaymentStateError(RefusedError):
    """A pay-as-you-go payment cannot be used for ``action`` in its ``status`` (e.g. it was
    already reconverted, or it is still linked to a conversion transaction)."""

    fields: tuple[str, ...] = ("payment_id", "status", "action")

    def __init__(self, payment_id: str, status: str, action: str) -> None:
        self.payment_id = payment_id
        self.status = status
        self.action = action
        super().__init__(f"payment {payment_id!r} is {status}; cannot {action}")


class NotEnoughTimeError(RefusedError):
    """Removing ``needed`` seconds of service would take more than the ``left`` seconds the
    customer still has."""

    fields: tuple[str, ...] = ("wallet_id", "needed", "left")

    def __init__(self, wallet_id: str, needed: int, left: int) -> None:
        self.wallet_id = wallet_id
        self.needed = needed
        self.left = left
        super().__init__(
            f"wallet {wallet_id!r}: {needed} s of service to remove but only {left} s left")


class DownpaymentNotCoveredError(RefusedError):
    """The money offered (``available``: selected payments plus payments already held toward
    it) does not reach upgrade ``upgrade_id``'s ``downpayment``."""

    fields: tuple[str, ...] = ("upgrade_id", "downpayment", "available")
    money: tuple[str, ...] = ("downpayment", "available")

    def __init__(self, upgrade_id: str, downpayment: Any, available: Any) -> None:
        self.upgrade_id = upgrade_id
        self.downpayment = downpayment
        self.available = available
        super().__init__(
            f"upgrade {upgrade_id!r}: {available} does not cover the downpayment {downpayment}")


# -- conflicts -----------------------------------------------------------------------------------


class ConflictError(PrepaidWalletError):
    """The request collides with stored state or with a concurrent request."""


class IdempotencyConflictError(ConflictError):
    """An idempotency key was used before for a different request.

    ``fields`` names every field that differs from the stored request.
    """

    def __init__(self, key: str, fields: Sequence[str]) -> None:
        self.key = key
        self.fields = tuple(fields)
        super().__init__(
            f"idempotency_key {key!r} was used for a different request"
            f" (differs in: {', '.join(self.fields)})"
        )


class ConcurrencyError(ConflictError):
    """A wallet changed between read and write (optimistic version check failed)."""

    def __init__(self, wallet_id: str, expected: int, actual: int) -> None:
        self.wallet_id = wallet_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"wallet {wallet_id!r} was changed concurrently"
            f" (expected version {expected}, found {actual})"
        )


class StaleStateError(ConcurrencyError):
    """An optimistic unit of work -- one that decided on the wallets (and tenant records) its
    store last saw, without locking them first -- found that they had moved before it could
    write: nothing was written, and running the command again is safe. The command pipeline
    does that itself, the locking way; a caller sees this only from a unit it opened with
    ``optimistic_unit_of_work()``. ``wallet_id`` names the wallet that moved (empty when a
    record did), with the version the unit expected and the one found (``-1`` when unknown)."""

    def __init__(self, what: str, wallet_id: str = "", expected: int = -1,
                 actual: int = -1) -> None:
        self.wallet_id = wallet_id
        self.expected = expected
        self.actual = actual
        ConflictError.__init__(
            self, f"{what} moved since the unit's store last saw it; nothing was written")


class DuplicateWalletError(ConflictError):
    """The owner already has a wallet in this currency at this tenant."""

    def __init__(self, tenant_id: str, owner_id: str, currency: str, existing_id: str) -> None:
        self.tenant_id = tenant_id
        self.owner_id = owner_id
        self.currency = currency
        self.existing_id = existing_id
        super().__init__(
            f"owner {owner_id!r} already has a {currency} wallet at tenant {tenant_id!r}"
            f" ({existing_id!r})"
        )


class PermissionDeniedError(PrepaidWalletError):
    """The actor may not run this operation for this tenant: the tenant's access policy grants
    none of its roles the operation, or the command needs one of ``required_roles`` and the
    actor holds none of them (see docs/authorization.md).

    Not a refusal of the request itself (not a :class:`RefusedError`): nothing is written, not
    even under an idempotency key, so the same call by an actor who may run it later goes
    through. ``actor`` is the actor's id (None: no actor), ``roles`` the roles it holds,
    ``operation`` the command's operation name, ``tenant_id`` the tenant, and
    ``required_roles`` the roles the command itself needs (empty: the policy decided).
    """

    def __init__(self, actor: str | None, roles: Iterable[str], operation: str, tenant_id: str,
                 required_roles: Iterable[str] = ()) -> None:
        self.actor = actor
        self.roles = tuple(sorted(roles))
        self.operation = operation
        self.tenant_id = tenant_id
        self.required_roles = tuple(sorted(required_roles))
        who = "no actor" if actor is None else f"actor {actor!r}"
        held = f" (roles: {', '.join(self.roles)})" if self.roles else " (no roles)"
        why = (f"needs one of the roles {', '.join(self.required_roles)}"
               if self.required_roles else "no role of it is permitted by the access policy")
        super().__init__(f"{who}{held} may not run {operation!r} for tenant {tenant_id!r}:"
                         f" {why}")


class AuthenticationError(PrepaidWalletError):
    """A secret does not authenticate as an API key: unknown, malformed, revoked or wrong.

    Every such secret raises this error with the same message and no attributes, so that a
    caller learns nothing about which it was, and neither the message nor the ``repr`` holds
    any part of the secret (nothing is chained to it either). An HTTP layer answers it with
    401.
    """

    #: The one message of every failed authentication.
    MESSAGE = "the API key is not valid"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


# -- storage and integrity -----------------------------------------------------------------------


class StorageError(PrepaidWalletError):
    """The store failed; the original driver error is chained as ``__cause__``."""


class SchemaVersionError(StorageError):
    """The database was written by a newer version of the library: its schema ``found`` is newer
    than the ``supported`` one, so it is not opened (upgrade the library instead)."""

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"the database has schema version {found}; this library supports up to {supported}"
        )


class SealKeyError(StorageError):
    """The store's rows are sealed with another key than the one it was opened with (or with
    none, or it was opened without the key it is sealed with): ``stored`` and ``given`` are
    the key ids (``None``: no key). It is not opened: a write would seal rows with the wrong
    key. Open it with its key, or seal it with another (``WalletService.reseal``)."""

    def __init__(self, stored: str | None, given: str | None) -> None:
        self.stored = stored
        self.given = given
        have = "no key" if stored is None else f"key {stored!r}"
        got = "no key" if given is None else f"key {given!r}"
        super().__init__(f"the store is sealed with {have} but was opened with {got}")


class StoreNotEmptyError(StorageError):
    """A whole store was to be copied or restored into ``location``, which already holds data
    or exists (``reason`` says which, e.g. ``"already exists"``): nothing was written there.
    Copy or restore into a new, empty store."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"{location} {reason}: nothing was written there")


class VerificationFailedError(StorageError):
    """A store to be copied, backed up or restored failed
    :meth:`~prepaid_wallet.service.WalletService.verify`: ``location`` names it, ``problems``
    is how many problems were found and ``first`` the first of them, as text. Nothing was put
    in place."""

    def __init__(self, location: str, problems: int, first: str) -> None:
        self.location = location
        self.problems = problems
        self.first = first
        super().__init__(
            f"{location} failed verification with {problems} problem(s), the first: {first}"
        )


class IntegrityError(PrepaidWalletError):
    """A ledger rule would be broken. Indicates a bug, never a business outcome."""


class UnbalancedEntryError(IntegrityError):
    """A journal entry's postings do not sum to zero in ``currency``."""

    def __init__(self, currency: str, total: Any) -> None:
        self.currency = currency
        self.total = total
        super().__init__(f"postings must sum to zero per currency ({currency} sums to {total})")


# -- webhooks ------------------------------------------------------------------------------------


class SignatureError(PrepaidWalletError, ValueError):
    """A webhook request whose ``Prepaid-Wallet-Signature`` does not verify: ``reason`` says
    why (a malformed header, a timestamp outside the tolerance, no signature that matches the
    body with the secret). The receiver refuses the request."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- optional packages ---------------------------------------------------------------------------


class MissingExtraError(PrepaidWalletError, ImportError):
    """A capability needs ``package``, which comes with the optional extra ``extra`` and is not
    installed: ``pip install 'prepaid_wallet[<extra>]'``."""

    def __init__(self, package: str, extra: str, capability: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{capability} needs the package {package!r}: install prepaid_wallet[{extra}]"
            f" (pip install 'prepaid_wallet[{extra}]')",
            name=package,
        )
