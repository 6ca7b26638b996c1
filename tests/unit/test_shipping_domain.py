from datetime import UTC, date, datetime, timedelta

import pytest

from shared.contracts.events import (
    DispatchDeadlineMissed,
    ShipmentDispatched,
    ShipmentDueSoon,
    ShipmentExpected,
)
from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Carrier, Logistics, ShippingMethod
from shared.domain.actor import Actor
from shared.domain.errors import DomainError, InvalidRequest, NotPermitted

from services.shipping.domain import SHIP_BY, SHIP_BY_REMINDER, Shipment, ShipmentStatus

PARTIES = Parties(
    buyer=Party(party_id="buyer-acme", name="ACME Imports Ltd", email="buy@acme.example"),
    supplier=Party(party_id="supplier-shenzhen", name="Shenzhen Bolts Co",
                   email="sales@bolts.example"),
)
LOGISTICS = Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.EMS)
SUPPLIER = Actor(party_id="supplier-shenzhen", role=Role.SUPPLIER)
BUYER = Actor(party_id="buyer-acme", role=Role.BUYER)
LEAD = timedelta(days=2)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAID_AT = T0 + timedelta(days=1)
SHIP_BY_AT = PAID_AT + timedelta(days=10)
EMS_NUMBER = "EE123456785CN"


def confirmed() -> Shipment:
    return Shipment.expect("ord-1", PARTIES, LOGISTICS, 10, T0)


def paid() -> Shipment:
    shipment = confirmed()
    shipment.escrow_funded(PAID_AT, PAID_AT, LEAD)
    shipment.pull_events()
    return shipment


def dispatch(shipment: Shipment, now: datetime, *, actor: Actor = SUPPLIER,
             carrier: Carrier = Carrier.EMS, number: str = EMS_NUMBER,
             ship_date: date | None = None) -> bool:
    return shipment.submit_dispatch(actor, carrier, number, ship_date or now.date(), now)


def test_confirmed_order_awaits_payment_without_deadlines():
    shipment = confirmed()
    assert shipment.status is ShipmentStatus.AWAITING_PAYMENT
    assert shipment.deadlines == {}
    assert shipment.pull_events() == []


def test_payment_starts_the_delivery_period_from_the_funding_time():
    shipment = confirmed()
    handled_later = PAID_AT + timedelta(hours=3)
    assert shipment.escrow_funded(PAID_AT, handled_later, LEAD)
    assert shipment.status is ShipmentStatus.AWAITING_DISPATCH
    assert shipment.ship_by == SHIP_BY_AT
    assert shipment.deadlines == {SHIP_BY: SHIP_BY_AT, SHIP_BY_REMINDER: SHIP_BY_AT - LEAD}
    [expected] = shipment.pull_events()
    assert isinstance(expected, ShipmentExpected)
    assert expected.ship_by == SHIP_BY_AT and expected.logistics == LOGISTICS


def test_repeated_payment_news_changes_nothing():
    shipment = paid()
    assert not shipment.escrow_funded(PAID_AT + timedelta(days=1), PAID_AT + timedelta(days=1), LEAD)
    assert shipment.ship_by == SHIP_BY_AT
    assert shipment.pull_events() == []


def test_reminder_is_skipped_when_already_past():
    shipment = confirmed()
    shipment.escrow_funded(PAID_AT, SHIP_BY_AT - timedelta(days=1), LEAD)
    assert shipment.deadlines == {SHIP_BY: SHIP_BY_AT}


def test_payment_seen_before_confirmation_starts_the_period_once_confirmed():
    shipment = Shipment.paid_before_confirmation("ord-1", PARTIES, PAID_AT, PAID_AT)
    assert shipment.status is ShipmentStatus.AWAITING_ORDER_DETAILS
    assert shipment.deadlines == {}
    later = PAID_AT + timedelta(minutes=5)
    assert shipment.order_confirmed(LOGISTICS, 10, later, LEAD)
    assert shipment.status is ShipmentStatus.AWAITING_DISPATCH
    assert shipment.ship_by == SHIP_BY_AT
    assert [type(e) for e in shipment.pull_events()] == [ShipmentExpected]
    assert not shipment.order_confirmed(LOGISTICS, 10, later, LEAD)


def test_reminder_then_missed_deadline():
    shipment = paid()
    shipment.run_due_deadlines(SHIP_BY_AT - LEAD)
    [due_soon] = shipment.pull_events()
    assert isinstance(due_soon, ShipmentDueSoon) and due_soon.ship_by == SHIP_BY_AT
    shipment.run_due_deadlines(SHIP_BY_AT - timedelta(seconds=1))
    assert shipment.pull_events() == []
    shipment.run_due_deadlines(SHIP_BY_AT)
    [missed] = shipment.pull_events()
    assert isinstance(missed, DispatchDeadlineMissed) and missed.ship_by == SHIP_BY_AT
    assert shipment.status is ShipmentStatus.DEADLINE_MISSED
    assert shipment.deadlines == {}


def test_a_late_sweep_sends_no_reminder_after_the_deadline():
    shipment = paid()
    shipment.run_due_deadlines(SHIP_BY_AT + timedelta(hours=1))
    assert [type(e) for e in shipment.pull_events()] == [DispatchDeadlineMissed]


def test_supplier_dispatches_within_the_period():
    shipment = paid()
    now = PAID_AT + timedelta(days=3)
    assert dispatch(shipment, now, number="ee 123 456 785 cn")
    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.deadlines == {}
    [dispatched] = shipment.pull_events()
    assert isinstance(dispatched, ShipmentDispatched)
    assert dispatched.tracking_number == EMS_NUMBER
    assert dispatched.ship_date == now.date() and dispatched.dispatched_at == now
    assert shipment.dispatch and shipment.dispatch.submitted_by == "supplier-shenzhen"
    shipment.run_due_deadlines(SHIP_BY_AT + timedelta(days=1))
    assert shipment.pull_events() == []


def test_identical_resubmission_is_a_no_op_even_after_the_deadline():
    shipment = paid()
    dispatch(shipment, PAID_AT + timedelta(days=3), ship_date=PAID_AT.date())
    shipment.pull_events()
    history = len(shipment.history)
    assert not dispatch(shipment, SHIP_BY_AT + timedelta(days=1), number=" ee123456785cn",
                        ship_date=PAID_AT.date())
    assert shipment.pull_events() == [] and len(shipment.history) == history


def test_a_different_resubmission_is_a_conflict():
    shipment = paid()
    dispatch(shipment, PAID_AT + timedelta(days=3), ship_date=PAID_AT.date())
    with pytest.raises(DomainError, match="already submitted") as refused:
        dispatch(shipment, PAID_AT + timedelta(days=3), ship_date=PAID_AT.date() + timedelta(days=1))
    assert type(refused.value) is DomainError  # a conflict with the state (HTTP 409)
    assert shipment.dispatch and shipment.dispatch.ship_date == PAID_AT.date()


def test_dispatch_at_the_deadline_is_refused_even_before_the_sweep():
    shipment = paid()
    with pytest.raises(DomainError, match="deadline") as refused:
        dispatch(shipment, SHIP_BY_AT)
    assert type(refused.value) is DomainError  # a conflict with the state (HTTP 409)
    assert shipment.status is ShipmentStatus.AWAITING_DISPATCH


def test_dispatch_after_the_missed_deadline_is_refused():
    shipment = paid()
    shipment.run_due_deadlines(SHIP_BY_AT)
    with pytest.raises(DomainError, match="refunded"):
        dispatch(shipment, SHIP_BY_AT + timedelta(minutes=1), ship_date=SHIP_BY_AT.date())


def test_only_the_orders_supplier_dispatches():
    shipment = paid()
    now = PAID_AT + timedelta(days=1)
    for actor in (BUYER, Actor(party_id="supplier-other", role=Role.SUPPLIER),
                  Actor(party_id="supplier-shenzhen", role=Role.AGENT)):
        with pytest.raises(NotPermitted):
            dispatch(shipment, now, actor=actor)
    assert shipment.dispatch is None


def test_no_dispatch_before_payment_or_after_closure():
    shipment = confirmed()
    with pytest.raises(DomainError, match="not paid"):
        dispatch(shipment, T0)
    shipment.order_closed("cancelled", T0)
    with pytest.raises(DomainError, match="closed"):
        dispatch(shipment, T0)


def test_invalid_tracking_number_is_refused():
    shipment = paid()
    with pytest.raises(InvalidRequest) as refused:
        dispatch(shipment, PAID_AT + timedelta(days=1), number="EE123456784CN")
    assert refused.value.field == "tracking_number"
    assert "S10" in refused.value.detail
    assert shipment.dispatch is None


@pytest.mark.parametrize("ship_date", [
    (PAID_AT + timedelta(days=4)).date(),  # tomorrow
    (PAID_AT - timedelta(days=1)).date(),  # before payment
])
def test_ship_date_must_lie_between_payment_and_today(ship_date):
    shipment = paid()
    with pytest.raises(InvalidRequest) as refused:
        dispatch(shipment, PAID_AT + timedelta(days=3), ship_date=ship_date)
    assert refused.value.field == "ship_date"


def test_ship_date_on_the_payment_day_and_today_are_accepted():
    for ship_date in (PAID_AT.date(), (PAID_AT + timedelta(days=3)).date()):
        shipment = paid()
        assert dispatch(shipment, PAID_AT + timedelta(days=3), ship_date=ship_date)


def test_another_carrier_than_agreed_is_accepted_and_noted():
    shipment = paid()
    assert dispatch(shipment, PAID_AT + timedelta(days=1), carrier=Carrier.UPS,
                    number="1Z999AA10123456784")
    assert any(h.what == "carrier_differs_from_agreed" for h in shipment.history)


def test_closure_removes_every_deadline_and_is_idempotent():
    shipment = paid()
    assert shipment.order_closed("settled", PAID_AT + timedelta(days=1))
    assert shipment.status is ShipmentStatus.CLOSED and shipment.deadlines == {}
    assert not shipment.order_closed("settled", PAID_AT + timedelta(days=2))
    shipment.run_due_deadlines(SHIP_BY_AT)
    assert shipment.pull_events() == []


def test_closure_keeps_a_dispatched_status():
    shipment = paid()
    dispatch(shipment, PAID_AT + timedelta(days=1))
    shipment.order_closed("settled", PAID_AT + timedelta(days=20))
    assert shipment.status is ShipmentStatus.DISPATCHED
    assert shipment.order_closed_at == PAID_AT + timedelta(days=20)


def test_payment_news_for_a_closed_order_starts_nothing():
    shipment = confirmed()
    shipment.order_closed("cancelled", T0)
    shipment.escrow_funded(PAID_AT, PAID_AT, LEAD)
    assert shipment.status is ShipmentStatus.CLOSED and shipment.deadlines == {}
    assert shipment.pull_events() == []


@pytest.mark.parametrize(("actor", "allowed"), [
    (BUYER, True),
    (SUPPLIER, True),
    (Actor(party_id="agent-7", role=Role.AGENT), True),
    (Actor(party_id="buyer-other", role=Role.BUYER), False),
    (Actor(party_id="supplier-other", role=Role.SUPPLIER), False),
    (Actor(party_id="buyer-acme", role=Role.SUPPLIER), False),
    (Actor(party_id="bank", role=Role.BANK), False),
])
def test_who_may_see_the_shipment(actor, allowed):
    shipment = paid()
    if allowed:
        shipment.require_viewer(actor)
    else:
        with pytest.raises(NotPermitted):
            shipment.require_viewer(actor)


def test_state_survives_a_round_trip_through_storage():
    shipment = paid()
    dispatch(shipment, PAID_AT + timedelta(days=1))
    stored = shipment.model_dump(mode="json")
    assert Shipment.model_validate(stored).model_dump(mode="json") == stored
