"""Mails for the shipping service's events: the ship-by deadline and the proof of dispatch.

Each template is declared with its step, recipients and what the mail asks for; the
README table is generated from these declarations (``python -m services.notify.steps``)."""

from __future__ import annotations

from shared.contracts import events as ev

from services.notify.rendering import Content, MailContext, day, when
from services.notify.steps.base import BOTH, CARRIERS, logistics_text, order_fact, step


@step(ev.ShipmentExpected, "shipment_expected", BOTH,
      asks="supplier: please ship by ... with ...")
def shipment_expected(m: MailContext[ev.ShipmentExpected]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Ship by", when(e.ship_by)), ("Shipping", logistics_text(e.logistics))]
    if m.to_supplier:
        return Content(
            f"please ship by {day(e.ship_by)}",
            ["The order is paid: the full amount is held in escrow."], facts,
            next_step=f"Please ship by {when(e.ship_by)} with {logistics_text(e.logistics)} and "
                      "submit the carrier, tracking number and ship date online as proof of "
                      "dispatch. Without it the buyer is refunded in full automatically.")
    return Content(
        f"the supplier ships by {day(e.ship_by)}",
        [f"{m.supplier} has until {when(e.ship_by)} to ship your goods."], facts,
        next_step="We tell you when the goods are shipped. If they are not shipped in time, "
                  "you get a full refund automatically.")


@step(ev.ShipmentDueSoon, "shipment_due_soon", BOTH,
      asks="supplier: ship by ...; buyer: refund if not")
def shipment_due_soon(m: MailContext[ev.ShipmentDueSoon]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Ship by", when(e.ship_by))]
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


@step(ev.ShipmentDispatched, "shipped", BOTH,
      asks="buyer: tracking number, confirm receipt, dispute window")
def shipped(m: MailContext[ev.ShipmentDispatched]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Carrier", CARRIERS[e.carrier]), ("Tracking number", e.tracking_number),
             ("Ship date", day(e.ship_date))]
    if m.to_buyer:
        return Content(
            "your goods are shipped",
            [f"{m.supplier} shipped your goods with {CARRIERS[e.carrier]}, tracking number "
             f"{e.tracking_number}."], facts,
            next_step="When the goods arrive, confirm receipt on the order page: that releases "
                      "the payment to the supplier. If something is wrong, you can open a "
                      "dispute; a separate email gives the dates.")
    return Content(
        "proof of dispatch recorded",
        [f"Your proof of dispatch is recorded: {CARRIERS[e.carrier]}, tracking number "
         f"{e.tracking_number}."], facts,
        next_step="You are paid when the buyer confirms receipt, or when receipt is confirmed "
                  "automatically.")


@step(ev.DispatchDeadlineMissed, "dispatch_deadline_missed", BOTH,
      asks="buyer: full refund follows; supplier: do not ship")
def dispatch_deadline_missed(m: MailContext[ev.DispatchDeadlineMissed]) -> Content:
    e = m.event
    facts = [order_fact(m), ("Ship by was", when(e.ship_by))]
    if m.to_buyer:
        return Content(
            "not shipped in time: full refund",
            [f"{m.supplier} did not submit proof of dispatch by {when(e.ship_by)}."], facts,
            next_step="You get a full refund automatically; a refund email follows.")
    return Content(
        "not shipped in time: the buyer is refunded",
        [f"We received no proof of dispatch by {when(e.ship_by)}."], facts,
        next_step="The buyer is refunded in full and the order closes. Do not ship the goods.")
