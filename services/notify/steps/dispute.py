"""Mails for the dispute service's events: receipt confirmation and disputes.

Each template is declared with its step, recipients and what the mail asks for; the
README table is generated from these declarations (``python -m services.notify.steps``)."""

from __future__ import annotations

from shared.contracts import events as ev
from shared.contracts.trade import DisputeOutcome, RequestedOutcome

from services.notify.rendering import Content, MailContext, Recipient, day, when
from services.notify.steps.base import BOTH, CUSTOMER_SERVICE, DISPUTE_REASONS, order_fact, step


@step(ev.ReceiptConfirmed, "receipt_confirmed", BOTH,
      asks="supplier: payment released")
def receipt_confirmed(m: MailContext[ev.ReceiptConfirmed]) -> Content:
    e = m.event
    automatic = e.confirmed_by == "automatic"
    if m.to_buyer:
        said = ("Receipt of your goods was confirmed automatically, as the confirmation "
                "period ended without a dispute." if automatic
                else "Thank you for confirming receipt of the goods.")
        return Content("receipt confirmed", [said], [order_fact(m)],
                       next_step="The payment is now released to the supplier.")
    said = ("Receipt was confirmed automatically, as the buyer neither confirmed nor disputed "
            "in time." if automatic else f"{m.buyer} confirmed receipt of the goods.")
    return Content("receipt confirmed", [said], [order_fact(m)],
                   next_step="The payment is released to you; a payout email follows.")


@step(ev.ReceiptExpected, "receipt_expected", BOTH,
      asks="buyer: confirm receipt, or dispute from ...; supplier: paid on confirmation, at the latest on ...")
def receipt_expected(m: MailContext[ev.ReceiptExpected]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Disputes possible from", when(e.dispute_opens_at)),
             ("Confirmed automatically on", when(e.auto_confirm_at))]
    if m.to_buyer:
        return Content(
            "when to confirm receipt",
            ["When the goods arrive, confirm receipt on the order page: that releases the "
             "payment to the supplier."], facts,
            next_step=f"If something is wrong, you can open a dispute from "
                      f"{when(e.dispute_opens_at)} until you confirm receipt. Otherwise receipt "
                      f"is confirmed automatically on {when(e.auto_confirm_at)}.")
    return Content(
        "when you are paid",
        ["The buyer has been told how to confirm receipt of the goods."], facts,
        next_step="You are paid when the buyer confirms receipt, and at the latest when receipt "
                  f"is confirmed automatically on {when(e.auto_confirm_at)}, unless the buyer "
                  "opens a dispute.")


@step(ev.ReceiptAutoConfirmSoon, "receipt_auto_confirm_soon", BOTH,
      asks="buyer: confirm or dispute by ...")
def receipt_auto_confirm_soon(m: MailContext[ev.ReceiptAutoConfirmSoon]) -> Content:
    e = m.event
    possible = f" (possible from {when(e.dispute_opens_at)})" if e.dispute_opens_at else ""
    facts = [order_fact(m), ("Confirmed automatically on", when(e.auto_confirm_at))]
    if m.to_buyer:
        return Content(
            f"confirm receipt or dispute by {day(e.auto_confirm_at)}",
            ["You have not yet confirmed receipt of the goods."], facts,
            next_step="Confirm receipt on the order page if all is well, or open a dispute"
                      f"{possible} if not. Otherwise receipt is confirmed automatically on "
                      f"{when(e.auto_confirm_at)} and the payment goes to the supplier.")
    return Content(
        "receipt will be confirmed automatically",
        [f"{m.buyer} has not yet confirmed receipt."], facts,
        next_step=f"Unless the buyer disputes, receipt is confirmed on {when(e.auto_confirm_at)} "
                  "at the latest and the payment is released to you.")


def _requested(m: MailContext, e: ev.DisputeOpened) -> str:
    if e.requested is RequestedOutcome.FULL_REFUND:
        return "a full refund"
    return f"a partial refund of {m.money(e.disputed_amount)}, keeping the goods"


@step(ev.DisputeOpened, "dispute_opened", BOTH,
      asks="supplier: answer by ...")
def dispute_opened(m: MailContext[ev.DisputeOpened]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Dispute", e.dispute_id), ("Reason", DISPUTE_REASONS[e.reason]),
             ("Requested", _requested(m, e)), ("Held in escrow", m.money(e.disputed_amount)),
             ("Evidence", f"{len(e.evidence)} item(s), on the dispute page"),
             ("Answer due by", when(e.answer_due_at))]
    if m.to_supplier:
        return Content(
            "the buyer opened a dispute",
            [f"{m.buyer} opened a dispute and asks for {_requested(m, e)}. "
             f"{m.money(e.disputed_amount)} stays held in escrow while it is open"
             + ("." if e.requested is RequestedOutcome.FULL_REFUND else
                "; the rest, which the buyer does not dispute, is released to you now (a "
                "separate email gives the amount).")],
            facts, quote=e.description,
            next_step=f"Answer by {when(e.answer_due_at)}: accept, reject, or offer another "
                      "amount. If you do not answer in time, the dispute can be escalated to "
                      "customer service.")
    return Content(
        "your dispute is open",
        [f"Your dispute is open. {m.money(e.disputed_amount)} stays held in escrow while it is "
         "open" + ("; no money moves until it is resolved." if e.requested is
                   RequestedOutcome.FULL_REFUND else
                   f"; the rest of your payment, which you do not dispute, is released to "
                   f"{m.supplier} now (a separate email gives the amount).")],
        facts, quote=e.description,
        next_step=f"{m.supplier} has until {when(e.answer_due_at)} to accept, reject or offer "
                  "another amount. If you cannot agree, either of you can escalate to customer "
                  "service.")


@step(ev.DisputeAnswered, "dispute_answered", BOTH,
      asks="buyer: accept the counter-offer, escalate or withdraw")
def dispute_answered(m: MailContext[ev.DisputeAnswered]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Dispute", e.dispute_id)]
    if e.answer is ev.DisputeAnswer.COUNTER_OFFER and e.counter_amount is not None:
        facts.append(("Counter-offer", m.money(e.counter_amount)))
    said = {ev.DisputeAnswer.ACCEPT: "accepted the buyer's request",
            ev.DisputeAnswer.REJECT: "rejected the buyer's request",
            ev.DisputeAnswer.COUNTER_OFFER: "made a counter-offer"}[e.answer]
    if m.to_buyer:
        next_step = {
            ev.DisputeAnswer.ACCEPT: "The agreed refund is executed now; a refund email follows.",
            ev.DisputeAnswer.REJECT: "You can escalate the dispute to customer service, who "
                                  "decide, or withdraw it.",
            ev.DisputeAnswer.COUNTER_OFFER: "Accept the counter-offer on the dispute page, "
                                         "escalate to customer service, or withdraw the "
                                         "dispute.",
        }[e.answer]
        return Content(f"the supplier {said}", [f"{m.supplier} {said}."], facts,
                       quote=e.message or None, next_step=next_step)
    next_step = {
        ev.DisputeAnswer.ACCEPT: "The agreed refund is executed now.",
        ev.DisputeAnswer.REJECT: "The buyer may escalate to customer service or withdraw.",
        ev.DisputeAnswer.COUNTER_OFFER: "The buyer may accept your offer, escalate to customer "
                                     "service or withdraw.",
    }[e.answer]
    return Content(f"you {said}", [f"Your answer is recorded: you {said}."], facts,
                   next_step=next_step)


@step(ev.DisputeAnswerDueSoon, "dispute_answer_due_soon", BOTH,
      asks="supplier: answer by ...")
def dispute_answer_due_soon(m: MailContext[ev.DisputeAnswerDueSoon]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Dispute", e.dispute_id), ("Answer due by", when(e.answer_due_at))]
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


@step(ev.DisputeStatementAdded, "dispute_statement_added", BOTH, except_author=True,
      asks="answer on the dispute page")
def dispute_statement_added(m: MailContext[ev.DisputeStatementAdded]) -> Content:
    e = m.event
    author = m.buyer if e.author_role == "buyer" else m.supplier
    facts = [order_fact(m), ("Dispute", e.dispute_id)]
    if e.evidence:
        facts.append(("Evidence added", str(len(e.evidence))))
    return Content(f"{author} added to the dispute", [f"{author} added a statement:"], facts,
                   quote=e.text,
                   next_step="Read it with its evidence on the dispute page and add your own "
                             "side there; customer service sees everything both parties add.")


@step(ev.DisputeWithdrawn, "dispute_withdrawn", BOTH,
      asks="buyer: confirm receipt")
def dispute_withdrawn(m: MailContext[ev.DisputeWithdrawn]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Dispute", e.dispute_id)]
    if m.to_buyer:
        return Content("you withdrew the dispute", ["You withdrew your dispute."], facts,
                       next_step="Confirm receipt on the order page when you are satisfied; "
                                 "otherwise receipt is confirmed automatically later.")
    return Content("the buyer withdrew the dispute", [f"{m.buyer} withdrew the dispute."], facts,
                   next_step="The payment is released to you once receipt is confirmed.")


@step(ev.DisputeEscalated, "dispute_escalated", (*BOTH, CUSTOMER_SERVICE),
      asks="customer service: review and decide")
def dispute_escalated(m: MailContext[ev.DisputeEscalated]) -> Content:
    e = m.event
    by = {"buyer": m.buyer, "supplier": m.supplier}.get(str(e.escalated_by),
                                                       "the platform (no answer in time)")
    facts = [order_fact(m), ("Dispute", e.dispute_id), ("Escalated by", by)]
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


@step(ev.DisputeResolved, "dispute_resolved", BOTH,
      asks="nothing; the outcome is executed")
def dispute_resolved(m: MailContext[ev.DisputeResolved]) -> Content:
    e = m.event
    # What moves: an agent's "full refund" of a partial dispute refunds what is in dispute.
    outcome = {DisputeOutcome.FULL_REFUND: f"refund of everything in dispute, "
                                           f"{m.money(e.refund_amount)}, to the buyer",
               DisputeOutcome.PARTIAL_REFUND: f"refund of {m.money(e.refund_amount)} to the buyer",
               DisputeOutcome.RELEASE: "release to the supplier"}[e.outcome]
    how = "by agreement" if e.decided_by == "agreement" else "by customer service (final)"
    facts = [order_fact(m), ("Dispute", e.dispute_id), ("Outcome", outcome), ("Decided", how),
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
