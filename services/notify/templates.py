"""One template per step: what each recipient is told and what they should do next.

A template gets a ``MailContext`` and returns ``Content``; ``rendering`` turns it into the
text and HTML parts. Mails never show a card number or a bank account number: a card is
shown by brand and last four digits, the escrow account by its last four characters (the
full transfer details are on the order page).
"""

from __future__ import annotations

from shared.contracts.events import (
    BankTransferReceived,
    CardPaymentDeclined,
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeAnswer,
    DisputeAnswerDueSoon,
    DisputeAnswered,
    DisputeEscalated,
    DisputeOpened,
    DisputeResolved,
    DisputeStatementAdded,
    DisputeWithdrawn,
    EscrowFunded,
    EscrowOpened,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    MessagePosted,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    OrderDeclined,
    OrderPlaced,
    PaymentDueSoon,
    ReceiptAutoConfirmSoon,
    ReceiptConfirmed,
    ReturnReason,
    SettlementReason,
    ShipmentDispatched,
    ShipmentDueSoon,
    ShipmentExpected,
)
from shared.contracts.trade import (
    Address,
    CardSummary,
    Carrier,
    DisputeOutcome,
    DisputeReason,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
)
from services.notify.rendering import Content, MailContext, Recipient, day, when

CARRIERS = {Carrier.DHL: "DHL", Carrier.FEDEX: "FedEx", Carrier.UPS: "UPS",
            Carrier.USPS: "USPS", Carrier.SF_EXPRESS: "SF Express", Carrier.EMS: "EMS"}

METHODS = {PaymentMethod.CARD: "card", PaymentMethod.BANK_TRANSFER: "bank transfer (T/T)"}

SETTLEMENT_REASONS = {
    SettlementReason.RECEIPT_CONFIRMED: "receipt of the goods was confirmed",
    SettlementReason.UNDISPUTED_PART: "this part of the payment is not in dispute",
    SettlementReason.NOT_SHIPPED: "the goods were not shipped in time",
    SettlementReason.ORDER_CLOSED: "the order was closed",
    SettlementReason.DISPUTE_RESOLVED: "the dispute was resolved",
}

DISPUTE_REASONS = {DisputeReason.NOT_RECEIVED: "goods not received",
                   DisputeReason.NOT_AS_DESCRIBED: "goods not as described",
                   DisputeReason.OTHER: "other"}


def _logistics(logistics: Logistics) -> str:
    return f"{CARRIERS[logistics.carrier]}, {logistics.shipping_method.replace('-', ' ')}"


def _address(a: Address) -> str:
    parts = [a.recipient, a.line1, a.line2, " ".join(p for p in (a.postal_code, a.city) if p),
             a.country]
    return ", ".join(p for p in parts if p)


def _card(card: CardSummary | None) -> str:
    return f"{card.brand} card ending in {card.last4}" if card else "card"


def _order(m: MailContext) -> tuple[str, str]:
    return ("Order", m.event.order_id)


# --- order ----------------------------------------------------------------------------


def order_placed(m: MailContext) -> Content:
    e: OrderPlaced = m.event
    facts = [_order(m), ("Buyer", m.buyer), ("Supplier", m.supplier), ("Total", m.money(e.total)),
             ("Ship to", _address(e.destination)),
             ("Delivery period", f"{e.delivery_period_days} days from payment")]
    items = [f"{i.quantity} x {i.description} at {m.money(i.unit_price)} = {m.money(i.subtotal)}"
             for i in e.items]
    if m.to_buyer:
        return Content(
            f"order placed with {m.supplier}",
            [f"Your order with {m.supplier} for {m.money(e.total)} has been placed."],
            facts, items,
            next_step=f"{m.supplier} confirms the order with its shipping arrangement, or "
                      "declines it. You pay nothing until it is confirmed, and you may cancel "
                      "the order at any time before you pay.")
    return Content(
        f"new order from {m.buyer}",
        [f"{m.buyer} placed an order with you for {m.money(e.total)}."],
        facts, items,
        next_step="Please confirm the order with its shipping method and carrier, or decline "
                  "it. Once the buyer has paid into escrow you have "
                  f"{e.delivery_period_days} days to ship.")


def order_confirmed(m: MailContext) -> Content:
    e: OrderConfirmed = m.event
    facts = [_order(m), ("Total", m.money(e.total)), ("Shipping", _logistics(e.logistics)),
             ("Pay by", when(e.payment_due_at)),
             ("Delivery period", f"{e.delivery_period_days} days from payment")]
    if m.to_buyer:
        return Content(
            "confirmed by the supplier",
            [f"{m.supplier} confirmed your order and will ship by {_logistics(e.logistics)}."],
            facts,
            next_step=f"Pay {m.money(e.total)} into escrow by {when(e.payment_due_at)}. "
                      "The payment instructions follow in a separate email. If the full amount "
                      "is not held in escrow by then, the order closes automatically.")
    return Content(
        "you confirmed the order",
        [f"You confirmed the order of {m.buyer}."], facts,
        next_step=f"The buyer has until {when(e.payment_due_at)} to pay into escrow. Do not ship "
                  "yet: we tell you when the payment is held, and from then on you have "
                  f"{e.delivery_period_days} days to ship.")


def order_declined(m: MailContext) -> Content:
    e: OrderDeclined = m.event
    facts = [_order(m), ("Reason", e.reason)]
    if m.to_buyer:
        return Content("declined by the supplier",
                       [f"{m.supplier} declined your order. Nothing was charged."], facts,
                       next_step="The order is closed; there is nothing more to do.")
    return Content("you declined the order", [f"You declined the order of {m.buyer}."], facts,
                   next_step="The order is closed; there is nothing more to do.")


def order_cancelled(m: MailContext) -> Content:
    e: OrderCancelled = m.event
    facts = [_order(m), ("Reason", e.reason)]
    if m.to_buyer:
        return Content("you cancelled the order",
                       ["You cancelled the order before paying. Nothing was charged."], facts,
                       next_step="The order is closed; there is nothing more to do.")
    return Content("cancelled by the buyer", [f"{m.buyer} cancelled the order before paying."],
                   facts, next_step="The order is closed. Do not prepare or ship the goods.")


def payment_due_soon(m: MailContext) -> Content:
    e: PaymentDueSoon = m.event
    facts = [_order(m), ("Pay by", when(e.payment_due_at))]
    if m.to_buyer:
        return Content(
            f"reminder: pay by {day(e.payment_due_at)}",
            ["The payment for your order is not yet fully held in escrow."], facts,
            next_step=f"Pay the full amount by {when(e.payment_due_at)}, by card on the order "
                      "page or by bank transfer with the reference from the payment "
                      "instructions. Otherwise the order closes automatically.")
    return Content(
        "the buyer's payment deadline is near",
        [f"{m.buyer} has not yet paid the full amount into escrow."], facts,
        next_step=f"If the money is not held by {when(e.payment_due_at)} the order closes "
                  "automatically. Do not ship before we tell you the payment is held.")


def order_closed(m: MailContext) -> Content:
    e: OrderClosed = m.event
    if e.reason is ClosureReason.PAYMENT_NOT_RECEIVED:
        if m.to_buyer:
            return Content(
                "closed: payment not received",
                ["Your order is closed because the full payment was not held in escrow by the "
                 "payment deadline."], [_order(m)],
                next_step="There is nothing more to do. Money that still arrives for this "
                          "order is returned to you.")
        return Content(
            "closed: payment not received",
            [f"The order of {m.buyer} is closed because the payment did not arrive in time."],
            [_order(m)], next_step="Do not ship the goods; there is nothing more to do.")
    return Content(
        "order closed",
        ["The order is complete and closed. Every amount paid into escrow has left it."],
        [_order(m), ("Released to the supplier", m.money(e.released_total)),
         ("Refunded to the buyer", m.money(e.refunded_total))],
        next_step="There is nothing more to do. Thank you for trading with escrow.")


def message_posted(m: MailContext) -> Content:
    e: MessagePosted = m.event
    author = m.buyer if e.author_role == "buyer" else m.supplier if e.author_role == "supplier" \
        else "Customer service"
    return Content(f"new message from {author}", [f"{author} wrote about the order:"],
                   [_order(m)], quote=e.text,
                   next_step="Reply on the order page; messages are kept with the order.")


# --- payment --------------------------------------------------------------------------


def payment_instructions(m: MailContext) -> Content:
    e: EscrowOpened = m.event
    t = e.bank_transfer
    if m.to_buyer:
        return Content(
            f"pay {m.money(e.amount_due)} into escrow by {day(e.pay_by)}",
            ["Escrow is open for your order. The supplier is paid only after you confirm "
             "receipt of the goods."],
            [_order(m), ("Amount due", m.money(e.amount_due)), ("Pay by", when(e.pay_by)),
             ("Transfer reference", t.reference), ("Beneficiary", t.beneficiary),
             ("Bank", t.bank_name), ("BIC", t.bic), ("IBAN", t.iban)],
            ["By card: pay on the order page.",
             "By bank transfer (T/T) to the escrow account above. Put the reference "
             f"{t.reference} on the transfer exactly: incoming money is matched by it.",
             "Several transfers may add up to the amount due; an overpayment is returned."],
            next_step=f"Pay {m.money(e.amount_due)} by {when(e.pay_by)}. The order counts as "
                      "paid only when the full amount is held in escrow; otherwise it closes "
                      "automatically.")
    return Content(
        "waiting for the buyer's payment",
        [f"Escrow is open and {m.buyer} has been asked to pay {m.money(e.amount_due)}."],
        [_order(m), ("Amount due", m.money(e.amount_due)), ("Pay by", when(e.pay_by))],
        next_step="Do not ship yet: we tell you when the full amount is held in escrow.")


def card_declined(m: MailContext) -> Content:
    e: CardPaymentDeclined = m.event
    return Content(
        "card payment declined",
        [f"The payment of {m.money(e.amount)} with your {_card(e.card)} was declined. "
         "Nothing was charged."],
        [_order(m), ("Amount", m.money(e.amount)), ("Reason", e.reason)],
        next_step="Try again with another card, or pay by bank transfer with the reference from "
                  "the payment instructions, before the payment deadline.")


def transfer_received(m: MailContext) -> Content:
    e: BankTransferReceived = m.event
    facts = [_order(m), ("Received now", m.money(e.amount)), ("Transfer", e.transfer_id),
             ("Received in total", m.money(e.received_total)), ("Still due", m.money(e.remaining))]
    if e.remaining:
        return Content(
            f"transfer received, {m.money(e.remaining)} still due",
            [f"We received your bank transfer of {m.money(e.amount)}."], facts,
            next_step=f"Transfer the remaining {m.money(e.remaining)} with the same reference "
                      "before the payment deadline; the order counts as paid only when the full "
                      "amount is held in escrow.")
    return Content("transfer received", [f"We received your bank transfer of {m.money(e.amount)}. "
                                         "It completes the amount due."], facts,
                   next_step="A confirmation that your payment is held in escrow follows.")


def payment_received(m: MailContext) -> Content:
    e: EscrowFunded = m.event
    how = _card(e.card) if e.method is PaymentMethod.CARD else METHODS[e.method]
    facts = [_order(m), ("Held in escrow", m.money(e.amount)), ("Paid by", how)]
    if m.to_buyer:
        return Content(
            "payment held in escrow",
            [f"Your payment of {m.money(e.amount)} is held in escrow."], facts,
            next_step=f"{m.supplier} now ships the goods. The money goes to the supplier only "
                      "after you confirm receipt.")
    return Content(
        "paid: please ship",
        [f"The payment of {m.buyer}, {m.money(e.amount)}, is held in escrow."],
        [_order(m), ("Held in escrow", m.money(e.amount))],
        next_step="Ship the goods within the agreed delivery period and submit the carrier, "
                  "tracking number and ship date online. You are paid once the buyer confirms "
                  "receipt.")


def funds_returned(m: MailContext) -> Content:
    e: FundsReturned = m.event
    why = ("it was more than the amount due" if e.reason is ReturnReason.OVERPAYMENT
           else "the order could no longer take payment")
    return Content(
        f"{m.money(e.amount)} returned to you",
        [f"We returned {m.money(e.amount)} to the account it came from, because {why}."],
        [_order(m), ("Returned", m.money(e.amount)), ("Transfer", e.transfer_id)],
        next_step="There is nothing to do; allow a few bank days for the money to arrive.")


def released(m: MailContext) -> Content:
    e: EscrowReleased = m.event
    facts = [_order(m), ("Released", m.money(e.amount)), ("Payout", e.payout_id),
             ("Still held in escrow", m.money(e.held_after))]
    why = SETTLEMENT_REASONS[e.reason]
    if m.to_supplier:
        return Content(
            f"{m.money(e.amount)} released to you",
            [f"{m.money(e.amount)} was released from escrow to you because {why}."], facts,
            next_step="The payout is on its way to your account; allow a few bank days.")
    return Content(
        f"{m.money(e.amount)} released to the supplier",
        [f"{m.money(e.amount)} was released from escrow to {m.supplier} because {why}."], facts,
        next_step="There is nothing for you to do.")


def refund(m: MailContext) -> Content:
    e: EscrowRefunded = m.event
    facts = [_order(m), ("Refunded", m.money(e.amount)), ("Refunded to", METHODS[e.method]),
             ("Refund", e.refund_id), ("Still held in escrow", m.money(e.held_after))]
    why = SETTLEMENT_REASONS[e.reason]
    if m.to_buyer:
        return Content(
            f"{m.money(e.amount)} refunded to you",
            [f"{m.money(e.amount)} was refunded to you from escrow because {why}."], facts,
            next_step=f"The refund goes back through your {METHODS[e.method]}; allow a few "
                      "bank days for it to show.")
    return Content(
        f"{m.money(e.amount)} refunded to the buyer",
        [f"{m.money(e.amount)} was refunded from escrow to {m.buyer} because {why}."], facts,
        next_step="There is nothing for you to do.")


def escrow_settled(m: MailContext) -> Content:
    e: EscrowSettled = m.event
    return Content(
        "escrow statement",
        ["Escrow for this order is now empty: every amount paid in has left it, to the "
         "supplier or back to the buyer."],
        [_order(m), ("Paid into escrow", m.money(e.paid_in_total)),
         ("Released to the supplier", m.money(e.released_total)),
         ("Refunded to the buyer", m.money(e.refunded_total))],
        next_step="There is nothing more to do. Money that still arrives for this order is "
                  "returned to the sender.")


# --- shipping -------------------------------------------------------------------------


def shipment_expected(m: MailContext) -> Content:
    e: ShipmentExpected = m.event
    facts = [_order(m), ("Ship by", when(e.ship_by)), ("Shipping", _logistics(e.logistics))]
    if m.to_supplier:
        return Content(
            f"please ship by {day(e.ship_by)}",
            ["The order is paid: the full amount is held in escrow."], facts,
            next_step=f"Please ship by {when(e.ship_by)} with {_logistics(e.logistics)} and "
                      "submit the carrier, tracking number and ship date online as proof of "
                      "dispatch. Without it the buyer is refunded in full automatically.")
    return Content(
        f"the supplier ships by {day(e.ship_by)}",
        [f"{m.supplier} has until {when(e.ship_by)} to ship your goods."], facts,
        next_step="We tell you when the goods are shipped. If they are not shipped in time, "
                  "you get a full refund automatically.")


def shipment_due_soon(m: MailContext) -> Content:
    e: ShipmentDueSoon = m.event
    facts = [_order(m), ("Ship by", when(e.ship_by))]
    if m.to_supplier:
        return Content(
            f"reminder: ship by {day(e.ship_by)}",
            ["We have no proof of dispatch for this order yet."], facts,
            next_step=f"Ship and submit the carrier, tracking number and ship date by "
                      f"{when(e.ship_by)}; otherwise the buyer is refunded in full automatically "
                      "and the order closes.")
    return Content(
        "the shipping deadline is near",
        [f"{m.supplier} has not yet submitted proof of dispatch."], facts,
        next_step=f"If the goods are not shipped by {when(e.ship_by)}, you get a full refund "
                  "automatically.")


def shipped(m: MailContext) -> Content:
    e: ShipmentDispatched = m.event
    facts = [_order(m), ("Carrier", CARRIERS[e.carrier]), ("Tracking number", e.tracking_number),
             ("Ship date", day(e.ship_date))]
    if m.to_buyer:
        disputes_from = e.ship_date + m.dispute_opens_after
        return Content(
            "your goods are shipped",
            [f"{m.supplier} shipped your goods with {CARRIERS[e.carrier]}, tracking number "
             f"{e.tracking_number}."], facts,
            next_step="When the goods arrive, confirm receipt on the order page: that releases "
                      "the payment to the supplier. If something is wrong, you can open a "
                      f"dispute from {day(disputes_from)} until you confirm receipt.")
    return Content(
        "proof of dispatch recorded",
        [f"Your proof of dispatch is recorded: {CARRIERS[e.carrier]}, tracking number "
         f"{e.tracking_number}."], facts,
        next_step="You are paid when the buyer confirms receipt, or when receipt is confirmed "
                  "automatically.")


def dispatch_deadline_missed(m: MailContext) -> Content:
    e: DispatchDeadlineMissed = m.event
    facts = [_order(m), ("Ship by was", when(e.ship_by))]
    if m.to_buyer:
        return Content(
            "not shipped in time: full refund",
            [f"{m.supplier} did not submit proof of dispatch by {when(e.ship_by)}."], facts,
            next_step="You get a full refund automatically; a refund email follows.")
    return Content(
        "not shipped in time: the buyer is refunded",
        [f"We received no proof of dispatch by {when(e.ship_by)}."], facts,
        next_step="The buyer is refunded in full and the order closes. Do not ship the goods.")


# --- receipt and disputes -------------------------------------------------------------


def receipt_confirmed(m: MailContext) -> Content:
    e: ReceiptConfirmed = m.event
    automatic = e.confirmed_by == "automatic"
    if m.to_buyer:
        said = ("Receipt of your goods was confirmed automatically, as the confirmation "
                "period ended without a dispute." if automatic
                else "Thank you for confirming receipt of the goods.")
        return Content("receipt confirmed", [said], [_order(m)],
                       next_step="The payment is now released to the supplier.")
    said = ("Receipt was confirmed automatically, as the buyer neither confirmed nor disputed "
            "in time." if automatic else f"{m.buyer} confirmed receipt of the goods.")
    return Content("receipt confirmed", [said], [_order(m)],
                   next_step="The payment is released to you; a payout email follows.")


def receipt_auto_confirm_soon(m: MailContext) -> Content:
    e: ReceiptAutoConfirmSoon = m.event
    facts = [_order(m), ("Confirmed automatically on", when(e.auto_confirm_at))]
    if m.to_buyer:
        return Content(
            f"confirm receipt or dispute by {day(e.auto_confirm_at)}",
            ["You have not yet confirmed receipt of the goods."], facts,
            next_step="Confirm receipt on the order page if all is well, or open a dispute if "
                      f"not. Otherwise receipt is confirmed automatically on "
                      f"{when(e.auto_confirm_at)} and the payment goes to the supplier.")
    return Content(
        "receipt will be confirmed automatically",
        [f"{m.buyer} has not yet confirmed receipt."], facts,
        next_step=f"Unless the buyer disputes, receipt is confirmed on {when(e.auto_confirm_at)} "
                  "at the latest and the payment is released to you.")


def _requested(m: MailContext, e: DisputeOpened) -> str:
    if e.requested is RequestedOutcome.FULL_REFUND:
        return "a full refund"
    return f"a partial refund of {m.money(e.disputed_amount)}, keeping the goods"


def dispute_opened(m: MailContext) -> Content:
    e: DisputeOpened = m.event
    facts = [_order(m), ("Dispute", e.dispute_id), ("Reason", DISPUTE_REASONS[e.reason]),
             ("Requested", _requested(m, e)), ("Held in escrow", m.money(e.disputed_amount)),
             ("Evidence", f"{len(e.evidence)} item(s), on the dispute page"),
             ("Answer due by", when(e.answer_due_at))]
    if m.to_supplier:
        return Content(
            "the buyer opened a dispute",
            [f"{m.buyer} opened a dispute and asks for {_requested(m, e)}. "
             f"{m.money(e.disputed_amount)} stays held in escrow while it is open."],
            facts, quote=e.description,
            next_step=f"Answer by {when(e.answer_due_at)}: accept, reject, or offer another "
                      "amount. If you do not answer in time, the dispute can be escalated to "
                      "customer service.")
    return Content(
        "your dispute is open",
        [f"Your dispute is open. {m.money(e.disputed_amount)} stays held in escrow while it is "
         "open; no money moves until it is resolved."], facts, quote=e.description,
        next_step=f"{m.supplier} has until {when(e.answer_due_at)} to accept, reject or offer "
                  "another amount. If you cannot agree, either of you can escalate to customer "
                  "service.")


def dispute_answered(m: MailContext) -> Content:
    e: DisputeAnswered = m.event
    facts = [_order(m), ("Dispute", e.dispute_id)]
    if e.answer is DisputeAnswer.COUNTER_OFFER and e.counter_amount is not None:
        facts.append(("Counter-offer", m.money(e.counter_amount)))
    said = {DisputeAnswer.ACCEPT: "accepted the buyer's request",
            DisputeAnswer.REJECT: "rejected the buyer's request",
            DisputeAnswer.COUNTER_OFFER: "made a counter-offer"}[e.answer]
    if m.to_buyer:
        next_step = {
            DisputeAnswer.ACCEPT: "The agreed refund is executed now; a refund email follows.",
            DisputeAnswer.REJECT: "You can escalate the dispute to customer service, who "
                                  "decide, or withdraw it.",
            DisputeAnswer.COUNTER_OFFER: "Accept the counter-offer on the dispute page, "
                                         "escalate to customer service, or withdraw the "
                                         "dispute.",
        }[e.answer]
        return Content(f"the supplier {said}", [f"{m.supplier} {said}."], facts,
                       quote=e.message or None, next_step=next_step)
    next_step = {
        DisputeAnswer.ACCEPT: "The agreed refund is executed now.",
        DisputeAnswer.REJECT: "The buyer may escalate to customer service or withdraw.",
        DisputeAnswer.COUNTER_OFFER: "The buyer may accept your offer, escalate to customer "
                                     "service or withdraw.",
    }[e.answer]
    return Content(f"you {said}", [f"Your answer is recorded: you {said}."], facts,
                   next_step=next_step)


def dispute_answer_due_soon(m: MailContext) -> Content:
    e: DisputeAnswerDueSoon = m.event
    facts = [_order(m), ("Dispute", e.dispute_id), ("Answer due by", when(e.answer_due_at))]
    if m.to_supplier:
        return Content(
            f"reminder: answer the dispute by {day(e.answer_due_at)}",
            ["The buyer's dispute is still waiting for your answer."], facts,
            next_step=f"Accept, reject or offer another amount by {when(e.answer_due_at)}; "
                      "otherwise the dispute can be escalated to customer service.")
    return Content(
        "the supplier's answer is due soon",
        [f"{m.supplier} has not yet answered your dispute."], facts,
        next_step=f"If there is no answer by {when(e.answer_due_at)}, the dispute can be "
                  "escalated to customer service.")


def dispute_statement_added(m: MailContext) -> Content:
    e: DisputeStatementAdded = m.event
    author = m.buyer if e.author_role == "buyer" else m.supplier
    facts = [_order(m), ("Dispute", e.dispute_id)]
    if e.evidence:
        facts.append(("Evidence added", str(len(e.evidence))))
    return Content(f"{author} added to the dispute", [f"{author} added a statement:"], facts,
                   quote=e.text,
                   next_step="Read it with its evidence on the dispute page and add your own "
                             "side there; customer service sees everything both parties add.")


def dispute_withdrawn(m: MailContext) -> Content:
    e: DisputeWithdrawn = m.event
    facts = [_order(m), ("Dispute", e.dispute_id)]
    if m.to_buyer:
        return Content("you withdrew the dispute", ["You withdrew your dispute."], facts,
                       next_step="Confirm receipt on the order page when you are satisfied; "
                                 "otherwise receipt is confirmed automatically later.")
    return Content("the buyer withdrew the dispute", [f"{m.buyer} withdrew the dispute."], facts,
                   next_step="The payment is released to you once receipt is confirmed.")


def dispute_escalated(m: MailContext) -> Content:
    e: DisputeEscalated = m.event
    by = {"buyer": m.buyer, "supplier": m.supplier}.get(str(e.escalated_by),
                                                       "the platform (no answer in time)")
    facts = [_order(m), ("Dispute", e.dispute_id), ("Escalated by", by)]
    if m.recipient is Recipient.CUSTOMER_SERVICE:
        p = m.event.parties
        return Content(
            "dispute escalated: please decide",
            [f"The dispute on order {e.order_id} was escalated by {by}."],
            [*facts, ("Buyer", f"{p.buyer.name} (party {p.buyer.party_id})"),
             ("Supplier", f"{p.supplier.name} (party {p.supplier.party_id})")],
            next_step="Review the dispute, its evidence and the messages, then decide: full "
                      "refund, partial refund of an amount, or release to the supplier. The "
                      "decision is final and executed at once.")
    return Content(
        "dispute escalated to customer service",
        ["Customer service now reviews the dispute."], facts,
        next_step="An agent decides: full refund, partial refund or release to the supplier. "
                  "The decision is final. Add anything the agent should know on the dispute "
                  "page.")


def dispute_resolved(m: MailContext) -> Content:
    e: DisputeResolved = m.event
    outcome = {DisputeOutcome.FULL_REFUND: "full refund to the buyer",
               DisputeOutcome.PARTIAL_REFUND: f"refund of {m.money(e.refund_amount)} to the buyer",
               DisputeOutcome.RELEASE: "release to the supplier"}[e.outcome]
    how = "by agreement" if e.decided_by == "agreement" else "by customer service (final)"
    facts = [_order(m), ("Dispute", e.dispute_id), ("Outcome", outcome), ("Decided", how),
             ("Refund to the buyer", m.money(e.refund_amount))]
    if e.reason:
        facts.append(("Reason", e.reason))
    if m.to_buyer:
        next_step = ("The refund is executed now; the rest held in escrow goes to the supplier."
                     if e.refund_amount else "What is held in escrow goes to the supplier.")
    else:
        next_step = ("The refund goes to the buyer; the rest held in escrow is released to you."
                     if e.refund_amount else "What is held in escrow is released to you now.")
    return Content(f"dispute resolved: {outcome}",
                   [f"The dispute is resolved {how}: {outcome}."], facts, next_step=next_step)
