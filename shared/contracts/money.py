"""Money as integer minor units plus an ISO 4217 currency; never a float."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Minor-unit exponents for the currencies the platform settles in. A currency
# outside this table is refused rather than guessed.
MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CNY": 2, "HKD": 2, "JPY": 0, "KRW": 0,
    "INR": 2, "AUD": 2, "CAD": 2, "CHF": 2, "SGD": 2, "AED": 2, "BRL": 2,
    "MXN": 2, "TRY": 2, "VND": 0, "THB": 2, "MYR": 2, "IDR": 2, "PLN": 2,
    "SEK": 2, "NOK": 2, "DKK": 2, "ZAR": 2, "KWD": 3, "BHD": 3,
}

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$",
                                description="ISO 4217 alphabetic code", examples=["USD"])]
MinorUnits = Annotated[int, Field(ge=0, description="amount in the currency's minor units",
                                  examples=[125000])]
PositiveMinorUnits = Annotated[int, Field(gt=0, description="amount in minor units, above zero")]


def check_currency(code: str) -> str:
    if code not in MINOR_UNITS:
        raise ValueError(f"currency {code!r} is not supported; use one of {sorted(MINOR_UNITS)}")
    return code


class Money(BaseModel):
    """An amount of one currency. Arithmetic refuses to mix currencies."""

    model_config = ConfigDict(frozen=True)

    amount: MinorUnits
    currency: Currency

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        return check_currency(code)

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
        """Human form for emails, e.g. ``USD 1,250.00``."""
        exp = MINOR_UNITS[self.currency]
        if exp == 0:
            return f"{self.currency} {self.amount:,}"
        major, minor = divmod(self.amount, 10**exp)
        return f"{self.currency} {major:,}.{minor:0{exp}d}"
