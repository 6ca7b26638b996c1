"""The shipment of one order: from payment to proof of dispatch, or to the missed deadline.

Order events and payment events travel on different topics, so ``EscrowFunded`` may
arrive before ``OrderConfirmed``; the shipment then waits for the order's details and
starts the delivery period from the recorded payment time once they come.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.contracts.events import (
    DispatchDeadlineMissed,
    ShipmentDispatched,
    ShipmentDueSoon,
    ShipmentExpected,
)
from shared.contracts.parties import Parties, Role
from shared.contracts.trade import Carrier, Logistics
from shared.domain.actor import Actor, require
from shared.domain.aggregate import Aggregate
from shared.domain.errors import DomainError, InvalidRequest, NotPermitted

from services.shipping.tracking import normalise, validated_tracking_number

SHIP_BY = "ship_by"
SHIP_BY_REMINDER = "ship_by_reminder"


class ShipmentStatus(StrEnum):
    AWAITING_ORDER_DETAILS = "awaiting_order_details"  # paid, OrderConfirmed not seen yet
    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_DISPATCH = "awaiting_dispatch"
    DISPATCHED = "dispatched"
    DEADLINE_MISSED = "deadline_missed"
    CLOSED = "closed"  # the order ended before anything was shipped


class Dispatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    carrier: Carrier
    tracking_number: str
    ship_date: date
    dispatched_at: AwareDatetime
    submitted_by: str

    def repeats(self, carrier: Carrier, tracking_number: str, ship_date: date) -> bool:
        return (self.carrier == carrier and self.ship_date == ship_date
                and self.tracking_number == normalise(tracking_number))


class Shipment(Aggregate):
    status: ShipmentStatus
    logistics: Logistics | None = None
    delivery_period_days: int | None = None
    paid_at: AwareDatetime | None = None
    ship_by: AwareDatetime | None = None
    dispatch: Dispatch | None = None
    order_closed_at: AwareDatetime | None = None

    # --- reactions to the order and payment services -----------------------------------

    @classmethod
    def expect(cls, order_id: str, parties: Parties, logistics: Logistics,
               delivery_period_days: int, now: datetime) -> Shipment:
        """The supplier confirmed the order: a shipment will be due once it is paid."""
        shipment = cls(order_id=order_id, parties=parties, status=ShipmentStatus.AWAITING_PAYMENT,
                       logistics=logistics, delivery_period_days=delivery_period_days)
        shipment.note(now, "order_confirmed", logistics=logistics.model_dump(mode="json"),
                      delivery_period_days=delivery_period_days)
        return shipment

    @classmethod
    def paid_before_confirmation(cls, order_id: str, parties: Parties, paid_at: datetime,
                                 now: datetime) -> Shipment:
        shipment = cls(order_id=order_id, parties=parties,
                       status=ShipmentStatus.AWAITING_ORDER_DETAILS, paid_at=paid_at)
        shipment.note(now, "escrow_funded", paid_at=paid_at.isoformat(),
                      waiting_for="order confirmation")
        return shipment

    def order_confirmed(self, logistics: Logistics, delivery_period_days: int, now: datetime,
                        reminder_lead: timedelta) -> bool:
        """Learn the order's details; returns whether anything changed."""
        if self.status is not ShipmentStatus.AWAITING_ORDER_DETAILS:
            return False
        self.logistics, self.delivery_period_days = logistics, delivery_period_days
        self.note(now, "order_confirmed", logistics=logistics.model_dump(mode="json"),
                  delivery_period_days=delivery_period_days)
        self._start_delivery_period(now, reminder_lead)
        return True

    def escrow_funded(self, paid_at: datetime, now: datetime, reminder_lead: timedelta) -> bool:
        """The order is paid: the delivery period runs from ``paid_at``. Returns whether
        anything changed (a repeat, or payment news for a closed order, changes nothing)."""
        if self.status is not ShipmentStatus.AWAITING_PAYMENT:
            if self.status is ShipmentStatus.CLOSED:
                self.note(now, "escrow_funded_ignored", reason="the order is closed")
                return True
            return False
        self.paid_at = paid_at
        self._start_delivery_period(now, reminder_lead)
        return True

    def _start_delivery_period(self, now: datetime, reminder_lead: timedelta) -> None:
        assert self.paid_at is not None and self.delivery_period_days is not None
        assert self.logistics is not None
        self.status = ShipmentStatus.AWAITING_DISPATCH
        self.ship_by = self.paid_at + timedelta(days=self.delivery_period_days)
        self.deadlines[SHIP_BY] = self.ship_by
        remind_at = self.ship_by - reminder_lead
        if remind_at > now:
            self.deadlines[SHIP_BY_REMINDER] = remind_at
        self.record(ShipmentExpected(order_id=self.order_id, parties=self.parties,
                                     ship_by=self.ship_by, logistics=self.logistics), now)

    def order_closed(self, reason: str, now: datetime) -> bool:
        """The order was cancelled or closed: nothing more is due. Returns whether anything
        changed."""
        if self.order_closed_at is not None:
            return False
        self.order_closed_at = now
        self.deadlines.clear()
        if self.status not in (ShipmentStatus.DISPATCHED, ShipmentStatus.DEADLINE_MISSED):
            self.status = ShipmentStatus.CLOSED
        self.note(now, "order_closed", reason=reason)
        return True

    # --- the supplier's proof of dispatch ----------------------------------------------

    def submit_dispatch(self, actor: Actor, carrier: Carrier, tracking_number: str,
                        ship_date: date, now: datetime) -> bool:
        """Record the courier details. Returns False for a repeat of the recorded proof."""
        require(actor, self.parties, Role.SUPPLIER, doing="submit proof of dispatch")
        if self.dispatch is not None:
            if self.dispatch.repeats(carrier, tracking_number, ship_date):
                return False
            raise DomainError(
                f"proof of dispatch was already submitted ({self.dispatch.carrier} "
                f"{self.dispatch.tracking_number}, shipped {self.dispatch.ship_date}); "
                "it cannot be changed")
        self._require_open_for_dispatch(now)
        number = validated_tracking_number(carrier, tracking_number)
        assert self.paid_at is not None
        if ship_date > now.date():
            raise InvalidRequest(f"the ship date {ship_date} is in the future (today is "
                                 f"{now.date()})", field="ship_date")
        if ship_date < self.paid_at.date():
            raise InvalidRequest(f"the ship date {ship_date} is before the order was paid "
                                 f"({self.paid_at.date()})", field="ship_date")
        self.dispatch = Dispatch(carrier=carrier, tracking_number=number, ship_date=ship_date,
                                 dispatched_at=now, submitted_by=actor.party_id)
        self.status = ShipmentStatus.DISPATCHED
        self.deadlines.pop(SHIP_BY, None)
        self.deadlines.pop(SHIP_BY_REMINDER, None)
        if self.logistics is not None and carrier != self.logistics.carrier:
            self.note(now, "carrier_differs_from_agreed", agreed=str(self.logistics.carrier),
                      used=str(carrier))
        self.record(ShipmentDispatched(order_id=self.order_id, parties=self.parties,
                                       carrier=carrier, tracking_number=number,
                                       ship_date=ship_date, dispatched_at=now), now)
        return True

    def _require_open_for_dispatch(self, now: datetime) -> None:
        match self.status:
            case ShipmentStatus.AWAITING_PAYMENT | ShipmentStatus.AWAITING_ORDER_DETAILS:
                raise DomainError("the order is not paid yet; ship only once the full amount "
                                  "is held in escrow")
            case ShipmentStatus.CLOSED:
                raise DomainError("the order is closed; nothing is to be shipped")
            case ShipmentStatus.DEADLINE_MISSED:
                raise DomainError(f"the ship-by deadline ({self.ship_by}) has passed without "
                                  "proof of dispatch; the buyer is being refunded")
        assert self.ship_by is not None
        if now >= self.ship_by:
            raise DomainError(f"the ship-by deadline ({self.ship_by}) has passed; proof of "
                              "dispatch is no longer accepted")

    # --- deadlines ---------------------------------------------------------------------

    def on_deadline(self, kind: str, due: datetime, now: datetime) -> None:
        if kind == SHIP_BY_REMINDER:
            awaited = self.status is ShipmentStatus.AWAITING_DISPATCH
            if awaited and self.ship_by is not None and now < self.ship_by:
                self.record(ShipmentDueSoon(order_id=self.order_id, parties=self.parties,
                                            ship_by=self.ship_by), now)
        elif kind == SHIP_BY:
            if self.status is ShipmentStatus.AWAITING_DISPATCH:
                assert self.ship_by is not None
                self.status = ShipmentStatus.DEADLINE_MISSED
                self.deadlines.pop(SHIP_BY_REMINDER, None)
                self.record(DispatchDeadlineMissed(order_id=self.order_id, parties=self.parties,
                                                   ship_by=self.ship_by), now)
        else:
            super().on_deadline(kind, due, now)

    # --- who may see it ----------------------------------------------------------------

    def require_viewer(self, actor: Actor) -> None:
        if actor.may_read(self.parties):
            return
        raise NotPermitted("only the order's buyer and supplier, or a customer service agent, "
                           "can see its shipment")
