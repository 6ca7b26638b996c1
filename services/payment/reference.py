"""The bank-transfer (T/T) reference a buyer puts on their transfer.

Form: ``ESC`` + 10 characters of Crockford base32 + 1 check character, e.g. ``ESCV9S4RRCVXYC``.

- The 10 characters are the top 50 bits of SHA-256 of the order id (``#<n>`` appended on
  the rare retry after a collision with another order), so the reference of an order never
  changes and needs no counter.
- Crockford's alphabet has no I, L, O or U, so nothing reads ambiguously; when matching,
  O is read as 0 and I/L as 1, case and separators (spaces, hyphens, dots, slashes) are
  ignored, and the reference may sit anywhere in the transfer's free text.
- The check character is Luhn mod 32 over the 10 characters (same alphabet; Crockford's
  own mod-37 check adds ``*~$=U``, which bank reference fields often refuse). It catches
  every single mistyped character and most swaps of neighbours, so a typo makes the
  transfer unmatched (and returned) instead of crediting another order.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "ESC"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 10
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-./]")


def transfer_reference(order_id: str, attempt: int = 0) -> str:
    seed = order_id if attempt == 0 else f"{order_id}#{attempt}"
    bits = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") >> (64 - 5 * BODY_LENGTH)
    body = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(BODY_LENGTH)))
    return PREFIX + body + check_character(body)


def check_character(body: str) -> str:
    return ALPHABET[(-_luhn_sum(body, double_first=True)) % 32]


def _luhn_sum(symbols: str, *, double_first: bool) -> int:
    total = 0
    double = double_first
    for ch in reversed(symbols):
        addend = _VALUE[ch] * (2 if double else 1)
        total += addend // 32 + addend % 32
        double = not double
    return total


def is_valid(reference: str) -> bool:
    body = reference[len(PREFIX):]
    return (reference.startswith(PREFIX) and len(body) == BODY_LENGTH + 1
            and all(ch in _VALUE for ch in body) and _luhn_sum(body, double_first=False) % 32 == 0)


def find_references(text: str) -> list[str]:
    """Every valid reference in what the sender wrote, in canonical form, in the order they
    appear. Several can be valid: in "Escrow ESC…" the letters after "ESC" of "Escrow" pass
    the check for about one text in 32, so the caller tries each against the orders."""
    compact = _SEPARATORS.sub("", text.upper())
    found: list[str] = []
    start = compact.find(PREFIX)
    while start != -1:
        candidate = PREFIX + compact[start + len(PREFIX):start + len(PREFIX) + BODY_LENGTH + 1].translate(_READ_AS)
        if is_valid(candidate) and candidate not in found:
            found.append(candidate)
        start = compact.find(PREFIX, start + 1)
    return found
