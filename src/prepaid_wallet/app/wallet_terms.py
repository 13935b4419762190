"""Where the history of a wallet's term changes (floor, payment mode) lives: its record type,
declared once, and writing and reading it."""

from __future__ import annotations

from prepaid_wallet.app.ports import RecordType, UnitOfWork, sortable_instant
from prepaid_wallet.rules.hub import WalletTermChange

__all__ = ["TERM_CHANGES", "term_changes"]

#: Every change of a wallet's terms, by instant then id; found by wallet, tenant or term (the
#: tag).
TERM_CHANGES: RecordType[WalletTermChange] = RecordType(
    kind="wallet_term_change",
    type=WalletTermChange,
    key=lambda change: change.id,
    tenant=lambda change: change.tenant_id,
    wallet=lambda change: change.wallet_id,
    tag=lambda change: change.term.value,
    order=lambda change: sortable_instant(change.at),
)


def term_changes(uow: UnitOfWork, wallet_id: str, term: str | None = None
                 ) -> list[WalletTermChange]:
    """The wallet's term changes (of ``term`` only, if given), oldest first."""
    return uow.find_records(TERM_CHANGES, wallet_id=wallet_id, tag=term)
