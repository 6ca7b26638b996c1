"""Every integration event of the trade, grouped by the service that publishes it.

An event's fields are what its consumers need to act (event-carried state): the payment
and shipping services learn all they need from ``OrderConfirmed``; every event carries the
parties so ``notify`` can address its emails.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import TradeEvent
from shared.contracts.money import Currency, MinorUnits, PositiveMinorUnits
from shared.contracts.parties import Role
from shared.contracts.topics import Service
from shared.contracts.trade import (
    MAX_LINE_ITEMS,
    Address,
    CardSummary,
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Evidence,
    LineItem,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
    TransferInstructions,
)

# --- order service --------------------------------------------------------------------


class OrderEvent(TradeEvent):
    producer = Service.ORDER


class OrderPlaced(OrderEvent):
    """The buyer placed an order with one supplier."""

    event_type = "order.placed"
    items: list[LineItem] = Field(min_length=1, max_length=MAX_LINE_ITEMS)
    currency: Currency
    total: PositiveMinorUnits
    destination: Address
    delivery_period_days: int = Field(gt=0, le=365)


class OrderConfirmed(OrderEvent):
    """The supplier confirmed the order and its logistics; the buyer now has until
    ``payment_due_at`` to pay into escrow."""

    event_type = "order.confirmed"
    logistics: Logistics
    currency: Currency
    total: PositiveMinorUnits
    delivery_period_days: int = Field(gt=0, le=365)
    payment_due_at: AwareDatetime


class OrderDeclined(OrderEvent):
    """The supplier declined the order; it is closed."""

    event_type = "order.declined"
    reason: str


class OrderCancelled(OrderEvent):
    """The buyer cancelled before paying; it is closed."""

    event_type = "order.cancelled"
    reason: str


class PaymentDueSoon(OrderEvent):
    """Reminder: the payment deadline is near."""

    event_type = "order.payment_due_soon"
    payment_due_at: AwareDatetime


class ClosureReason(StrEnum):
    PAYMENT_NOT_RECEIVED = "payment_not_received"
    SETTLED = "settled"  # escrow is empty: everything was released and/or refunded


class OrderClosed(OrderEvent):
    """The order is over. For a settled order, the totals say where the money went."""

    event_type = "order.closed"
    reason: ClosureReason
    currency: Currency
    released_total: MinorUnits = 0
    refunded_total: MinorUnits = 0


class MessagePosted(OrderEvent):
    """Buyer or supplier wrote to the other side about the order."""

    event_type = "order.message_posted"
    message_id: str
    author_role: Role
    author_party_id: str
    text: str = Field(min_length=1, max_length=5000)


# --- payment service ------------------------------------------------------------------


class PaymentEvent(TradeEvent):
    producer = Service.PAYMENT


class EscrowOpened(PaymentEvent):
    """Escrow is ready to receive the buyer's money: payment instructions."""

    event_type = "payment.escrow_opened"
    amount_due: PositiveMinorUnits
    currency: Currency
    pay_by: AwareDatetime
    bank_transfer: TransferInstructions


class CardPaymentDeclined(PaymentEvent):
    event_type = "payment.card_declined"
    amount: PositiveMinorUnits
    currency: Currency
    reason: str
    card: CardSummary | None = None


class BankTransferReceived(PaymentEvent):
    """A transfer matched this order's reference; part or all of what is due."""

    event_type = "payment.bank_transfer_received"
    transfer_id: str
    amount: PositiveMinorUnits
    currency: Currency
    received_total: MinorUnits
    remaining: MinorUnits


class EscrowFunded(PaymentEvent):
    """The full amount is held in escrow: the order is paid."""

    event_type = "payment.escrow_funded"
    amount: PositiveMinorUnits
    currency: Currency
    method: PaymentMethod
    card: CardSummary | None = None


class PaymentDeadlinePassed(PaymentEvent):
    """The payment window closed before the full amount was held: the order closes unpaid,
    and whatever part was paid goes back (``EscrowRefunded``). The payment service judges
    the deadline because it is where money arrives: a payment booked in time always wins,
    however late its news reaches the order service."""

    event_type = "payment.deadline_passed"
    pay_by: AwareDatetime
    currency: Currency
    received_total: MinorUnits


class ReturnReason(StrEnum):
    OVERPAYMENT = "overpayment"
    ORDER_NOT_PAYABLE = "order_not_payable"  # arrived after the order closed, or for no open order
    WRONG_CURRENCY = "wrong_currency"  # not in the order's currency; never converted


class FundsReturned(PaymentEvent):
    """Money that arrived but was never owed went back to the sender."""

    event_type = "payment.funds_returned"
    amount: PositiveMinorUnits
    currency: Currency
    reason: ReturnReason
    transfer_id: str


class SettlementReason(StrEnum):
    RECEIPT_CONFIRMED = "receipt_confirmed"
    UNDISPUTED_PART = "undisputed_part"
    NOT_SHIPPED = "not_shipped"
    ORDER_CLOSED = "order_closed"
    DISPUTE_RESOLVED = "dispute_resolved"


class EscrowReleased(PaymentEvent):
    """Money left escrow for the supplier: a payout instruction was issued."""

    event_type = "payment.escrow_released"
    amount: PositiveMinorUnits
    currency: Currency
    reason: SettlementReason
    payout_id: str
    held_after: MinorUnits


class EscrowRefunded(PaymentEvent):
    """Money left escrow back to the buyer, through the method they paid with."""

    event_type = "payment.escrow_refunded"
    amount: PositiveMinorUnits
    currency: Currency
    reason: SettlementReason
    method: PaymentMethod
    refund_id: str
    held_after: MinorUnits
    # The whole refund this part belongs to: a refund split over several funding sources
    # (a card and transfers) is one refund in several parts. None: this part is all of it.
    refund_total: PositiveMinorUnits | None = None


class EscrowSettled(PaymentEvent):
    """Escrow for the order is empty and will take no more money."""

    event_type = "payment.escrow_settled"
    currency: Currency
    paid_in_total: MinorUnits
    released_total: MinorUnits
    refunded_total: MinorUnits


# --- shipping service -----------------------------------------------------------------


class ShippingEvent(TradeEvent):
    producer = Service.SHIPPING


class ShipmentExpected(ShippingEvent):
    """The order is paid: the supplier must submit dispatch proof by ``ship_by``."""

    event_type = "shipping.shipment_expected"
    ship_by: AwareDatetime
    logistics: Logistics


class ShipmentDueSoon(ShippingEvent):
    event_type = "shipping.shipment_due_soon"
    ship_by: AwareDatetime


class ShipmentDispatched(ShippingEvent):
    """The supplier submitted courier proof of dispatch."""

    event_type = "shipping.shipment_dispatched"
    carrier: Carrier
    tracking_number: str
    ship_date: date
    dispatched_at: AwareDatetime


class DispatchDeadlineMissed(ShippingEvent):
    """No proof of dispatch by the end of the delivery period: the buyer gets everything back."""

    event_type = "shipping.dispatch_deadline_missed"
    ship_by: AwareDatetime


# --- dispute service (owns receipt confirmation and disputes) -------------------------


class DisputeEvent(TradeEvent):
    producer = Service.DISPUTE


class ReceiptConfirmed(DisputeEvent):
    """The buyer confirmed receipt (or it was confirmed automatically): release time."""

    event_type = "dispute.receipt_confirmed"
    confirmed_by: Literal["buyer", "automatic"]


class ReceiptExpected(DisputeEvent):
    """The dispute service knows of the dispatch: from when the buyer may dispute, and when
    receipt is confirmed automatically (both run from the later of the ship date and the
    proof's submission)."""

    event_type = "dispute.receipt_expected"
    dispute_opens_at: AwareDatetime
    auto_confirm_at: AwareDatetime


class ReceiptAutoConfirmSoon(DisputeEvent):
    event_type = "dispute.receipt_auto_confirm_soon"
    auto_confirm_at: AwareDatetime
    # From when a dispute can be opened (None from producers before it was added).
    dispute_opens_at: AwareDatetime | None = None


class DisputeOpened(DisputeEvent):
    """The buyer opened a dispute; only ``disputed_amount`` stays held, the rest is released."""

    event_type = "dispute.opened"
    dispute_id: str
    reason: DisputeReason
    requested: RequestedOutcome
    disputed_amount: PositiveMinorUnits
    currency: Currency
    description: str
    evidence: list[Evidence] = []
    answer_due_at: AwareDatetime


class DisputeAnswer(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    COUNTER_OFFER = "counter_offer"


class DisputeAnswered(DisputeEvent):
    event_type = "dispute.answered"
    dispute_id: str
    answer: DisputeAnswer
    counter_amount: MinorUnits | None = None
    currency: Currency
    message: str = ""


class DisputeAnswerDueSoon(DisputeEvent):
    event_type = "dispute.answer_due_soon"
    dispute_id: str
    answer_due_at: AwareDatetime


class DisputeStatementAdded(DisputeEvent):
    """Buyer or supplier added a statement, and maybe evidence, to the open dispute."""

    event_type = "dispute.statement_added"
    dispute_id: str
    statement_id: str
    author_role: Role
    author_party_id: str
    text: str = Field(min_length=1, max_length=5000)
    evidence: list[Evidence] = []


class DisputeWithdrawn(DisputeEvent):
    """The buyer withdrew the dispute; the receipt clock runs again."""

    event_type = "dispute.withdrawn"
    dispute_id: str


class DisputeEscalated(DisputeEvent):
    """Customer service now mediates."""

    event_type = "dispute.escalated"
    dispute_id: str
    escalated_by: Role | Literal["automatic"]


class DisputeResolved(DisputeEvent):
    """Final outcome: refund ``refund_amount`` to the buyer, release the rest held."""

    event_type = "dispute.resolved"
    dispute_id: str
    outcome: DisputeOutcome
    refund_amount: MinorUnits
    currency: Currency
    decided_by: Literal["agreement", "agent"]
    agent_id: str | None = None
    reason: str = ""
