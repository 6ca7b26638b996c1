"""Mails for the order service's events: placing, confirming, declining, cancelling, paying
in time, closing, messages.

Each template is declared with its step, recipients and what the mail asks for; the
README table is generated from these declarations (``python -m services.notify.steps``)."""

from __future__ import annotations

from shared.contracts import events as ev

from services.notify.rendering import Content, MailContext, day, when
from services.notify.steps.base import BOTH, address_text, logistics_text, order_fact, step


@step(ev.OrderPlaced, "order_placed", BOTH,
      asks="supplier: confirm or decline; buyer: wait, may cancel before paying")
def order_placed(m: MailContext[ev.OrderPlaced]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Buyer", m.buyer), ("Supplier", m.supplier), ("Total", m.money(e.total)),
             ("Ship to", address_text(e.destination)),
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


@step(ev.OrderConfirmed, "order_confirmed", BOTH,
      asks="buyer: pay by the due date; supplier: do not ship yet")
def order_confirmed(m: MailContext[ev.OrderConfirmed]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Total", m.money(e.total)), ("Shipping", logistics_text(e.logistics)),
             ("Pay by", when(e.payment_due_at)),
             ("Delivery period", f"{e.delivery_period_days} days from payment")]
    if m.to_buyer:
        return Content(
            "confirmed by the supplier",
            [f"{m.supplier} confirmed your order and will ship by {logistics_text(e.logistics)}."],
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


@step(ev.OrderDeclined, "order_declined", BOTH,
      asks="nothing; closed")
def order_declined(m: MailContext[ev.OrderDeclined]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Reason", e.reason)]
    if m.to_buyer:
        return Content("declined by the supplier",
                       [f"{m.supplier} declined your order. Nothing was charged."], facts,
                       next_step="The order is closed; there is nothing more to do.")
    return Content("you declined the order", [f"You declined the order of {m.buyer}."], facts,
                   next_step="The order is closed; there is nothing more to do.")


@step(ev.OrderCancelled, "order_cancelled", BOTH,
      asks="supplier: do not ship")
def order_cancelled(m: MailContext[ev.OrderCancelled]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Reason", e.reason)]
    if m.to_buyer:
        return Content("you cancelled the order",
                       ["You cancelled the order before it was paid in full. No money is kept: "
                        "any money that already arrived for it is returned to you, with an "
                        "email for each return."], facts,
                       next_step="The order is closed; there is nothing more to do.")
    return Content("cancelled by the buyer", [f"{m.buyer} cancelled the order before paying."],
                   facts, next_step="The order is closed. Do not prepare or ship the goods.")


@step(ev.PaymentDueSoon, "payment_due_soon", BOTH,
      asks="buyer: pay by ...; supplier: closes if unpaid")
def payment_due_soon(m: MailContext[ev.PaymentDueSoon]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Pay by", when(e.payment_due_at))]
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


@step(ev.OrderClosed, "order_closed", BOTH, asks="nothing",
      # an order closed unpaid is announced by the payment deadline's own mail
      only_if=lambda e: e.reason is ev.ClosureReason.SETTLED)
def order_closed(m: MailContext[ev.OrderClosed]) -> Content:
    e = m.event
    return Content(
        "order closed",
        ["The order is complete and closed. Every amount paid into escrow has left it."],
        [order_fact(m), ("Released to the supplier", m.money(e.released_total)),
         ("Refunded to the buyer", m.money(e.refunded_total))],
        next_step="There is nothing more to do. Thank you for trading with escrow.")


@step(ev.MessagePosted, "message_posted", BOTH, except_author=True,
      asks="reply on the order page")
def message_posted(m: MailContext[ev.MessagePosted]) -> Content:
    e = m.event
    author = m.buyer if e.author_role == "buyer" else m.supplier if e.author_role == "supplier" \
        else "Customer service"
    return Content(f"new message from {author}", [f"{author} wrote about the order:"],
                   [order_fact(m)], quote=e.text,
                   next_step="Reply on the order page; messages are kept with the order.")
