"""Properties of the order (services/order/domain.py) under random trades.

The order follows three other services' topics. Here a small model of those services plays
a plausible trade around the real order service (the payment service reads the order's
own events when it gets to them, so it may fund an order the buyer has just cancelled), and
hypothesis picks the steps: the parties' commands, the other services' moves, which
topic's next event the order receives (so topics interleave in any order), events delivered
again, time passing and the deadline sweep. After every step the order's invariants hold,
and once every event is delivered it is in the state the trade says, whatever the order of
delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from shared.contracts.events import (
    ClosureReason,
    DispatchDeadlineMissed,
    DisputeOpened,
    DisputeResolved,
    DisputeWithdrawn,
    EscrowFunded,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    OrderCancelled,
    OrderClosed,
    OrderConfirmed,
    OrderDeclined,
    PaymentDeadlinePassed,
    ReceiptConfirmed,
    ReturnReason,
    SettlementReason,
    ShipmentDispatched,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import (
    Address,
    Carrier,
    DisputeOutcome,
    DisputeReason,
    LineItem,
    Logistics,
    PaymentMethod,
    RequestedOutcome,
    ShippingMethod,
)
from shared.domain.actor import Actor
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner

from services.order.domain import FINISHED, Order, OrderStatus
from services.order.handlers import OrderService
from services.order.settings import OrderSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_rate_limiter
from tests.support.statemachine import ConsumerMachine, Published, check_transition

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOTAL = 10_000
DELIVERY_DAYS = 10
BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
ACTORS = [BUYER, SUPPLIER, Actor(party_id="buyer-1", role=Role.SERVICE),
          Actor(party_id="supplier-2", role=Role.SUPPLIER), Actor(party_id="agent-1", role=Role.AGENT)]
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer"),
                  supplier=Party(party_id="supplier-1", name="Supplier"))
LOGISTICS = [Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL),
             Logistics(shipping_method=ShippingMethod.SEA_FREIGHT, carrier=Carrier.UPS)]
ITEMS = [LineItem(description="bolts", quantity=4, unit_price=TOTAL // 4)]
ADDRESS = Address(recipient="R", line1="1 Main St", city="Berlin", country="DE")

S = OrderStatus
# Where an order may go from each status. Facts from different topics arrive in any order,
# so a paid order may be seen shipped or disputed before its payment's news came.
ALLOWED = {
    S.PLACED: {S.AWAITING_PAYMENT, S.DECLINED, S.CANCELLED},
    S.AWAITING_PAYMENT: {S.PAID, S.SHIPPED, S.IN_DISPUTE, S.RECEIVED, S.CANCELLED, S.CLOSED},
    S.PAID: {S.SHIPPED, S.IN_DISPUTE, S.RECEIVED, S.CLOSED},
    S.SHIPPED: {S.IN_DISPUTE, S.RECEIVED, S.CLOSED},
    S.IN_DISPUTE: {S.SHIPPED, S.RECEIVED, S.CLOSED},
    S.RECEIVED: {S.CLOSED},
    S.DECLINED: set(), S.CANCELLED: set(), S.CLOSED: set(),
}
ENDINGS = {OrderClosed.event_type, OrderCancelled.event_type, OrderDeclined.event_type}


@dataclass
class RestOfTrade:
    """The payment, shipping and dispute services, as far as the order can tell."""

    read: int = 0  # how many of the order's own events the payment service has read
    pay_by: datetime | None = None
    escrow: str = "none"  # none, open, funded, settled
    paid_in: int = 0
    held: int = 0
    released: int = 0
    refunded: int = 0  # refunds and returned money
    paid_at: datetime | None = None
    shipped: bool = False
    missed: bool = False
    disputes: int = 0
    open_dispute: str | None = None
    received: bool = False
    deadline_passed: bool = False

    @property
    def ship_by(self) -> datetime:
        assert self.paid_at is not None
        return self.paid_at + timedelta(days=DELIVERY_DAYS)

    @property
    def outcome(self) -> bool:
        return self.escrow == "settled"


class OrderMachine(ConsumerMachine):
    def __init__(self) -> None:
        super().__init__("payment", "shipping", "dispute")
        self.clock = ManualClock(T0)
        self.published = Published()
        self.runner = AggregateRunner(MemoryAggregateStore(Order), self.clock, self.published)
        self.service = OrderService(self.runner, OrderSettings(), memory_rate_limiter(self.clock))
        order = self.run(self.service.place(BUYER, PARTIES, ITEMS, "USD", ADDRESS, DELIVERY_DAYS,
                                            idempotency_key="props"))
        self.order_id = order.order_id
        self.trade = RestOfTrade()
        self.last = order

    # --- helpers ---------------------------------------------------------------------------

    def order(self) -> Order:
        order = self.run(self.runner.get(self.order_id))
        assert order is not None
        return order

    def state(self) -> object:
        return self.order().model_dump()

    def common(self) -> dict[str, object]:
        return {"order_id": self.order_id, "parties": PARTIES}

    def settle(self) -> None:
        self.trade.escrow = "settled"
        self.emit("payment", EscrowSettled(**self.common(), currency="USD",
                                           paid_in_total=self.trade.paid_in,
                                           released_total=self.trade.released,
                                           refunded_total=self.trade.refunded))

    def refund(self, amount: int, reason: SettlementReason) -> None:
        if amount:
            self.trade.held -= amount
            self.trade.refunded += amount
            self.emit("payment", EscrowRefunded(**self.common(), amount=amount, currency="USD",
                                                reason=reason, method=PaymentMethod.CARD,
                                                refund_id=f"r{len(self.delivered)}",
                                                held_after=self.trade.held))

    def release(self, amount: int, reason: SettlementReason) -> None:
        if amount:
            self.trade.held -= amount
            self.trade.released += amount
            self.emit("payment", EscrowReleased(**self.common(), amount=amount, currency="USD",
                                                reason=reason, payout_id=f"p{len(self.delivered)}",
                                                held_after=self.trade.held))

    def command(self, act) -> None:
        """A party's command; refused or done, and the same command again changes nothing."""
        refused = self.attempt(act())
        if refused is None or not isinstance(refused, Exception):
            before, sent = self.order().model_dump(), len(self.published)
            again = self.attempt(act())
            assert not isinstance(again, Exception), f"a repeated command was refused: {again}"
            assert self.order().model_dump() == before and len(self.published) == sent, \
                "a repeated command changed the order"

    # --- the parties' commands ------------------------------------------------------------

    @rule(actor=st.sampled_from(ACTORS), logistics=st.sampled_from(LOGISTICS))
    def confirm(self, actor: Actor, logistics: Logistics) -> None:
        self.command(lambda: self.service.confirm(actor, self.order_id, logistics))

    @rule(actor=st.sampled_from(ACTORS))
    def decline(self, actor: Actor) -> None:
        self.command(lambda: self.service.decline(actor, self.order_id, "out of stock"))

    @rule(actor=st.sampled_from(ACTORS))
    def cancel(self, actor: Actor) -> None:
        self.command(lambda: self.service.cancel(actor, self.order_id, "changed my mind"))

    @rule(actor=st.sampled_from(ACTORS))
    def post_message(self, actor: Actor) -> None:
        self.attempt(self.service.post_message(actor, self.order_id, "when will it ship?"))

    # --- time -------------------------------------------------------------------------------

    @rule(hours=st.integers(min_value=1, max_value=24 * 12))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule()
    def deadline_sweep(self) -> None:
        self.run(self.runner.sweep_deadlines())

    # --- the other services -------------------------------------------------------------------

    @precondition(lambda self: self.trade.read < len(self.published))
    @rule()
    def payment_reads_the_order_topic(self) -> None:
        event = self.published[self.trade.read].event()
        self.trade.read += 1
        if isinstance(event, OrderConfirmed) and self.trade.escrow == "none":
            self.trade.escrow, self.trade.pay_by = "open", event.payment_due_at
        elif isinstance(event, OrderCancelled):
            if self.trade.escrow in ("open", "funded"):
                self.refund(self.trade.held, SettlementReason.ORDER_CLOSED)
                self.settle()

    @precondition(lambda self: self.trade.escrow == "open" and self.trade.pay_by is not None
                  and self.clock.now() < self.trade.pay_by)
    @rule()
    def buyer_pays(self) -> None:
        self.trade.escrow, self.trade.paid_at = "funded", self.clock.now()
        self.trade.paid_in += TOTAL
        self.trade.held += TOTAL
        self.emit("payment", EscrowFunded(**self.common(), amount=TOTAL, currency="USD",
                                          method=PaymentMethod.CARD))

    @precondition(lambda self: self.trade.escrow == "open" and self.trade.pay_by is not None
                  and self.clock.now() >= self.trade.pay_by)
    @rule()
    def the_payment_deadline_passes(self) -> None:
        """The payment service judges the deadline, and tells the order."""
        assert self.trade.pay_by is not None
        self.trade.deadline_passed = True
        self.emit("payment", PaymentDeadlinePassed(**self.common(), pay_by=self.trade.pay_by,
                                                   currency="USD", received_total=0))
        self.settle()

    @precondition(lambda self: self.trade.escrow == "settled")
    @rule(amount=st.integers(min_value=1, max_value=2 * TOTAL))
    def a_late_transfer_is_returned(self, amount: int) -> None:
        """Booked in and straight back out; it adds to what the buyer got back."""
        self.trade.paid_in += amount
        self.trade.refunded += amount
        self.emit("payment", FundsReturned(**self.common(), amount=amount, currency="USD",
                                           reason=ReturnReason.ORDER_NOT_PAYABLE,
                                           transfer_id=f"t{len(self.delivered)}"))

    def _awaiting_dispatch(self) -> bool:
        t = self.trade
        return t.escrow == "funded" and not t.shipped and not t.missed

    @precondition(lambda self: self._awaiting_dispatch() and self.clock.now() < self.trade.ship_by)
    @rule()
    def supplier_ships(self) -> None:
        self.trade.shipped = True
        self.emit("shipping", ShipmentDispatched(**self.common(), carrier=Carrier.DHL,
                                                 tracking_number="1234567890",
                                                 ship_date=self.clock.now().date(),
                                                 dispatched_at=self.clock.now()))

    @precondition(lambda self: self._awaiting_dispatch() and self.clock.now() >= self.trade.ship_by)
    @rule()
    def ship_by_passes(self) -> None:
        self.trade.missed = True
        self.emit("shipping", DispatchDeadlineMissed(**self.common(), ship_by=self.trade.ship_by))
        self.refund(self.trade.held, SettlementReason.NOT_SHIPPED)
        self.settle()

    def _protected(self) -> bool:
        return self.trade.shipped and self.trade.escrow == "funded"

    @precondition(lambda self: self._protected() and self.trade.open_dispute is None)
    @rule()
    def buyer_confirms_receipt(self) -> None:
        self.trade.received = True
        self.emit("dispute", ReceiptConfirmed(**self.common(), confirmed_by="buyer"))
        self.release(self.trade.held, SettlementReason.RECEIPT_CONFIRMED)
        self.settle()

    @precondition(lambda self: self._protected() and self.trade.open_dispute is None)
    @rule(partial=st.booleans(), share=st.floats(min_value=0.01, max_value=0.99))
    def buyer_disputes(self, partial: bool, share: float) -> None:
        t = self.trade
        t.disputes += 1
        t.open_dispute = f"d{t.disputes}"
        amount = max(1, min(t.held - 1, int(t.held * share))) if partial and t.held > 1 else t.held
        requested = RequestedOutcome.PARTIAL_REFUND if amount < t.held else RequestedOutcome.FULL_REFUND
        self.emit("dispute", DisputeOpened(
            **self.common(), dispute_id=t.open_dispute, reason=DisputeReason.NOT_AS_DESCRIBED,
            requested=requested, disputed_amount=amount, currency="USD", description="scratched",
            answer_due_at=self.clock.now() + timedelta(days=5)))
        self.release(t.held - amount, SettlementReason.UNDISPUTED_PART)

    @precondition(lambda self: self.trade.open_dispute is not None and not self.trade.outcome)
    @rule()
    def buyer_withdraws(self) -> None:
        assert self.trade.open_dispute is not None
        self.emit("dispute", DisputeWithdrawn(**self.common(), dispute_id=self.trade.open_dispute))
        self.trade.open_dispute = None

    @precondition(lambda self: self.trade.open_dispute is not None and not self.trade.outcome)
    @rule(outcome=st.sampled_from(DisputeOutcome), share=st.floats(min_value=0.01, max_value=0.99))
    def dispute_is_resolved(self, outcome: DisputeOutcome, share: float) -> None:
        t = self.trade
        assert t.open_dispute is not None
        refund = {DisputeOutcome.FULL_REFUND: t.held, DisputeOutcome.RELEASE: 0,
                  DisputeOutcome.PARTIAL_REFUND: max(1, int(t.held * share))}[outcome]
        self.emit("dispute", DisputeResolved(**self.common(), dispute_id=t.open_dispute,
                                             outcome=outcome, refund_amount=refund, currency="USD",
                                             decided_by="agent", agent_id="agent-1"))
        self.refund(refund, SettlementReason.DISPUTE_RESOLVED)
        self.release(t.held, SettlementReason.DISPUTE_RESOLVED)
        self.settle()

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        """Every invariant, on the order as stored after the step."""
        order = self.order()
        self.moves_only_along_the_trade(order)
        self.ends_once(order)
        self.money_adds_up(order)
        self.all_delivered_it_is_where_the_trade_is(order)
        self.last = order

    def moves_only_along_the_trade(self, order: Order) -> None:
        last = self.last
        check_transition("the order", last.status, order.status, ALLOWED)
        if last.status in FINISHED:
            assert (order.closure_reason, order.cancelled_at, order.declined_at) == (
                last.closure_reason, last.cancelled_at, last.declined_at), "a finished order changed"

    def ends_once(self, order: Order) -> None:
        endings = [h.what for h in order.history if h.what in ENDINGS]
        assert len(endings) <= 1, f"the order ended more than once: {endings}"
        assert len(self.published.of_type(*ENDINGS)) <= 1

    def money_adds_up(self, order: Order) -> None:
        assert order.released_total >= 0 and order.refunded_total >= 0
        assert order.released_total + order.refunded_total <= self.trade.paid_in
        if order.closure_reason is ClosureReason.PAYMENT_NOT_RECEIVED or order.cancelled_at:
            assert order.paid_at is None, "an order that ended unpaid counts as paid"
            assert order.released_total == 0, "the supplier was paid for an order that never was"
        if order.deadlines:
            assert order.status is S.AWAITING_PAYMENT, f"deadlines {order.deadlines} on a {order.status} order"

    def all_delivered_it_is_where_the_trade_is(self, order: Order) -> None:
        """Whatever the order of delivery, the same facts give the same order."""
        if any(self.topics.values()):
            return
        t = self.trade
        if order.cancelled_at or order.declined_at or order.closure_reason:
            expected = order.status  # checked by the other invariants
        elif t.outcome:
            expected = S.CLOSED
        elif t.received:
            expected = S.RECEIVED
        elif t.open_dispute:
            expected = S.IN_DISPUTE
        elif t.shipped:
            expected = S.SHIPPED
        elif t.escrow == "funded":
            expected = S.PAID
        else:
            expected = S.AWAITING_PAYMENT if order.logistics else S.PLACED
        assert order.status is expected, f"{order.status}, the trade says {expected}"
        assert order.open_dispute_id == t.open_dispute
        if t.outcome:
            assert (order.released_total, order.refunded_total) == (t.released, t.refunded)
            assert order.status in FINISHED
        if t.deadline_passed and not (order.cancelled_at or order.declined_at):
            assert order.closure_reason is ClosureReason.PAYMENT_NOT_RECEIVED
        if t.paid_at is not None and order.status not in FINISHED:
            assert order.paid_at == t.paid_at


TestOrderProperties = OrderMachine.TestCase
