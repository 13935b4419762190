"""Text fields: what :func:`prepaid_wallet.text.check_text` refuses and accepts, and how
:func:`prepaid_wallet.text.printable` shows stored text."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet import FixedClock, Money, SequentialIds, SpendRequest, WalletService
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.storage import open_store
from prepaid_wallet.text import TEXT_RULE, check_text, printable

#: Characters that change how text is shown: controls, separators, bidi embeddings/overrides
#: /isolates, surrogates.
REFUSED = (
    [chr(c) for c in range(0x20)] + [chr(0x7F)] + [chr(c) for c in range(0x80, 0xA0)]
    + ["\u2028", "\u2029"] + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)] + ["\ud800", "\udbff", "\udc00", "\udfff"]
)


def _shows_differently(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Cc", "Zl", "Zp", "Cs") or 0x202A <= ord(char) <= 0x202E or \
        0x2066 <= ord(char) <= 0x2069


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
def test_refused_anywhere_in_the_text(char: str) -> None:
    for text in (char, f"order{char}", f"{char}order", f"ord{char}er"):
        with pytest.raises(InvalidInputError) as info:
            check_text(text, "description")
        assert info.value.field == "description"
        assert info.value.rule == TEXT_RULE or char.isspace()
    shown = printable(f"ord{char}er")
    assert not any(_shows_differently(c) for c in shown)
    assert shown.startswith("ord")
    assert shown.endswith("er")


@pytest.mark.parametrize("text", [
    "order 1001", "Café crème", "注文 1001", "طلب ١٠٠١", "\u200forder\u200e", "5\u00a0€",
    "🧑\u200d🌾 farmer's box", "x" * 500,
])
def test_accepted_text_is_kept_as_it_is(text: str) -> None:
    assert check_text(text, "description") is text
    assert printable(text) == text


def test_length_and_blank_rules() -> None:
    with pytest.raises(InvalidInputError, match="at most 500"):
        check_text("x" * 501, "reason")
    with pytest.raises(InvalidInputError, match="non-blank"):
        check_text(" \u00a0 ", "reason")
    assert check_text("", "note", blank=True) == ""
    with pytest.raises(InvalidInputError):
        check_text(b"bytes", "note")


def test_printable_escapes_visibly() -> None:
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable("\u202eevil") == "\\u202eevil"


@given(st.text())
def test_check_text_accepts_exactly_the_text_printable_keeps(text: str) -> None:
    clean = not any(_shows_differently(c) for c in text)
    assert (printable(text) == text) is clean
    assert not any(_shows_differently(c) for c in printable(text))
    fits = bool(text.strip()) and len(text) <= 500
    if clean and fits:
        assert check_text(text, "f") == text
    else:
        with pytest.raises(InvalidInputError):
            check_text(text, "f")


def test_service_keeps_accepted_text_and_refuses_the_rest_before_writing() -> None:
    store = open_store("memory:")
    svc = WalletService(store, clock=FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
                        ids=SequentialIds())
    w = svc.open_wallet(owner_id="ann", tenant_id="hub", currency="EUR")
    svc.top_up(w.id, Money.of("10.00", "EUR"), method="card")
    paid = svc.spend(w.id, SpendRequest(Money.of("1.00", "EUR"), description="🧺 panier n°7"))
    assert svc.entry(paid.entry_id).meta["description"] == "🧺 panier n°7"
    before = store.export_state()
    with pytest.raises(InvalidInputError) as info:
        svc.spend(w.id, SpendRequest(Money.of("1.00", "EUR"), description="x\x1b[2J"))
    assert info.value.field == "request.description"
    assert store.export_state() == before

