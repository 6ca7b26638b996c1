"""Who takes part in a trade, as carried on every trade event."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Role(StrEnum):
    BUYER = "buyer"
    SUPPLIER = "supplier"
    AGENT = "agent"  # customer-service agent (platform staff)
    BANK = "bank"  # the bank (or its sandbox) reporting incoming transfers
    SERVICE = "service"  # another platform service acting on a party's behalf


PartyId = str


class Party(BaseModel):
    model_config = ConfigDict(frozen=True)

    party_id: PartyId = Field(min_length=1, max_length=64, examples=["buyer-acme"])
    name: str = Field(min_length=1, max_length=200, examples=["ACME Imports Ltd"])
    email: EmailStr


class Parties(BaseModel):
    """The buyer and supplier of one order; carried on every trade event so that any
    consumer (notify above all) can act without reading another service's data."""

    model_config = ConfigDict(frozen=True)

    buyer: Party
    supplier: Party
