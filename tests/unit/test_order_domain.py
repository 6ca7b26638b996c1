from datetime import timedelta

import pytest

from shared.contracts.events import ClosureReason, OrderCancelled, OrderClosed, OrderConfirmed, PaymentDueSoon
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Address, Carrier, LineItem, Logistics, ShippingMethod
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest, NotPermitted, TooManyRequests
from shared.infra.clock import ManualClock

from services.order.domain import MESSAGE_WINDOW, MESSAGES_PER_WINDOW, Order, OrderStatus

BUYER = Actor(party_id="buyer-1", role=Role.BUYER)
SUPPLIER = Actor(party_id="supplier-1", role=Role.SUPPLIER)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
LOGISTICS = Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL)
WINDOW = dict(payment_window=timedelta(days=20), reminder_before=timedelta(days=3))


def placed(clock: ManualClock) -> Order:
    order = Order.place("ord-1", PARTIES, [LineItem(description="bolts", quantity=3, unit_price=1250),
                                           LineItem(description="nuts", quantity=2, unit_price=99)],
                        "USD", Address(recipient="R", line1="1 Main St", city="Berlin", country="DE"),
                        10, clock.now())
    order.pull_events()
    return order


def test_total_is_the_sum_of_line_items_in_minor_units():
    assert placed(ManualClock()).total == 3 * 1250 + 2 * 99


def test_buyer_and_supplier_must_differ():
    with pytest.raises(InvalidRequest):
        Order.place("o", Parties(buyer=PARTIES.buyer, supplier=PARTIES.buyer),
                    [LineItem(description="x", quantity=1, unit_price=1)], "USD",
                    Address(recipient="R", line1="l", city="c", country="DE"), 1, ManualClock().now())


def test_confirmation_sets_the_payment_deadline_and_reminder():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    [event] = order.pull_events()
    assert isinstance(event, OrderConfirmed)
    assert event.payment_due_at == clock.now() + timedelta(days=20)
    assert order.deadlines["payment_reminder"] == clock.now() + timedelta(days=17)


def test_confirming_twice_is_a_no_op():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.pull_events()
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    assert order.pull_events() == []


def test_only_the_orders_supplier_confirms():
    order = placed(ManualClock())
    with pytest.raises(NotPermitted):
        order.confirm(BUYER, LOGISTICS, ManualClock().now(), **WINDOW)
    with pytest.raises(NotPermitted):
        order.confirm(Actor(party_id="supplier-2", role=Role.SUPPLIER), LOGISTICS,
                      ManualClock().now(), **WINDOW)


def test_unpaid_order_closes_when_the_payment_service_says_the_deadline_passed():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.pull_events()
    order.run_due_deadlines(clock.advance(timedelta(days=17)))
    assert [type(e) for e in order.pull_events()] == [PaymentDueSoon]
    order.run_due_deadlines(clock.advance(timedelta(days=3, hours=1)))
    assert order.pull_events() == [] and order.status is OrderStatus.AWAITING_PAYMENT
    assert order.payment_due_at is not None
    order.close_unpaid(clock.now(), order.payment_due_at)
    [closed] = order.pull_events()
    assert isinstance(closed, OrderClosed) and closed.reason is ClosureReason.PAYMENT_NOT_RECEIVED
    assert order.status is OrderStatus.CLOSED and order.deadlines == {}
    order.close_unpaid(clock.now(), order.payment_due_at)  # a repeated notice changes nothing
    assert order.pull_events() == []


def test_paid_order_does_not_close_at_the_deadline():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.mark_paid(clock.now())
    order.pull_events()
    order.run_due_deadlines(clock.advance(timedelta(days=21)))
    assert order.pull_events() == [] and order.status is OrderStatus.PAID


def test_cancel_only_before_payment():
    clock = ManualClock()
    order = placed(clock)
    order.cancel(BUYER, "changed my mind", clock.now())
    assert isinstance(order.pull_events()[0], OrderCancelled)
    paid = placed(clock)
    paid.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    paid.mark_paid(clock.now())
    with pytest.raises(DomainError, match="before it is paid"):
        paid.cancel(BUYER, "too late", clock.now())


def test_settlement_closes_with_the_outcome():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.mark_paid(clock.now())
    order.mark_shipped(clock.now())
    order.mark_received(clock.now())
    order.pull_events()
    order.settle(3948, 0, clock.now())
    [closed] = order.pull_events()
    assert closed.reason is ClosureReason.SETTLED and closed.released_total == 3948


def test_messages_only_between_the_parties():
    clock = ManualClock()
    order = placed(clock)
    order.post_message(BUYER, "when will you ship?", clock.now())
    assert order.messages[0].author_role is Role.BUYER
    with pytest.raises(NotPermitted):
        order.post_message(Actor(party_id="stranger", role=Role.BUYER), "hi", clock.now())


def paid_order(clock: ManualClock) -> Order:
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.mark_paid(clock.now())
    order.pull_events()
    return order


def test_a_dispute_seen_before_the_dispatch_it_follows_leaves_the_order_in_dispute():
    clock = ManualClock()
    order = paid_order(clock)
    order.mark_disputed(clock.now(), True, "dsp-1")
    order.mark_shipped(clock.now())
    assert order.status is OrderStatus.IN_DISPUTE


def test_a_withdrawn_dispute_and_a_second_one_follow_the_dispute_topic_order():
    clock = ManualClock()
    order = paid_order(clock)
    order.mark_shipped(clock.now())
    order.mark_disputed(clock.now(), True, "dsp-1")
    order.mark_disputed(clock.now(), False, "dsp-1")
    assert order.status is OrderStatus.SHIPPED
    order.mark_disputed(clock.now(), True, "dsp-2")
    assert order.status is OrderStatus.IN_DISPUTE


def test_a_late_sweep_asks_for_no_payment_once_the_window_closed():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.pull_events()
    order.run_due_deadlines(clock.advance(timedelta(days=21)))
    assert order.pull_events() == [] and order.deadlines == {}


def test_a_payment_made_in_time_counts_even_when_its_news_comes_after_the_deadline():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    order.pull_events()
    paid_at = clock.advance(timedelta(days=19))
    order.mark_paid(clock.advance(timedelta(days=2)), paid_at)
    assert order.status is OrderStatus.PAID and order.pull_events() == []


def test_a_cancel_after_the_unswept_deadline_is_refused_as_closed():
    clock = ManualClock()
    order = placed(clock)
    order.confirm(SUPPLIER, LOGISTICS, clock.now(), **WINDOW)
    with pytest.raises(DomainError, match="closed"):
        order.cancel(BUYER, "too late", clock.advance(timedelta(days=21)))


def test_a_message_through_a_service_token_is_the_buyers():
    clock = ManualClock()
    order = placed(clock)
    message = order.post_message(Actor(party_id="buyer-1", role=Role.SERVICE), "hello",
                                 clock.now())
    assert message.author_role is Role.BUYER
    assert order.pull_events()[-1].author_role is Role.BUYER


def test_money_returned_after_settlement_counts_as_refunded():
    clock = ManualClock()
    order = paid_order(clock)
    order.mark_returned(500, "USD", clock.now())  # an overpayment: already in the totals
    order.settle(3948, 500, clock.now())
    order.mark_returned(4000, "USD", clock.now())  # a late transfer, sent back
    order.mark_returned(900, "EUR", clock.now())  # never the order's money
    assert (order.released_total, order.refunded_total) == (3948, 4500)


def test_one_party_can_make_the_platform_mail_only_so_many_messages_per_hour():
    clock = ManualClock()
    order = placed(clock)
    for _ in range(MESSAGES_PER_WINDOW):
        order.post_message(BUYER, "hello", clock.now())
    with pytest.raises(TooManyRequests) as refused:
        order.post_message(BUYER, "one more", clock.advance(timedelta(minutes=10)))
    assert refused.value.retry_after == MESSAGE_WINDOW - timedelta(minutes=10)
    order.post_message(SUPPLIER, "the other side may still answer", clock.now())
    order.post_message(BUYER, "later", clock.advance(MESSAGE_WINDOW))
