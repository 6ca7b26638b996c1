"""Properties of the shipment (services/shipping/domain.py) under random trades.

The shipping service hears of an order's confirmation and end on the order topic and of
its payment on the payment topic, in any order. A small model of the order and payment
services plays a plausible trade (payment only for an open order, an end only when the
trade allows it), hypothesis picks which topic's next event arrives, delivers some again,
lets the supplier (and others) submit proofs of dispatch, good and bad, and moves time on
with the ship-by sweep. After every step the shipment has at most one outcome (dispatched
or deadline missed), its ship-by date is the payment plus the delivery period, a proof is
taken only in time and never changed, and a finished shipment never moves again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    EscrowFunded,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, Logistics, PaymentMethod, ShippingMethod
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner

from services.shipping.domain import Shipment, ShipmentStatus
from services.shipping.handlers import ShippingService
from services.shipping.settings import ShippingSettings
from tests.support.memory_mongo import MemoryAggregateStore
from tests.support.statemachine import ConsumerMachine, Published, check_transition

ORDER = "ord-props"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DELIVERY_DAYS = 10
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer"),
                  supplier=Party(party_id="supplier-1", name="Supplier"))
COMMON = {"order_id": ORDER, "parties": PARTIES}
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
ACTORS = [SUPPLIER, SUPPLIER, Actor(party_id="supplier-1", role=Role.SERVICE),
          Actor(party_id="buyer-1", role=Role.BUYER), Actor(party_id="supplier-2", role=Role.SUPPLIER)]
PROOFS = [(Carrier.DHL, "1234567890"), (Carrier.DHL, "1234 5678 90"), (Carrier.DHL, "99"),
          (Carrier.FEDEX, "123456789012"), (Carrier.UPS, "1Z999AA10123456784")]

S = ShipmentStatus
ALLOWED = {
    S.AWAITING_ORDER_DETAILS: {S.AWAITING_DISPATCH, S.CLOSED},
    S.AWAITING_PAYMENT: {S.AWAITING_DISPATCH, S.CLOSED},
    S.AWAITING_DISPATCH: {S.DISPATCHED, S.DEADLINE_MISSED, S.CLOSED},
    S.DISPATCHED: set(), S.DEADLINE_MISSED: set(), S.CLOSED: set(),
}
FINISHED = {S.DISPATCHED, S.DEADLINE_MISSED, S.CLOSED}
OUTCOMES = (ShipmentDispatched.event_type, DispatchDeadlineMissed.event_type)


class ShipmentMachine(ConsumerMachine):
    def __init__(self) -> None:
        super().__init__("order", "payment")
        self.clock = ManualClock(T0)
        self.published = Published()
        self.runner = AggregateRunner(MemoryAggregateStore(Shipment), self.clock, self.published)
        self.service = ShippingService(self.runner, ShippingSettings())
        self.emit("order", OrderConfirmed(
            **COMMON, currency="USD", total=10_000, delivery_period_days=DELIVERY_DAYS,
            logistics=Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
            payment_due_at=T0 + timedelta(days=20)))
        self.paid_at: datetime | None = None
        self.order_ended = False  # cancelled or closed unpaid
        self.settled = False
        self.last: Shipment | None = None

    def shipment(self) -> Shipment | None:
        return self.run(self.runner.get(ORDER))

    def state(self) -> object:
        return self.shipment()

    # --- the order and payment services ------------------------------------------------------

    @initialize(pays=st.sampled_from([True, True, True, False]))
    def most_trades_are_paid(self, pays: bool) -> None:
        """Paid at the start (its news and the confirmation's still to come, in either
        order), so that the search spends its steps on what follows."""
        if pays:
            self.buyer_pays()

    @precondition(lambda self: self.paid_at is None and not self.order_ended)
    @rule()
    def buyer_pays(self) -> None:
        self.paid_at = self.clock.now()
        self.emit("payment", EscrowFunded(**COMMON, amount=10_000, currency="USD",
                                          method=PaymentMethod.CARD))

    @precondition(lambda self: self.paid_at is None and not self.order_ended)
    @rule(cancelled=st.booleans())
    def the_order_ends_unpaid(self, cancelled: bool) -> None:
        self.order_ended = True
        self.emit("order", OrderCancelled(**COMMON, reason="changed my mind") if cancelled
                  else OrderClosed(**COMMON, reason=ClosureReason.PAYMENT_NOT_RECEIVED, currency="USD"))

    @precondition(lambda self: not self.settled and self.published.of_type(*OUTCOMES))
    @rule()
    def the_order_settles(self) -> None:
        """After a dispatch (receipt or dispute) or a missed deadline (refund)."""
        self.settled = True
        self.emit("order", OrderClosed(**COMMON, reason=ClosureReason.SETTLED, currency="USD"))

    # --- the supplier -----------------------------------------------------------------------------

    @rule(actor=st.sampled_from(ACTORS), proof=st.sampled_from(PROOFS),
          days_ago=st.integers(min_value=-1, max_value=4))
    def proof_of_dispatch(self, actor: Actor, proof: tuple[Carrier, str], days_ago: int) -> None:
        carrier, number = proof
        ship_date = self.clock.now().date() - timedelta(days=days_ago)
        submit = lambda: self.service.submit_dispatch(actor, ORDER, carrier, number, ship_date)  # noqa: E731
        if isinstance(self.attempt(submit()), Shipment):
            before, sent = self.shipment(), len(self.published)
            assert isinstance(self.attempt(submit()), Shipment), "the same proof again was refused"
            assert self.shipment() == before and len(self.published) == sent, \
                "the same proof again changed the shipment"

    # --- time -----------------------------------------------------------------------------------------

    @rule(hours=st.integers(min_value=1, max_value=24 * 6))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def deadline_sweep(self) -> None:
        self.run(self.runner.sweep_deadlines())

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        shipment = self.shipment()
        if shipment is None:
            assert not self.published
            return
        last = self.last
        if last is not None:
            check_transition("the shipment", last.status, shipment.status, ALLOWED)
            if last.status in FINISHED:
                assert (shipment.dispatch, shipment.ship_by) == (last.dispatch, last.ship_by)
        self.one_outcome(shipment)
        self.dispatch_in_time(shipment)
        self.all_delivered_it_is_where_the_trade_is(shipment)
        self.last = shipment
        event(f"shipment reached {shipment.status}")

    def one_outcome(self, shipment: Shipment) -> None:
        outcomes = self.published.of_type(*OUTCOMES)
        assert len(outcomes) <= 1, f"more than one outcome: {[e.event_type for e in outcomes]}"
        assert (shipment.status is S.DISPATCHED) == (shipment.dispatch is not None)
        if shipment.deadlines:
            assert shipment.status is S.AWAITING_DISPATCH, \
                f"deadlines {sorted(shipment.deadlines)} on a {shipment.status} shipment"

    def dispatch_in_time(self, shipment: Shipment) -> None:
        if shipment.ship_by is not None:
            assert shipment.paid_at == self.paid_at
            assert shipment.ship_by == shipment.paid_at + timedelta(days=DELIVERY_DAYS)
        if shipment.dispatch is not None:
            assert self.paid_at is not None and shipment.ship_by is not None
            dispatch = shipment.dispatch
            assert dispatch.dispatched_at < shipment.ship_by, "a proof taken after the ship-by date"
            assert self.paid_at.date() <= dispatch.ship_date <= dispatch.dispatched_at.date()
            assert dispatch.submitted_by == SUPPLIER.party_id
        if shipment.status is S.DEADLINE_MISSED:
            assert shipment.ship_by is not None and self.clock.now() >= shipment.ship_by

    def all_delivered_it_is_where_the_trade_is(self, shipment: Shipment) -> None:
        if any(self.topics.values()):
            return
        if self.order_ended:
            expected: set[ShipmentStatus] = {S.CLOSED}
        elif self.paid_at is None:
            expected = {S.AWAITING_PAYMENT}
        elif self.published.of_type(*OUTCOMES):
            expected = {S.DISPATCHED, S.DEADLINE_MISSED}
        else:
            expected = {S.AWAITING_DISPATCH}
        assert shipment.status in expected, f"{shipment.status}, the trade says {expected}"


TestShipmentProperties = ShipmentMachine.TestCase
