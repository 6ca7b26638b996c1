"""Which step of the trade each event is, who is told about it, and with which template.

Every registered event type has a row (a test enforces it), so a new event cannot go
unmailed silently. The choice of recipients is explained in ``services/notify/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.contracts import events as ev
from shared.contracts.envelope import TradeEvent
from services.notify import templates as t
from services.notify.rendering import Content, MailContext, Recipient

BUYER, SUPPLIER, CUSTOMER_SERVICE = Recipient.BUYER, Recipient.SUPPLIER, Recipient.CUSTOMER_SERVICE
BOTH = (BUYER, SUPPLIER)


@dataclass(frozen=True)
class Step:
    name: str
    recipients: tuple[Recipient, ...]
    template: Callable[[MailContext], Content]
    # A message goes to the other side only: its author is left out.
    except_author: bool = False

    def recipients_of(self, event: TradeEvent) -> tuple[Recipient, ...]:
        if self.except_author:
            author = getattr(event, "author_role", None)
            return tuple(r for r in self.recipients if r != author)
        return self.recipients


STEPS: dict[type[TradeEvent], Step] = {
    # order
    ev.OrderPlaced: Step("order_placed", BOTH, t.order_placed),
    ev.OrderConfirmed: Step("order_confirmed", BOTH, t.order_confirmed),
    ev.OrderDeclined: Step("order_declined", BOTH, t.order_declined),
    ev.OrderCancelled: Step("order_cancelled", BOTH, t.order_cancelled),
    ev.PaymentDueSoon: Step("payment_due_soon", BOTH, t.payment_due_soon),
    ev.OrderClosed: Step("order_closed", BOTH, t.order_closed),
    ev.MessagePosted: Step("message_posted", BOTH, t.message_posted, except_author=True),
    # payment
    ev.EscrowOpened: Step("payment_instructions", BOTH, t.payment_instructions),
    ev.CardPaymentDeclined: Step("card_declined", (BUYER,), t.card_declined),
    ev.BankTransferReceived: Step("transfer_received", (BUYER,), t.transfer_received),
    ev.EscrowFunded: Step("payment_received", BOTH, t.payment_received),
    ev.FundsReturned: Step("funds_returned", (BUYER,), t.funds_returned),
    ev.EscrowReleased: Step("released", BOTH, t.released),
    ev.EscrowRefunded: Step("refund", BOTH, t.refund),
    ev.EscrowSettled: Step("escrow_settled", BOTH, t.escrow_settled),
    # shipping
    ev.ShipmentExpected: Step("shipment_expected", BOTH, t.shipment_expected),
    ev.ShipmentDueSoon: Step("shipment_due_soon", BOTH, t.shipment_due_soon),
    ev.ShipmentDispatched: Step("shipped", BOTH, t.shipped),
    ev.DispatchDeadlineMissed: Step("dispatch_deadline_missed", BOTH, t.dispatch_deadline_missed),
    # receipt and disputes
    ev.ReceiptConfirmed: Step("receipt_confirmed", BOTH, t.receipt_confirmed),
    ev.ReceiptAutoConfirmSoon: Step("receipt_auto_confirm_soon", BOTH, t.receipt_auto_confirm_soon),
    ev.DisputeOpened: Step("dispute_opened", BOTH, t.dispute_opened),
    ev.DisputeAnswered: Step("dispute_answered", BOTH, t.dispute_answered),
    ev.DisputeAnswerDueSoon: Step("dispute_answer_due_soon", BOTH, t.dispute_answer_due_soon),
    ev.DisputeStatementAdded: Step("dispute_statement_added", BOTH, t.dispute_statement_added,
                                   except_author=True),
    ev.DisputeWithdrawn: Step("dispute_withdrawn", BOTH, t.dispute_withdrawn),
    ev.DisputeEscalated: Step("dispute_escalated", (*BOTH, CUSTOMER_SERVICE), t.dispute_escalated),
    ev.DisputeResolved: Step("dispute_resolved", BOTH, t.dispute_resolved),
}


def step_of(event: TradeEvent) -> Step:
    return STEPS[type(event)]
