"""prepaid_wallet: prepaid customer credit explained by an append-only double-entry journal.

Open a store, build a :class:`WalletService` over it and call its commands::

    from prepaid_wallet import Money, WalletService, open_store

    svc = WalletService(open_store("memory:"))
    w = svc.open_wallet(owner_id="ann", tenant_id="hub-a", currency="EUR")
    svc.top_up(w.id, Money.of("50.00", "EUR"), method="card")

The names below are imported from their modules on first use (``import prepaid_wallet`` alone
imports none of them), so a program pays only for the parts it touches.
"""

from __future__ import annotations

from importlib import import_module

#: ``typing.TYPE_CHECKING`` without importing :mod:`typing` (type checkers read it as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from prepaid_wallet.actors import Actor
    from prepaid_wallet.app.commands.bulk import BulkAward
    from prepaid_wallet.clock import Clock, FixedClock, SystemClock
    from prepaid_wallet.conditions import (
        ConditionGroup,
        LineItem,
        SpendCondition,
        TimeWindow,
        end_of_local_day,
    )
    from prepaid_wallet.errors import (
        AlreadyReversedError,
        ConcurrencyError,
        ConditionGroupNotFoundError,
        ConflictError,
        CurrencyMismatchError,
        DuplicateWalletError,
        EntryNotFoundError,
        HoldExpiredError,
        HoldNotFoundError,
        HoldStateError,
        IdempotencyConflictError,
        InexactMoneyError,
        InsufficientFundsError,
        IntegrityError,
        InvalidAmountError,
        InvalidCurrencyError,
        InvalidInputError,
        InvalidTimeError,
        LimitExceededError,
        LotNotFoundError,
        NotFoundError,
        PermissionDeniedError,
        PrepaidWalletError,
        RefundExceedsOriginalError,
        RefusedError,
        SchemaVersionError,
        SealKeyError,
        SignatureError,
        SpendDeniedError,
        StorageError,
        StoreNotEmptyError,
        StoreNotFoundError,
        TenantMismatchError,
        UnbalancedEntryError,
        VerificationFailedError,
        WalletNotFoundError,
    )
    from prepaid_wallet.expiry import EndOfLocalDay, ExpiryPolicy
    from prepaid_wallet.formatting import format_money, parse_money
    from prepaid_wallet.ids import RandomIds, SequentialIds
    from prepaid_wallet.ledger import Entry, EntryKind, Posting
    from prepaid_wallet.money import Currency, Money
    from prepaid_wallet.policies import Decision, PaymentMode, Reason, SpendOrder, SpendRequest
    from prepaid_wallet.results import (
        AwardReport,
        Balance,
        Breakdown,
        CaptureResult,
        Checkpoint,
        Expiry,
        ExpiryReport,
        FailedRow,
        FeeReport,
        LotMovement,
        LotView,
        Problem,
        Receipt,
        RefundResult,
        SpendResult,
        Statement,
        StatementLine,
        StatementStream,
        VerifyReport,
    )
    from prepaid_wallet.rules.access import AccessPolicy, AccessPolicyVersion
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion
    from prepaid_wallet.seals import SealKey
    from prepaid_wallet.service import WalletService, WelcomeAward
    from prepaid_wallet.storage import Store, UnitOfWork, open_store
    from prepaid_wallet.wallet import AllocationPart, Charge, Hold, HoldStatus, Lot, Wallet

__version__ = "0.1.0.dev0"

#: Where each public name lives: ``prepaid_wallet.<name>`` imports that module on first use.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "prepaid_wallet.actors": ("Actor",),
    "prepaid_wallet.app.commands.bulk": ("BulkAward",),
    "prepaid_wallet.clock": ("Clock", "FixedClock", "SystemClock"),
    "prepaid_wallet.conditions": (
        "ConditionGroup", "LineItem", "SpendCondition", "TimeWindow", "end_of_local_day",
    ),
    "prepaid_wallet.errors": (
        "AlreadyReversedError", "ConcurrencyError", "ConditionGroupNotFoundError", "ConflictError",
        "CurrencyMismatchError", "DuplicateWalletError", "EntryNotFoundError", "HoldExpiredError",
        "HoldNotFoundError", "HoldStateError", "IdempotencyConflictError", "InexactMoneyError",
        "InsufficientFundsError", "IntegrityError", "InvalidAmountError", "InvalidCurrencyError",
        "InvalidInputError", "InvalidTimeError", "LimitExceededError", "LotNotFoundError",
        "NotFoundError", "PermissionDeniedError", "PrepaidWalletError",
        "RefundExceedsOriginalError", "RefusedError", "SchemaVersionError", "SealKeyError",
        "SignatureError", "SpendDeniedError", "StorageError", "StoreNotEmptyError",
        "StoreNotFoundError", "TenantMismatchError", "UnbalancedEntryError",
        "VerificationFailedError", "WalletNotFoundError",
    ),
    "prepaid_wallet.expiry": ("EndOfLocalDay", "ExpiryPolicy"),
    "prepaid_wallet.formatting": ("format_money", "parse_money"),
    "prepaid_wallet.ids": ("RandomIds", "SequentialIds"),
    "prepaid_wallet.ledger": ("Entry", "EntryKind", "Posting"),
    "prepaid_wallet.money": ("Currency", "Money"),
    "prepaid_wallet.policies": ("Decision", "PaymentMode", "Reason", "SpendOrder", "SpendRequest"),
    "prepaid_wallet.results": (
        "AwardReport", "Balance", "Breakdown", "CaptureResult", "Checkpoint", "Expiry",
        "ExpiryReport", "FailedRow", "FeeReport",
        "LotMovement", "LotView", "Problem", "Receipt", "RefundResult", "SpendResult", "Statement",
        "StatementLine", "StatementStream", "VerifyReport",
    ),
    "prepaid_wallet.rules.access": ("AccessPolicy", "AccessPolicyVersion"),
    "prepaid_wallet.rules.tenant": ("TenantRules", "TenantRulesVersion"),
    "prepaid_wallet.service": ("WalletService", "WelcomeAward"),
    "prepaid_wallet.seals": ("SealKey",),
    "prepaid_wallet.storage": ("Store", "UnitOfWork", "open_store"),
    "prepaid_wallet.wallet": ("AllocationPart", "Charge", "Hold", "HoldStatus", "Lot", "Wallet"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}


def _load(name: str) -> object:
    """The public name ``name``, imported from its module and kept in this module's namespace
    (so the next lookup is a plain attribute read); ``AttributeError`` for any other name."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:  # mypy reads the imports above, so it still rejects a name not exported
    __getattr__ = _load

__all__ = [
    "AccessPolicy",
    "AccessPolicyVersion",
    "Actor",
    "AllocationPart",
    "AlreadyReversedError",
    "AwardReport",
    "Balance",
    "Breakdown",
    "BulkAward",
    "CaptureResult",
    "Charge",
    "Checkpoint",
    "Clock",
    "ConcurrencyError",
    "ConditionGroup",
    "ConditionGroupNotFoundError",
    "ConflictError",
    "Currency",
    "CurrencyMismatchError",
    "Decision",
    "DuplicateWalletError",
    "EndOfLocalDay",
    "Entry",
    "EntryKind",
    "EntryNotFoundError",
    "Expiry",
    "ExpiryPolicy",
    "ExpiryReport",
    "FailedRow",
    "FeeReport",
    "FixedClock",
    "Hold",
    "HoldExpiredError",
    "HoldNotFoundError",
    "HoldStateError",
    "HoldStatus",
    "IdempotencyConflictError",
    "InexactMoneyError",
    "InsufficientFundsError",
    "IntegrityError",
    "InvalidAmountError",
    "InvalidCurrencyError",
    "InvalidInputError",
    "InvalidTimeError",
    "LimitExceededError",
    "LineItem",
    "Lot",
    "LotMovement",
    "LotNotFoundError",
    "LotView",
    "Money",
    "NotFoundError",
    "PaymentMode",
    "PermissionDeniedError",
    "Posting",
    "PrepaidWalletError",
    "Problem",
    "RandomIds",
    "Reason",
    "Receipt",
    "RefundExceedsOriginalError",
    "RefundResult",
    "RefusedError",
    "SchemaVersionError",
    "SealKey",
    "SealKeyError",
    "SequentialIds",
    "SignatureError",
    "SpendCondition",
    "SpendDeniedError",
    "SpendOrder",
    "SpendRequest",
    "SpendResult",
    "Statement",
    "StatementLine",
    "StatementStream",
    "StorageError",
    "Store",
    "StoreNotEmptyError",
    "StoreNotFoundError",
    "SystemClock",
    "TenantMismatchError",
    "TenantRules",
    "TenantRulesVersion",
    "TimeWindow",
    "UnbalancedEntryError",
    "UnitOfWork",
    "VerificationFailedError",
    "VerifyReport",
    "Wallet",
    "WalletNotFoundError",
    "WalletService",
    "WelcomeAward",
    "__version__",
    "end_of_local_day",
    "format_money",
    "open_store",
    "parse_money",
]
