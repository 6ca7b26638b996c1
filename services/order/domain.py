"""The order: what the buyer ordered from whom, and where the trade stands.

The order service owns the order's own steps (placing, confirmation, decline, cancel, the
20-day payment deadline, messages between the parties) and follows the other services'
events to keep one timeline of the whole trade.

Those events come on three topics (payment, shipping, dispute) and Kafka orders them only
within one topic, so a dispute may be seen before the dispatch it follows. The order
therefore records facts (paid, shipped, which dispute is open, received, settled) and
derives its status from them: every interleaving of the same events ends in one state.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, computed_field

from shared.contracts.events import (
    ClosureReason,
    MessagePosted,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    OrderDeclined,
    OrderPlaced,
    PaymentDueSoon,
)
from shared.contracts.parties import Parties, Role
from shared.contracts.trade import Address, LineItem, Logistics
from shared.domain.actor import Actor, require
from shared.domain.aggregate import Aggregate
from shared.domain.errors import DomainError, InvalidRequest, TooManyRequests

# What one party can make the platform mail the other side through one order's messages.
MESSAGES_PER_WINDOW = 20
MESSAGE_WINDOW = timedelta(hours=1)
PAYMENT_DUE = "payment_due"
PAYMENT_REMINDER = "payment_reminder"
# Each message is kept in the order document twice (messages and history), at most 5000
# characters of up to 4 bytes: 200 keep the document far below MongoDB's 16 MB.
MAX_MESSAGES_PER_ORDER = 200


class OrderStatus(StrEnum):
    PLACED = "placed"  # waiting for the supplier
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    IN_DISPUTE = "in_dispute"
    RECEIVED = "received"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    CLOSED = "closed"


FINISHED = {OrderStatus.DECLINED, OrderStatus.CANCELLED, OrderStatus.CLOSED}


class Message(BaseModel):
    message_id: str
    at: datetime
    author_role: Role
    author_party_id: str
    text: str


class Order(Aggregate):
    items: list[LineItem]
    currency: str
    total: int
    destination: Address
    delivery_period_days: int
    placed_at: datetime
    logistics: Logistics | None = None
    payment_due_at: datetime | None = None
    declined_at: datetime | None = None
    cancelled_at: datetime | None = None
    closure_reason: ClosureReason | None = None
    # facts learnt from the other services
    paid_at: datetime | None = None
    shipped: bool = False
    open_dispute_id: str | None = None  # opened and neither withdrawn nor yet settled
    received: bool = False
    settled: bool = False
    released_total: int = 0
    refunded_total: int = 0
    messages: list[Message] = []

    @computed_field  # type: ignore[prop-decorator] # stored with the state, so orders can be queried by it
    @property
    def status(self) -> OrderStatus:
        """Derived from the facts, never from the order they were learnt in."""
        if self.cancelled_at is not None:
            return OrderStatus.CANCELLED
        if self.declined_at is not None:
            return OrderStatus.DECLINED
        if self.closure_reason is not None:
            return OrderStatus.CLOSED
        if self.received:
            return OrderStatus.RECEIVED
        if self.open_dispute_id is not None:
            return OrderStatus.IN_DISPUTE
        if self.shipped:
            return OrderStatus.SHIPPED
        if self.paid_at is not None:
            return OrderStatus.PAID
        if self.logistics is not None:
            return OrderStatus.AWAITING_PAYMENT
        return OrderStatus.PLACED

    # --- the order's own steps ---------------------------------------------------------

    @classmethod
    def place(cls, order_id: str, parties: Parties, items: list[LineItem], currency: str,
              destination: Address, delivery_period_days: int, now: datetime) -> Order:
        if parties.buyer.party_id == parties.supplier.party_id:
            raise InvalidRequest("buyer and supplier must be different parties", field="supplier")
        total = sum(item.subtotal for item in items)
        order = cls(order_id=order_id, parties=parties, items=items, currency=currency,
                    total=total, destination=destination,
                    delivery_period_days=delivery_period_days, placed_at=now)
        order.record(OrderPlaced(order_id=order_id, parties=parties, items=items, currency=currency,
                                 total=total, destination=destination,
                                 delivery_period_days=delivery_period_days), now)
        return order

    def confirm(self, actor: Actor, logistics: Logistics, now: datetime, *,
                payment_window: timedelta, reminder_before: timedelta) -> None:
        require(actor, self.parties, Role.SUPPLIER)
        self.run_due_deadlines(now)
        if self.status is OrderStatus.AWAITING_PAYMENT and self.logistics == logistics:
            return
        self._require_status("confirm", OrderStatus.PLACED)
        self.logistics = logistics
        self.payment_due_at = now + payment_window
        if self.payment_due_at - reminder_before > now:
            self.deadlines[PAYMENT_REMINDER] = self.payment_due_at - reminder_before
        self.record(OrderConfirmed(order_id=self.order_id, parties=self.parties, logistics=logistics,
                                   currency=self.currency, total=self.total,
                                   delivery_period_days=self.delivery_period_days,
                                   payment_due_at=self.payment_due_at), now)

    def decline(self, actor: Actor, reason: str, now: datetime) -> None:
        require(actor, self.parties, Role.SUPPLIER)
        if self.status is OrderStatus.DECLINED:
            return
        self._require_status("decline", OrderStatus.PLACED)
        self.declined_at = now
        self.deadlines.clear()
        self.record(OrderDeclined(order_id=self.order_id, parties=self.parties, reason=reason), now)

    def cancel(self, actor: Actor, reason: str, now: datetime) -> None:
        require(actor, self.parties, Role.BUYER)
        self.run_due_deadlines(now)
        if self.status is OrderStatus.CANCELLED:
            return
        self._require_status("cancel", OrderStatus.PLACED, OrderStatus.AWAITING_PAYMENT,
                             hint="an order can be cancelled only before it is paid")
        if self.payment_due_at is not None and now >= self.payment_due_at:
            raise DomainError(f"order {self.order_id} is being closed: its payment deadline "
                              f"passed ({self.payment_due_at:%Y-%m-%d %H:%M} UTC)")
        self.cancelled_at = now
        self.deadlines.clear()
        self.record(OrderCancelled(order_id=self.order_id, parties=self.parties, reason=reason), now)

    def post_message(self, actor: Actor, text: str, now: datetime) -> Message:
        """The author is the party the actor acts as: a platform service writing for the
        buyer writes as the buyer."""
        author = require(actor, self.parties, Role.BUYER, Role.SUPPLIER)
        if len(self.messages) >= MAX_MESSAGES_PER_ORDER:
            raise DomainError(f"order {self.order_id} already has {MAX_MESSAGES_PER_ORDER} "
                              "messages, the most one order keeps; contact customer service")
        self.run_due_deadlines(now)
        recent = [m.at for m in self.messages
                  if m.author_party_id == actor.party_id and m.at > now - MESSAGE_WINDOW]
        if len(recent) >= MESSAGES_PER_WINDOW:
            raise TooManyRequests(f"at most {MESSAGES_PER_WINDOW} messages per hour on an order; "
                                  f"try again after {min(recent) + MESSAGE_WINDOW:%H:%M} UTC",
                                  retry_after=min(recent) + MESSAGE_WINDOW - now)
        message = Message(message_id=uuid.uuid4().hex, at=now, author_role=author,
                          author_party_id=actor.party_id, text=text)
        self.messages.append(message)
        self.record(MessagePosted(order_id=self.order_id, parties=self.parties,
                                  message_id=message.message_id, author_role=author,
                                  author_party_id=actor.party_id, text=text), now)
        return message

    def on_deadline(self, kind: str, due: datetime, now: datetime) -> None:
        if kind == PAYMENT_REMINDER:
            assert self.payment_due_at is not None  # set when the order awaits payment
            # a sweep that runs late never asks for a payment whose window has closed
            if self.status is OrderStatus.AWAITING_PAYMENT and now < self.payment_due_at:
                self.record(PaymentDueSoon(order_id=self.order_id, parties=self.parties,
                                           payment_due_at=self.payment_due_at), now)
        elif kind == PAYMENT_DUE:
            pass  # stored by earlier versions: the payment service judges the deadline now
        else:
            super().on_deadline(kind, due, now)

    # --- following the rest of the trade ------------------------------------------------

    def mark_paid(self, now: datetime, paid_at: datetime | None = None, **detail: object) -> None:
        """The full amount is in escrow since ``paid_at``. The payment service judged it in
        time (a late payment never funds an escrow), so it counts however late its news
        arrives. Money that arrives for a finished order is the payment service's to
        return; here it is only noted."""
        paid_at = paid_at or now
        self.deadlines.pop(PAYMENT_REMINDER, None)  # moot once the money is there
        if self.paid_at is None and self.status not in FINISHED:
            self.paid_at = paid_at
            self.deadlines.clear()
        self.note(now, "escrow funded", status=self.status, **detail)

    def close_unpaid(self, now: datetime, pay_by: datetime) -> None:
        """The payment service saw the payment deadline pass without the full amount: the
        order closes unpaid (a repeated notice, or one for a finished order, changes nothing)."""
        self.deadlines.pop(PAYMENT_REMINDER, None)
        if self.status is OrderStatus.AWAITING_PAYMENT:
            self._close(ClosureReason.PAYMENT_NOT_RECEIVED, now)
        self.note(now, "payment deadline passed", pay_by=pay_by.isoformat())

    def mark_shipped(self, now: datetime, **detail: object) -> None:
        self.shipped = True
        self.note(now, "shipment dispatched", **detail)

    def mark_disputed(self, now: datetime, open_: bool, dispute_id: str = "",
                      **detail: object) -> None:
        """Dispute events come in their own order (one topic): an opening is followed by
        its withdrawal or resolution, and a withdrawn dispute may be followed by another."""
        if open_:
            self.open_dispute_id = dispute_id
        elif self.open_dispute_id == dispute_id:
            self.open_dispute_id = None
        self.note(now, "dispute opened" if open_ else "dispute ended", dispute_id=dispute_id,
                  **detail)

    def mark_received(self, now: datetime, **detail: object) -> None:
        self.received = True
        self.note(now, "receipt confirmed", **detail)

    def settle(self, released_total: int, refunded_total: int, now: datetime) -> None:
        """Escrow is empty: the trade is over and the order closes with its outcome."""
        self.released_total, self.refunded_total = released_total, refunded_total
        self.settled = True
        if self.status in FINISHED:
            self.note(now, "escrow settled", released_total=released_total,
                      refunded_total=refunded_total)
            return
        self._close(ClosureReason.SETTLED, now)

    def mark_returned(self, amount: int, currency: str, now: datetime, **detail: object) -> None:
        """Money sent back to whoever paid it. A return after the escrow settled adds to
        what the buyer got back (the ledger books it as paid in and refunded); an earlier
        one is in the settled totals already, and money in another currency is never the
        order's (it goes back as it came, outside the ledger)."""
        if self.settled and currency == self.currency:
            self.refunded_total += amount
        self.note(now, "funds returned", amount=amount, currency=currency, **detail)

    # --- rules ---------------------------------------------------------------------------

    def may_read(self, actor: Actor) -> bool:
        return actor.may_read(self.parties)

    def _require_status(self, action: str, *allowed: OrderStatus, hint: str = "") -> None:
        if self.status not in allowed:
            raise DomainError(f"cannot {action} an order that is {self.status}"
                              + (f"; {hint}" if hint else ""))

    def _close(self, reason: ClosureReason, now: datetime) -> None:
        self.closure_reason = reason
        self.deadlines.clear()
        self.record(OrderClosed(order_id=self.order_id, parties=self.parties, reason=reason,
                                currency=self.currency,
                                released_total=self.released_total,
                                refunded_total=self.refunded_total), now)
