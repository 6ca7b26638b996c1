"""Money as integer minor units plus an ISO 4217 currency; never a float.

- Amounts are strict integers (``true``, ``"100"`` and ``2500.0`` are refused) between 0 and
  ``MAX_MINOR_UNITS`` (10^15 minor units: above any single trade, far below the 2^63 a
  BSON integer holds, so sums of a few thousand amounts never overflow either).
- ``MINOR_UNITS`` is the ISO 4217 list of active codes with their minor-unit exponent.
  Orders may be placed in any of them (``check_currency``); codes without a minor unit
  (gold, SDR, test codes) and codes that are not ISO 4217 are refused at the edge.
- Money that arrives in a currency the platform does not settle in is still returned, so
  ``Money`` itself takes any well-formed code and ``display`` is total for every one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

MAX_MINOR_UNITS = 10**15

# ISO 4217 active codes and their minor-unit exponents (the published list, 2025, including
# the fund codes that have a minor unit).
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2,
    "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "COU": 2,
    "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2,
    "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2,
    "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2,
    "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2,
    "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2,
    "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2,
    "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3,
    "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2,
    "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2,
    "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2,
    "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2,
    "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2,
    "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0,
    "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$",
                                description="ISO 4217 alphabetic code", examples=["USD"])]
MinorUnits = Annotated[int, Strict(), Field(
    ge=0, le=MAX_MINOR_UNITS, examples=[125000],
    description=f"amount in the currency's minor units, an integer from 0 to {MAX_MINOR_UNITS}")]
PositiveMinorUnits = Annotated[int, Strict(), Field(
    gt=0, le=MAX_MINOR_UNITS, examples=[125000],
    description=f"amount in the currency's minor units, an integer from 1 to {MAX_MINOR_UNITS}")]


class AmountTooLarge(ValueError):
    pass


def check_currency(code: str) -> str:
    """The edge check for a currency the platform settles in (an order's currency)."""
    if code not in MINOR_UNITS:
        raise ValueError(f"currency {code!r} is not an ISO 4217 currency the platform settles in "
                         "(active codes with a minor unit, e.g. USD, EUR, JPY)")
    return code


def checked_total(amounts: Iterable[int]) -> int:
    """The sum of ``amounts``, refused when it exceeds ``MAX_MINOR_UNITS``."""
    total = 0
    for amount in amounts:
        total += amount
        if total > MAX_MINOR_UNITS:
            raise AmountTooLarge(f"the total exceeds the largest amount the platform takes "
                                 f"({MAX_MINOR_UNITS} minor units)")
    return total


class Money(BaseModel):
    """An amount of one currency. Arithmetic refuses to mix currencies."""

    model_config = ConfigDict(frozen=True)

    amount: MinorUnits
    currency: Currency

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def display(self) -> str:
        """Human form for emails, e.g. ``USD 1,250.00``; a code outside the table (money that
        arrived in a currency the platform does not settle in) shows its minor units as such."""
        exp = MINOR_UNITS.get(self.currency)
        if exp is None:
            return f"{self.currency} {self.amount:,} (minor units)"
        if exp == 0:
            return f"{self.currency} {self.amount:,}"
        major, minor = divmod(self.amount, 10**exp)
        return f"{self.currency} {major:,}.{minor:0{exp}d}"
