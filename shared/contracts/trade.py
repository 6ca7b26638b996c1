"""Value objects shared by several services' messages."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.contracts.money import MAX_MINOR_UNITS, PositiveMinorUnits
from shared.contracts.text import City, FileName, ItemDescription, Line, Name, Note, PostalCode

# An order with more lines is refused: one order document must stay far below the
# 16 MB a MongoDB document may hold.
MAX_LINE_ITEMS = 200


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LineItem(Frozen):
    description: ItemDescription = Field(examples=["Stainless bolts M8, box of 100"])
    quantity: StrictInt = Field(gt=0, le=10_000_000, examples=[40])
    unit_price: PositiveMinorUnits = Field(examples=[2500])

    @model_validator(mode="after")
    def _subtotal_within_bound(self) -> LineItem:
        if self.subtotal > MAX_MINOR_UNITS:
            raise ValueError(f"quantity x unit price exceeds the largest amount the platform "
                             f"takes ({MAX_MINOR_UNITS} minor units)")
        return self

    @property
    def subtotal(self) -> int:
        return self.quantity * self.unit_price


class Address(Frozen):
    recipient: Name
    line1: Line
    line2: Line | None = None
    city: City
    postal_code: PostalCode | None = None
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2", examples=["DE"])


class Carrier(StrEnum):
    """Couriers whose tracking numbers the platform can validate."""

    DHL = "dhl"
    FEDEX = "fedex"
    UPS = "ups"
    USPS = "usps"
    SF_EXPRESS = "sf-express"
    EMS = "ems"


class ShippingMethod(StrEnum):
    EXPRESS = "express"
    AIR_FREIGHT = "air-freight"
    SEA_FREIGHT = "sea-freight"
    RAIL_FREIGHT = "rail-freight"
    ROAD_FREIGHT = "road-freight"


class Logistics(Frozen):
    shipping_method: ShippingMethod
    carrier: Carrier


class PaymentMethod(StrEnum):
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"


class CardSummary(Frozen):
    """All that is ever kept of a card: never its full number."""

    brand: str
    last4: str = Field(pattern=r"^\d{4}$")
    token: str


class TransferInstructions(Frozen):
    reference: str = Field(description="put this on the transfer; incoming money is matched by it")
    beneficiary: str
    iban: str
    bic: str
    bank_name: str


class DisputeReason(StrEnum):
    NOT_RECEIVED = "not_received"
    NOT_AS_DESCRIBED = "not_as_described"
    OTHER = "other"


class RequestedOutcome(StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"  # refund a stated amount, the buyer keeps the goods


class DisputeOutcome(StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    RELEASE = "release"  # everything still held goes to the supplier


class Evidence(Frozen):
    """A link, or an attachment the dispute service stored (referenced by id)."""

    kind: str = Field(pattern=r"^(link|attachment)$")
    url: str | None = Field(default=None, max_length=2000)
    attachment_id: str | None = None
    filename: FileName | None = None
    content_type: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)
    note: Note | None = None
