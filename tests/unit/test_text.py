"""Text at the edge (issue 8.12): control characters, bidi overrides and look-alike digits
are refused with a field-level 422, never a 500, and accepted text is normalised."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.parties import Role
from shared.contracts.text import Name, PartyId, Statement

from tests.support.memory import InMemoryPlatform
from tests.support.trade import Trade

NAME = TypeAdapter(Name)


@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


@pytest.mark.parametrize("bad", ["ACME\x00", "ACME\x1b[31m", "ACME\x7f", "ACME\r\nBcc: x@y.z",
                                 "\u202eemoSCA", "A\u2066CME", "A\u2028B"])
def test_a_name_with_a_control_or_bidi_character_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="control character"):
        NAME.validate_python(bad)


def test_text_is_normalised_to_nfc_and_trimmed() -> None:
    assert NAME.validate_python("  Cafe\u0301 Ltd ") == "Caf\u00e9 Ltd"
    with pytest.raises(ValidationError):
        NAME.validate_python("   ")


def test_a_statement_keeps_its_lines_but_not_escape_sequences() -> None:
    assert TypeAdapter(Statement).validate_python("one\r\ntwo\tthree") == "one\ntwo\tthree"
    with pytest.raises(ValidationError):
        TypeAdapter(Statement).validate_python("one\x1b[2Jtwo")


def test_a_party_id_is_nfkc_normalised_then_plain_ascii() -> None:
    assert TypeAdapter(PartyId).validate_python("\uff42uyer-\uff11") == "buyer-1"
    with pytest.raises(ValidationError):
        TypeAdapter(PartyId).validate_python("buyer 1")


async def test_the_order_api_refuses_a_control_character_in_a_name_with_the_field(platform) -> None:
    trade = Trade(platform)
    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", json=order_body(trade, buyer_name="ACME\x1b]0;pwned\x07"))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["buyer_contact.name"]


async def test_the_order_api_refuses_a_bidi_override_in_the_supplier_name(platform) -> None:
    trade = Trade(platform)
    body = order_body(trade)
    body["supplier"]["name"] = "Shenzhen \u202eexe.stra"
    async with platform.client("order", trade.buyer, Role.BUYER) as client:
        response = await client.post("/orders", json=body)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["supplier.name"]


@pytest.mark.parametrize("number", [
    "\uff14\uff12\uff14\uff12" * 4,  # full-width 4242...: Luhn-valid once folded
    "424242424242424\u00b2",  # superscript two: was a 500
    "4242424242424242\u0664",  # an Arabic-Indic digit
])
async def test_a_card_number_is_ascii_digits_only(platform, number: str) -> None:
    trade = Trade(platform)
    await trade.place()
    await trade.confirm()
    response = await trade.pay_by_card(number, expect=422)
    assert [e["field"] for e in response.json()["errors"]] == ["number"]
    assert number not in response.text


def order_body(trade: Trade, buyer_name: str = "ACME Imports") -> dict:
    return {"supplier": {"party_id": trade.supplier, "name": "Shenzhen Parts",
                         "email": trade.supplier_email},
            "buyer_contact": {"name": buyer_name, "email": trade.buyer_email},
            "items": [{"description": "bolts", "quantity": 1, "unit_price": 100}],
            "currency": "USD",
            "destination": {"recipient": "ACME", "line1": "Hafenstrasse 1", "city": "Hamburg",
                            "country": "DE"},
            "delivery_period_days": 10}
