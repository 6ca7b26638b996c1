"""Text as the platform accepts it: one validated string type for every human-typed field.

Every name, subject, note or message a caller sends is normalised to Unicode NFC (so the same
words compare and display the same), trimmed, and refused (422 at the edge, a dead letter on
a topic) when it carries characters that can hurt where the text ends up: control characters
(NUL, ESC, DEL, ...) that break mail headers and terminals, and the bidirectional overrides
and isolates that make a name display as something it is not. A single-line field also
refuses line breaks; a multi-line one keeps ``\\n`` and tab. Identifiers (party ids, references
given to banks and couriers) are normalised with NFKC, so full-width or superscript look-alikes
become the plain characters before the field's pattern is checked.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), plus the
# Arabic letter mark: each can reorder how the rest of a line displays.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
_MULTILINE_ALLOWED = frozenset("\n\t")


def check_text(value: str, *, multiline: bool = False) -> str:
    """NFC, trimmed; raises ``ValueError`` (pydantic turns it into a field error) naming
    the first character the field may not hold."""
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    for ch in text:
        if multiline and ch in _MULTILINE_ALLOWED:
            continue
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp") or ch in BIDI_CONTROLS:
            raise ValueError(f"the text may not contain the control character U+{ord(ch):04X}"
                             + ("" if multiline else " (it must be one line)"))
        if category == "Cs":
            raise ValueError(f"the text may not contain U+{ord(ch):04X} (a lone surrogate)")
    return text


def _nfkc(value: Any) -> Any:
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def Text(max_length: int, *, min_length: int = 1, multiline: bool = False,
         **field: Any) -> Any:
    """A human-typed text field: ``Text(200)`` for a name, ``Text(5000, multiline=True)`` for
    a message. Lengths are checked after normalisation, so spaces alone are empty."""
    return Annotated[str, AfterValidator(lambda v: check_text(v, multiline=multiline)),
                     Field(min_length=min_length, max_length=max_length, **field)]


def Identifier(max_length: int, *, pattern: str = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$",
               **field: Any) -> Any:
    """An id or code a party chooses (party ids, transfer ids): NFKC-normalised, then
    limited to a plain ASCII pattern."""
    return Annotated[str, BeforeValidator(_nfkc),
                     Field(min_length=1, max_length=max_length, pattern=pattern, **field)]


Name = Text(200)  # a person's or company's name, one line
Line = Text(200)  # one line of an address
City = Text(100)
PostalCode = Text(20)
ItemDescription = Text(500)  # what an order line sells
FileName = Text(255)
Note = Text(1000)  # a short remark, one line
Statement = Text(5000, multiline=True)  # a message, a reason, a dispute's description
OptionalStatement = Text(5000, min_length=0, multiline=True)
PartyId = Identifier(64, examples=["buyer-acme"])
