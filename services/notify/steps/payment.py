"""Mails for the payment service's events: payment instructions, money in, money out, the
escrow statement.

Each template is declared with its step, recipients and what the mail asks for; the
README table is generated from these declarations (``python -m services.notify.steps``)."""

from __future__ import annotations

from shared.contracts import events as ev
from shared.contracts.trade import PaymentMethod

from services.notify.rendering import Content, MailContext, day, when
from services.notify.steps.base import BOTH, BUYER, METHODS, SETTLEMENT_REASONS, card_text, order_fact, step


@step(ev.EscrowOpened, "payment_instructions", BOTH,
      asks="buyer: amount, T/T reference, pay-by date; supplier: do not ship yet")
def payment_instructions(m: MailContext[ev.EscrowOpened]) -> Content:
    e = m.event
    t = e.bank_transfer
    if m.to_buyer:
        return Content(
            f"pay {m.money(e.amount_due)} into escrow by {day(e.pay_by)}",
            ["Escrow is open for your order. The supplier is paid only after you confirm "
             "receipt of the goods."],
            [order_fact(m), ("Amount due", m.money(e.amount_due)), ("Pay by", when(e.pay_by)),
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
        [order_fact(m), ("Amount due", m.money(e.amount_due)), ("Pay by", when(e.pay_by))],
        next_step="Do not ship yet: we tell you when the full amount is held in escrow.")


@step(ev.CardPaymentDeclined, "card_declined", (BUYER,),
      asks="try another card or pay by transfer")
def card_declined(m: MailContext[ev.CardPaymentDeclined]) -> Content:
    e = m.event
    return Content(
        "card payment declined",
        [f"The payment of {m.money(e.amount)} with your {card_text(e.card)} was declined. "
         "Nothing was charged."],
        [order_fact(m), ("Amount", m.money(e.amount)), ("Reason", e.reason)],
        next_step="Try again with another card, or pay by bank transfer with the reference from "
                  "the payment instructions, before the payment deadline.")


@step(ev.BankTransferReceived, "transfer_received", (BUYER,),
      asks="transfer the remainder with the same reference")
def transfer_received(m: MailContext[ev.BankTransferReceived]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Received now", m.money(e.amount)), ("Transfer", e.transfer_id),
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


@step(ev.EscrowFunded, "payment_received", BOTH,
      asks="supplier: ship within the delivery period")
def payment_received(m: MailContext[ev.EscrowFunded]) -> Content:
    e = m.event
    how = card_text(e.card) if e.method is PaymentMethod.CARD else METHODS[e.method]
    facts = [order_fact(m), ("Held in escrow", m.money(e.amount)), ("Paid by", how)]
    if m.to_buyer:
        return Content(
            "payment held in escrow",
            [f"Your payment of {m.money(e.amount)} is held in escrow."], facts,
            next_step=f"{m.supplier} now ships the goods. The money goes to the supplier only "
                      "after you confirm receipt.")
    return Content(
        "paid: please ship",
        [f"The payment of {m.buyer}, {m.money(e.amount)}, is held in escrow."],
        [order_fact(m), ("Held in escrow", m.money(e.amount))],
        next_step="Ship the goods within the agreed delivery period and submit the carrier, "
                  "tracking number and ship date online. You are paid once the buyer confirms "
                  "receipt.")


@step(ev.PaymentDeadlinePassed, "payment_deadline_passed", BOTH,
      asks="nothing (what was paid is refunded; late money is returned)")
def payment_deadline_passed(m: MailContext[ev.PaymentDeadlinePassed]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Pay by", when(e.pay_by)), ("Received in time", m.money(e.received_total))]
    if m.to_buyer:
        paid = ([f"The {m.money(e.received_total)} you paid is refunded to you; a separate email "
                 "confirms the refund."] if e.received_total else ["Nothing was taken from you."])
        return Content(
            "closed: payment not received",
            ["Your order is closed because the full payment was not held in escrow by the "
             "payment deadline.", *paid], facts,
            next_step="There is nothing more to do. Money that still arrives for this order is "
                      "returned to you.")
    return Content(
        "closed: payment not received",
        [f"The order of {m.buyer} is closed because the full payment did not arrive by the "
         "payment deadline."], facts,
        next_step="Do not ship the goods; there is nothing more to do.")


@step(ev.FundsReturned, "funds_returned", (BUYER,),
      asks="nothing")
def funds_returned(m: MailContext[ev.FundsReturned]) -> Content:
    e = m.event
    why = {ev.ReturnReason.OVERPAYMENT: "it was more than the amount due",
           ev.ReturnReason.ORDER_NOT_PAYABLE: "the order could no longer take payment",
           ev.ReturnReason.WRONG_CURRENCY: f"it was in {e.currency}, not in the currency of the "
                                           "order, and the platform never converts money",
           }[e.reason]
    return Content(
        f"{m.money(e.amount)} returned to you",
        [f"We returned {m.money(e.amount)} to the account it came from, because {why}."],
        [order_fact(m), ("Returned", m.money(e.amount)), ("Transfer", e.transfer_id)],
        next_step="There is nothing to do; allow a few bank days for the money to arrive.")


@step(ev.EscrowReleased, "released", BOTH,
      asks="supplier: payout on its way")
def released(m: MailContext[ev.EscrowReleased]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Released", m.money(e.amount)), ("Payout", e.payout_id),
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


@step(ev.EscrowRefunded, "refund", BOTH,
      asks="buyer: refund on its way")
def refund(m: MailContext[ev.EscrowRefunded]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Refunded", m.money(e.amount)), ("Refunded to", METHODS[e.method]),
             ("Refund", e.refund_id), ("Still held in escrow", m.money(e.held_after))]
    why = SETTLEMENT_REASONS[e.reason]
    # A refund split over several funding sources is one refund in parts: each mail says so.
    part = e.refund_total is not None and e.refund_total != e.amount
    what = (f"{m.money(e.amount)} of a refund of {m.money(e.refund_total or e.amount)}" if part
            else m.money(e.amount))
    parts = ([f"The refund of {m.money(e.refund_total or e.amount)} goes back the ways you paid, "
              "in parts, one email for each."] if part else [])
    if part:
        facts.insert(1, ("Whole refund", m.money(e.refund_total or e.amount)))
    if m.to_buyer:
        return Content(
            f"{what} refunded to you",
            [f"{what} was refunded to you from escrow because {why}.", *parts], facts,
            next_step=f"The refund goes back through your {METHODS[e.method]}; allow a few "
                      "bank days for it to show.")
    return Content(
        f"{what} refunded to the buyer",
        [f"{what} was refunded from escrow to {m.buyer} because {why}.", *parts], facts,
        next_step="There is nothing for you to do.")


@step(ev.EscrowSettled, "escrow_settled", BOTH, only_if=lambda e: e.paid_in_total > 0,
      asks="statement: paid in, released, refunded")
def escrow_settled(m: MailContext[ev.EscrowSettled]) -> Content:
    e = m.event
    return Content(
        "escrow statement",
        ["Escrow for this order is now empty: every amount paid in has left it, to the "
         "supplier or back to the buyer."],
        [order_fact(m), ("Paid into escrow", m.money(e.paid_in_total)),
         ("Released to the supplier", m.money(e.released_total)),
         ("Refunded to the buyer", m.money(e.refunded_total))],
        next_step="There is nothing more to do. Money that still arrives for this order is "
                  "returned to the sender.")
