"""HTTP routes of the shipping service: validate, call one service function, answer."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shared.contracts.parties import Parties
from shared.contracts.trade import Carrier, Logistics
from shared.domain.aggregate import HistoryEntry
from shared.infra.auth import CurrentActor

from services.shipping.domain import Dispatch, Shipment, ShipmentStatus
from services.shipping.handlers import ShippingService


class DispatchProof(BaseModel):
    carrier: Carrier
    tracking_number: str = Field(min_length=1, max_length=64, examples=["EE123456785CN"],
                                 description="spaces and letter case do not matter")
    ship_date: date = Field(description="the day the goods were handed to the carrier")


class ShipmentView(BaseModel):
    order_id: str
    status: ShipmentStatus
    parties: Parties
    logistics: Logistics | None
    delivery_period_days: int | None
    paid_at: datetime | None
    ship_by: datetime | None
    dispatch: Dispatch | None
    order_closed_at: datetime | None
    history: list[HistoryEntry]

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentView:
        return cls(**shipment.model_dump(exclude={"deadlines"}))


def router(service: ShippingService) -> APIRouter:
    api = APIRouter(tags=["shipments"])

    @api.post("/orders/{order_id}/shipment", response_model=ShipmentView,
              summary="Supplier submits the courier details as proof of dispatch",
              description="Only once the order is paid and before the ship-by deadline. "
                          "Submitting the same proof again changes nothing; a different one "
                          "after dispatch is refused (409).")
    async def submit_dispatch(order_id: str, body: DispatchProof, actor: CurrentActor) -> ShipmentView:
        return ShipmentView.of(await service.submit_dispatch(
            actor, order_id, body.carrier, body.tracking_number, body.ship_date))

    @api.get("/orders/{order_id}/shipment", response_model=ShipmentView,
             summary="Shipment status, ship-by deadline, dispatch details and history")
    async def get(order_id: str, actor: CurrentActor) -> ShipmentView:
        return ShipmentView.of(await service.get(actor, order_id))

    return api
