"""Tracking numbers: what each carrier's numbers look like, and their check digits where
the format defines one the platform can verify (UPS, and the UPU S10 numbers EMS uses)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from shared.contracts.trade import Carrier
from shared.domain.errors import InvalidRequest

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def normalise(tracking_number: str) -> str:
    """Drop every space and upper-case: how people paste numbers from labels and emails."""
    return "".join(tracking_number.split()).upper()


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial number."""
    check = 11 - sum(int(d) * w for d, w in zip(serial, S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def ups_check_digit(body: str) -> int:
    """The check digit of a UPS 1Z number, from the 15 characters between "1Z" and it.
    Letters count as (position in the alphabet + 1) mod 10 (A=2, B=3, ..., Z=7); digits in
    even positions (1-based) count twice."""
    values = [int(c) if c.isdigit() else (ord(c) - ord("A") + 2) % 10 for c in body]
    total = sum(values[0::2]) + 2 * sum(values[1::2])
    return (10 - total % 10) % 10


def _s10_valid(number: str) -> bool:
    return s10_check_digit(number[2:10]) == int(number[10])


def _ups_valid(number: str) -> bool:
    return ups_check_digit(number[2:17]) == int(number[17])


@dataclass(frozen=True)
class TrackingFormat:
    description: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool] | None = None

    def accepts(self, number: str) -> bool:
        return bool(self.pattern.fullmatch(number)) and (self.check is None or self.check(number))


FORMATS: dict[Carrier, TrackingFormat] = {
    Carrier.DHL: TrackingFormat("10 digits, e.g. 1234567890", re.compile(r"\d{10}")),
    Carrier.FEDEX: TrackingFormat("12 or 15 digits, e.g. 123456789012",
                                  re.compile(r"\d{12}|\d{15}")),
    Carrier.UPS: TrackingFormat(
        '"1Z", a 6-character shipper number, a 2-digit service code and 8 digits ending in '
        "the check digit, e.g. 1Z999AA10123456784",
        re.compile(r"1Z[0-9A-Z]{6}\d{10}"), _ups_valid),
    Carrier.USPS: TrackingFormat(
        "20 to 22 digits, or 2 letters, 9 digits and US (e.g. EA123456789US)",
        re.compile(r"\d{20,22}|[A-Z]{2}\d{9}US")),
    Carrier.SF_EXPRESS: TrackingFormat('"SF" and 12 or 13 digits, e.g. SF1234567890123',
                                       re.compile(r"SF\d{12,13}")),
    Carrier.EMS: TrackingFormat(
        "UPU S10: 2 letters, 8 digits, a check digit and a 2-letter country code, "
        "e.g. EE123456785CN",
        re.compile(r"[A-Z]{2}\d{9}[A-Z]{2}"), _s10_valid),
}


def validated_tracking_number(carrier: Carrier, tracking_number: str) -> str:
    """The normalised number, or ``InvalidRequest`` naming the carrier's format."""
    number = normalise(tracking_number)
    expected = FORMATS[carrier]
    if not expected.accepts(number):
        raise InvalidRequest(
            f"{tracking_number!r} is not a valid {carrier} tracking number; expected "
            f"{expected.description}", field="tracking_number")
    return number
