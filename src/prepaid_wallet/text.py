"""Free text the library keeps: one rule for what it may hold, one way to show it.

Descriptions, reasons, metadata values, names and the actor are *text fields*: kept as given and
shown to people in statements, listings and terminals. They must not carry characters that
change how the rest of a line, a table or a terminal looks, so :func:`check_text` refuses:

* control characters (Unicode category Cc): tab, newline, carriage return, escape (which starts
  terminal escape codes), DEL and the C1 controls U+0080..U+009F;
* the line and paragraph separators U+2028 and U+2029;
* the bidirectional embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069, which
  reorder the text shown after them (the left-to-right and right-to-left marks U+200E, U+200F
  and U+061C stay allowed: locale data uses them and they reorder nothing);
* lone surrogates (U+D800..U+DFFF), which are not text and cannot be stored as UTF-8.

Everything else -- any script, emoji (joiners included), no-break spaces -- is accepted.

:func:`printable` is the other side: text read from a store written before this rule (or by
other means) is shown with those characters escaped (``"\\n"``, ``"\\x1b"``, ``"\\u202e"``), so
displaying it can never run a terminal escape code or break a table.
"""

from __future__ import annotations

import re
from typing import Final

from prepaid_wallet.errors import InvalidInputError

__all__ = ["MAX_TEXT", "TEXT_RULE", "check_text", "printable"]

#: The longest text field, in characters.
MAX_TEXT: Final = 500
#: What a text field may not contain, as a rule in error messages.
TEXT_RULE: Final = (
    "must not contain control characters (newlines, tabs, escape codes), line separators or"
    " bidirectional overrides"
)

_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                               "\ud800-\udfff]")


def check_text(
    value: object, field: str, *, max_length: int = MAX_TEXT, blank: bool = False
) -> str:
    """``value`` if it is a text field's valid content, else ``InvalidInputError`` naming
    ``field``: a ``str`` of at most ``max_length`` characters without the characters listed in
    the module docstring, and not blank (empty or only spaces) unless ``blank`` is true."""
    if not isinstance(value, str) or len(value) > max_length or (
        not blank and not value.strip()
    ):
        what = "text" if blank else "non-blank text"
        raise InvalidInputError(field, f"must be {what} of at most {max_length} characters",
                                value)
    if _FORBIDDEN.search(value) is not None:
        raise InvalidInputError(field, TEXT_RULE, value)
    return value


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character :func:`check_text` refuses written as an escape
    (``"\\n"`` for a newline, ``"\\x1b"`` for escape, ``"\\u202e"``...): safe to print on a
    terminal or in a table cell. Text without such characters is returned unchanged.

    >>> printable("order 7\\n\\x1b[31mPAID")
    'order 7\\\\n\\\\x1b[31mPAID'
    """
    if _FORBIDDEN.search(text) is None:
        return text
    return _FORBIDDEN.sub(_escape, text.replace("\n", "\\n").replace("\t", "\\t")
                          .replace("\r", "\\r"))
