"""Card details as the buyer types them, and the checks made before a provider sees them.

The number and the CVC stay ``SecretStr`` from the HTTP body to the provider call: their
``repr`` and ``str`` are masked, so neither a log line nor an error message can carry
them. Only ``brand`` and ``last4`` are ever derived from the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from pydantic import SecretStr

from shared.domain.errors import InvalidRequest

_SEPARATORS = re.compile(r"[ -]")
# ASCII digits only: str.isdigit() also takes full-width and superscript digits.
_CARD_NUMBER = re.compile(r"[0-9]{12,19}")


@dataclass(frozen=True)
class CardDetails:
    number: SecretStr
    expiry_month: int
    expiry_year: int
    cvc: SecretStr
    holder_name: str

    @property
    def digits(self) -> str:
        return _SEPARATORS.sub("", self.number.get_secret_value())

    @property
    def last4(self) -> str:
        return self.digits[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.digits)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """The card scheme from the number's leading digits (IIN ranges)."""
    two, four = int(digits[:2] or 0), int(digits[:4] or 0)
    if digits.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3] or 0) <= 649:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two == 62:
        return "unionpay"
    if two in (36, 38, 39) or 300 <= int(digits[:3] or 0) <= 305:
        return "diners"
    return "unknown"


def check_card(card: CardDetails, today: date) -> None:
    """Raise ``InvalidRequest`` naming the field at fault; never echo the number."""
    digits = card.digits
    if not _CARD_NUMBER.fullmatch(digits):
        raise InvalidRequest("the card number must have 12 to 19 digits", field="number")
    if not luhn_valid(digits):
        raise InvalidRequest("the card number is not valid (check digit mismatch)", field="number")
    if not 1 <= card.expiry_month <= 12:
        raise InvalidRequest("the expiry month must be 1 to 12", field="expiry_month")
    if card.expiry_year < today.year:
        raise InvalidRequest("the card has expired", field="expiry_year")
    if card.expiry_year == today.year and card.expiry_month < today.month:
        raise InvalidRequest("the card has expired", field="expiry_month")
    cvc = card.cvc.get_secret_value()
    expected = 4 if card.brand == "amex" else 3
    if not re.fullmatch(f"[0-9]{{{expected}}}", cvc):
        raise InvalidRequest(f"the security code must be {expected} digits", field="cvc")
    if not card.holder_name.strip():
        raise InvalidRequest("the cardholder name is required", field="holder_name")
