"""Who takes part in a trade, as carried on every trade event."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.text import Name, PartyId


class Role(StrEnum):
    BUYER = "buyer"
    SUPPLIER = "supplier"
    AGENT = "agent"  # customer-service agent (platform staff)
    BANK = "bank"  # the bank (or its sandbox) reporting incoming transfers
    SERVICE = "service"  # another platform service acting on a party's behalf


class Party(BaseModel):
    model_config = ConfigDict(frozen=True)

    party_id: PartyId
    name: Name = Field(examples=["ACME Imports Ltd"],
                       description="display name in the trade's emails and pages")


class Parties(BaseModel):
    """The buyer and supplier of one order; carried on every trade event so that any
    consumer (notify above all) can act without reading another service's data. No email:
    each party registers and verifies its own contact with the notify service, so the
    platform never mails an address the other side typed."""

    model_config = ConfigDict(frozen=True)

    buyer: Party
    supplier: Party
