"""HTTP routes of the order service: validate, call one service function, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field, field_validator

from shared.contracts.money import Currency, check_currency, checked_total
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.text import Name, Statement
from shared.contracts.trade import MAX_LINE_ITEMS, Address, LineItem, Logistics
from shared.domain.aggregate import HistoryEntry
from shared.infra.auth import CurrentActor

from services.order.domain import Message, Order, OrderStatus
from services.order.handlers import OrderService


class DisplayName(BaseModel):
    name: Name


class PlaceOrder(BaseModel):
    supplier: Party = Field(description="the supplier, named by its party id (its contact "
                                        "email is the one it registered itself)")
    buyer_contact: DisplayName = Field(description="the buyer's display name for this order "
                                                   "(its contact email is the one it registered "
                                                   "with the notify service)")
    items: list[LineItem] = Field(min_length=1, max_length=MAX_LINE_ITEMS)
    currency: Currency
    destination: Address
    delivery_period_days: int = Field(gt=0, le=365, description="days the supplier has to ship once paid")

    @field_validator("currency")
    @classmethod
    def _known(cls, code: str) -> str:
        return check_currency(code)

    @field_validator("items")
    @classmethod
    def _total_within_bound(cls, items: list[LineItem]) -> list[LineItem]:
        checked_total(item.subtotal for item in items)
        return items


class ConfirmOrder(BaseModel):
    logistics: Logistics


class Reason(BaseModel):
    reason: Statement


class PostMessage(BaseModel):
    text: Statement


class OrderView(BaseModel):
    order_id: str
    status: OrderStatus
    parties: Parties
    items: list[LineItem]
    currency: str
    total: int
    destination: Address
    delivery_period_days: int
    placed_at: datetime
    logistics: Logistics | None
    payment_due_at: datetime | None
    closure_reason: str | None
    released_total: int
    refunded_total: int
    timeline: list[HistoryEntry]

    @classmethod
    def of(cls, order: Order) -> OrderView:
        return cls(**order.model_dump(exclude={"history", "deadlines", "messages"}),
                   timeline=order.history)


def router(service: OrderService) -> APIRouter:
    api = APIRouter(tags=["orders"])

    @api.post("/orders", status_code=201, response_model=OrderView,
              summary="Buyer places an order with one supplier")
    async def place(body: PlaceOrder, actor: CurrentActor,
                    idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> OrderView:
        actor.require(Role.BUYER, Role.SERVICE)
        buyer = Party(party_id=actor.party_id, name=body.buyer_contact.name)
        order = await service.place(
            actor, Parties(buyer=buyer, supplier=body.supplier), body.items, body.currency,
            body.destination, body.delivery_period_days, idempotency_key=idempotency_key)
        return OrderView.of(order)

    @api.get("/orders", response_model=list[OrderView], summary="The caller's orders, newest first")
    async def mine(actor: CurrentActor) -> list[OrderView]:
        return [OrderView.of(o) for o in await service.list_for(actor)]

    @api.get("/orders/{order_id}", response_model=OrderView, summary="Status and timeline")
    async def get(order_id: str, actor: CurrentActor) -> OrderView:
        return OrderView.of(await service.get(actor, order_id))

    @api.post("/orders/{order_id}/confirm", response_model=OrderView,
              summary="Supplier confirms the order and its logistics")
    async def confirm(order_id: str, body: ConfirmOrder, actor: CurrentActor) -> OrderView:
        return OrderView.of(await service.confirm(actor, order_id, body.logistics))

    @api.post("/orders/{order_id}/decline", response_model=OrderView, summary="Supplier declines")
    async def decline(order_id: str, body: Reason, actor: CurrentActor) -> OrderView:
        return OrderView.of(await service.decline(actor, order_id, body.reason))

    @api.post("/orders/{order_id}/cancel", response_model=OrderView,
              summary="Buyer cancels before paying")
    async def cancel(order_id: str, body: Reason, actor: CurrentActor) -> OrderView:
        return OrderView.of(await service.cancel(actor, order_id, body.reason))

    @api.post("/orders/{order_id}/messages", status_code=201, response_model=Message,
              summary="Buyer or supplier writes to the other side")
    async def post_message(order_id: str, body: PostMessage, actor: CurrentActor) -> Message:
        return await service.post_message(actor, order_id, body.text)

    @api.get("/orders/{order_id}/messages", response_model=list[Message])
    async def messages(order_id: str, actor: CurrentActor) -> list[Message]:
        return (await service.get(actor, order_id)).messages

    return api
