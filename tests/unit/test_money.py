"""Amounts and currencies at the edge: strict bounded integers, ISO 4217 complete, order
totals checked for overflow, and a display that is total for every currency money can
arrive in. Every refusal is a 422 with the field named, never a 500."""

import json

import httpx
import pytest
from pydantic import ValidationError

from shared.contracts.money import MAX_MINOR_UNITS, MINOR_UNITS, Money, checked_total
from shared.contracts.parties import Role
from shared.contracts.trade import LineItem
from shared.infra.auth import mint_token
from shared.infra.clock import ManualClock
from shared.infra.http import create_app
from shared.infra.runner import AggregateRunner
from shared.infra.settings import DEV_AUTH_SECRET

from services.order.api import router
from services.order.domain import Order
from services.order.handlers import OrderService
from services.order.settings import OrderSettings
from tests.support.memory_mongo import MemoryAggregateStore, memory_rate_limiter

BUYER = {"Authorization": f"Bearer {mint_token(DEV_AUTH_SECRET, 'buyer-1', Role.BUYER)}"}


def order_body(items=None, currency="USD"):
    return {"supplier": {"party_id": "supplier-1", "name": "Supplier", "email": "s@example.com"},
            "buyer_contact": {"name": "Buyer", "email": "b@example.com"},
            "items": items or [{"description": "bolts", "quantity": 2, "unit_price": 2500}],
            "currency": currency,
            "destination": {"recipient": "R", "line1": "l", "city": "c", "country": "FR"},
            "delivery_period_days": 7}


@pytest.fixture
async def orders():
    async def published(message):
        return None

    clock = ManualClock()
    runner = AggregateRunner(MemoryAggregateStore(Order), clock, published)
    settings = OrderSettings()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    app = create_app(title="orders", description="", settings=settings, ready=ready)
    app.include_router(router(OrderService(runner, settings, memory_rate_limiter(clock))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order") as client:
        yield client


@pytest.mark.parametrize("amount", [True, "100", 2500.0, 2**63, MAX_MINOR_UNITS + 1, 0, -1])
async def test_a_unit_price_that_is_not_a_bounded_integer_is_a_422_field_error(orders, amount):
    answer = await orders.post("/orders", headers=BUYER, json=order_body(
        [{"description": "bolts", "quantity": 2, "unit_price": amount}]))
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["items.0.unit_price"]


@pytest.mark.parametrize("quantity", [True, "2", 2.0])
async def test_a_quantity_that_is_not_an_integer_is_refused(orders, quantity):
    answer = await orders.post("/orders", headers=BUYER, json=order_body(
        [{"description": "bolts", "quantity": quantity, "unit_price": 100}]))
    assert answer.status_code == 422, answer.text


async def test_totals_above_the_bound_are_refused_not_overflowed(orders):
    line = {"description": "bolts", "quantity": 10_000_000, "unit_price": MAX_MINOR_UNITS // 10_000_000}
    assert (await orders.post("/orders", headers=BUYER, json=order_body([line]))).status_code == 201
    too_much = await orders.post("/orders", headers=BUYER, json=order_body([line, line]))
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "items"
    one_line = await orders.post("/orders", headers=BUYER, json=order_body(
        [{**line, "unit_price": MAX_MINOR_UNITS}]))
    assert one_line.status_code == 422 and one_line.json()["errors"][0]["field"] == "items.0"


@pytest.mark.parametrize("currency", ["XAU", "XXX", "ABC", "usd", "US"])
async def test_a_currency_the_platform_cannot_settle_is_a_422_naming_the_field(orders, currency):
    answer = await orders.post("/orders", headers=BUYER, json=order_body(currency=currency))
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["currency"]


@pytest.mark.parametrize("currency", ["NZD", "CZK", "HUF", "CLF", "TND", "XOF"])
async def test_every_active_iso_4217_currency_can_be_ordered_in(orders, currency):
    answer = await orders.post("/orders", headers=BUYER, json=order_body(currency=currency))
    assert answer.status_code == 201, answer.text


def test_the_minor_units_table_is_the_iso_4217_list():
    assert len(MINOR_UNITS) >= 150
    assert {MINOR_UNITS[c] for c in ("JPY", "KRW", "ISK", "XAF")} == {0}
    assert {MINOR_UNITS[c] for c in ("KWD", "BHD", "JOD", "OMR", "TND", "LYD", "IQD")} == {3}
    assert MINOR_UNITS["CLF"] == MINOR_UNITS["UYW"] == 4
    assert not {"XAU", "XDR", "XTS", "XXX", "HRK"} & MINOR_UNITS.keys()


def test_display_is_total_for_every_currency_money_can_arrive_in():
    for code in [*MINOR_UNITS, "QQQ", "XAU"]:
        shown = Money(amount=123_456_789, currency=code).display()
        assert shown.startswith(code + " ") and "".join(filter(str.isdigit, shown)) == "123456789"


def test_display_follows_the_exponent():
    assert Money(amount=125_000, currency="USD").display() == "USD 1,250.00"
    assert Money(amount=125_000, currency="JPY").display() == "JPY 125,000"
    assert Money(amount=125_000, currency="KWD").display() == "KWD 125.000"
    assert Money(amount=125_000, currency="QQQ").display() == "QQQ 125,000 (minor units)"


def test_money_and_line_items_take_strict_integers_only():
    for bad in (True, "100", 100.0, MAX_MINOR_UNITS + 1):
        with pytest.raises(ValidationError):
            Money(amount=bad, currency="USD")
        with pytest.raises(ValidationError):
            LineItem.model_validate_json(f'{{"description": "x", "quantity": 1, "unit_price": '
                                         f'{"true" if bad is True else repr(bad).replace(chr(39), chr(34))}}}')
    with pytest.raises(ValueError, match="exceeds"):
        checked_total([MAX_MINOR_UNITS, 1])


@pytest.mark.parametrize("amount", [True, "100", 2500.0, 2**63, 0])
def test_dispute_amounts_are_strict_bounded_integers_too(amount):
    from services.dispute.api import AnswerDispute, Decision, OpenDispute
    bodies = [(OpenDispute, {"reason": "other", "requested": "partial_refund", "amount": amount,
                             "description": "scratched"}),
              (AnswerDispute, {"answer": "counter_offer", "amount": amount}),
              (Decision, {"outcome": "partial_refund", "refund_amount": amount, "reason": "fair"})]
    for model, body in bodies:
        with pytest.raises(ValidationError) as refused:
            model.model_validate_json(json.dumps(body))
        assert {e["loc"][0] for e in refused.value.errors()} <= {"amount", "refund_amount"}
