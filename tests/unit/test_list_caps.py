"""Every list a party (or anyone wiring money with an order's reference) can make grow on
one order is capped (issue 8.11): a clear 409 over HTTP, a dead letter with the reason for an
event, money beyond the cap returned. Together they keep each document far below 16 MB."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.contracts.parties import Parties, Party
from shared.domain.aggregate import MAX_HISTORY_ENTRIES, Aggregate
from shared.domain.errors import DomainError

from services.dispute.domain import MAX_DISPUTES_PER_ORDER
from services.dispute.negotiation import MAX_STATEMENTS_PER_DISPUTE
from services.payment.bank_transfers import TOO_MANY_TRANSFERS
from services.payment.domain import MAX_CARD_ATTEMPTS, MAX_TRANSFERS_PER_ORDER, EscrowStatus
from services.payment.provider import SANDBOX_DECLINE
from tests.unit.test_dispute_domain import BUYER, DAY, OPENS_AT, PERIODS, SUPPLIER, open_dispute, shipped
from tests.unit.test_payment_service import World

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="B"), supplier=Party(party_id="supplier-1", name="S"))


def test_a_dispute_takes_a_bounded_number_of_statements():
    p = shipped()
    open_dispute(p)
    for i in range(MAX_STATEMENTS_PER_DISPUTE):
        p.add_statement(BUYER if i % 2 else SUPPLIER, f"statement {i}", [], OPENS_AT + DAY)
    with pytest.raises(DomainError, match=f"at most {MAX_STATEMENTS_PER_DISPUTE} statements"):
        p.add_statement(BUYER, "one more", [], OPENS_AT + DAY)
    assert p.dispute is not None and len(p.dispute.statements) == MAX_STATEMENTS_PER_DISPUTE
    p.add_statement(BUYER, "statement 1", [], OPENS_AT + DAY)  # a repeat is still a no-op


def test_an_order_takes_a_bounded_number_of_disputes_withdrawn_ones_included():
    p = shipped()
    at = OPENS_AT
    for _ in range(MAX_DISPUTES_PER_ORDER):
        open_dispute(p, at)
        p.withdraw_dispute(BUYER, at, periods=PERIODS)
        at += timedelta(hours=1)
    with pytest.raises(DomainError, match=f"at most {MAX_DISPUTES_PER_ORDER} disputes per order"):
        open_dispute(p, at)
    assert len(p.withdrawn_disputes) == MAX_DISPUTES_PER_ORDER - 1


class Bare(Aggregate):
    def on_deadline(self, kind, due, now) -> None:
        raise LookupError(kind)


def test_the_history_is_bounded_with_a_clear_error():
    """A backstop: the lists above keep every real history far below it. Past it, a command
    gets a 409 and an event a dead letter, both with this reason."""
    aggregate = Bare(order_id="ord-1", parties=PARTIES)
    for i in range(MAX_HISTORY_ENTRIES):
        aggregate.note(OPENS_AT, "something", n=i)
    with pytest.raises(DomainError, match="history of order ord-1 is full"):
        aggregate.note(OPENS_AT, "one too many")
    assert len(aggregate.history) == MAX_HISTORY_ENTRIES


async def test_card_payments_tried_on_one_order_are_bounded_before_the_provider():
    world = World()
    await world.confirm()
    for _ in range(MAX_CARD_ATTEMPTS):
        with pytest.raises(Exception, match="declined"):
            await world.pay_card(SANDBOX_DECLINE)
    charges_tried = len(world.provider.movements)
    with pytest.raises(DomainError, match=f"at most {MAX_CARD_ATTEMPTS} card payments"):
        await world.pay_card()
    escrow = await world.escrow()
    assert len(escrow.charge_intents) == MAX_CARD_ATTEMPTS
    assert escrow.status is EscrowStatus.AWAITING_FUNDS
    assert len(world.provider.movements) == charges_tried  # the provider was not asked


async def test_transfers_past_the_cap_go_back_to_their_sender_without_touching_the_escrow():
    world = World()
    await world.confirm()
    for i in range(MAX_TRANSFERS_PER_ORDER):
        assert (await world.transfer(f"tt-{i}", 1)).matched
    before = await world.escrow()
    outcome = await world.transfer("tt-more", 7)
    assert (outcome.matched, outcome.returned) == (False, 7)
    assert "takes no more transfers" in outcome.detail
    after = await world.escrow()
    assert len(after.fundings) == len(before.fundings) == MAX_TRANSFERS_PER_ORDER
    [kept] = await world.database["bank_transfers"].find({"_id": "tt-more"}).to_list()
    assert kept["return_instruction"]["reason"] == TOO_MANY_TRANSFERS
